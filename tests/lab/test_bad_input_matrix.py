"""The bad-input matrix: every case of bad_input_cases.yml fails with one clear sentence, no traceback,
and nothing half-created.

All cases run in ONE ansible-playbook process: each case is an inventory host (connection local)
and the play runs them side by side over a few forks, every case in a block whose rescue
keeps the failed result. A last play writes every case's outcome to one JSON file, which the
parametrized tests below read. The namespace's objects are listed before and after: bad input
must leave nothing behind.
"""
import base64
import copy
import json
import re
import time
import uuid
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from ansible_run import ansible_env, run_playbook

HERE = Path(__file__).resolve().parent
CASES = yaml.safe_load((HERE / "bad_input_cases.yml").read_text())
MODULES = sorted({c["module"] for c in CASES if "module" in c})
FORKS = 4

KINDS = [  # (group, version, plural) of what a case could leave behind; "" is the core group
    ("kubevirt.io", "v1", "virtualmachines"), ("kubevirt.io", "v1", "virtualmachineinstances"),
    ("cdi.kubevirt.io", "v1beta1", "datavolumes"), ("k8s.cni.cncf.io", "v1", "network-attachment-definitions"),
    ("", "v1", "persistentvolumeclaims"), ("", "v1", "pods"), ("", "v1", "services"), ("", "v1", "secrets"),
    ("", "v1", "configmaps"), ("snapshot.kubevirt.io", "v1beta1", "virtualmachinesnapshots"),
    ("snapshot.kubevirt.io", "v1beta1", "virtualmachinerestores"),
]

NAD_CONFIG = {"cniVersion": "0.3.1", "name": "br1-net", "type": "bridge", "bridge": "br1",
              "ipam": {"type": "host-local", "subnet": "192.168.50.0/24"}}


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def expired_token(core, lab_state, namespace):
    """A ServiceAccount token as the API server issues it, re-signed with exp (and iat/nbf) in the past."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    core.create_namespaced_service_account(namespace, {"metadata": {"name": "bi-expired"}})
    token = core.create_namespaced_service_account_token(
        "bi-expired", namespace, {"spec": {"expirationSeconds": 600}}).status.token
    header, payload, _sig = token.split(".")
    claims = json.loads(_b64url_decode(payload))
    past = int(time.time()) - 7200
    claims.update(iat=past, nbf=past, exp=past + 600)
    signing_input = "%s.%s" % (header, _b64url(json.dumps(claims, separators=(",", ":")).encode()))
    key = serialization.load_pem_private_key((lab_state / "pki" / "sa.key").read_bytes(), password=None)
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return "%s.%s" % (signing_input, _b64url(signature))


def broken_files(folder, kubeconfig, api_url):
    """Kubeconfigs and CA files that are wrong in one way each."""
    folder.mkdir(parents=True, exist_ok=True)
    good = yaml.safe_load(Path(kubeconfig).read_text())
    (folder / "bad-yaml.kubeconfig").write_text("apiVersion: v1\nclusters: [\n  - name: lab\n   cluster: {\n")
    (folder / "list.kubeconfig").write_text("- just\n- a list\n")
    no_cluster = copy.deepcopy(good)
    no_cluster["contexts"][0]["context"]["cluster"] = "gone"
    (folder / "no-cluster.kubeconfig").write_text(yaml.safe_dump(no_cluster))
    no_ca = copy.deepcopy(good)
    no_ca["clusters"][0]["cluster"].pop("certificate-authority-data", None)
    no_ca["clusters"][0]["cluster"]["server"] = api_url
    (folder / "no-ca.kubeconfig").write_text(yaml.safe_dump(no_ca))
    (folder / "garbage-ca.crt").write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    return folder


KUBEVIRT_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "kubevirts.kubevirt.io"},
    "spec": {"group": "kubevirt.io", "scope": "Namespaced",
             "names": {"kind": "KubeVirt", "plural": "kubevirts", "singular": "kubevirt", "listKind": "KubeVirtList"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                 "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
}


def kubevirt_cr(api, namespace):
    """The KubeVirt CR a real cluster has (the lab has none), with no binding plugin registered, so that the
    modules check binding names against it. Returns whether the CRD was created here (to remove it after)."""
    ext = client.ApiextensionsV1Api(api)
    created = False
    try:
        ext.read_custom_resource_definition("kubevirts.kubevirt.io")
    except client.exceptions.ApiException as exc:
        if exc.status != 404:
            raise
        ext.create_custom_resource_definition(KUBEVIRT_CRD)
        created = True
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        conds = ext.read_custom_resource_definition("kubevirts.kubevirt.io").status.conditions or []
        if any(c.type == "Established" and c.status == "True" for c in conds):
            break
        time.sleep(0.2)
    for _ in range(50):  # the new resource may take a moment to be served
        try:
            client.CustomObjectsApi(api).create_namespaced_custom_object("kubevirt.io", "v1", namespace, "kubevirts", {
                "apiVersion": "kubevirt.io/v1", "kind": "KubeVirt", "metadata": {"name": "kubevirt"},
                "spec": {"configuration": {"network": {"binding": {}}}}})
            break
        except client.exceptions.ApiException as exc:
            if exc.status != 404:
                raise
            time.sleep(0.2)
    return created


def snapshot(api, namespace):
    """{plural: sorted names} of the namespace's objects (the kinds a case could create)."""
    custom = client.CustomObjectsApi(api)
    core = client.CoreV1Api(api)
    out = {}
    for group, version, plural in KINDS:
        if group:
            items = custom.list_namespaced_custom_object(group, version, namespace, plural)["items"]
            names = [i["metadata"]["name"] for i in items]
        else:
            lister = getattr(core, "list_namespaced_" + {
                "persistentvolumeclaims": "persistent_volume_claim", "pods": "pod", "services": "service",
                "secrets": "secret", "configmaps": "config_map"}[plural])
            names = [i.metadata.name for i in lister(namespace).items]
        out[plural] = sorted(names)
    return out


