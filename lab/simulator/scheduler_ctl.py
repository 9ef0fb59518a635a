"""The scheduler: places launcher pods on the simulated nodes (kube-scheduler's job).

The VMI controller asks `place()` before it creates a pod (so most pods are created with
spec.nodeName set); pods that did not fit are created unscheduled with PodScheduled=False and
retried here, then bound through the pods/binding subresource.
"""
from .kube import PVC, POD, ApiError, key_of
from .runtime import Controller
from .scheduler import pod_requests, schedule, term_matches
from .util import dig, ts

SELECTED_NODE = "volume.kubernetes.io/selected-node"
RETRY = 5.0


class Scheduler(Controller):
    name = "scheduler"
    workers = 1

    def __init__(self, sim):
        super().__init__(sim)
        self.reserved = {}   # pod identity (uid or generateName key) -> (node, cpu, mem)

    def usage(self):
        use = {}
        for pod in self.sim.cache.pods.store.values():
            node = dig(pod, "spec", "nodeName")
            if not node or dig(pod, "status", "phase") in ("Succeeded", "Failed"):
                continue
            cpu, mem = pod_requests(pod)
            c, m, n = use.get(node, (0.0, 0.0, 0))
            use[node] = (c + cpu, m + mem, n + 1)
            self.reserved.pop(pod["metadata"]["uid"], None)
            self.reserved.pop(pod["metadata"].get("annotations", {}).get("lab.virtops.io/reservation"), None)
        for node, cpu, mem in self.reserved.values():
            c, m, n = use.get(node, (0.0, 0.0, 0))
            use[node] = (c + cpu, m + mem, n + 1)
        return use

    def unbound_immediate_claims(self, pod):
        ns = pod["metadata"]["namespace"]
        out = []
        for vol in dig(pod, "spec", "volumes", default=[]):
            claim = dig(vol, "persistentVolumeClaim", "claimName")
            if not claim:
                continue
            pvc = self.sim.cache.pvcs.get_ns(ns, claim)
            if pvc is None:
                out.append((claim, None))
                continue
            if dig(pvc, "status", "phase") == "Bound" or dig(pvc, "spec", "volumeName"):
                continue
            if not self.late_binding(pvc):
                out.append((claim, pvc))
        return out

    def late_binding(self, pvc):
        sc_name = dig(pvc, "spec", "storageClassName")
        sc = self.sim.cache.storageclasses.get(sc_name) if sc_name else None
        return bool(sc and sc.get("volumeBindingMode") == "WaitForFirstConsumer")

    def place(self, pod, reservation):
        """(node, None) or (None, message); reserves capacity for a pod about to be created."""
        missing = self.unbound_immediate_claims(pod)
        total = len(self.sim.node_names)
        if missing:
            claim, pvc = missing[0]
            if pvc is None:
                return None, f'0/{total} nodes are available: persistentvolumeclaim "{claim}" not found. ' \
                             f"preemption: 0/{total} nodes are available: {total} Preemption is not helpful for scheduling."
            return None, f"0/{total} nodes are available: pod has unbound immediate PersistentVolumeClaims. " \
                         f"preemption: 0/{total} nodes are available: {total} Preemption is not helpful for scheduling."
        nodes = [self.sim.cache.nodes.get(n) for n in self.sim.node_names]
        nodes = [n for n in nodes if n is not None]
        node, msg = schedule(pod, nodes, self.usage(), self.volume_nodes(pod, nodes))
        if node:
            cpu, mem = pod_requests(pod)
            self.reserved[reservation] = (node, cpu, mem)
        return node, msg

    def volume_nodes(self, pod, nodes):
        """The names of the nodes the pod's claims allow, or None (any): a bound claim's PersistentVolume node
        affinity, and a WaitForFirstConsumer claim not bound yet whose provisioner was told a node already
        (selected-node, by an earlier pod of this VMI): kube-scheduler's VolumeBinding filter."""
        allowed = None
        ns = pod["metadata"]["namespace"]
        for vol in dig(pod, "spec", "volumes", default=[]):
            claim = dig(vol, "persistentVolumeClaim", "claimName")
            pvc = self.sim.cache.pvcs.get_ns(ns, claim) if claim else None
            if pvc is None:
                continue
            here = None
            pv = self.sim.cache.pvs.get(dig(pvc, "spec", "volumeName")) if dig(pvc, "spec", "volumeName") else None
            terms = dig(pv, "spec", "nodeAffinity", "required", "nodeSelectorTerms", default=None) if pv else None
            if terms:
                here = {n["metadata"]["name"] for n in nodes if any(term_matches(n, t) for t in terms)}
            elif pv is None and self.late_binding(pvc) and (pvc["metadata"].get("annotations") or {}).get(SELECTED_NODE):
                here = {pvc["metadata"]["annotations"][SELECTED_NODE]}
            if here is not None:
                allowed = here if allowed is None else allowed & here
        return allowed

    async def select_volumes_node(self, pod, node):
        """For WaitForFirstConsumer claims: tell the provisioner where the consumer runs."""
        ns = pod["metadata"]["namespace"]
        for vol in dig(pod, "spec", "volumes", default=[]):
            claim = dig(vol, "persistentVolumeClaim", "claimName")
            if not claim:
                continue
            pvc = self.sim.cache.pvcs.get_ns(ns, claim)
            if pvc is None or dig(pvc, "status", "phase") == "Bound" or not self.late_binding(pvc):
                continue
            if (pvc["metadata"].get("annotations") or {}).get(SELECTED_NODE):
                continue
            updated = await self.sim.kube.patch(PVC, claim, {"metadata": {"annotations": {SELECTED_NODE: node}}}, ns)
            self.sim.cache.pvcs.observe(updated)

    def retry_pending(self):
        for pod in self.sim.cache.pods.store.values():
            if not dig(pod, "spec", "nodeName") and \
                    (pod["metadata"].get("labels") or {}).get("kubevirt.io") == "virt-launcher":
                self.enqueue(key_of(pod))

    async def sync(self, key):
        pod = self.sim.cache.pods.get(key)
        if pod is None or dig(pod, "spec", "nodeName") or pod["metadata"].get("deletionTimestamp"):
            return
        meta = pod["metadata"]
        node, msg = self.place(pod, meta["uid"])
        if node:
            await self.select_volumes_node(pod, node)
            await self.sim.kube.create(POD, {"apiVersion": "v1", "kind": "Binding",
                                             "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
                                             "target": {"apiVersion": "v1", "kind": "Node", "name": node}},
                                       meta["namespace"], sub="binding", name=meta["name"])
            self.sim.recorder.normal(pod, "Scheduled", f"Successfully assigned {meta['namespace']}/{meta['name']} to {node}",
                                     component="default-scheduler")
            return
        await self.mark_unschedulable(pod, msg)
        self.enqueue(key, after=RETRY)

    async def mark_unschedulable(self, pod, msg):
        meta = pod["metadata"]
        cur = next((c for c in dig(pod, "status", "conditions", default=[]) if c.get("type") == "PodScheduled"), None)
        if cur and cur.get("status") == "False" and cur.get("message") == msg:
            return
        status = {"phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": msg,
            "lastProbeTime": None, "lastTransitionTime": ts()}]}
        try:
            updated = await self.sim.kube.patch(POD, meta["name"], {"status": status}, meta["namespace"], sub="status")
            self.sim.cache.pods.observe(updated)
        except ApiError as exc:
            if exc.status != 404:
                raise
        self.sim.recorder.warning(pod, "FailedScheduling", msg, component="default-scheduler")

