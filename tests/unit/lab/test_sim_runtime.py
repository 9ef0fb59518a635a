"""The simulator's informer caches (lab/simulator/runtime.py) and clocks, without an apiserver."""
import asyncio
import datetime as dt

import pytest

from simulator import kube as k
from simulator.kube import ApiError
from simulator.runtime import Caches
from simulator.util import now, since, ts


def test_one_typed_cache_per_kind_in_start_order():
    cache = Caches(kube=None)
    assert [(i.res.plural) for i in cache.all()] == [
        "virtualmachines", "virtualmachineinstances", "pods", "persistentvolumeclaims", "persistentvolumes",
        "datavolumes", "network-attachment-definitions", "nodes", "storageclasses",
        "virtualmachineinstancemigrations", "virtualmachineinstancereplicasets", "virtualmachinepools",
        "migrationpolicies", "virtualmachinesnapshots", "virtualmachinesnapshotcontents", "virtualmachinerestores",
        "volumesnapshots", "volumesnapshotclasses", "volumesnapshotcontents"]
    assert (cache.vms.res, cache.vmis.res, cache.vmims.res, cache.dvs.res, cache.pvcs.res) == (
        k.VM, k.VMI, k.VMIM, k.DV, k.PVC)


def test_lookups_by_namespace_and_name():
    cache = Caches(kube=None)
    vm = {"metadata": {"namespace": "ns", "name": "a", "resourceVersion": "5"}}
    node = {"metadata": {"name": "lab-worker-0", "resourceVersion": "1"}}
    cache.vms.observe(vm)
    cache.nodes.observe(node)
    assert cache.vms.get_ns("ns", "a") is vm and cache.vms.get("ns/a") is vm
    assert cache.vms.items("ns") == [vm] and cache.vms.items("other") == []
    assert cache.nodes.get_ns(None, "lab-worker-0") is node
    cache.vms.observe({"metadata": {"namespace": "ns", "name": "a", "resourceVersion": "4"}})
    assert cache.vms.get("ns/a") is vm   # an older write does not replace what the cache has


class FakeKube:
    """kube.Kube's replace: returns the object with a newer resourceVersion, or raises `error`."""

    def __init__(self, error=None):
        self.error, self.calls = error, []

    async def replace(self, res, obj, sub=None):
        self.calls.append((res.plural, obj["metadata"]["name"], sub))
        if self.error:
            raise self.error
        return {**obj, "metadata": {**obj["metadata"], "resourceVersion": "9"}}


def test_replace_keeps_what_the_server_returned():
    cache = Caches(kube=FakeKube())
    obj = {"metadata": {"namespace": "ns", "name": "dv", "resourceVersion": "3"}, "status": {"phase": "Pending"}}
    updated = asyncio.run(cache.dvs.replace(obj, sub="status"))
    assert updated["metadata"]["resourceVersion"] == "9"
    assert cache.dvs.get("ns/dv") is updated
    assert cache.dvs.kube.calls == [("datavolumes", "dv", "status")]


def test_replace_of_something_gone_is_none_and_other_errors_raise():
    obj = {"metadata": {"namespace": "ns", "name": "vmi", "resourceVersion": "3"}}
    assert asyncio.run(Caches(kube=FakeKube(ApiError(404, "gone"))).vmis.replace(obj)) is None
    with pytest.raises(ApiError):
        asyncio.run(Caches(kube=FakeKube(ApiError(409, "conflict"))).vmis.replace(obj))


def test_since_starts_the_clock_at_the_objects_own_time_once():
    marks = {}
    ten_seconds_ago = ts(now() - dt.timedelta(seconds=10))
    assert 9.0 <= since(marks, "uid", ten_seconds_ago) < 12.0
    assert 9.0 <= since(marks, "uid") < 12.0            # the same clock afterwards
    assert since(marks, "new") < 1.0                     # nothing to go by: from now
    assert since(marks, "old", ts(now() - dt.timedelta(days=2))) <= 3601   # at most an hour back
