"""VM names in two namespaces for the vm_decommission role and playbooks/lifecycle.yml (issue 14, the
monitor's defect class): each name is looked for in its own namespace, with credentials that may read only
those two namespaces (so a read of the whole cluster would be Forbidden). Before, both read only the first
namespace of the names: the lifecycle playbook failed "No such VM: <ns-b>/y" and the role reported
<ns-b>/y as already gone and left it running.

The namespaces: ns-a has x and keep, ns-b has y and another x (same name as ns-a/x, never selected).
"""
import json
import re
import subprocess
import uuid

import pytest
from kubernetes import client

from ansible_run import ANSIBLE_PLAYBOOK, REPO, ansible_env, run_playbook
from sim_helpers import KV, vm_manifest, wait_for

TAG = uuid.uuid4().hex[:8]
NS_A, NS_B = "rns-a-%s" % TAG, "rns-b-%s" % TAG
ALL = ((NS_A, "x"), (NS_A, "keep"), (NS_B, "y"), (NS_B, "x"))


def _vm(custom, ns, name):
    try:
        return custom.get_namespaced_custom_object(*KV, ns, "virtualmachines", name)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _vmi_running(custom, ns, name):
    try:
        vmi = custom.get_namespaced_custom_object(*KV, ns, "virtualmachineinstances", name)
    except client.ApiException:
        return None
    return (vmi.get("status") or {}).get("phase") == "Running"


@pytest.fixture(scope="module")
def two_namespaces(api, core, custom, lab_state, lab_info):
    """The VMs, running, and the environment of a ServiceAccount that may use only NS_A and NS_B."""
    rbac = client.RbacAuthorizationV1Api(api)
    for ns in (NS_A, NS_B):
        core.create_namespace({"metadata": {"name": ns, "labels": {"virtops.io/test": "true"}}})
    try:
        core.create_namespaced_service_account(NS_A, {"metadata": {"name": "operator"}})
        for ns in (NS_A, NS_B):
            rbac.create_namespaced_role_binding(ns, {
                "metadata": {"name": "operator-admin"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"kind": "ServiceAccount", "name": "operator", "namespace": NS_A}]})
        token = core.create_namespaced_service_account_token(
            "operator", NS_A, {"spec": {"expirationSeconds": 3600}}).status.token
        for ns, name in ALL:
            custom.create_namespaced_custom_object(*KV, ns, "virtualmachines", vm_manifest(name))
        for ns, name in ALL:
            wait_for(lambda: _vmi_running(custom, ns, name), 60, what="VMI %s/%s running" % (ns, name))
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


def _recap(proc):
    match = re.search(r"localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", proc.stdout)
    assert match, proc.stdout[-3000:] + proc.stderr[-2000:]
    return {"ok": int(match.group(1)), "changed": int(match.group(2)), "failed": int(match.group(3))}


def _lifecycle(work, env, **variables):
    work.mkdir(parents=True, exist_ok=True)
    return subprocess.run([ANSIBLE_PLAYBOOK, str(REPO / "playbooks" / "lifecycle.yml"), "-i", "localhost,",
                           "-c", "local", "-e", json.dumps(variables)], cwd=str(work), env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def _decommission(work, env, args=(), **variables):
    """The role, then the plan it set printed as one JSON line (PLAN=...)."""
    plays = [{"hosts": "localhost", "gather_facts": False,
              "roles": [{"role": "virtops.kubevirt.vm_decommission", "vars": variables}],
              "post_tasks": [{"name": "Show the plan", "ansible.builtin.debug": {
                  "msg": "PLAN={{ {'targets': vm_decommission_plan.targets, 'missing': vm_decommission_plan.missing}"
                         " | to_json }}"}}]}]
    proc = run_playbook(work, plays, env=env, args=args, timeout=300)
    match = re.search(r'^\s*"msg": ("PLAN=.*")\s*$', proc.stdout, re.M)
    plan = json.loads(json.loads(match.group(1))[len("PLAN="):]) if match else None
    return proc, plan


def _strategies(custom):
    return {"%s/%s" % (ns, name): ((_vm(custom, ns, name) or {}).get("spec") or {}).get("runStrategy", "gone")
            for ns, name in ALL}


def test_lifecycle_stops_names_in_two_namespaces(two_namespaces, custom, tmp_path):
    proc = _lifecycle(tmp_path, two_namespaces, lifecycle_action="stopped", lifecycle_grace_period=0,
                      lifecycle_names="%s/x %s/y" % (NS_A, NS_B))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "No such VM" not in proc.stdout
    assert _strategies(custom) == {"%s/x" % NS_A: "Halted", "%s/keep" % NS_A: "Always",
                                   "%s/y" % NS_B: "Halted", "%s/x" % NS_B: "Always"}
    # and back: started again, the others untouched
    proc = _lifecycle(tmp_path, two_namespaces, lifecycle_action="started",
                      lifecycle_names="%s/x,%s/y" % (NS_A, NS_B))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert set(_strategies(custom).values()) == {"Always"}


def test_lifecycle_names_the_missing_vm_in_the_second_namespace(two_namespaces, tmp_path):
    proc = _lifecycle(tmp_path, two_namespaces, lifecycle_action="stopped",
                      lifecycle_names="%s/x %s/nope" % (NS_A, NS_B))
    assert proc.returncode != 0
    assert "No such VM: %s/nope (in %s, %s)." % (NS_B, NS_A, NS_B) in proc.stdout, proc.stdout[-3000:]


def test_decommission_refuses_a_name_in_both_namespaces(two_namespaces, custom, kubeconfig, tmp_path):
    """A bare name with no namespace is looked for everywhere (the lab's admin may); x is in both namespaces,
    so the role fails before deleting anything rather than deleting both."""
    proc, plan = _decommission(tmp_path, ansible_env(kubeconfig), vm_decommission_names=["x"])
    assert proc.returncode != 0 and plan is None
    assert "names: 'x' is a VM in several namespaces (%s, %s); give it as namespace/name." % (NS_A, NS_B) \
        in proc.stdout, proc.stdout[-3000:]
    assert "gone" not in _strategies(custom).values()


def test_decommission_check_mode_shows_each_vm_in_its_own_namespace(two_namespaces, custom, tmp_path):
    proc, plan = _decommission(tmp_path, two_namespaces, args=["--check"],
                               vm_decommission_names=["%s/x" % NS_A, "%s/y" % NS_B])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert plan == {"targets": [{"name": "x", "namespace": NS_A}, {"name": "y", "namespace": NS_B}], "missing": []}
    assert "VMs deleted: %s/x, %s/y" % (NS_A, NS_B) in proc.stdout
    assert "gone" not in _strategies(custom).values()  # check mode deleted nothing


def test_decommission_deletes_names_in_two_namespaces_and_nothing_else(two_namespaces, custom, tmp_path):
    names = ["%s/x" % NS_A, "%s/y" % NS_B]
    proc, plan = _decommission(tmp_path / "first", two_namespaces, vm_decommission_names=names,
                               vm_decommission_wait_timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert plan == {"targets": [{"name": "x", "namespace": NS_A}, {"name": "y", "namespace": NS_B}], "missing": []}
    assert _strategies(custom) == {"%s/x" % NS_A: "gone", "%s/keep" % NS_A: "Always",
                                   "%s/y" % NS_B: "gone", "%s/x" % NS_B: "Always"}
    # A second run changes nothing and reports both as already gone.
    proc, plan = _decommission(tmp_path / "second", two_namespaces, vm_decommission_names=names)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert _recap(proc)["changed"] == 0
    assert plan == {"targets": [], "missing": names}
