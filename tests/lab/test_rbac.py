"""Least privilege (docs/rbac.md): each use's playbook runs as a ServiceAccount bound only to that
use's ClusterRole (docs/rbac/<use>.yml, bound in one namespace by a RoleBinding), with nothing but
the environment AWX's "OpenShift or Kubernetes API Bearer Token" credential sets (K8S_AUTH_HOST,
K8S_AUTH_API_KEY = a TokenRequest token, K8S_AUTH_SSL_CA_CERT). It passes; and with one permission
taken out of the rules, it fails with a message that names the verb and the resource.

Order: provision creates the VMs; monitor, console and lifecycle run (at the same time) on them;
decommission deletes them.
"""
import copy
import re
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from faulthelp import REPO, ansible_env, run_playbook

RBAC_DIR = REPO / "docs" / "rbac"
USES = ("provision", "monitor", "console", "lifecycle", "day-two", "decommission")
PASSWORD = "Rbac-test-pw-%s" % uuid.uuid4().hex[:8]
IMAGE = "quay.io/containerdisks/fedora:41"

# One permission taken away per use: (apiGroup, resource, verb). The failing run must name verb and resource.
REMOVED = {
    "provision": ("kubevirt.io", "virtualmachines", "create"),
    "monitor": ("kubevirt.io", "virtualmachineinstances", "list"),
    "console": ("subresources.kubevirt.io", "virtualmachineinstances/console", "get"),
    "lifecycle": ("subresources.kubevirt.io", "virtualmachines/restart", "update"),
    "decommission": ("kubevirt.io", "virtualmachines", "delete"),
    "day-two": ("subresources.kubevirt.io", "virtualmachines/stop", "update"),
}


def cluster_role(use):
    return yaml.safe_load((RBAC_DIR / ("%s.yml" % use)).read_text())


def without(rules, group, resource, verb):
    """The rules with ``verb`` on ``group``/``resource`` taken out (and nothing else)."""
    out = []
    for rule in copy.deepcopy(rules):
        if group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"]:
            others = [r for r in rule["resources"] if r != resource]
            if others:
                out.append(dict(rule, resources=others))
            verbs = [v for v in rule["verbs"] if v != verb]
            if verbs:
                out.append(dict(rule, resources=[resource], verbs=verbs))
            continue
        out.append(rule)
    assert out != rules, "%s %s/%s is not in the rules" % (verb, group, resource)
    return out


