"""The simulator's informer caches (lab/simulator/runtime.py), without an apiserver."""
from simulator import kube as k
from simulator.runtime import Caches


def test_one_typed_cache_per_kind_in_start_order():
    cache = Caches(kube=None)
    assert [(i.res.plural) for i in cache.all()] == [
        "virtualmachines", "virtualmachineinstances", "pods", "persistentvolumeclaims", "persistentvolumes",
        "datavolumes", "network-attachment-definitions", "nodes", "storageclasses",
        "virtualmachineinstancemigrations"]
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