def substitute(value, subs):
    if isinstance(value, str):
        for key, replacement in subs.items():
            value = value.replace(key, replacement)
        return value
    if isinstance(value, list):
        return [substitute(v, subs) for v in value]
    if isinstance(value, dict):
        return {substitute(k, subs): substitute(v, subs) for k, v in value.items()}
    return value


def inventory_for(cases, namespace):
    hosts = {}
    for case in cases:
        case = copy.deepcopy(case)
        hostvars = {"case": {k: v for k, v in case.items() if k not in ("vars", "expect")}}
        if "module" in case and "namespace" not in case["args"] and not case.get("no_namespace"):
            hostvars["case"]["args"] = dict(case["args"], namespace=namespace)
        if "role" in case:
            hostvars.update(case.get("vars") or {})
        hosts[case["id"]] = hostvars
    return {"all": {"vars": {"ansible_connection": "local"}, "children": {"cases": {"hosts": hosts}}}}


def plays_for(modules, out_file, base_env):
    tasks = []
    for module in modules:
        tasks.append({"name": module, "virtops.kubevirt.%s" % module: "{{ case.args }}",
                      "when": "case.module | default('') == %r" % module, "register": "r_%s" % module})
    tasks.append({"name": "lookup", "when": "case.lookup is defined",
                  "ansible.builtin.set_fact": {
                      "r_lookup": "{{ lookup('virtops.kubevirt.' ~ case.lookup, *case.terms, **case.kwargs) }}"}})
    tasks.append({"name": "role", "when": "case.role is defined",
                  "ansible.builtin.include_role": {"name": "virtops.kubevirt.{{ case.role }}"}})
    tasks.append({"name": "did not fail", "ansible.builtin.set_fact": {"outcome": {"failed": False}}})
    case_play = {
        "name": "bad input cases", "hosts": "cases", "gather_facts": False,
        "environment": "{{ %s | combine(case.env | default({})) }}" % json.dumps(base_env),
        "tasks": [{"block": tasks, "rescue": [{"ansible.builtin.set_fact": {
            "outcome": "{{ ansible_failed_result | combine({'failed_task': ansible_failed_task.name}) }}"}}]}],
    }
    collect = {
        "name": "collect", "hosts": "localhost", "gather_facts": False,
        "tasks": [{"ansible.builtin.copy": {
            "dest": str(out_file),
            "content": "{{ dict(groups['cases'] | zip(groups['cases'] | map('extract', hostvars, 'outcome'))) "
                       "| to_nice_json }}"}}],
    }
    return [case_play, collect]


