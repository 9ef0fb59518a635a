"""Secrets never show (modules in Ansible's worker and in module processes): a playbook run at -vvvv with --diff that creates, updates, reads, fails on,
provisions and monitors VMs carrying distinctive secrets, plus ansible-inventory, must print none of
them, and the vm_monitor report files must hold none of them.

The secrets: cloud-init passwords (task option, vms item, vm_provision item, an update), user data
(option, inline in a definition, inline in a kubectl client-side-applied VM whose
last-applied-configuration annotation repeats it), and the bearer token the whole run authenticates
with (K8S_AUTH_API_KEY, as AWX's credential sets it, and once as the api_key option).
"""
import json
import subprocess
import uuid

import pytest
import yaml
from kubernetes import client

from ansible_run import ANSIBLE_PLAYBOOK, ansible_env, run_playbook

TAG = uuid.uuid4().hex[:10]
SECRETS = {
    "password": "Pw-%s-opt" % TAG,
    "password_update": "Pw-%s-upd" % TAG,
    "user_data": "UserData-%s" % TAG,
    "definition": "DefUserData-%s" % TAG,
    "last_applied": "Applied-%s" % TAG,
    "bulk": "Pw-%s-bulk" % TAG,
    "role": "Pw-%s-role" % TAG,
    "failing": "Pw-%s-fail" % TAG,
}


def _applied_vm(ns):
    """A VM as `kubectl apply` (client side) leaves it: the applied object again in an annotation."""
    vm = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": "s-applied", "namespace": ns},
          "spec": {"runStrategy": "Halted", "template": {"spec": {
              "domain": {"memory": {"guest": "256Mi"}, "devices": {"disks": [{"name": "ci", "disk": {}}]}},
              "volumes": [{"name": "ci", "cloudInitNoCloud": {
                  "userData": "bootcmd: [echo %s]\n" % SECRETS["last_applied"]}}]}}}}
    vm["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": json.dumps(vm)}
    return vm


def _tasks(ns, report_dir):
    disks = [{"name": "root", "image": "quay.io/containerdisks/fedora:41"}]
    definition = {"kind": "VirtualMachine", "metadata": {"name": "s-def"}, "spec": {
        "runStrategy": "Halted", "template": {"spec": {
            "domain": {"memory": {"guest": "256Mi"}, "devices": {"disks": [{"name": "ci", "disk": {}}]}},
            "volumes": [{"name": "ci", "cloudInitNoCloud": {"userData": "runcmd: [%s]\n" % SECRETS["definition"]}}]}}}}
    return [
        {"name": "a VM with a cloud-init password", "virtops.kubevirt.vm": {
            "name": "s-pw", "namespace": ns, "memory": "256Mi", "disks": disks,
            "cloud_init": {"user": "fedora", "password": SECRETS["password"]}}},
        {"name": "a VM with user data", "virtops.kubevirt.vm": {
            "name": "s-ud", "namespace": ns, "memory": "256Mi", "disks": disks, "run_strategy": "Halted",
            "cloud_init": {"user_data": "#cloud-config\nruncmd: [echo %s]\n" % SECRETS["user_data"]}}},
        {"name": "a VM from a definition with inline user data", "virtops.kubevirt.vm": {
            "namespace": ns, "definition": definition}},
        {"name": "many VMs, one with a password", "virtops.kubevirt.vm": {
            "namespace": ns, "memory": "256Mi", "disks": disks, "run_strategy": "Halted",
            "vms": [{"name": "s-bulk", "cloud_init": {"password": SECRETS["bulk"]}}, "s-plain"]}},
        {"name": "change the password, check mode first", "virtops.kubevirt.vm": {
            "name": "s-pw", "namespace": ns, "memory": "256Mi", "disks": disks,
            "cloud_init": {"user": "fedora", "password": SECRETS["password_update"]}}, "check_mode": True},
        {"name": "change the password", "virtops.kubevirt.vm": {
            "name": "s-pw", "namespace": ns, "memory": "256Mi", "disks": disks,
            "cloud_init": {"user": "fedora", "password": SECRETS["password_update"]}}},
        {"name": "label the kubectl-applied VM", "virtops.kubevirt.vm": {
            "name": "s-applied", "namespace": ns, "labels": {"team": "secrets"}}},
        {"name": "rewrite the kubectl-applied VM's template", "virtops.kubevirt.vm": {
            "name": "s-applied", "namespace": ns, "memory": "512Mi", "run_strategy": "Halted"}},
        {"name": "read them all", "virtops.kubevirt.vm_info": {"namespace": ns, "summary": False},
         "register": "everything"},
        {"name": "show them", "ansible.builtin.debug": {"var": "everything"}},
        {"name": "read with the token as the api_key option", "virtops.kubevirt.vm_info": {
            "name": "s-applied", "namespace": ns, "api_key": "{{ lookup('ansible.builtin.env', 'K8S_AUTH_API_KEY') }}"}},
        {"name": "the lookup", "ansible.builtin.debug": {
            "msg": "{{ lookup('virtops.kubevirt.vm', 's-applied', 's-def', 's-pw', namespace='%s') }}" % ns}},
        {"name": "a failing task with a password", "virtops.kubevirt.vm": {
            "name": "s-fail", "namespace": ns, "memory": "2GB",
            "cloud_init": {"password": SECRETS["failing"]}}, "ignore_errors": True},
        {"name": "provision", "ansible.builtin.include_role": {"name": "virtops.kubevirt.vm_provision"}, "vars": {
            "vm_provision_namespace": ns, "vm_provision_wait_timeout": 120, "vm_provision_progress_interval": 1,
            "vm_provision_vms": [{"name": "s-role", "memory": "256Mi", "disks": disks,
                                  "cloud_init": {"user": "fedora", "password": SECRETS["role"]}}]}},
        {"name": "monitor", "ansible.builtin.include_role": {"name": "virtops.kubevirt.vm_monitor"}, "vars": {
            "vm_monitor_namespace": ns, "vm_monitor_report_dir": str(report_dir),
            "vm_monitor_report_formats": ["json", "markdown", "html"]}},
        {"name": "show the report", "ansible.builtin.debug": {"var": "vm_monitor_report"}},
    ]


