"""Issue 15: the lab does with KubeVirt v1.8.4's own examples what KubeVirt v1.8.4 does.

Every manifest of KubeVirt's examples/ (copied into data/kubevirt-v1.8.4-examples/) is applied with a
server-side dry run, one file after the other in file-name order as `kubectl apply -f examples/` does; the
result (accepted, or refused with KubeVirt's message) must be the one data/.../expected.yaml derives from
KubeVirt's code. Objects later files refer to (instancetypes, preferences, priority classes) are then
created for real, as the apply would. Finally the accepted VMs and VMIs that need nothing outside the
examples are created, started, seen Running and Ready, and deleted; so are the VirtualMachinePool and the
VirtualMachineInstanceReplicaSet, whose VMs/VMIs must all be Ready (status.readyReplicas) and go with them.
"""
import uuid
from pathlib import Path

import pytest
import yaml
from kubernetes import client, dynamic

from sim_helpers import Lab, wait_for

DATA = Path(__file__).resolve().parent / "data" / "kubevirt-v1.8.4-examples"
TABLE = yaml.safe_load((DATA / "expected.yaml").read_text())["examples"]
FILES = sorted(p.name for p in DATA.glob("*.yaml") if p.name != "expected.yaml")
# What later files refer to: created for real after their dry run, like `kubectl apply -f` would.
REFERRED_KINDS = {"VirtualMachineInstancetype", "VirtualMachineClusterInstancetype", "VirtualMachinePreference",
                  "VirtualMachineClusterPreference", "PriorityClass"}
RUNNABLE = sorted(f for f, row in TABLE.items() if row.get("run") is True)


def _docs(name):
    return [d for d in yaml.safe_load_all((DATA / name).read_text()) if d]


def _message(exc):
    try:
        return yaml.safe_load(exc.body)["message"]
    except (TypeError, ValueError, KeyError):
        return str(exc)


@pytest.fixture(scope="module")
def examples_ns(core):
    name = f"t-examples-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name,
                                                                          labels={"virtops.io/test": "true"})))
    yield name
    core.delete_namespace(name)


@pytest.fixture(scope="module")
def dry_run_results(api, examples_ns):
    """{file: (kind, None if accepted else the apiserver's message)}, in kubectl's order."""
    dyn = dynamic.DynamicClient(api)
    results, created_cluster_wide = {}, []
    for name in FILES:
        for doc in _docs(name):
            res = dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
            where = {"namespace": examples_ns} if res.namespaced else {}
            try:
                dyn.server_side_apply(res, body=doc, field_manager="examples-test", dry_run="All", **where)
                outcome = None
            except client.ApiException as exc:
                outcome = _message(exc)
            results[name] = (doc["kind"], outcome)
            if outcome is None and doc["kind"] in REFERRED_KINDS:
                dyn.server_side_apply(res, body=doc, field_manager="examples-test", **where)
                if not res.namespaced:
                    created_cluster_wide.append((res, doc["metadata"]["name"]))
    yield results
    for res, obj_name in created_cluster_wide:
        dyn.delete(res, name=obj_name)


def test_the_table_covers_every_example():
    assert sorted(TABLE) == FILES
    for name, row in TABLE.items():
        assert row["result"] in ("accepted", "refused") and row["why"], name
        assert ("message" in row) is (row["result"] == "refused"), name
        assert [d["kind"] for d in _docs(name)] == [row["kind"]], name


@pytest.mark.parametrize("name", FILES)
def test_dry_run_result_is_kubevirts(dry_run_results, examples_ns, name):
    row = TABLE[name]
    kind, message = dry_run_results[name]
    assert kind == row["kind"]
    if row["result"] == "accepted":
        assert message is None, f"{name}: refused by the lab ({message}); KubeVirt accepts it: {row['why']}"
    else:
        expected = row["message"].format(namespace=examples_ns)
        assert message is not None, f"{name}: accepted by the lab; KubeVirt refuses it: {expected} ({row['why']})"
        assert message.startswith("admission webhook ") and f"denied the request: {expected}" in message, \
            f"{name}: {message!r}; KubeVirt says {expected!r} ({row['why']})"


# kind -> (group, version, plural, the label the template puts on each member), for the kinds with replicas
REPLICATED = {"VirtualMachinePool": ("pool.kubevirt.io", "v1beta1", "virtualmachinepools", "virtualmachines"),
              "VirtualMachineInstanceReplicaSet": ("kubevirt.io", "v1", "virtualmachineinstancereplicasets",
                                                   "virtualmachineinstances")}


def _run_replicated(custom, ns, doc):
    """Create the pool / replica set, see all its replicas ready, delete it and see its members go."""
    group, version, plural, members = REPLICATED[doc["kind"]]
    name, replicas = doc["metadata"]["name"], doc["spec"]["replicas"]
    selector = ",".join(f"{k}={v}" for k, v in doc["spec"]["selector"]["matchLabels"].items())
    custom.create_namespaced_custom_object(group, version, ns, plural, doc)

    def ready():
        st = custom.get_namespaced_custom_object(group, version, ns, plural, name).get("status") or {}
        return st if st.get("replicas") == replicas and st.get("readyReplicas") == replicas else None
    wait_for(ready, 90, what=f"{doc['kind']} {name} with {replicas} ready replicas")
    custom.delete_namespaced_custom_object(group, version, ns, plural, name)
    wait_for(lambda: not custom.list_namespaced_custom_object("kubevirt.io", "v1", ns, members,
                                                              label_selector=selector)["items"],
             90, what=f"the {members} of {name} gone")


@pytest.mark.parametrize("name", RUNNABLE)
def test_accepted_vms_and_vmis_run(api, custom, core, examples_ns, dry_run_results, name):
    assert dry_run_results[name][1] is None, f"{name} was refused, so it cannot run"
    lab = Lab(api, custom, core, examples_ns)
    doc = _docs(name)[0]
    vm_name = doc["metadata"]["name"]
    if doc["kind"] in REPLICATED:
        _run_replicated(custom, examples_ns, doc)
        wait_for(lambda: not core.list_namespaced_pod(
            examples_ns, label_selector="kubevirt.io=virt-launcher").items, 90, what="their launcher pods gone")
        return
    if doc["kind"] == "VirtualMachine":
        lab.create_vm(doc)
        status, body = lab.vm_sub(vm_name, "start")
        assert status == 202 or status == 200, body
        lab.wait_running(vm_name, timeout=60)
        lab.delete_vm(vm_name)
    else:
        lab.create("kubevirt.io", "v1", "virtualmachineinstances", doc)
        lab.wait_running(vm_name, timeout=60)
        custom.delete_namespaced_custom_object("kubevirt.io", "v1", examples_ns, "virtualmachineinstances", vm_name)
    lab.wait_vmi_gone(vm_name, timeout=60)
    wait_for(lambda: not lab.pods(vm_name), 60, what=f"the launcher pods of {vm_name} gone")
