"""The vm_monitor role and playbooks/monitor.yml against the lab, as a new user runs them (issue 14):

* names in several namespaces (`monitor_names='ns-a/good ns-b/web1'`) are all found, reading only the
  namespaces named: the run's credentials may read those two namespaces and nothing else, so a read of
  the whole cluster (or of the first namespace only) would fail or report a running VM as NotFound;
* stand-alone VMIs (no VM owns them) are monitored and reported as such, also by label selector;
* a VM whose template change waits for a restart (RestartRequired) is a warning finding with the
  condition's message, in the report, its summary lines and the failure of fail_on_unhealthy;
* the first run, which creates the report directory, reports changed=0.
"""
import json
import re
import subprocess
import uuid

import pytest
from kubernetes import client

from ansible_run import ANSIBLE_PLAYBOOK, REPO, ansible_env, run_playbook
from sim_helpers import KV, cond, vm_manifest, wait_for

TAG = uuid.uuid4().hex[:8]
NS_A, NS_B = "mon-a-%s" % TAG, "mon-b-%s" % TAG
RESTART_MESSAGE = "a non-live-updatable field was changed in the template spec"


def _vmi_manifest(name, labels):
    spec = vm_manifest(name)["spec"]["template"]["spec"]
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
            "metadata": {"name": name, "labels": labels}, "spec": spec}


def _vmi_running(custom, ns, name):
    try:
        vmi = custom.get_namespaced_custom_object(*KV, ns, "virtualmachineinstances", name)
    except client.ApiException:
        return None
    return vmi if (vmi.get("status") or {}).get("phase") == "Running" else None


@pytest.fixture(scope="module")
def fleet(api, core, custom, lab_state, lab_info):
    """Two namespaces: ns-a has good (labelled team=blue), rr (RestartRequired) and the stand-alone VMI solo
    (team=blue); ns-b has web1 and other. Returns the environment of a ServiceAccount that may read only
    these two namespaces."""
    rbac = client.RbacAuthorizationV1Api(api)
    for ns in (NS_A, NS_B):
        core.create_namespace({"metadata": {"name": ns, "labels": {"virtops.io/test": "true"}}})
    try:
        core.create_namespaced_service_account(NS_A, {"metadata": {"name": "monitor"}})
        for ns in (NS_A, NS_B):
            rbac.create_namespaced_role_binding(ns, {
                "metadata": {"name": "monitor-admin"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"kind": "ServiceAccount", "name": "monitor", "namespace": NS_A}]})
        token = core.create_namespaced_service_account_token(
            "monitor", NS_A, {"spec": {"expirationSeconds": 3600}}).status.token
        good = vm_manifest("good")
        good["metadata"]["labels"] = {"team": "blue"}
        for ns, manifest in ((NS_A, good), (NS_A, vm_manifest("rr")), (NS_B, vm_manifest("web1")),
                             (NS_B, vm_manifest("other"))):
            custom.create_namespaced_custom_object(*KV, ns, "virtualmachines", manifest)
        custom.create_namespaced_custom_object(*KV, NS_A, "virtualmachineinstances",
                                               _vmi_manifest("solo", {"team": "blue"}))
        for ns, name in ((NS_A, "good"), (NS_A, "rr"), (NS_A, "solo"), (NS_B, "web1"), (NS_B, "other")):
            wait_for(lambda: _vmi_running(custom, ns, name), 60, what="VMI %s/%s running" % (ns, name))
        # A template change KubeVirt can't apply to the running VM: RestartRequired.
        custom.patch_namespaced_custom_object(*KV, NS_A, "virtualmachines", "rr", {
            "spec": {"template": {"spec": {"domain": {"cpu": {"cores": 2}}}}}})   # not live-updatable
        wait_for(lambda: cond(custom.get_namespaced_custom_object(*KV, NS_A, "virtualmachines", "rr"),
                              "RestartRequired"), 30, what="RestartRequired on rr")
        yield ansible_env(None, K8S_AUTH_HOST=lab_info["apiserver"]["url"], K8S_AUTH_API_KEY=token,
                          K8S_AUTH_SSL_CA_CERT=lab_state / "pki" / "ca.crt", K8S_AUTH_VERIFY_SSL="true",
                          KUBECONFIG=lab_state / "no-such-kubeconfig")
    finally:
        for ns in (NS_A, NS_B):
            try:
                core.delete_namespace(ns)
            except client.ApiException as exc:
                if exc.status != 404:
                    raise


def _recap(stdout):
    match = re.search(r"localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", stdout)
    assert match, stdout[-3000:]
    return {"ok": int(match.group(1)), "changed": int(match.group(2)), "failed": int(match.group(3))}


