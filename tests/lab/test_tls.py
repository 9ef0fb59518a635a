"""TLS: verification is on by default, a wrong CA fails clearly, turning it off is an explicit choice and
always warned about, and no code path turns it off on its own.

The lab's API server has a certificate from the lab CA (lab/.state/pki/ca.crt) for 127.0.0.1 and
localhost; front-proxy-ca.crt is a CA that did not sign it. All module cases run in one playbook.
"""
import ast
import copy
import json
import re
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from ansible_run import REPO, ansible_env, collection_path, run_playbook

# -- the code: every way to switch verification off sits behind the user's explicit choice ----------------
# CERT_NONE, check_hostname False, verify=False, unverified contexts, silenced InsecureRequestWarning.
UNSAFE = re.compile(r"CERT_NONE|check_hostname\s*=\s*False|verify\s*=\s*False|_create_unverified_context|"
                    r"disable_warnings|validate_certs\s*[:=]\s*(false|no)\b", re.IGNORECASE)


# The only conditions under which verification may be off: the user's validate_certs (conn.verify), or
# the kubeconfig's insecure-skip-tls-verify, which the user wrote (and validate_certs: true overrides).
ALLOWED_GUARDS = {("else", "conn.verify"), ("if", "not self.conn.verify"),
                  ("if", "cluster.get('insecure-skip-tls-verify')")}


def _guarded(tree, lineno):
    """The `if` tests (with the branch taken) around ``lineno``."""
    guards = []
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            for branch, body in (("if", node.body), ("else", node.orelse)):
                if body and body[0].lineno <= lineno <= max(getattr(n, "end_lineno", n.lineno) for n in body):
                    guards.append((branch, ast.unparse(node.test)))
    return guards


def _string_lines(tree):
    """Lines that are inside string constants (docstrings, DOCUMENTATION): words, not code."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            lines.update(range(node.lineno, node.end_lineno + 1))
    return lines


def _unsafe_lines():
    for path in sorted((REPO / "plugins").rglob("*.py")) + sorted((REPO / "roles").rglob("*.yml")):
        text = path.read_text()
        words = _string_lines(ast.parse(text)) if path.suffix == ".py" else set()
        for lineno, line in enumerate(text.splitlines(), 1):
            code = line.split("#", 1)[0]
            if lineno not in words and UNSAFE.search(code):
                yield path, lineno, line


def test_every_unsafe_tls_line_is_behind_the_users_choice():
    found = list(_unsafe_lines())
    assert found, "the search found nothing: the pattern is broken"
    for path, lineno, line in found:
        rel = path.relative_to(REPO)
        if path.suffix == ".py":
            guards = _guarded(ast.parse(path.read_text()), lineno)
            ok = bool(ALLOWED_GUARDS & set(guards))
            assert ok, "%s:%d turns TLS verification off without the user's choice: %s" % (rel, lineno, line.strip())
        else:
            raise AssertionError("%s:%d: %s" % (rel, lineno, line.strip()))


def test_tls_defaults_are_on():
    """validate_certs has no default of its own (so: on), and the monitor's Prometheus check is on."""
    sys.path.insert(0, collection_path())
    from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.connection import AUTH_ARG_SPEC, Connection
    assert AUTH_ARG_SPEC["validate_certs"].get("default") is None and Connection().verify is True
    defaults = yaml.safe_load((REPO / "roles/vm_monitor/defaults/main.yml").read_text())
    assert defaults["vm_monitor_prometheus_validate_certs"] is True


# -- the lab ---------------------------------------------------------------------------------------------
def _kubeconfigs(folder, kubeconfig):
    good = yaml.safe_load(Path(kubeconfig).read_text())
    out = {}
    no_ca = copy.deepcopy(good)
    no_ca["clusters"][0]["cluster"].pop("certificate-authority-data")
    out["no-ca"] = no_ca
    insecure = copy.deepcopy(no_ca)
    insecure["clusters"][0]["cluster"]["insecure-skip-tls-verify"] = True
    out["insecure"] = insecure
    wrong_name = copy.deepcopy(good)
    wrong_name["clusters"][0]["cluster"]["tls-server-name"] = "not-the-apiserver"
    out["wrong-name"] = wrong_name
    paths = {}
    for name, data in out.items():
        paths[name] = folder / ("%s.kubeconfig" % name)
        paths[name].write_text(yaml.safe_dump(data))
    return paths


