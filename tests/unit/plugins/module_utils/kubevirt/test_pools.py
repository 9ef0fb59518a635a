"""kubevirt/pools.py: KubeVirt's VirtualMachinePool rules (pool.go) the vm_pool module follows."""
import copy

import pytest

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import InputError
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import pools

BEFORE = {"metadata": {"name": "web", "generation": 2}, "spec": {"replicas": 2, "virtualMachineTemplate": {
    "metadata": {"labels": {"app": "web"}}, "spec": {"template": {"spec": {"domain": {"memory": {"guest": "1Gi"}}}}}}}}


def test_vm_names_must_fit():
    pools.check_vm_names("p" * 61, 10)          # p...-9: 63 characters
    with pytest.raises(InputError) as exc:
        pools.check_vm_names("p" * 61, 11)      # p...-10: 64
    assert "would be longer than 63 characters" in str(exc.value)


@pytest.mark.parametrize("status, ready_needed, paused, done", [
    ({"replicas": 2, "readyReplicas": 2}, True, False, True),
    ({"replicas": 2, "readyReplicas": 1}, True, False, False),
    ({"replicas": 3, "readyReplicas": 2}, True, False, False),     # one is still being deleted
    ({"replicas": 2}, False, False, True),                          # Halted VMs are counted, not awaited
    ({"replicas": 2, "readyReplicas": 2}, True, True, False),       # paused: the condition, not the counts
    ({"conditions": [{"type": "ReplicaPaused", "status": "True"}]}, True, True, True),
])
def test_pool_check(status, ready_needed, paused, done):
    check = pools.pool_check("web", 2, ready_needed, paused)
    assert check({"web": {"metadata": {"name": "web"}, "status": status}}) is done
    assert check({}) is False


def test_a_template_change_restarts_vmis_unless_the_update_strategy_says_otherwise():
    before = BEFORE
    after = copy.deepcopy(BEFORE)
    after["spec"]["virtualMachineTemplate"]["spec"]["template"]["spec"]["domain"]["memory"]["guest"] = "2Gi"
    scaled = dict(before, spec=dict(before["spec"], replicas=5))
    assert pools.restarts_vmis(before, after) is True
    assert pools.restarts_vmis(None, after) is False and pools.restarts_vmis(before, scaled) is False
    for strategy in ({"opportunistic": {}}, {"unmanaged": {}}):
        assert pools.restarts_vmis(before, dict(after, spec=dict(after["spec"], updateStrategy=strategy))) is False


def test_revision_check_counts_ready_vmis_of_the_revision():
    def vmi(name, revision, ready=True, deleting=False):
        meta = {"name": name, "labels": {pools.REVISION_LABEL: revision}}
        if deleting:
            meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        return {"metadata": meta, "status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True" if ready else "False"}]}}
    check = pools.revision_check("web-3", 2)
    assert not check({"web-0": vmi("web-0", "web-3"), "web-1": vmi("web-1", "web-2")})
    assert not check({"web-0": vmi("web-0", "web-3"), "web-1": vmi("web-1", "web-3", ready=False)})
    assert not check({"web-0": vmi("web-0", "web-3"), "web-1": vmi("web-1", "web-3", deleting=True)})
    assert check({"web-0": vmi("web-0", "web-3"), "web-1": vmi("web-1", "web-3")})


def test_revision_name_as_getRevisionName():
    assert pools.revision_name(BEFORE) == "web-2"
