"""Data safety on the lab: which PVCs and DataVolumes survive which deletion.

One playbook builds five VMs, each using a PVC and a DataVolume it does not own and one DataVolume of
its own (dataVolumeTemplates), then takes them down five ways:

  a  vm_decommission (defaults)                   every volume kept, the template's one too (orphaned)
  b  vm_decommission, delete_volumes: true        its volumes deleted
  c  vm state: absent                             its template DataVolume (and PVC) garbage-collected with
                                                  it, the volumes it only uses kept
  d  vm state: absent, keep_volumes: true         every volume kept, no owner left; VMI and
                                                  ControllerRevisions gone
  e  vm_volume state: absent (detach a PVC disk)  the PVC kept
"""
import json
import time

import pytest
from kubernetes import client

from ansible_run import ansible_env, run_playbook

VMS = "abcde"


SAVE = ("{{ {'plan_a': plan_a, 'plan_b': plan_b, 'del_c': del_c, 'del_d': del_d, 'detach_e': detach_e, "
        "'uids': created.results | map(attribute='vm.metadata.uid') | zip(created.results | map(attribute='name'))"
        " | list} | to_nice_json }}")


def _play(ns, out):
    volumes = []
    for vm in VMS:
        volumes += [{"name": "%s-pvc" % vm, "kind": "pvc"}, {"name": "%s-dv" % vm, "kind": "datavolume"}]
    vms = [{"name": vm, "disks": [
        {"name": "root", "image": "quay.io/containerdisks/fedora:41"},
        {"name": "data", "pvc": "%s-pvc" % vm},
        {"name": "extra", "data_volume": "%s-dv" % vm},
        {"name": "own", "data_volume_template": {"name": "%s-tpl" % vm, "size": "1Gi", "blank": True}}]} for vm in VMS]
    role = "virtops.kubevirt.vm_decommission"
    tasks = [
        {"name": "volumes", "virtops.kubevirt.volume": {
            "name": "{{ item.name }}", "kind": "{{ item.kind }}", "size": "1Gi", "namespace": ns},
         "loop": volumes},
        {"name": "five VMs", "register": "created", "virtops.kubevirt.vm": {
            "namespace": ns, "memory": "256Mi", "vms": vms, "wait": True, "wait_timeout": 180}},
        {"name": "a: decommission, defaults", "ansible.builtin.include_role": {"name": role},
         "vars": {"vm_decommission_namespace": ns, "vm_decommission_names": ["a"]}},
        {"ansible.builtin.set_fact": {"plan_a": "{{ vm_decommission_plan }}"}},
        {"name": "b: decommission with its volumes", "ansible.builtin.include_role": {"name": role},
         "vars": {"vm_decommission_namespace": ns, "vm_decommission_names": ["b"],
                  "vm_decommission_delete_volumes": True}},
        {"ansible.builtin.set_fact": {"plan_b": "{{ vm_decommission_plan }}"}},
        {"name": "c: state absent", "register": "del_c", "virtops.kubevirt.vm": {
            "name": "c", "namespace": ns, "state": "absent", "wait": True}},
        {"name": "d: state absent, keep_volumes", "virtops.kubevirt.vm": {
            "name": "d", "namespace": ns, "state": "absent", "keep_volumes": True, "wait": True}, "register": "del_d"},
        {"name": "e: detach the PVC disk", "virtops.kubevirt.vm_volume": {
            "vm": "e", "namespace": ns, "name": "data", "state": "absent"}, "register": "detach_e"},
        {"ansible.builtin.copy": {"dest": str(out), "content": SAVE}},
    ]
    return [{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]


def _names(api, ns):
    custom = client.CustomObjectsApi(api)
    core = client.CoreV1Api(api)
    apps = client.AppsV1Api(api)
    dvs = {d["metadata"]["name"]: d for d in
           custom.list_namespaced_custom_object("cdi.kubevirt.io", "v1beta1", ns, "datavolumes")["items"]
           if not d["metadata"].get("deletionTimestamp")}
    pvcs = {p.metadata.name for p in core.list_namespaced_persistent_volume_claim(ns).items
            if not p.metadata.deletion_timestamp}
    vms = {v["metadata"]["name"] for v in
           custom.list_namespaced_custom_object("kubevirt.io", "v1", ns, "virtualmachines")["items"]}
    vmis = {v["metadata"]["name"] for v in
            custom.list_namespaced_custom_object("kubevirt.io", "v1", ns, "virtualmachineinstances")["items"]}
    revisions = [r.metadata.name for r in apps.list_namespaced_controller_revision(ns).items]
    return dvs, pvcs, vms, vmis, revisions


@pytest.fixture(scope="module")
def outcome(api, kubeconfig, tmp_path_factory):
    core = client.CoreV1Api(api)
    ns = "ds-%s" % time.strftime("%H%M%S")
    core.create_namespace({"metadata": {"name": ns, "labels": {"virtops.io/test": "true"}}})
    try:
        work = tmp_path_factory.mktemp("data-safety")
        out = work / "out.json"
        proc = run_playbook(work, _play(ns, out), env=ansible_env(kubeconfig))
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
        results = json.loads(out.read_text())
        # What a deletion takes with it goes within seconds (garbage collector); what stays, stays.
        deadline = time.monotonic() + 30
        while True:
            dvs, pvcs, vms, vmis, revisions = _names(api, ns)
            gone = {"b-pvc", "b-dv", "b-tpl", "c-tpl"}
            if not (gone & (set(dvs) | pvcs)) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        time.sleep(2)
        yield dict(results, dvs=_names(api, ns)[0], pvcs=_names(api, ns)[1], vms=vms, vmis=vmis, revisions=revisions)
    finally:
        core.delete_namespace(ns)


def test_decommission_keeps_every_volume_by_default(outcome):
    for name in ("a-dv", "a-tpl"):
        assert name in outcome["dvs"]
    for name in ("a-pvc", "a-dv", "a-tpl"):
        assert name in outcome["pvcs"]
    assert not outcome["dvs"]["a-tpl"]["metadata"].get("ownerReferences"), "a-tpl still has an owner"
    assert sorted(v["name"] for v in outcome["plan_a"]["volumes_keep"]) == ["a-dv", "a-pvc", "a-tpl"]
    assert outcome["plan_a"]["volumes_delete"] == []


def test_decommission_with_delete_volumes_deletes_them(outcome):
    for name in ("b-dv", "b-tpl"):
        assert name not in outcome["dvs"]
    for name in ("b-pvc", "b-dv", "b-tpl"):
        assert name not in outcome["pvcs"]
    assert sorted(v["name"] for v in outcome["plan_b"]["volumes_delete"]) == ["b-dv", "b-pvc", "b-tpl"]


def test_vm_absent_takes_only_its_own_data_volume(outcome):
    assert "c-tpl" not in outcome["dvs"] and "c-tpl" not in outcome["pvcs"]
    assert {"c-pvc", "c-dv"} <= outcome["pvcs"] and "c-dv" in outcome["dvs"]
    assert outcome["del_c"]["changed"] and "kept_data_volumes" not in outcome["del_c"]


def test_vm_absent_with_keep_volumes_keeps_them_without_owner(outcome):
    assert outcome["del_d"]["kept_data_volumes"] == ["d-tpl"]
    assert "d-tpl" in outcome["dvs"] and {"d-tpl", "d-pvc", "d-dv"} <= outcome["pvcs"]
    assert not outcome["dvs"]["d-tpl"]["metadata"].get("ownerReferences")


def test_vm_volume_detach_keeps_the_pvc(outcome):
    assert outcome["detach_e"]["changed"]
    assert "e-pvc" in outcome["pvcs"]


def test_deleted_vms_leave_no_vmi_or_revision(outcome):
    assert outcome["vms"] == {"e"}
    assert outcome["vmis"] <= {"e"}
    # KubeVirt names the ControllerRevision of a VM's start after the VM's uid: only e's remain.
    uids = {name: uid for uid, name in outcome["uids"]}
    assert any(uids["e"] in r for r in outcome["revisions"]), outcome["revisions"]
    for vm in "abcd":
        assert not [r for r in outcome["revisions"] if uids[vm] in r], (vm, outcome["revisions"])
