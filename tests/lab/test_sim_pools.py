"""Simulator: VirtualMachineInstanceReplicaSets and VirtualMachinePools as KubeVirt v1.8.4's controllers run
them (naming, ownership, the scale subresource, status, pausing, deletion)."""
import re
import time

from kubernetes import client
from kubernetes.client.rest import ApiException

from sim_helpers import CIRROS, KV, cond, lab, wait_for  # noqa: F401

POOL = ("pool.kubevirt.io", "v1beta1")
RS_PLURAL = "virtualmachineinstancereplicasets"


def replicaset(name, replicas, memory="128Mi"):
    domain = {"devices": {"disks": [{"name": "root", "disk": {"bus": "virtio"}}]}}
    if memory:
        domain["memory"] = {"guest": memory}
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"rs": name}},
                     "template": {"metadata": {"labels": {"rs": name}},
                                  "spec": {"domain": domain, "terminationGracePeriodSeconds": 0,
                                           "volumes": [{"name": "root", "containerDisk": {"image": CIRROS}}]}}}}


def pool(name, replicas, sort_policy=None, dv=False):
    tspec = {"domain": {"memory": {"guest": "128Mi"}, "devices": {"disks": [{"name": "root", "disk": {}}]}},
             "terminationGracePeriodSeconds": 0,
             "volumes": [{"name": "root", "containerDisk": {"image": CIRROS}}]}
    vm_spec = {"runStrategy": "Always", "template": {"metadata": {"labels": {"pool": name}}, "spec": tspec}}
    if dv:
        vm_spec["dataVolumeTemplates"] = [{"metadata": {"name": "data"}, "spec": {
            "source": {"blank": {}}, "storage": {"resources": {"requests": {"storage": "1Gi"}}}}}]
        tspec["domain"]["devices"]["disks"].append({"name": "data", "disk": {}})
        tspec["volumes"].append({"name": "data", "dataVolume": {"name": "data"}})
    spec = {"replicas": replicas, "selector": {"matchLabels": {"pool": name}},
            "virtualMachineTemplate": {"metadata": {"labels": {"pool": name}}, "spec": vm_spec}}
    if sort_policy:
        spec["scaleInStrategy"] = {"proactive": {"selectionPolicy": {"sortPolicy": sort_policy}}}
    return {"apiVersion": "pool.kubevirt.io/v1beta1", "kind": "VirtualMachinePool", "metadata": {"name": name},
            "spec": spec}


def rs_vmis(lab, name, active_only=True):
    items = lab.custom.list_namespaced_custom_object(*KV, lab.ns, "virtualmachineinstances",
                                                     label_selector=f"rs={name}")["items"]
    return [v for v in items if not (active_only and v["metadata"].get("deletionTimestamp"))]


def pool_vms(lab, name):
    items = lab.custom.list_namespaced_custom_object(*KV, lab.ns, "virtualmachines",
                                                     label_selector=f"pool={name}")["items"]
    return sorted((v for v in items if not v["metadata"].get("deletionTimestamp")), key=lambda v: v["metadata"]["name"])


def wait_status(lab, group, plural, name, replicas, ready=None, timeout=30):
    ready = replicas if ready is None else ready

    def ok():
        obj = lab.get(*group, plural, name)
        st = obj.get("status") or {}
        return obj if st.get("replicas") == replicas and st.get("readyReplicas", 0) == ready else None
    return wait_for(ok, timeout, what=f"{plural} {name} with {replicas} replicas, {ready} ready")


def scale(lab, group, plural, name, replicas):
    """PATCH .../scale, as kubectl scale does."""
    return lab.custom.patch_namespaced_custom_object_scale(*group, lab.ns, plural, name,
                                                           {"spec": {"replicas": replicas}})


def gone(fn):
    try:
        fn()
        return None
    except ApiException as exc:
        return exc.status == 404 or None