CASES = {
    # id: (module args, environment)
    "default_no_ca": ({"kubeconfig": "@no-ca"}, {}),
    "default_token_no_ca": ({"host": "@API", "api_key": "@TOKEN"}, {}),
    "wrong_ca": ({"host": "@API", "api_key": "@TOKEN", "ca_cert": "@WRONG_CA"}, {}),
    "wrong_ca_env": ({}, {"K8S_AUTH_HOST": "@API", "K8S_AUTH_API_KEY": "@TOKEN", "K8S_AUTH_SSL_CA_CERT": "@WRONG_CA"}),
    "hostname_mismatch": ({"kubeconfig": "@wrong-name"}, {}),
    "right_ca": ({"host": "@API", "api_key": "@TOKEN", "ca_cert": "@CA"}, {}),
    "off_by_option": ({"kubeconfig": "@no-ca", "validate_certs": False}, {}),
    "off_by_env": ({"kubeconfig": "@no-ca"}, {"K8S_AUTH_VERIFY_SSL": "false"}),
    "off_by_kubeconfig": ({"kubeconfig": "@insecure"}, {}),
    "on_beats_kubeconfig": ({"kubeconfig": "@insecure", "validate_certs": True}, {}),
    "env_typo": ({"kubeconfig": "@no-ca"}, {"K8S_AUTH_VERIFY_SSL": "ture"}),
    "env_empty": ({"kubeconfig": "@no-ca"}, {"K8S_AUTH_VERIFY_SSL": ""}),
    "http_to_https": ({"host": "@API_HTTP", "api_key": "@TOKEN"}, {}),
}


def _sub(value, subs):
    if isinstance(value, str) and value.startswith("@"):
        return subs[value[1:]]
    return value


@pytest.fixture(scope="module")
def results(api, core, kubeconfig, lab_state, lab_info, tmp_path_factory):
    namespace = "tls-%s" % uuid.uuid4().hex[:8]
    core.create_namespace({"metadata": {"name": namespace, "labels": {"virtops.io/test": "true"}}})
    try:
        yield _run(api, core, namespace, kubeconfig, lab_state, lab_info, tmp_path_factory)
    finally:
        core.delete_namespace(namespace)


def _run(api, core, namespace, kubeconfig, lab_state, lab_info, tmp_path_factory):
    from kubernetes import client
    work = tmp_path_factory.mktemp("tls")
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "tls"}})
    client.RbacAuthorizationV1Api(api).create_namespaced_role_binding(namespace, {
        "metadata": {"name": "tls-view"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "tls", "namespace": namespace}]})
    token = core.create_namespaced_service_account_token("tls", namespace, {"spec": {"expirationSeconds": 600}})
    subs = {"API": lab_info["apiserver"]["url"], "TOKEN": token.status.token, "CA": str(lab_state / "pki" / "ca.crt"),
            "WRONG_CA": str(lab_state / "pki" / "front-proxy-ca.crt")}
    subs["API_HTTP"] = "http://" + subs["API"].split("://", 1)[1]
    subs.update({k: str(v) for k, v in _kubeconfigs(work, kubeconfig).items()})
    tasks = []
    for case, (args, env) in CASES.items():
        args = dict({k: _sub(v, subs) for k, v in args.items()}, namespace=namespace)
        tasks.append({"name": case, "virtops.kubevirt.vm_info": args, "register": "r_" + case, "ignore_errors": True,
                      "environment": {k: _sub(v, subs) for k, v in env.items()}})
    tasks.append({"name": "lookup without verification", "ansible.builtin.set_fact": {
        "r_lookup": "{{ lookup('virtops.kubevirt.vm', 'none', namespace='%s', allow_missing=true, kubeconfig='%s', "
                    "validate_certs=false) }}" % (namespace, subs["no-ca"])}})
    tasks.append({"ansible.builtin.copy": {"dest": str(work / "out.json"), "content": "{{ {%s} | to_json }}" % ", ".join(
        "'%s': r_%s" % (c, c) for c in CASES)}})
    proc = run_playbook(work, [{"hosts": "localhost", "gather_facts": False, "tasks": tasks}],
                        env=ansible_env(None, KUBECONFIG=work / "none"))
    assert (work / "out.json").exists(), (proc.stdout + proc.stderr)[-4000:]
    return {"out": json.loads((work / "out.json").read_text()), "log": proc.stdout + proc.stderr, "subs": subs}


