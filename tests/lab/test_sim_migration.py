"""Simulator: live migration through KubeVirt's phases, and refusal for non-migratable VMIs."""
import json
import threading

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from sim_helpers import KV, cond, lab, vm_manifest, wait_for  # noqa: F401

PHASES = ["Pending", "Scheduling", "Scheduled", "PreparingTarget", "TargetReady", "Running", "Succeeded"]


def migration(name, vmi):
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
            "metadata": {"name": name}, "spec": {"vmiName": vmi}}


def read_migration(lab, name):
    """The migration, or None once it is gone."""
    try:
        return lab.get(*KV, "virtualmachineinstancemigrations", name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def test_migration_succeeds_and_moves_the_vmi(lab):
    lab.create_vm(vm_manifest("vm-lm"))
    before = lab.wait_running("vm-lm")
    source = before["status"]["nodeName"]
    # The VM's printableStatus from a watch opened before the migration: Migrating may last less than a poll.
    statuses = []
    vm_rv = lab.vm("vm-lm")["metadata"]["resourceVersion"]

    def watch_vm():
        from kubernetes import watch
        for event in watch.Watch().stream(lab.custom.list_namespaced_custom_object, *KV, lab.ns, "virtualmachines",
                                          field_selector="metadata.name=vm-lm", resource_version=vm_rv,
                                          timeout_seconds=40):
            statuses.append((event["object"].get("status") or {}).get("printableStatus"))
            if statuses[-1] == "Migrating":
                return
    watcher = threading.Thread(target=watch_vm, daemon=True)
    watcher.start()
    lab.create(*KV, "virtualmachineinstancemigrations", migration("mig-1", "vm-lm"))

    def done():
        mig = lab.get(*KV, "virtualmachineinstancemigrations", "mig-1")
        return mig if mig.get("status", {}).get("phase") in ("Succeeded", "Failed") else None
    mig = wait_for(done, 30, interval=0.1, what="migration finished")
    watcher.join(10)
    saw_migrating = "Migrating" in statuses
    assert mig["status"]["phase"] == "Succeeded"
    assert [p["phase"] for p in mig["status"]["phaseTransitionTimestamps"]] == PHASES
    assert mig["metadata"]["labels"]["kubevirt.io/vmi-name"] == "vm-lm"
    assert saw_migrating, "the VM showed Migrating while the migration ran: %s" % statuses
    vmi = wait_for(lambda: (lambda v: v if v["status"]["nodeName"] != source and
                            len(v["status"].get("activePods", {})) == 1 else None)(lab.vmi("vm-lm")), 15,
                   what="VMI on the target node with one pod")
    assert vmi["metadata"]["uid"] == before["metadata"]["uid"], "same VMI, not a restart"
    state = vmi["status"]["migrationState"]
    assert state["completed"] is True and not state.get("failed")
    assert state["sourceNode"] == source and state["targetNode"] == vmi["status"]["nodeName"]
    assert state["migrationUid"] == mig["metadata"]["uid"] and state["startTimestamp"] and state["endTimestamp"]
    assert vmi["metadata"]["labels"]["kubevirt.io/nodeName"] == vmi["status"]["nodeName"]
    pods = [p for p in lab.pods("vm-lm") if not p.metadata.deletion_timestamp]
    assert len(pods) == 1 and pods[0].spec.node_name == vmi["status"]["nodeName"]
    lab.wait_event("vm-lm", "Migrated", f"The VirtualMachineInstance migrated to node {vmi['status']['nodeName']}.")
    lab.wait_printable("vm-lm", "Running")


def test_non_migratable_vmi_is_refused(lab, core):
    # a ReadWriteOnce PVC makes the VMI not live-migratable, as in KubeVirt
    core.create_namespaced_persistent_volume_claim(lab.ns, client.V1PersistentVolumeClaim(
        metadata=client.V1ObjectMeta(name="rwo"),
        spec=client.V1PersistentVolumeClaimSpec(access_modes=["ReadWriteOnce"],
                                                resources=client.V1VolumeResourceRequirements(requests={"storage": "1Gi"}))))
    lab.create_vm(vm_manifest("vm-nm", volumes=[{"name": "root", "persistentVolumeClaim": {"claimName": "rwo"}}]))
    vmi = lab.wait_running("vm-nm")
    lm = cond(vmi, "LiveMigratable")
    msg = ("cannot migrate VMI: PVC rwo is not shared, live migration requires that all PVCs must be shared "
           "(using ReadWriteMany access mode)")
    assert (lm["status"], lm["reason"], lm["message"]) == ("False", "DisksNotLiveMigratable", msg)
    expected = f"Cannot migrate VMI, Reason: DisksNotLiveMigratable, Message: {msg}"
    # creating a migration is refused by the migration webhook ...
    with pytest.raises(ApiException) as info:
        lab.create(*KV, "virtualmachineinstancemigrations", migration("mig-nm", "vm-nm"))
    assert info.value.status == 400
    assert json.loads(info.value.body)["message"] == \
        f'admission webhook "migration-create-validator.kubevirt.io" denied the request: {expected}'
    # ... and virt-api's migrate answers 500 with that error
    status, body = lab.vm_sub("vm-nm", "migrate", {})
    assert status == 500 and body["reason"] == "InternalError" and expected in body["message"]
    assert lab.vmi("vm-nm")["status"]["nodeName"] == vmi["status"]["nodeName"]


def test_bridge_on_pod_network_is_not_migratable(lab):
    lab.create_vm(vm_manifest("vm-br", interfaces=[{"name": "default", "bridge": {}}],
                              networks=[{"name": "default", "pod": {}}]))
    vmi = lab.wait_running("vm-br")
    lm = cond(vmi, "LiveMigratable")
    assert (lm["status"], lm["reason"]) == ("False", "InterfaceNotLiveMigratable")


def test_unschedulable_target_pod_then_cancel_aborts_the_migration(lab, core):
    # As KubeVirt: an addedNodeSelector no node matches leaves the target pod (labelled with the
    # migration's uid) Pending with a FailedScheduling event and the migration in Scheduling;
    # deleting the migration (virtctl migrate-cancel) removes the target pod and the VMI stays put.
    lab.create_vm(vm_manifest("vm-stuck"))
    before = lab.wait_running("vm-stuck")
    mig = migration("mig-stuck", "vm-stuck")
    mig["spec"]["addedNodeSelector"] = {"virtops.io/nowhere": "true"}
    lab.create(*KV, "virtualmachineinstancemigrations", mig)
    stuck = wait_for(lambda: (lambda m: m if m.get("status", {}).get("phase") == "Scheduling" else None)(
        lab.get(*KV, "virtualmachineinstancemigrations", "mig-stuck")), 15, what="migration in Scheduling")
    assert "kubevirt.io/migrationJobFinalize" in stuck["metadata"]["finalizers"]
    uid = stuck["metadata"]["uid"]

    def target():
        pods = core.list_namespaced_pod(lab.ns, label_selector=f"kubevirt.io/migrationJobUID={uid}").items
        return pods[0] if pods and pods[0].status.phase == "Pending" and pods[0].status.conditions else None
    pod = wait_for(target, 15, what="a Pending target pod")
    scheduled = [c for c in pod.status.conditions if c.type == "PodScheduled"][0]
    assert (scheduled.status, scheduled.reason) == ("False", "Unschedulable")
    assert "didn't match Pod's node affinity/selector" in scheduled.message
    lab.wait_event(pod.metadata.name, "FailedScheduling", "didn't match Pod's node affinity/selector")
    lab.custom.delete_namespaced_custom_object(*KV, lab.ns, "virtualmachineinstancemigrations", "mig-stuck")

    wait_for(lambda: read_migration(lab, "mig-stuck") is None or None, 15, what="the cancelled migration gone")
    # As KubeVirt's migration controller: it failed the cancelled migration before letting it go.
    lab.wait_event("mig-stuck", "FailedMigration", "Migration failed due to being canceled")
    wait_for(lambda: not core.list_namespaced_pod(
        lab.ns, label_selector=f"kubevirt.io/migrationJobUID={uid}").items or None, 15, what="target pod deleted")
    after = lab.vmi("vm-stuck")
    assert after["status"]["phase"] == "Running" and after["status"]["nodeName"] == before["status"]["nodeName"]


def test_cancelling_a_migration_handed_over_to_the_nodes_aborts_and_fails_it(lab):
    # As KubeVirt: a migration the VMI's migrationState names (handed over to the nodes) that is deleted
    # gets AbortRequested, the source node aborts it (abortStatus Succeeded), it fails ("Migration failed
    # due to being canceled") and only then loses its finalizer; the VMI stays where it ran.
    lab.create_vm(vm_manifest("vm-abort"))
    before = lab.wait_running("vm-abort")
    lab.create(*KV, "virtualmachineinstancemigrations", migration("mig-abort", "vm-abort"))
    uid = wait_for(lambda: (lab.vmi("vm-abort")["status"].get("migrationState") or {}).get("migrationUid"), 30,
                   interval=0.02, what="the migration handed over to the nodes")
    lab.custom.delete_namespaced_custom_object(*KV, lab.ns, "virtualmachineinstancemigrations", "mig-abort")
    seen = []

    def gone():
        mig = read_migration(lab, "mig-abort")
        if mig is None:
            return True
        seen.append(mig)
        return None
    wait_for(gone, 15, interval=0.02, what="the cancelled migration gone")
    assert seen and all("kubevirt.io/migrationJobFinalize" in m["metadata"]["finalizers"] for m in seen)
    assert all(m["status"].get("phase") != "Succeeded" for m in seen)
    assert all(any(c["type"] == "AbortRequested" for c in m["status"].get("conditions") or [])
               for m in seen if m["status"].get("phase") == "Failed")
    state = lab.vmi("vm-abort")["status"]["migrationState"]
    assert state["migrationUid"] == uid
    assert (state.get("abortStatus"), state.get("failed"), state.get("completed")) == ("Succeeded", True, True)
    lab.wait_event("mig-abort", "FailedMigration", "Migration failed due to being canceled")
    assert lab.vmi("vm-abort")["status"]["nodeName"] == before["status"]["nodeName"]


def test_a_second_migration_is_refused_while_one_is_in_flight(lab):
    lab.create_vm(vm_manifest("vm-two"))
    lab.wait_running("vm-two")
    first = migration("mig-a", "vm-two")
    first["spec"]["addedNodeSelector"] = {"virtops.io/nowhere": "true"}
    lab.create(*KV, "virtualmachineinstancemigrations", first)
    status, body = lab.vm_sub("vm-two", "migrate", {})
    # virt-api relays the webhook's denial as 500 InternalError, as KubeVirt's does
    assert status == 500 and body["reason"] == "InternalError"
    assert 'denied the request: in-flight migration detected. Active migration job (' in body["message"]


def test_matching_migration_policy_is_recorded(lab, core, custom):
    # As KubeVirt's migration controller at the target hand-off: the policy matching the most VMI and
    # namespace labels wins; its fields go over the cluster's migration configuration in migrationState.
    tag = lab.ns
    core.patch_namespace(lab.ns, {"metadata": {"labels": {"virtops.io/policy-test": tag}}})
    policies = {
        f"{tag}-vmi": {"virtualMachineInstanceSelector": {"workload": tag}},
        f"{tag}-both": {"virtualMachineInstanceSelector": {"workload": tag},
                        "namespaceSelector": {"virtops.io/policy-test": tag}},
    }
    group = ("migrations.kubevirt.io", "v1alpha1", "migrationpolicies")
    for name, selectors in policies.items():
        custom.create_cluster_custom_object(*group, {
            "apiVersion": "migrations.kubevirt.io/v1alpha1", "kind": "MigrationPolicy", "metadata": {"name": name},
            "spec": {"selectors": selectors, "allowPostCopy": True, "completionTimeoutPerGiB": 40,
                     "bandwidthPerMigration": "64Mi"}})
    try:
        lab.create_vm(vm_manifest("vm-pol", labels={"workload": tag}))
        lab.wait_running("vm-pol")
        lab.create(*KV, "virtualmachineinstancemigrations", migration("mig-pol", "vm-pol"))
        mig = wait_for(lambda: (lambda m: m if m.get("status", {}).get("phase") == "Succeeded" else None)(
            lab.get(*KV, "virtualmachineinstancemigrations", "mig-pol")), 30, what="migration Succeeded")
        state = lab.vmi("vm-pol")["status"]["migrationState"]
        assert state["migrationPolicyName"] == f"{tag}-both"
        conf = state["migrationConfiguration"]
        assert (conf["allowPostCopy"], conf["allowWorkloadDisruption"], conf["completionTimeoutPerGiB"],
                conf["bandwidthPerMigration"]) == (True, True, 40, "64Mi")
        assert (conf["allowAutoConverge"], conf["progressTimeout"], conf["parallelMigrationsPerCluster"]) == \
            (False, 150, 5)
        assert mig["status"]["migrationState"]["migrationPolicyName"] == f"{tag}-both"
    finally:
        for name in policies:
            custom.delete_cluster_custom_object(*group, name)


def test_without_a_matching_policy_the_cluster_configuration_is_recorded(lab):
    lab.create_vm(vm_manifest("vm-nopol"))
    lab.wait_running("vm-nopol")
    lab.create(*KV, "virtualmachineinstancemigrations", migration("mig-nopol", "vm-nopol"))
    wait_for(lambda: (lambda m: m if m.get("status", {}).get("phase") == "Succeeded" else None)(
        lab.get(*KV, "virtualmachineinstancemigrations", "mig-nopol")), 30, what="migration Succeeded")
    state = lab.vmi("vm-nopol")["status"]["migrationState"]
    assert "migrationPolicyName" not in state
    assert state["migrationConfiguration"] == {
        "allowAutoConverge": False, "allowPostCopy": False, "allowWorkloadDisruption": False,
        "bandwidthPerMigration": "0Mi", "completionTimeoutPerGiB": 150, "nodeDrainTaintKey": "kubevirt.io/drain",
        "parallelMigrationsPerCluster": 5, "parallelOutboundMigrationsPerNode": 2, "progressTimeout": 150,
        "unsafeMigrationOverride": False, "utilityVolumesTimeout": 150}
