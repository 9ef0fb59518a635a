"""The replica set and pool controllers' pure decisions (lab/simulator/replicaset.py, pool.py, selectors.py)
and MigrationPolicy matching (migration.py), each against KubeVirt v1.8.4's behaviour."""
import datetime
import random

import pytest

from simulator import migration as M
from simulator import pool as P
from simulator import replicaset as R
from simulator import selectors as S


# ---------------------------------------------------------------------------------------- selectors
@pytest.mark.parametrize("selector,expected", [
    ({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2"),
    ({"matchExpressions": [{"key": "z", "operator": "In", "values": ["y", "x"]},
                           {"key": "n", "operator": "NotIn", "values": ["q"]},
                           {"key": "e", "operator": "Exists"}, {"key": "d", "operator": "DoesNotExist"}]},
     "!d,e,n notin (q),z in (x,y)"),
    ({}, ""), (None, ""),
])
def test_selector_string_is_apimachinerys(selector, expected):
    assert S.to_string(selector) == expected


@pytest.mark.parametrize("selector,labels,expected", [
    ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
    ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
    ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": ""}, False),
    ({}, {}, True),
    (None, {"a": "1"}, False),      # a nil selector selects nothing
])
def test_selector_matches(selector, labels, expected):
    assert S.matches(selector, labels) is expected


def test_bad_operator_is_an_error():
    with pytest.raises(S.SelectorError):
        S.matches({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}, {})


# ---------------------------------------------------------------------------------------- replica set
def _rs(replicas=None, template_meta=None, paused=False, status=None):
    spec = {"selector": {"matchLabels": {"app": "x"}}, "paused": paused,
            "template": {"metadata": template_meta or {"labels": {"app": "x"}},
                         "spec": {"domain": {"memory": {"guest": "128Mi"}}}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceReplicaSet",
            "metadata": {"name": "rs", "namespace": "ns", "uid": "rs-uid"}, "spec": spec, "status": status or {}}


def _vmi(phase="Running", ready=True, deleting=False, reason=None):
    meta = {"name": "v", "uid": "v-uid"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    cond = {"type": "Ready", "status": "True" if ready else "False"}
    if reason:
        cond["reason"] = reason
    return {"metadata": meta, "status": {"phase": phase, "conditions": [cond]}}


def test_replicas_default_to_one():
    assert R.wanted(_rs()) == 1 and R.wanted(_rs(0)) == 0


@pytest.mark.parametrize("meta,expected", [
    ({"labels": {"app": "x"}}, "rs"),
    ({"labels": {"app": "x"}, "generateName": "gen-"}, "gen-"),
    ({"labels": {"app": "x"}, "name": "named", "generateName": "gen-"}, "named"),
])
def test_vmi_generate_name_is_getVirtualMachineBaseName(meta, expected):
    vmi = R.vmi_from_template(_rs(template_meta=meta))
    assert vmi["metadata"]["generateName"] == expected and "name" not in vmi["metadata"]
    assert vmi["metadata"]["labels"] == {"app": "x"}
    assert vmi["metadata"]["ownerReferences"] == [{
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceReplicaSet", "name": "rs", "uid": "rs-uid",
        "controller": True, "blockOwnerDeletion": True}]
    assert vmi["spec"] == {"domain": {"memory": {"guest": "128Mi"}}}


def test_active_and_finished_vmis():
    assert R.is_active(_vmi()) and R.is_active(_vmi("Pending", ready=False))
    assert not R.is_active(_vmi("Failed")) and R.is_finished(_vmi("Succeeded"))
    assert not R.is_active(_vmi(deleting=True)) and not R.is_finished(_vmi("Failed", deleting=True))
    terminating = _vmi(ready=False, reason="PodTerminating")     # filterUnkownVMIs
    assert not R.is_active(terminating) and R.is_finished(terminating)


def test_status_counts_ready_and_sets_the_conditions():
    st = R.status_for(_rs(3, paused=True), [_vmi(), _vmi(ready=False)], "boom", diff=-1)
    assert (st["replicas"], st["readyReplicas"], st["labelSelector"]) == (2, 1, "app=x")
    conds = {c["type"]: c for c in st["conditions"]}
    assert (conds["ReplicaPaused"]["reason"], conds["ReplicaPaused"]["message"]) == ("Paused", "Controller got paused")
    assert (conds["ReplicaFailure"]["reason"], conds["ReplicaFailure"]["message"]) == ("FailedCreate", "boom")
    assert R.status_for(_rs(1), [_vmi()], "boom", diff=1)["conditions"][0]["reason"] == "FailedDelete"


def test_status_unchanged_is_not_written_and_conditions_go():
    rs = _rs(1, status={"replicas": 1, "readyReplicas": 1, "labelSelector": "app=x"})
    assert R.status_for(rs, [_vmi()], None, 0) is None
    rs["status"]["conditions"] = [{"type": "ReplicaFailure", "status": "True"}]
    st = R.status_for(rs, [_vmi()], None, 0)
    assert "conditions" not in st


# ---------------------------------------------------------------------------------------- pool
def _pool(replicas=3, sort=None, generation=4):
    spec = {"replicas": replicas, "selector": {"matchLabels": {"pool": "p"}},
            "virtualMachineTemplate": {
                "metadata": {"labels": {"pool": "p"}, "annotations": {"note": "n"}},
                "spec": {"runStrategy": "Always",
                         "dataVolumeTemplates": [{"metadata": {"name": "root"}, "spec": {}}],
                         "template": {"spec": {"volumes": [
                             {"name": "root", "dataVolume": {"name": "root"}},
                             {"name": "claim", "persistentVolumeClaim": {"claimName": "root"}},
                             {"name": "other", "persistentVolumeClaim": {"claimName": "shared"}},
                             {"name": "cm", "configMap": {"name": "cfg"}},
                             {"name": "ci", "cloudInitNoCloud": {"userDataSecretRef": {"name": "ud"}}}]}}}}}
    if sort:
        spec["scaleInStrategy"] = {"proactive": {"selectionPolicy": {"sortPolicy": sort}}}
    return {"apiVersion": "pool.kubevirt.io/v1beta1", "kind": "VirtualMachinePool",
            "metadata": {"name": "p", "namespace": "ns", "uid": "p-uid", "generation": generation}, "spec": spec}


def test_new_names_take_the_lowest_free_indexes():
    assert P.new_vm_names(3, "p", {"p-0", "p-2", "other-1"}) == ["p-1", "p-3", "p-4"]
    assert P.index_from_name("my-pool-12") == 12 and P.index_from_name("nodash") is None


def test_vm_of_a_pool_as_scaleOut_makes_it():
    vm = P.vm_for(_pool(), "p-7", "p-4")
    meta = vm["metadata"]
    assert meta["name"] == "p-7" and meta["labels"] == {"pool": "p", "kubevirt.io/vm-pool-revision-name": "p-4"}
    assert meta["annotations"] == {"note": "n"} and meta["finalizers"] == ["pool.kubevirt.io/finalizer"]
    assert meta["ownerReferences"][0]["kind"] == "VirtualMachinePool" and meta["ownerReferences"][0]["controller"]
    assert vm["spec"]["template"]["metadata"]["labels"] == {"kubevirt.io/vm-pool-revision-name": "p-4"}
    assert vm["spec"]["dataVolumeTemplates"][0]["metadata"]["name"] == "root-7"
    vols = {v["name"]: v for v in vm["spec"]["template"]["spec"]["volumes"]}
    assert vols["root"]["dataVolume"]["name"] == "root-7"
    assert vols["claim"]["persistentVolumeClaim"]["claimName"] == "root-7"     # names a template's DV
    assert vols["other"]["persistentVolumeClaim"]["claimName"] == "shared"
    assert vols["cm"]["configMap"]["name"] == "cfg" and vols["ci"]["cloudInitNoCloud"]["userDataSecretRef"] == \
        {"name": "ud"}      # nameGeneration not asked for


def test_name_generation_appends_the_index_to_configmaps_and_secrets():
    pool = _pool()
    pool["spec"]["nameGeneration"] = {"appendIndexToConfigMapRefs": True, "appendIndexToSecretRefs": True}
    vols = {v["name"]: v for v in P.index_vm_spec(pool["spec"], 2)["template"]["spec"]["volumes"]}
    assert vols["cm"]["configMap"]["name"] == "cfg-2"
    assert vols["ci"]["cloudInitNoCloud"]["userDataSecretRef"]["name"] == "ud-2"


def _vms(*names):
    return [{"metadata": {"name": n, "creationTimestamp": f"2026-01-01T00:00:0{i}Z"},
             "spec": {"template": {"metadata": {"labels": {"i": str(i)}}}}} for i, n in enumerate(names)]


@pytest.mark.parametrize("sort,expected", [
    ("DescendingOrder", ["p-10", "p-2", "p-1"]), ("AscendingOrder", ["p-1", "p-2", "p-10"]),
    ("Newest", ["p-10", "p-1", "p-2"]), ("Oldest", ["p-2", "p-1", "p-10"]),
])
def test_scale_in_order_follows_the_sort_policy(sort, expected):
    order = P.scale_in_order(_pool(sort=sort), _vms("p-2", "p-1", "p-10"))
    assert [v["metadata"]["name"] for v in order] == expected


def test_scale_in_is_random_by_default_and_selectors_filter():
    vms = _vms("p-0", "p-1", "p-2", "p-3")
    seen = {tuple(v["metadata"]["name"] for v in P.scale_in_order(_pool(), vms, random.Random(seed)))
            for seed in range(20)}
    assert len(seen) > 1
    pool = _pool(sort="AscendingOrder")
    pool["spec"]["scaleInStrategy"]["proactive"]["selectionPolicy"]["selectors"] = {
        "labelSelector": {"matchExpressions": [{"key": "i", "operator": "In", "values": ["1", "3"]}]}}
    assert [v["metadata"]["name"] for v in P.scale_in_order(pool, vms)] == ["p-1", "p-3"]


def test_pool_status():
    ready = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    st, events = P.status_for(_pool(), [ready, {"status": {}}], ("FailedScaleOut", "error during scale out: x"))
    assert (st["replicas"], st["readyReplicas"], st["labelSelector"]) == (2, 1, "pool=p")
    assert st["conditions"][0]["type"] == "ReplicaFailure" and st["conditions"][0]["reason"] == "FailedScaleOut"
    assert events == [("Warning", "FailedScaleOut", "error during scale out: x")]
    paused = _pool()
    paused["spec"]["paused"] = True
    st, events = P.status_for(paused, [], None)
    assert [(c["type"], c["reason"], c["message"]) for c in st["conditions"]] == [
        ("ReplicaPaused", "SuccessfulPaused", "Pool controller is paused")]
    assert events == [("Normal", "SuccessfulPaused", "Pool is paused")]
    paused["spec"]["paused"], paused["status"] = False, st
    st, events = P.status_for(paused, [], None)
    assert "conditions" not in st and events == [("Normal", "SuccessfulResume", "Pool is unpaused")]


# ---------------------------------------------------------------------------------------- migration policies
def _policy(name, vmi=None, ns=None, **spec):
    selectors = {}
    if vmi is not None:
        selectors["virtualMachineInstanceSelector"] = vmi
    if ns is not None:
        selectors["namespaceSelector"] = ns
    return {"metadata": {"name": name}, "spec": {"selectors": selectors, **spec}}


def test_policy_with_most_matching_labels_wins():
    policies = [_policy("a", vmi={"app": "db"}), _policy("b", vmi={"app": "db", "tier": "1"}),
                _policy("c", vmi={"app": "db"}, ns={"team": "x"}), _policy("miss", vmi={"app": "web"})]
    assert M.match_policy(policies, {"app": "db", "tier": "1"}, {"team": "x"})["metadata"]["name"] == "b"
    assert M.match_policy(policies, {"app": "db"}, {"team": "x"})["metadata"]["name"] == "c"
    assert M.match_policy(policies, {"app": "db"}, {})["metadata"]["name"] == "a"
    assert M.match_policy(policies[3:], {"app": "db"}, {}) is None


def test_tie_of_totals_goes_to_vmi_labels_then_to_the_first_name():
    policies = [_policy("ns-only", ns={"team": "x"}), _policy("vmi-only", vmi={"app": "db"})]
    assert M.match_policy(policies, {"app": "db"}, {"team": "x"})["metadata"]["name"] == "vmi-only"
    policies = [_policy("zz", vmi={"app": "db"}), _policy("aa", vmi={"app": "db"})]
    assert M.match_policy(policies, {"app": "db"}, {})["metadata"]["name"] == "aa"


def test_empty_selectors_match_everything_and_missing_selectors_nothing():
    assert M.match_policy([_policy("all")], {"x": "y"}, {})["metadata"]["name"] == "all"
    assert M.match_policy([{"metadata": {"name": "none"}, "spec": {}}], {"x": "y"}, {}) is None


def test_configuration_is_the_clusters_with_the_policys_fields():
    name, conf = M.migration_configuration(None)
    assert name is None and conf == M.CLUSTER_MIGRATION_CONFIGURATION
    name, conf = M.migration_configuration(_policy("p", allowPostCopy=True, completionTimeoutPerGiB=30,
                                                   bandwidthPerMigration="64Mi"))
    assert name == "p"
    assert (conf["allowPostCopy"], conf["allowWorkloadDisruption"], conf["completionTimeoutPerGiB"],
            conf["bandwidthPerMigration"], conf["progressTimeout"]) == (True, True, 30, "64Mi", 150)
    # a policy that sets nothing changes nothing: no policy name is recorded (isUpdated false)
    assert M.migration_configuration(_policy("empty"))[0] is None


def test_aggregated_roles_cover_pools_and_migration_policies():
    # virt-operator's rbac/cluster.go: editors manage pools and read migration policies, viewers read both
    from simulator import register
    roles = {r["metadata"]["name"]: r["rules"] for r in register.cluster_roles()}

    def verbs(role, group, resource):
        return {v for rule in roles[role] if group in rule["apiGroups"] and resource in rule["resources"]
                for v in rule["verbs"]}
    assert {"create", "delete", "patch", "list"} <= verbs("kubevirt.io:edit", "pool.kubevirt.io", "virtualmachinepools")
    assert verbs("kubevirt.io:view", "pool.kubevirt.io", "virtualmachinepools") == {"get", "list", "watch"}
    for role in ("kubevirt.io:admin", "kubevirt.io:edit", "kubevirt.io:view"):
        assert verbs(role, "migrations.kubevirt.io", "migrationpolicies") == {"get", "list", "watch"}


@pytest.mark.parametrize("vm_rev, vmi_rev, vm_spec, vmi_spec, expected", [
    (None, "p-1", {}, {}, "none"),                   # the VM's revision label comes on a later sync
    ("p-2", None, {}, None, "restart"),              # a VMI without history is restarted
    ("p-2", "p-2", {}, {}, "none"),
    ("p-2", "p-1", None, {}, "none"),                # the VM's revision is not there yet
    ("p-2", "p-1", {}, None, "restart"),             # the VMI's revision is gone
    ("p-2", "p-1", {"virtualMachineTemplate": {"spec": {"template": {"a": 2}}}},
     {"virtualMachineTemplate": {"spec": {"template": {"a": 1}}}}, "restart"),
    ("p-2", "p-1", {"virtualMachineTemplate": {"spec": {"template": {"a": 1}, "dataVolumeTemplates": [{"x": 2}]}}},
     {"virtualMachineTemplate": {"spec": {"template": {"a": 1}, "dataVolumeTemplates": [{"x": 1}]}}}, "vm-delete"),
    ("p-2", "p-1", {"virtualMachineTemplate": {"spec": {"template": {"a": 1}}}, "replicas": 3},
     {"virtualMachineTemplate": {"spec": {"template": {"a": 1}}}, "replicas": 1}, "label-patch"),
])
def test_proactive_update_of_a_vmi_as_isOutdatedVMI_decides(vm_rev, vmi_rev, vm_spec, vmi_spec, expected):
    assert P.vmi_update(vm_rev, vmi_rev, vm_spec, vmi_spec) == expected


@pytest.mark.parametrize("value, replicas, expected", [
    (None, 3, 3), ("50%", 3, 1), ("10%", 3, 1), ("100%", 4, 4), (2, 5, 2), (0, 5, 1), ("2", 5, 1),   # a string is a percentage even without "%"
])
def test_max_unavailable_as_calculateMaxUnavailableInt(value, replicas, expected):
    pool = _pool(replicas=replicas)
    if value is not None:
        pool["spec"]["maxUnavailable"] = value
    assert P.max_unavailable(pool) == expected


def _failing(name, status="ErrImagePull", probe=None, ready="False", starts=None):
    vm = {"metadata": {"name": name}, "status": {"printableStatus": status, "conditions": [
        {"type": "Ready", "status": ready, "lastProbeTime": probe}]}}
    if starts is not None:
        vm["status"]["startFailure"] = {"consecutiveFailCount": starts}
    return vm


def test_autohealing_picks_the_vms_failing_to_start_as_filterFailingVMsToStart():
    when = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.timezone.utc)
    vms = [_failing("pull"),                                             # no lastProbeTime: Go's zero time
           _failing("recent", "Unschedulable", probe="2026-12-06T11:58:00Z"),
           _failing("long", "CrashLoopBackOff", probe="2026-12-06T11:50:00Z"),
           _failing("ready-anyway", ready="True"),
           _failing("running", "Running"),
           _failing("crashing", "Starting", starts=3), _failing("once", "Starting", starts=2)]
    names = [v["metadata"]["name"] for v in P.failing_to_start(vms, {}, when)]
    assert names == ["pull", "long", "crashing"]
    names = [v["metadata"]["name"] for v in P.failing_to_start(
        vms, {"minFailingToStartDuration": "1m", "startUpFailureThreshold": 2}, when)]
    assert names == ["pull", "recent", "long", "crashing", "once"]