def _warnings(result):
    return " ".join(w if isinstance(w, str) else json.dumps(w) for w in result.get("warnings") or [])


@pytest.mark.parametrize("case", ["default_no_ca", "default_token_no_ca", "wrong_ca", "wrong_ca_env"])
def test_unverifiable_certificate_fails_clearly(results, case):
    r = results["out"][case]
    api = results["subs"]["API"]
    assert r["failed"]
    assert r["msg"].startswith("TLS verification of the API server %s failed: its certificate could not be verified "
                               "(unable to get local issuer certificate); check ca_cert (K8S_AUTH_SSL_CA_CERT)" % api)
    assert "\n" not in r["msg"] and r.get("exception") in (None, "(traceback unavailable)")


def test_hostname_is_verified_too(results):
    r = results["out"]["hostname_mismatch"]
    assert r["failed"] and "its certificate could not be verified (Hostname mismatch" in r["msg"]
    assert "not-the-apiserver" in r["msg"]


def test_right_ca_verifies_without_warning(results):
    r = results["out"]["right_ca"]
    assert not r.get("failed") and r["resources"] == [] and not r.get("warnings")


@pytest.mark.parametrize("case, by", [
    ("off_by_option", "validate_certs false (or K8S_AUTH_VERIFY_SSL)"),
    ("off_by_env", "validate_certs false (or K8S_AUTH_VERIFY_SSL)"),
    ("off_by_kubeconfig", "insecure-skip-tls-verify in the kubeconfig"),
])
def test_verification_off_works_but_warns(results, case, by):
    r = results["out"][case]
    assert not r.get("failed"), r.get("msg")
    assert "TLS verification of the API server %s is off (%s" % (results["subs"]["API"], by) in _warnings(r)


def test_validate_certs_true_beats_an_insecure_kubeconfig(results):
    r = results["out"]["on_beats_kubeconfig"]
    assert r["failed"] and "its certificate could not be verified" in r["msg"]


def test_a_typo_never_turns_verification_off(results):
    r = results["out"]["env_typo"]
    assert r["failed"] and r["msg"] == "K8S_AUTH_VERIFY_SSL='ture' is not a boolean; use true or false."
    r = results["out"]["env_empty"]  # empty: unset, so verification stays on
    assert r["failed"] and "its certificate could not be verified" in r["msg"]


def test_lookup_warns_too(results):
    assert re.search(r"\[WARNING\]: TLS verification of the API server \S+ is off", results["log"])


def test_http_to_the_https_api_server_is_one_sentence_at_once(results):
    """Issue 14: a Python tuple repr after 6 attempts; now the fix, after one request."""
    r = results["out"]["http_to_https"]
    api = results["subs"]["API"]
    assert r["failed"] and r["msg"] == (
        "Could not talk to the API server at %s: it speaks HTTPS, not plain HTTP; use %s in host (or the "
        "kubeconfig's server)." % (results["subs"]["API_HTTP"], api))
    # vm_info reads several kinds at once (4 with the right host): each is sent once (sent again, 6 times)
    assert r["api_requests"] <= results["out"]["right_ca"]["api_requests"]