@pytest.fixture(scope="module")
def rbac(lab_state, lab_info, api, core):
    """A namespace with two ServiceAccounts per use: '<use>' (the ClusterRole) and '<use>-less' (one
    permission fewer); yields {sa name: environment for ansible-playbook}."""
    rbac_api = client.RbacAuthorizationV1Api(api)
    ns = "rbac-%s" % uuid.uuid4().hex[:8]
    core.create_namespace({"metadata": {"name": ns, "labels": {"virtops.io/test": "true"}}})
    envs = {}
    try:
        for use in USES:
            role = cluster_role(use)
            name = role["metadata"]["name"]
            rbac_api.patch_cluster_role(name, role, field_manager="virtops-tests", force=True,
                                        _content_type="application/apply-patch+yaml")
            less = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                    "metadata": {"name": "%s-less" % use, "namespace": ns},
                    "rules": without(role["rules"], *REMOVED[use])}
            rbac_api.create_namespaced_role(ns, less)
            for sa, ref in ((use, {"kind": "ClusterRole", "name": name}),
                            ("%s-less" % use, {"kind": "Role", "name": "%s-less" % use})):
                core.create_namespaced_service_account(ns, {"metadata": {"name": sa}})
                rbac_api.create_namespaced_role_binding(ns, {
                    "metadata": {"name": sa},
                    "roleRef": dict(ref, apiGroup="rbac.authorization.k8s.io"),
                    "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}]})
                token = core.create_namespaced_service_account_token(
                    sa, ns, {"spec": {"expirationSeconds": 3600}}).status.token
                envs[sa] = ansible_env(K8S_AUTH_HOST=lab_info["apiserver"]["url"], K8S_AUTH_API_KEY=token,
                                       K8S_AUTH_SSL_CA_CERT=str(Path(lab_state) / "pki" / "ca.crt"))
        yield ns, envs
    finally:
        core.delete_namespace(ns)


def playbook(name):
    return str(REPO / "playbooks" / name)


def assert_names_the_permission(result, use):
    group, resource, verb = REMOVED[use]
    assert result.rc != 0, "the run without %s %s passed:\n%s" % (verb, resource, result.stdout[-3000:])
    messages = [str(msg) for _task, msg in result.failures()]
    plural, _sep, sub = resource.partition("/")
    wanted = re.compile(r'cannot %s resource "%s" in API group "%s"' % (verb, plural, re.escape(group))
                        if not sub else
                        r'cannot %s resource "%s/%s" in API group "%s"' % (verb, plural, sub, re.escape(group)))
    assert any(wanted.search(m) for m in messages), (use, messages)
    assert any("docs/rbac.md" in m for m in messages), (use, messages)
    for msg in messages:
        assert "Traceback" not in msg and "\n" not in msg.strip(), msg


def provision_vars(ns, names):
    return {
        "vm_provision_namespace": ns,
        "vm_provision_defaults": {
            "memory": "128Mi", "disks": [{"name": "root", "image": IMAGE}],
            "cloud_init": {"user": "fedora", "password": PASSWORD},
            "networks": [{"name": "default", "type": "pod"}]},
        "vm_provision_vms": names,
        "vm_provision_wait_timeout": 120,
        "vm_provision_progress_interval": 1,
    }


@pytest.mark.slow
def test_provision(rbac, tmp_path, custom):
    ns, envs = rbac
    # rb-1 has a dataVolumeTemplate: decommission deletes it keeping the DataVolume (Orphan), then its VMI
    # and ControllerRevisions itself.
    vms = [{"name": "rb-1",
            "disks": [{"name": "root", "image": IMAGE},
                      {"name": "scratch", "data_volume_template": {"name": "rb-1-scratch", "size": "64Mi",
                                                                   "blank": True}}]},
           {"name": "rb-2",
            "volumes": [{"name": "rb-2-data", "size": "64Mi"}],
            "network_attachments": [{"name": "rb-net", "bridge": "br1"}],
            "disks": [{"name": "root", "image": IMAGE}, {"name": "data", "data_volume": "rb-2-data"}],
            "networks": [{"name": "default", "type": "pod"},
                         {"name": "net1", "type": "multus", "network_name": "rb-net"}]}]
    ok = run_playbook(tmp_path, playbook("provision.yml"), env=envs["provision"], extra_vars=provision_vars(ns, vms),
                      name="provision")
    assert ok.rc == 0, ok.explain()
    running = custom.list_namespaced_custom_object("kubevirt.io", "v1", ns, "virtualmachineinstances")["items"]
    assert sorted(v["metadata"]["name"] for v in running) == ["rb-1", "rb-2"]

    less = run_playbook(tmp_path, playbook("provision.yml"), env=envs["provision-less"],
                        extra_vars=provision_vars(ns, [{"name": "rb-x"}]), name="provision-less")
    assert_names_the_permission(less, "provision")


@pytest.mark.slow
def test_monitor_console_and_lifecycle(rbac, tmp_path):
    """Three uses on the VMs provision made, each with and without its permission, all at once."""
    ns, envs = rbac
    console_play = [{
        "hosts": "localhost", "gather_facts": False,
        "tasks": [
            {"name": "serial console", "virtops.kubevirt.console": {
                "name": "rb-1", "namespace": ns, "login": {"user": "fedora", "password": PASSWORD},
                "send": ["hostname"], "timeout": 60}},
            {"name": "vnc", "virtops.kubevirt.console": {"name": "rb-1", "namespace": ns, "type": "vnc"}},
            {"name": "rdp details", "virtops.kubevirt.console": {"name": "rb-1", "namespace": ns, "type": "rdp"},
             "register": "rdp", "failed_when": "rdp.failed and 'forbidden' in (rdp.msg | default(''))"},
            {"name": "guest agent", "virtops.kubevirt.guest_info": {"name": "rb-1", "namespace": ns}},
        ]}]
    runs = {
        "monitor": (playbook("monitor.yml"), {"monitor_namespace": ns, "monitor_report_dir": str(tmp_path / "r1")}),
        "console": (console_play, None),
        "lifecycle": (playbook("lifecycle.yml"), {"lifecycle_action": "restarted", "lifecycle_namespace": ns,
                                                  "lifecycle_names": "rb-2", "lifecycle_wait_timeout": 120}),
    }
    results = {}

    def run(sa, use):
        plays, extra = runs[use]
        if extra and use == "monitor":
            extra = dict(extra, monitor_report_dir=str(tmp_path / sa))
        if use == "lifecycle" and sa != use:
            # Not rb-2: while the other run restarts it, its VMI may be gone and "restarted" then needs no call.
            extra = dict(extra, lifecycle_names="rb-1")
        results[sa] = run_playbook(tmp_path, plays, env=envs[sa], extra_vars=extra, name=sa)

    threads = [threading.Thread(target=run, args=(sa, use)) for use in runs for sa in (use, use + "-less")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    for use in runs:
        assert results[use].rc == 0, (use, results[use].explain())
        assert_names_the_permission(results[use + "-less"], use)
    console = results["console"]
    assert console.task("serial console")["outputs"][0]["output"] == "rb-1"
    assert PASSWORD not in console.stdout
    assert results["lifecycle"].rc == 0


@pytest.mark.slow
def test_day_two(rbac, tmp_path, custom):
    """vm_snapshot, vm_info snapshots: true and vm_restore onto the running VM with stop_vm (stop, restore, start)
    as the day-two ServiceAccount; without virtualmachines/stop the restore fails naming it, before anything is
    made. On a VM of its own (made and deleted with the admin credentials): decommission's VMs stay as they were."""
    ns, envs = rbac
    vm = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": "rb-d2", "namespace": ns},
          "spec": {"runStrategy": "Always", "template": {"spec": {
              "domain": {"memory": {"guest": "128Mi"}, "devices": {"disks": [{"name": "root", "disk": {}}]}},
              "terminationGracePeriodSeconds": 0,
              "volumes": [{"name": "root", "containerDisk": {"image": IMAGE}}]}}}}
    custom.create_namespaced_custom_object("kubevirt.io", "v1", ns, "virtualmachines", vm)

    def play(restore_name):
        return [{"hosts": "localhost", "gather_facts": False, "tasks": [
            {"name": "running", "virtops.kubevirt.vm_info": {"name": "rb-d2", "namespace": ns, "wait": True,
                                                             "wait_timeout": 60}},
            {"name": "snapshot", "virtops.kubevirt.vm_snapshot": {"name": "rb-d2-snap", "namespace": ns,
                                                                  "vm": "rb-d2", "wait_timeout": 60}},
            {"name": "list", "virtops.kubevirt.vm_info": {"name": "rb-d2", "namespace": ns, "snapshots": True},
             "register": "info"},
            {"name": "listed", "ansible.builtin.assert": {"that": [
                "info.summaries[0].snapshots | map(attribute='name') | list == ['rb-d2-snap']"]}},
            {"name": "restore", "virtops.kubevirt.vm_restore": {
                "name": restore_name, "namespace": ns, "snapshot": "rb-d2-snap", "stop_vm": True,
                "wait_timeout": 120}, "register": "restored"},
            {"name": "restored", "ansible.builtin.assert": {"that": [
                "restored.restore.complete", "restored.vm_stopped", "restored.vm_started"]}},
        ]}]
    try:
        less = run_playbook(tmp_path, play("rb-d2-restore-less"), env=envs["day-two-less"], name="day-two-less")
        assert_names_the_permission(less, "day-two")
        assert custom.list_namespaced_custom_object("snapshot.kubevirt.io", "v1beta1", ns,
                                                    "virtualmachinerestores")["items"] == []
        ok = run_playbook(tmp_path, play("rb-d2-restore"), env=envs["day-two"], name="day-two")
        assert ok.rc == 0, ok.explain()
        cleanup = [{"hosts": "localhost", "gather_facts": False, "tasks": [
            {"name": "delete the snapshot", "virtops.kubevirt.vm_snapshot": {
                "name": "rb-d2-snap", "namespace": ns, "state": "absent"}}]}]
        assert run_playbook(tmp_path, cleanup, env=envs["day-two"], name="day-two-cleanup").rc == 0
    finally:
        custom.delete_namespaced_custom_object("kubevirt.io", "v1", ns, "virtualmachines", "rb-d2")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(
                v["metadata"]["name"] == "rb-d2" for v in custom.list_namespaced_custom_object(
                    "kubevirt.io", "v1", ns, "virtualmachines")["items"]):
            time.sleep(0.5)


@pytest.mark.slow
def test_decommission(rbac, tmp_path, custom):
    ns, envs = rbac
    extra = {"decommission_namespace": ns, "decommission_names": "rb-1,rb-2", "decommission_delete_volumes": "yes",
             "decommission_networks": "rb-net", "decommission_wait_timeout": 120}
    less = run_playbook(tmp_path, playbook("decommission.yml"), env=envs["decommission-less"], extra_vars=extra,
                        name="decommission-less")
    assert_names_the_permission(less, "decommission")
    ok = run_playbook(tmp_path, playbook("decommission.yml"), env=envs["decommission"], extra_vars=extra,
                      name="decommission")
    assert ok.rc == 0, ok.explain()
    warnings = [w for _task, result in ok.tasks for w in result.get("warnings") or []]
    assert not warnings, warnings
    assert custom.list_namespaced_custom_object("kubevirt.io", "v1", ns, "virtualmachines")["items"] == []
    assert custom.list_namespaced_custom_object("cdi.kubevirt.io", "v1beta1", ns, "datavolumes")["items"] == []
    assert custom.list_namespaced_custom_object("k8s.cni.cncf.io", "v1", ns,
                                                "network-attachment-definitions")["items"] == []