def _monitor_playbook(work, env, **extra):
    """playbooks/monitor.yml, as AWX's job template runs it (survey variables as extra vars)."""
    work.mkdir(parents=True, exist_ok=True)
    variables = dict({"monitor_report_dir": str(work / "reports")}, **extra)
    return subprocess.run([ANSIBLE_PLAYBOOK, str(REPO / "playbooks" / "monitor.yml"), "-i", "localhost,",
                           "-c", "local", "-e", json.dumps(variables)], cwd=str(work), env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def _report(work):
    return json.loads((work / "reports" / "vm-health.json").read_text())


def test_names_in_two_namespaces_and_a_standalone_vmi(fleet, tmp_path):
    """The issue's run: both VMs are found (and the stand-alone VMI), all healthy, and the first run -
    which creates the report directory - changes nothing, even with fail_on_unhealthy."""
    names = "%s/good %s/web1\n%s/solo" % (NS_A, NS_B, NS_A)
    proc = _monitor_playbook(tmp_path, fleet, monitor_names=names, monitor_fail_on_unhealthy="yes")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert _recap(proc.stdout) == dict(_recap(proc.stdout), changed=0, failed=0)
    report = _report(tmp_path)
    by_key = {"%s/%s" % (vm["namespace"], vm["name"]): vm for vm in report["vms"]}
    assert sorted(by_key) == sorted(["%s/good" % NS_A, "%s/web1" % NS_B, "%s/solo" % NS_A])
    assert all(vm["status"] == "Running" and vm["healthy"] for vm in report["vms"]), report["vms"]
    assert by_key["%s/solo" % NS_A]["standalone"] is True
    assert by_key["%s/solo" % NS_A]["kind"] == "VirtualMachineInstance"
    assert by_key["%s/web1" % NS_B]["standalone"] is False
    assert report["context"]["scope"]["namespaces"] == [NS_A, NS_B]
    assert report["totals"]["standalone_vmis"] == 1
    assert "NotFound" not in proc.stdout
    assert "3 VMs: 3 healthy, 0 unhealthy (Running 3); 1 of them stand-alone VMIs" in proc.stdout
    markdown = (tmp_path / "reports" / "vm-health.md").read_text()
    assert "%s/solo (stand-alone VMI)" % NS_A in markdown


def test_missing_name_in_a_second_namespace_is_not_found(fleet, tmp_path):
    proc = _monitor_playbook(tmp_path, fleet, monitor_names="%s/good %s/nope" % (NS_A, NS_B))
    assert proc.returncode == 0, proc.stdout[-4000:]
    report = _report(tmp_path)
    assert [(vm["name"], vm["status"]) for vm in report["vms"]] == [("nope", "NotFound"), ("good", "Running")]
    message = "no VirtualMachine or stand-alone VirtualMachineInstance %s/nope exists" % NS_B
    assert report["vms"][0]["findings"][0]["message"] == message
    assert "CRITICAL %s/nope [not_found] %s" % (NS_B, message) in proc.stdout


def test_restart_required_is_a_warning_with_the_reason(fleet, tmp_path):
    """A namespace, no names: good, rr and the stand-alone VMI; rr's RestartRequired is a warning that makes
    it unhealthy, so fail_on_unhealthy fails naming it and why."""
    proc = _monitor_playbook(tmp_path, fleet, monitor_namespace=NS_A, monitor_fail_on_unhealthy="yes")
    assert proc.returncode != 0
    report = _report(tmp_path)
    by_name = {vm["name"]: vm for vm in report["vms"]}
    assert sorted(by_name) == ["good", "rr", "solo"]
    rr = by_name["rr"]
    assert rr["restart_required"] is True and rr["severity"] == "warning" and not rr["healthy"]
    assert [f["rule"] for f in rr["findings"]] == ["restart_required"]
    assert RESTART_MESSAGE in rr["findings"][0]["message"]
    assert report["totals"]["restart_required_vms"] == ["%s/rr" % NS_A]
    assert by_name["solo"]["standalone"] is True and by_name["solo"]["healthy"]
    assert "restart required: %s/rr" % NS_A in proc.stdout
    assert re.search(r"1 of 3 VMs are unhealthy: WARNING +%s/rr \[restart_required\] restart required \(%s\)"
                     % (NS_A, RESTART_MESSAGE), proc.stdout), proc.stdout[-3000:]
    for fmt in ("md", "html"):
        assert RESTART_MESSAGE in (tmp_path / "reports" / ("vm-health.%s" % fmt)).read_text()


def test_label_selector_selects_standalone_vmis_by_their_labels(fleet, tmp_path):
    proc = _monitor_playbook(tmp_path, fleet, monitor_namespace=NS_A, monitor_label_selector="team=blue")
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert _recap(proc.stdout)["changed"] == 0
    report = _report(tmp_path)
    assert sorted((vm["name"], vm["standalone"]) for vm in report["vms"]) == [("good", False), ("solo", True)]


def test_role_reads_only_the_namespaces_named(fleet, tmp_path):
    """The role with vm_monitor_names across both namespaces: the VM of the second one is found (before:
    only the first namespace was read, and web1 was reported NotFound)."""
    plays = [{"hosts": "localhost", "gather_facts": False, "roles": [{
        "role": "virtops.kubevirt.vm_monitor", "vars": {
            "vm_monitor_names": ["%s/good" % NS_A, "%s/web1" % NS_B],
            "vm_monitor_report_dir": str(tmp_path / "reports"), "vm_monitor_report_formats": ["json"],
            "vm_monitor_fail_on_unhealthy": True}}]}]
    proc = run_playbook(tmp_path, plays, env=fleet)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert _recap(proc.stdout)["changed"] == 0
    assert sorted(vm["name"] for vm in _report(tmp_path)["vms"]) == ["good", "web1"]