# ---------------------------------------------------------------------------------------- replica sets
def test_replicaset_creates_scales_and_cascades(lab):
    lab.create(*KV, RS_PLURAL, replicaset("web", 2))
    rs = wait_status(lab, KV, RS_PLURAL, "web", 2)
    assert rs["metadata"]["annotations"]["kubevirt.io/latest-observed-api-version"] == "v1"
    assert rs["metadata"]["annotations"]["kubevirt.io/storage-observed-api-version"] == "v1"
    assert rs["status"]["labelSelector"] == "rs=web" and "conditions" not in rs["status"]
    vmis = rs_vmis(lab, "web")
    assert len(vmis) == 2
    for vmi in vmis:
        assert re.fullmatch(r"web[a-z0-9]{5}", vmi["metadata"]["name"]), vmi["metadata"]["name"]
        assert vmi["metadata"]["labels"]["rs"] == "web"
        assert vmi["metadata"]["ownerReferences"] == [{
            "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceReplicaSet", "name": "web",
            "uid": rs["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
    lab.wait_event("web", "SuccessfulCreate", "Started the virtual machine by creating the new virtual machine "
                                              f"instance {vmis[0]['metadata']['name']}")
    # the scale subresource, read and written
    sc = lab.custom.get_namespaced_custom_object_scale(*KV, lab.ns, RS_PLURAL, "web")
    assert (sc["spec"]["replicas"], sc["status"]["replicas"], sc["status"]["selector"]) == (2, 2, "rs=web")
    scale(lab, KV, RS_PLURAL, "web", 3)
    wait_status(lab, KV, RS_PLURAL, "web", 3)
    assert len(rs_vmis(lab, "web")) == 3
    scale(lab, KV, RS_PLURAL, "web", 1)
    wait_status(lab, KV, RS_PLURAL, "web", 1)
    wait_for(lambda: len(rs_vmis(lab, "web", active_only=False)) == 1, 30, what="two VMIs deleted")
    lab.wait_event("web", "SuccessfulDelete", "Stopped the virtual machine by deleting the virtual machine instance")
    # deleting the replica set deletes its VMIs (garbage collector, ownerReferences)
    lab.custom.delete_namespaced_custom_object(*KV, lab.ns, RS_PLURAL, "web")
    wait_for(lambda: not rs_vmis(lab, "web", active_only=False), 30, what="the replica set's VMIs gone")


def test_replicaset_pause_adopt_and_release(lab):
    orphan = replicaset("adopt", 1)["spec"]["template"]
    lab.create(*KV, "virtualmachineinstances", {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
                                                "metadata": {"name": "orphan", **orphan["metadata"]},
                                                "spec": orphan["spec"]})
    lab.create(*KV, RS_PLURAL, replicaset("adopt", 1))
    rs = wait_status(lab, KV, RS_PLURAL, "adopt", 1)
    vmis = rs_vmis(lab, "adopt")
    assert [v["metadata"]["name"] for v in vmis] == ["orphan"], "the matching orphan is adopted, none created"
    assert vmis[0]["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
    # paused: no scaling, condition ReplicaPaused
    lab.custom.patch_namespaced_custom_object(*KV, lab.ns, RS_PLURAL, "adopt", {"spec": {"paused": True}})
    paused = wait_for(lambda: cond(lab.get(*KV, RS_PLURAL, "adopt"), "ReplicaPaused"), 15, what="ReplicaPaused")
    assert (paused["status"], paused["reason"], paused["message"]) == ("True", "Paused", "Controller got paused")
    lab.wait_event("adopt", "SuccessfulPaused", "Paused")
    scale(lab, KV, RS_PLURAL, "adopt", 2)
    time.sleep(1.5)
    assert len(rs_vmis(lab, "adopt")) == 1, "a paused replica set does not scale"
    lab.custom.patch_namespaced_custom_object(*KV, lab.ns, RS_PLURAL, "adopt", {"spec": {"paused": False}})
    rs = wait_status(lab, KV, RS_PLURAL, "adopt", 2)
    assert cond(rs, "ReplicaPaused") is None
    # an owned VMI whose labels stop matching is released, and replaced
    lab.custom.patch_namespaced_custom_object(*KV, lab.ns, "virtualmachineinstances", "orphan",
                                              {"metadata": {"labels": {"rs": "elsewhere"}}})
    wait_for(lambda: not lab.vmi("orphan")["metadata"].get("ownerReferences"), 15, what="orphan released")
    wait_status(lab, KV, RS_PLURAL, "adopt", 2)
    assert "orphan" not in [v["metadata"]["name"] for v in rs_vmis(lab, "adopt")]


def test_replicaset_failed_create_is_a_replica_failure(lab):
    # KubeVirt's VMI webhook refuses a VMI without memory: the replica set shows why
    lab.create(*KV, RS_PLURAL, replicaset("nomem", 1, memory=None))
    failure = wait_for(lambda: cond(lab.get(*KV, RS_PLURAL, "nomem"), "ReplicaFailure"), 20, what="ReplicaFailure")
    assert (failure["status"], failure["reason"]) == ("True", "FailedCreate")
    assert "no memory requested" in failure["message"] and failure["message"].startswith("admission webhook")
    lab.wait_event("nomem", "FailedCreate", "Error creating virtual machine instance: admission webhook")
    assert not rs_vmis(lab, "nomem")


# ---------------------------------------------------------------------------------------- pools
def test_pool_names_owns_scales_and_cascades(lab):
    lab.create(*POOL, "virtualmachinepools", pool("db", 2, sort_policy="DescendingOrder", dv=True))
    p = wait_status(lab, POOL, "virtualmachinepools", "db", 2, timeout=45)
    assert p["status"]["labelSelector"] == "pool=db"
    assert "pool.kubevirt.io/finalizer" in p["metadata"]["finalizers"]
    vms = pool_vms(lab, "db")
    assert [v["metadata"]["name"] for v in vms] == ["db-0", "db-1"]
    revision = f"db-{p['metadata']['generation']}"
    for i, vm in enumerate(vms):
        meta = vm["metadata"]
        assert meta["labels"] == {"pool": "db", "kubevirt.io/vm-pool-revision-name": revision}
        assert "pool.kubevirt.io/finalizer" in meta["finalizers"]
        assert meta["ownerReferences"] == [{"apiVersion": "pool.kubevirt.io/v1beta1", "kind": "VirtualMachinePool",
                                            "name": "db", "uid": p["metadata"]["uid"], "controller": True,
                                            "blockOwnerDeletion": True}]
        assert vm["spec"]["dataVolumeTemplates"][0]["metadata"]["name"] == f"data-{i}"
        assert {"name": "data", "dataVolume": {"name": f"data-{i}"}} in vm["spec"]["template"]["spec"]["volumes"]
        lab.wait_running(f"db-{i}", timeout=30)
    rev = client.AppsV1Api(lab.api).read_namespaced_controller_revision(revision, lab.ns)
    assert rev.metadata.owner_references[0].uid == p["metadata"]["uid"]
    lab.wait_event("db", "SuccessfulCreate", f"Created VM {lab.ns}/db-0")
    # scale out through the scale subresource: the next free indexes
    scale(lab, POOL, "virtualmachinepools", "db", 4)
    wait_status(lab, POOL, "virtualmachinepools", "db", 4, timeout=45)
    assert [v["metadata"]["name"] for v in pool_vms(lab, "db")] == ["db-0", "db-1", "db-2", "db-3"]
    # scale in: sortPolicy DescendingOrder removes the highest indexes first
    scale(lab, POOL, "virtualmachinepools", "db", 1)
    wait_status(lab, POOL, "virtualmachinepools", "db", 1, timeout=45)
    assert [v["metadata"]["name"] for v in pool_vms(lab, "db")] == ["db-0"]
    lab.wait_event("db", "SuccessfulDelete", f"Deleted VM {lab.ns}/db-3 with uid")
    # a VM deleted by hand is replaced, under the lowest free index
    uid = lab.vm("db-0")["metadata"]["uid"]
    lab.delete_vm("db-0")
    wait_for(lambda: (lambda vm: vm["metadata"]["uid"] != uid and vm)(lab.vm("db-0")), 45, what="db-0 recreated")
    wait_status(lab, POOL, "virtualmachinepools", "db", 1, timeout=45)
    # deleting the pool: its finalizer goes after the VMs' pool finalizers, then the VMs are deleted
    lab.custom.delete_namespaced_custom_object(*POOL, lab.ns, "virtualmachinepools", "db")
    wait_for(lambda: gone(lambda: lab.get(*POOL, "virtualmachinepools", "db")), 30, what="pool gone")
    wait_for(lambda: not lab.custom.list_namespaced_custom_object(
        *KV, lab.ns, "virtualmachines", label_selector="pool=db")["items"], 45, what="the pool's VMs gone")


def test_pool_paused_does_not_scale(lab):
    lab.create(*POOL, "virtualmachinepools", pool("still", 1))
    wait_status(lab, POOL, "virtualmachinepools", "still", 1, timeout=30)
    lab.custom.patch_namespaced_custom_object(*POOL, lab.ns, "virtualmachinepools", "still", {"spec": {"paused": True}})
    paused = wait_for(lambda: cond(lab.get(*POOL, "virtualmachinepools", "still"), "ReplicaPaused"), 15,
                      what="ReplicaPaused")
    assert (paused["reason"], paused["message"]) == ("SuccessfulPaused", "Pool controller is paused")
    lab.wait_event("still", "SuccessfulPaused", "Pool is paused")
    scale(lab, POOL, "virtualmachinepools", "still", 3)
    time.sleep(1.5)
    assert len(pool_vms(lab, "still")) == 1, "a paused pool does not scale"
    lab.custom.patch_namespaced_custom_object(*POOL, lab.ns, "virtualmachinepools", "still",
                                              {"spec": {"paused": False}})
    wait_status(lab, POOL, "virtualmachinepools", "still", 3, timeout=45)
    lab.wait_event("still", "SuccessfulResume", "Pool is unpaused")


def test_pool_template_change_restarts_outdated_vmis(lab):
    """pool.go's proactive update (the default): a new template is written to the VMs, and each VMI made from
    the old one is deleted so its VM starts a new one, labelled with the new revision. With updateStrategy
    opportunistic the VMIs keep running."""
    lab.create(*POOL, "virtualmachinepools", pool("upd", 2))
    lazy = pool("lazy", 1)
    lazy["spec"]["updateStrategy"] = {"opportunistic": {}}
    lab.create(*POOL, "virtualmachinepools", lazy)
    wait_status(lab, POOL, "virtualmachinepools", "upd", 2, timeout=45)
    wait_status(lab, POOL, "virtualmachinepools", "lazy", 1, timeout=45)
    before = {n: lab.vmi(n)["metadata"]["uid"] for n in ("upd-0", "upd-1", "lazy-0")}
    memory = {"spec": {"virtualMachineTemplate": {"spec": {"template": {"spec": {"domain": {
        "memory": {"guest": "192Mi"}}}}}}}}
    for name in ("upd", "lazy"):
        lab.custom.patch_namespaced_custom_object(*POOL, lab.ns, "virtualmachinepools", name, memory)
    revision = f"upd-{lab.get(*POOL, 'virtualmachinepools', 'upd')['metadata']['generation']}"

    def restarted(name):
        vmi = lab.vmi(name)
        if not vmi or vmi["metadata"]["uid"] == before[name] or vmi["status"].get("phase") != "Running":
            return None
        return vmi
    for name in ("upd-0", "upd-1"):
        vmi = wait_for(lambda: restarted(name), 45, what=f"{name}'s VMI replaced")
        assert vmi["metadata"]["labels"]["kubevirt.io/vm-pool-revision-name"] == revision
        assert vmi["spec"]["domain"]["memory"]["guest"] == "192Mi"
    lab.wait_event("upd", "SuccessfulDelete", f"Successfully updated resource {lab.ns}/upd-")
    wait_for(lambda: pool_vms(lab, "lazy")[0]["spec"]["template"]["spec"]["domain"]["memory"]["guest"] == "192Mi",
             30, what="lazy-0's VM updated")
    time.sleep(1)
    assert lab.vmi("lazy-0")["metadata"]["uid"] == before["lazy-0"], "opportunistic: the VMI keeps running"


def test_pool_autohealing_replaces_a_vm_that_cannot_pull_its_image(lab):
    """pool.go's autohealing: a VM in ErrImagePull whose Ready condition has no lastProbeTime (Go's zero
    time) has failed long enough at once; the pool deletes it and makes a new one under the same name."""
    healing = pool("heal", 1)
    healing["spec"]["autohealing"] = {}
    healing["spec"]["virtualMachineTemplate"]["spec"]["template"]["spec"]["volumes"][0]["containerDisk"]["image"] = \
        "quay.io/containerdisks/does-not-exist:1"
    lab.create(*POOL, "virtualmachinepools", healing)
    first = wait_for(lambda: (pool_vms(lab, "heal") or [None])[0], 30, what="heal-0")
    lab.wait_event("heal", "SuccessfulDelete", f"Deleted VM {lab.ns}/heal-0 with uid {first['metadata']['uid']}",
                   timeout=60)
    wait_for(lambda: any(v["metadata"]["uid"] != first["metadata"]["uid"] for v in pool_vms(lab, "heal")), 45,
             what="a new heal-0")