@pytest.fixture(scope="module", params=["worker", "module-process"])
def run(request, api, lab_state, lab_info, tmp_path_factory):
    """The run, once with the modules in Ansible's worker (the default) and once in module processes."""
    core = client.CoreV1Api(api)
    rbac = client.RbacAuthorizationV1Api(api)
    custom = client.CustomObjectsApi(api)
    ns = "sec-%s-%s" % (TAG, request.param[0])
    core.create_namespace({"metadata": {"name": ns, "labels": {"virtops.io/test": "true"}}})
    try:
        core.create_namespaced_service_account(ns, {"metadata": {"name": "runner"}})
        rbac.create_namespaced_role_binding(ns, {
            "metadata": {"name": "runner-admin"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": ns}]})
        token = core.create_namespaced_service_account_token(
            "runner", ns, {"spec": {"expirationSeconds": 3600}}).status.token
        custom.create_namespaced_custom_object("kubevirt.io", "v1", ns, "virtualmachines", _applied_vm(ns))
        work = tmp_path_factory.mktemp("secrets")
        report_dir = work / "reports"
        report_dir.mkdir()
        # The whole run authenticates like AWX's Kubernetes credential: host, token and CA from the environment.
        env = ansible_env(None, K8S_AUTH_HOST=lab_info["apiserver"]["url"], K8S_AUTH_API_KEY=token,
                          K8S_AUTH_SSL_CA_CERT=lab_state / "pki" / "ca.crt", K8S_AUTH_VERIFY_SSL="true",
                          KUBECONFIG=work / "no-kubeconfig")
        proc = run_playbook(work, [{"hosts": "localhost", "gather_facts": False, "tasks": _tasks(ns, report_dir)}],
                            env=env, args=["-vvvv", "--diff", "-e", "virtops_kubevirt_in_process=%s" % (
                                request.param == "worker")])
        inventory = work / "lab.kubevirt.yml"
        inventory.write_text(yaml.safe_dump({"plugin": "virtops.kubevirt.kubevirt", "raw_objects": True,
                                             "connections": [{"namespaces": [ns]}]}))
        inv = subprocess.run([ANSIBLE_PLAYBOOK.replace("ansible-playbook", "ansible-inventory"), "-vvvv", "--list",
                              "-i", str(inventory)], env=env, capture_output=True, text=True, timeout=300, check=False)
        stored = {v["metadata"]["name"]: v for v in
                  custom.list_namespaced_custom_object("kubevirt.io", "v1", ns, "virtualmachines")["items"]}
        yield {"proc": proc, "inventory": inv, "reports": sorted(report_dir.iterdir()), "token": token,
               "stored": stored}
    finally:
        core.delete_namespace(ns)


def test_the_run_did_what_it_should(run):
    """So that the grep below is not vacuous: the secrets reached the cluster and every step ran."""
    proc = run["proc"]
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    assert "failed=0" in proc.stdout and "ignored=1" in proc.stdout
    stored = json.dumps(run["stored"])
    for key in ("password_update", "user_data", "definition", "last_applied", "bulk", "role"):
        assert SECRETS[key] in stored, key
    assert {p.suffix for p in run["reports"]} == {".json", ".md", ".html"}
    assert run["inventory"].returncode == 0, run["inventory"].stderr[-3000:]
    out = run["inventory"].stdout
    hosts = json.loads(out[out.index("\n{") + 1:])["_meta"]["hostvars"]  # after -vvvv's header
    # (ansible-core 2.19 writes strings as {"__ansible_unsafe": ...} there)
    applied = [h["kubevirt_vm"] for h in hosts.values() if '"s-applied"' in json.dumps(h.get("kubevirt_vm"))]
    assert applied and "last-applied-configuration" in json.dumps(applied)
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in proc.stdout  # redaction happened, at -vvvv


@pytest.mark.parametrize("key", sorted(SECRETS) + ["token"])
def test_no_secret_in_any_output(run, key):
    secret = run["token"] if key == "token" else SECRETS[key]
    places = {"ansible-playbook stdout": run["proc"].stdout, "ansible-playbook stderr": run["proc"].stderr,
              "ansible-inventory stdout": run["inventory"].stdout, "ansible-inventory stderr": run["inventory"].stderr}
    for path in run["reports"]:
        places["report " + path.name] = path.read_text()
    found = [where for where, text in places.items() if secret in text]
    assert not found, "%s found in %s" % (key, ", ".join(found))
