"""Simulated worker nodes: Node objects kept Ready by status and Lease heartbeats."""
import asyncio
import logging

from .kube import LEASE, NODE, ApiError
from .network import node_ip, node_subnet
from .util import micro_ts, ts

log = logging.getLogger("simulator.nodes")

CAPACITY = {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "200Gi",
            "hugepages-1Gi": "0", "hugepages-2Mi": "0", "devices.kubevirt.io/kvm": "1k",
            "devices.kubevirt.io/tun": "1k", "devices.kubevirt.io/vhost-net": "1k"}
LEASE_SECONDS = 40
RENEW = 10
STATUS_EVERY = 60
KUBELET_VERSION = "v1.36.3"


def node_object(name, index):
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64",
            "node-role.kubernetes.io/worker": "", "kubevirt.io/schedulable": "true",
            "cpu-vendor.node.kubevirt.io/Intel": "true", "cpu-model.node.kubevirt.io/Skylake-Server": "true",
            "kubevirt.io/ksm-enabled": "false", "topology.kubernetes.io/zone": "lab"},
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kubevirt.io/heartbeat": ts(),
                            "lab.virtops.io/simulated": "true"}},
        "spec": {"podCIDR": str(node_subnet(index)), "podCIDRs": [str(node_subnet(index))]},
    }


def node_status(name, index):
    now = ts()
    cond = lambda t, s, r, m: {"type": t, "status": s, "reason": r, "message": m,  # noqa: E731
                               "lastHeartbeatTime": now, "lastTransitionTime": now}
    return {
        "capacity": dict(CAPACITY), "allocatable": dict(CAPACITY),
        "conditions": [
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ],
        "addresses": [{"type": "InternalIP", "address": node_ip(index)}, {"type": "Hostname", "address": name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {"machineID": f"{index:032x}", "systemUUID": f"00000000-0000-0000-0000-{index:012x}",
                     "bootID": f"lab-{index}", "kernelVersion": "5.14.0-427.el9.x86_64",
                     "osImage": "Simulated Linux (virtops lab)", "containerRuntimeVersion": "cri-o://1.33.0",
                     "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": KUBELET_VERSION,
                     "operatingSystem": "linux", "architecture": "amd64"},
    }


class NodeAgent:
    def __init__(self, sim):
        self.sim = sim
        self.kube = sim.kube
        self._kick = asyncio.Event()

    def kick(self):
        self._kick.set()

    async def ensure(self):
        for i, name in enumerate(self.sim.node_names):
            cached = self.sim.cache.nodes.get(name)
            if cached is None:
                cached = await self.kube.create_or_get(NODE, node_object(name, i))
            await self.post_status(name, i, cached)
            # The apiserver's TaintNodesByCondition admission taints new nodes not-ready; the
            # node-lifecycle controller (not run in the lab) would lift it once the node is Ready.
            taints = (cached.get("spec") or {}).get("taints") or []
            kept = [t for t in taints if t.get("key") not in ("node.kubernetes.io/not-ready",
                                                             "node.kubernetes.io/unreachable")]
            if kept != taints:
                updated = await self.kube.patch(NODE, name, [
                    {"op": "test", "path": "/spec/taints", "value": taints},
                    {"op": "replace", "path": "/spec/taints", "value": kept}], kind="json")
                self.sim.cache.nodes.observe(updated)

    async def post_status(self, name, index, node=None):
        status = node_status(name, index)
        if node:  # keep transition times
            old = {c["type"]: c for c in (node.get("status") or {}).get("conditions") or []}
            for c in status["conditions"]:
                if c["type"] in old and old[c["type"]].get("status") == c["status"]:
                    c["lastTransitionTime"] = old[c["type"]].get("lastTransitionTime", c["lastTransitionTime"])
        updated = await self.kube.patch(NODE, name, {"status": status}, sub="status")
        self.sim.cache.nodes.observe(updated)

    async def renew_leases(self):
        for name in self.sim.node_names:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": name, "namespace": "kube-node-lease"},
                    "spec": {"holderIdentity": name, "leaseDurationSeconds": LEASE_SECONDS,
                             "renewTime": micro_ts()}}
            try:
                await self.kube.apply(LEASE, body)
            except ApiError as exc:
                log.debug("lease %s: %s", name, exc)

    async def run(self):
        await self.ensure()
        await self.renew_leases()
        beats = 0
        while True:
            try:
                await asyncio.wait_for(self._kick.wait(), timeout=RENEW)
                self._kick.clear()
                await self.ensure()
            except asyncio.TimeoutError:
                pass
            except ApiError as exc:
                log.warning("nodes: %s", exc)
            beats += 1
            try:
                await self.renew_leases()
                if beats * RENEW >= STATUS_EVERY:
                    beats = 0
                    await self.ensure()
            except (ApiError, OSError) as exc:
                log.warning("node heartbeat: %r", exc)