@pytest.fixture(scope="module")
def matrix(api, core, kubeconfig, lab_state, lab_info, tmp_path_factory):
    """Run every case once; returns (outcomes by id, substitutions, snapshot before, snapshot after, log)."""
    custom = client.CustomObjectsApi(api)
    ns = "bi-%s" % uuid.uuid4().hex[:8]
    core.create_namespace({"metadata": {"name": ns, "labels": {"virtops.io/test": "true"}}})
    made_crd = False
    try:
        made_crd = kubevirt_cr(api, ns)
        custom.create_namespaced_custom_object("k8s.cni.cncf.io", "v1", ns, "network-attachment-definitions", {
            "apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": "br1-net"}, "spec": {"config": json.dumps(NAD_CONFIG)}})
        custom.create_namespaced_custom_object("kubevirt.io", "v1", ns, "virtualmachines", {
            "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": "existing"},
            "spec": {"runStrategy": "Halted", "template": {"spec": {
                "domain": {"memory": {"guest": "128Mi"}, "devices": {}}}}}})
        work = tmp_path_factory.mktemp("bad-input")
        api_url = lab_info["apiserver"]["url"]
        files = broken_files(work / "files", kubeconfig, api_url)
        subs = {"$NS": ns, "$API": api_url, "$CA": str(lab_state / "pki" / "ca.crt"),
                "$WRONG_CA": str(lab_state / "pki" / "front-proxy-ca.crt"), "$FILES": str(files),
                "$EXPIRED_TOKEN": expired_token(core, lab_state, ns),
                "$WRONG_TOKEN": "not-a-valid-token-%s" % uuid.uuid4().hex}
        cases = substitute(CASES, subs)
        before = snapshot(api, ns)
        vm_before = custom.get_namespaced_custom_object("kubevirt.io", "v1", ns, "virtualmachines", "existing")
        out_file = work / "outcomes.json"
        env = ansible_env(kubeconfig, ANSIBLE_FORKS=FORKS, ANSIBLE_ACTION_WARNINGS="false",
                          ANSIBLE_DEPRECATION_WARNINGS="false")
        start = time.monotonic()
        proc = run_playbook(work, plays_for(MODULES, out_file, {"KUBECONFIG": str(kubeconfig)}),
                            inventory_for(cases, ns), env=env)
        seconds = time.monotonic() - start
        log = proc.stdout + proc.stderr
        assert out_file.exists(), "the matrix playbook did not finish (rc %d):\n%s" % (proc.returncode, log[-4000:])
        outcomes = json.loads(out_file.read_text())
        time.sleep(1)  # a controller reacting to a stray write would show by now
        after = snapshot(api, ns)
        vm_after = custom.get_namespaced_custom_object("kubevirt.io", "v1", ns, "virtualmachines", "existing")
        yield {"outcomes": outcomes, "subs": subs, "cases": {c["id"]: c for c in cases}, "before": before,
               "after": after, "vm_before": vm_before, "vm_after": vm_after, "log": log, "seconds": seconds}
    finally:
        core.delete_namespace(ns)
        if made_crd:
            client.ApiextensionsV1Api(api).delete_custom_resource_definition("kubevirts.kubevirt.io")


def test_matrix_covers_modules_and_roles():
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    assert len(CASES) >= 50
    assert {"vm", "vmi", "vm_info", "vmi_info", "volume", "network", "vm_volume", "vm_nic", "vm_power", "console",
            "guest_info", "vm_snapshot", "vm_restore"} <= set(MODULES)
    assert {c["role"] for c in CASES if "role" in c} == {"vm_provision", "vm_monitor", "vm_decommission"}


@pytest.mark.parametrize("case_id", [c["id"] for c in CASES])
def test_case_fails_clearly(matrix, case_id):
    case = matrix["cases"][case_id]
    outcome = matrix["outcomes"].get(case_id)
    assert outcome is not None, "case %s has no outcome" % case_id
    text = json.dumps(outcome)
    assert outcome.get("failed"), "case %s did not fail: %s" % (case_id, text[:1500])
    msg = outcome.get("msg") or ""
    assert re.search(case["expect"], msg), "case %s: %r does not match %r" % (case_id, msg, case["expect"])
    # No traceback: a module that crashed says "Module failed: <exception>" (ansible-core 2.19) or
    # "MODULE FAILURE" with module_stderr; `exception` is only ever the placeholder Ansible puts in
    # every failed result while tracebacks are not displayed.
    for key in ("module_stderr", "module_stdout"):
        assert not outcome.get(key), "case %s has %s: %s" % (case_id, key, str(outcome.get(key))[:1500])
    assert outcome.get("exception") in (None, "(traceback unavailable)"), outcome.get("exception")
    assert not re.search(r"Module failed|MODULE FAILURE|Traceback|object has no attribute|unhandled exception",
                         text), "case %s crashed: %s" % (case_id, msg)
    # One sentence: ansible-core's own role argument check puts its findings on a second line.
    one = msg.replace("Validation of arguments failed:\n", "Validation of arguments failed: ").strip()
    assert "\n" not in one, "case %s: the message is not one line: %r" % (case_id, msg)
    assert len(msg) <= 700, "case %s: the message is too long (%d): %r" % (case_id, len(msg), msg)


def test_nothing_half_created(matrix):
    assert matrix["after"] == matrix["before"]
    before, after = matrix["vm_before"], matrix["vm_after"]
    assert after["metadata"].get("generation") == before["metadata"].get("generation")
    assert after["spec"] == before["spec"]
    assert after["metadata"].get("labels") == before["metadata"].get("labels")


def test_matrix_is_fast(matrix):
    assert matrix["seconds"] < 300, "the matrix took %.0fs" % matrix["seconds"]
