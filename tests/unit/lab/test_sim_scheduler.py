"""The lab's kube-scheduler (lab/simulator/scheduler.py, scheduler_ctl.py): volume topology."""
from types import SimpleNamespace

from simulator.scheduler import schedule
from simulator.scheduler_ctl import SELECTED_NODE, Scheduler


def node(name):
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {}, "status": {"allocatable": {"cpu": "8", "memory": "16Gi", "pods": "110"},
                                   "conditions": [{"type": "Ready", "status": "True"}]}}


NODES = [node("lab-worker-0"), node("lab-worker-1"), node("lab-worker-2")]


def pod(*claims):
    return {"metadata": {"name": "virt-launcher-x", "namespace": "demo", "uid": "u1"},
            "spec": {"containers": [{"name": "compute", "resources": {"requests": {"cpu": "100m"}}}],
                     "volumes": [{"name": c, "persistentVolumeClaim": {"claimName": c}} for c in claims]}}


class Store:
    def __init__(self, items):
        self.items = items

    def get(self, key):
        return self.items.get(key)

    def get_ns(self, ns, name):
        return self.items.get((ns, name))


def scheduler(pvcs, pvs, late=True):
    sc = {"volumeBindingMode": "WaitForFirstConsumer" if late else "Immediate"}
    cache = SimpleNamespace(pvcs=Store(pvcs), pvs=Store(pvs), storageclasses=Store({"local": sc}),
                            nodes=Store({n["metadata"]["name"]: n for n in NODES}), pods=Store({}))
    cache.pods.store = {}
    sim = SimpleNamespace(cache=cache, node_names=[n["metadata"]["name"] for n in NODES])
    s = Scheduler.__new__(Scheduler)
    s.sim, s.reserved = sim, {}
    return s


def claim(name, volume=None, selected=None):
    return {"metadata": {"name": name, "namespace": "demo",
                         "annotations": {SELECTED_NODE: selected} if selected else {}},
            "spec": {"storageClassName": "local", **({"volumeName": volume} if volume else {})},
            "status": {"phase": "Bound" if volume else "Pending"}}


def local_pv(name, on):
    return {"metadata": {"name": name}, "spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [on]}]}]}}}}


def test_a_bound_local_volume_keeps_the_pod_on_its_node():
    # The least allocated node would be another one; the PersistentVolume's node affinity decides.
    s = scheduler({("demo", "data"): claim("data", "pv-1")}, {"pv-1": local_pv("pv-1", "lab-worker-2")})
    assert s.place(pod("data"), "r1") == ("lab-worker-2", None)


def test_a_claim_whose_provisioner_was_told_a_node_keeps_the_next_pod_there():
    # WaitForFirstConsumer: an earlier launcher pod of the VMI had the node selected; its successor goes there.
    s = scheduler({("demo", "data"): claim("data", selected="lab-worker-1")}, {})
    assert s.place(pod("data"), "r1") == ("lab-worker-1", None)


def test_volumes_on_two_nodes_leave_no_node_and_say_why():
    s = scheduler({("demo", "a"): claim("a", "pv-a"), ("demo", "b"): claim("b", "pv-b")},
                  {"pv-a": local_pv("pv-a", "lab-worker-0"), "pv-b": local_pv("pv-b", "lab-worker-1")})
    node, msg = s.place(pod("a", "b"), "r1")
    assert node is None
    assert msg.startswith("0/3 nodes are available: 3 node(s) had volume node affinity conflict. preemption: ")


def test_without_volume_topology_any_node_fits():
    assert schedule(pod(), NODES, {}, None)[0] == "lab-worker-0"
    assert schedule(pod(), NODES, {"lab-worker-0": (4.0, 0.0, 50)}, None)[0] == "lab-worker-1"
