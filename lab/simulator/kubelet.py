"""The kubelet of the simulated nodes: pod status (pull, start, Ready), image pull failures,
Multus network-status, and confirming pod deletion."""
import json

from .kube import POD, ApiError, key_of
from .launcher import EPHEMERAL_ANNOTATION
from .network import multus_addresses, node_ip, pod_ip
from .runtime import Controller
from .util import dig, since, ts

FAIL_IMAGE = "does-not-exist"
BACKOFF_STEPS = (1.0, 2.0, 4.0, 8.0, 10.0)


def pull_error(image):
    ref = image if ":" in image.rsplit("/", 1)[-1] or "@" in image else image + ":latest"
    return (f'failed to pull and unpack image "{ref}": failed to resolve reference "{ref}": '
            f'{ref}: not found')


def not_ready_conditions(pod):
    """A scheduled pod's conditions while its containers are not ready."""
    names = " ".join(c["name"] for c in pod["spec"]["containers"])
    return [
        {"type": "Initialized", "status": "True", "lastTransitionTime": ts()},
        {"type": "Ready", "status": "False", "reason": "ContainersNotReady",
         "message": f"containers with unready status: [{names}]", "lastTransitionTime": ts()},
        {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady", "lastTransitionTime": ts()},
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": ts()}]


class Kubelet(Controller):
    name = "kubelet"
    workers = 4

    def _seen(self, pod):
        return since(self.marks, pod["metadata"]["uid"], pod["metadata"].get("creationTimestamp"))

    async def sync(self, key):
        pod = self.sim.cache.pods.get(key)
        if pod is None:
            return
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            await self._finish_deletion(pod)
            return
        if dig(pod, "spec", "nodeName") not in self.sim.node_names:
            return
        phase = dig(pod, "status", "phase")
        if phase in ("Succeeded", "Failed"):
            return
        if phase == "Running" and dig(pod, "status", "podIP"):
            return
        await self._start(pod)

    async def _finish_deletion(self, pod):
        meta = pod["metadata"]
        self.marks.pop(meta["uid"], None)
        if dig(pod, "spec", "nodeName") and dig(pod, "status", "phase") not in ("Succeeded", "Failed"):
            # the containers stop: a launcher's compute container exits 0 after the guest shut down
            try:
                await self.sim.kube.patch(POD, meta["name"], {"status": {"phase": "Succeeded"}},
                                          meta["namespace"], sub="status")
            except ApiError as exc:
                if exc.status not in (404, 409, 422):
                    raise
        await self.sim.kube.delete(POD, meta["name"], meta["namespace"], grace=0,
                                   preconditions={"uid": meta["uid"]})

    async def _start(self, pod):
        meta, spec = pod["metadata"], pod["spec"]
        ns = meta["namespace"]
        elapsed = self._seen(pod)
        start_delay = max(0.05, 0.3 * self.sim.boot_delay)
        # volumes: a pod starts only when its claims are bound
        for vol in spec.get("volumes") or []:
            claim = dig(vol, "persistentVolumeClaim", "claimName")
            if claim:
                pvc = self.sim.cache.pvcs.get_ns(ns, claim)
                if pvc is None or dig(pvc, "status", "phase") != "Bound":
                    await self._pending(pod, "ContainerCreating", "")
                    return
        bad = [c for c in spec["containers"] if FAIL_IMAGE in (c.get("image") or "")]
        if bad:
            await self._image_pull_failure(pod, bad, elapsed)
            return
        if elapsed < start_delay:
            if dig(pod, "status", "phase") != "Pending" or not dig(pod, "status", "containerStatuses"):
                await self._pending(pod, "ContainerCreating", "")
            self.enqueue(key_of(pod), after=start_delay - elapsed)
            return
        await self._running(pod)

    def _base_status(self, pod, phase):
        node = pod["spec"]["nodeName"]
        idx = self.sim.node_index(node)
        created = pod["metadata"].get("creationTimestamp") or ts()
        return {"phase": phase, "hostIP": node_ip(idx), "hostIPs": [{"ip": node_ip(idx)}],
                "startTime": dig(pod, "status", "startTime") or created, "_node": node}

    async def _pending(self, pod, reason, message):
        status = self._base_status(pod, "Pending")
        status.pop("_node")
        status["conditions"] = [{"type": "PodReadyToStartContainers", "status": "False", "lastTransitionTime": ts()}] \
            + not_ready_conditions(pod)
        status["containerStatuses"] = [self._waiting(c, reason, message) for c in pod["spec"]["containers"]]
        await self._write(pod, status)

    @staticmethod
    def _waiting(container, reason, message):
        st = {"name": container["name"], "image": container.get("image", ""), "imageID": "",
              "ready": False, "restartCount": 0, "started": False,
              "state": {"waiting": {"reason": reason}}}
        if message:
            st["state"]["waiting"]["message"] = message
        return st

    async def _image_pull_failure(self, pod, bad, elapsed):
        """ErrImagePull, then ImagePullBackOff, then ErrImagePull again ... like the kubelet."""
        key = key_of(pod)
        cur = {c["name"]: dig(c, "state", "waiting", "reason") for c in dig(pod, "status", "containerStatuses", default=[])}
        first = bad[0]
        phase_now = cur.get(first["name"])
        if phase_now == "ErrImagePull":
            reason, msg = "ImagePullBackOff", f'Back-off pulling image "{first["image"]}"'
        else:
            reason, msg = "ErrImagePull", pull_error(first["image"])
        status = self._base_status(pod, "Pending")
        status.pop("_node")
        statuses = []
        for c in pod["spec"]["containers"]:
            if FAIL_IMAGE in (c.get("image") or ""):
                m = msg if reason == "ImagePullBackOff" else pull_error(c["image"])
                m = f'Back-off pulling image "{c["image"]}"' if reason == "ImagePullBackOff" else m
                statuses.append(self._waiting(c, reason, m))
            else:
                statuses.append(self._waiting(c, "PodInitializing", ""))
        status["containerStatuses"] = statuses
        status["conditions"] = not_ready_conditions(pod)
        await self._write(pod, status)
        rec = self.sim.recorder
        if reason == "ErrImagePull":
            rec.normal(pod, "Pulling", f'Pulling image "{first["image"]}"', component="kubelet")
            rec.warning(pod, "Failed", f'Failed to pull image "{first["image"]}": {pull_error(first["image"])}',
                        component="kubelet")
            rec.warning(pod, "Failed", "Error: ErrImagePull", component="kubelet")
            self.enqueue(key, after=max(2.0, self.sim.boot_delay))
        else:
            rec.normal(pod, "BackOff", f'Back-off pulling image "{first["image"]}"', component="kubelet")
            rec.warning(pod, "Failed", "Error: ImagePullBackOff", component="kubelet")
            self.enqueue(key, after=BACKOFF_STEPS[min(int(elapsed / 10), len(BACKOFF_STEPS) - 1)] + 2)

    async def _running(self, pod):
        meta, spec = pod["metadata"], pod["spec"]
        status = self._base_status(pod, "Running")
        node = status.pop("_node")
        idx = self.sim.node_index(node)
        used = {dig(p, "status", "podIP") for p in self.sim.cache.pods.store.values()
                if dig(p, "spec", "nodeName") == node and p["metadata"]["uid"] != meta["uid"]}
        ip = dig(pod, "status", "podIP") or pod_ip(idx, meta["uid"], used)
        now = ts()
        status.update({"podIP": ip, "podIPs": [{"ip": ip}],
                       "conditions": [
                           {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": now},
                           {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                           {"type": "Ready", "status": "True", "lastTransitionTime": now},
                           {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
                           {"type": "PodScheduled", "status": "True", "lastTransitionTime": now}],
                       "containerStatuses": [{
                           "name": c["name"], "image": c.get("image", ""), "ready": True, "started": True,
                           "restartCount": 0, "imageID": c.get("image", "") + "@sha256:" + "0" * 64,
                           "containerID": "cri-o://" + (meta["uid"].replace("-", "") + c["name"])[:64],
                           "state": {"running": {"startedAt": now}}} for c in spec["containers"]]})
        ann_patch = {}
        if (meta.get("labels") or {}).get("kubevirt.io") == "virt-launcher" and \
                not (meta.get("annotations") or {}).get(EPHEMERAL_ANNOTATION):
            ann_patch = self._multus_status(pod, ip)
        if ann_patch:
            updated = await self.sim.kube.patch(POD, meta["name"], {"metadata": {"annotations": ann_patch}},
                                                meta["namespace"])
            self.sim.cache.pods.observe(updated)
        await self._write(pod, status)
        self.sim.recorder.normal(pod, "Started", f"Started container {spec['containers'][0]['name']}",
                                 component="kubelet")

    def _multus_status(self, pod, ip):
        """Multus: IPAM for the secondary networks, written as the network-status annotation."""
        from .launcher import network_status
        meta = pod["metadata"]
        ann = meta.get("annotations") or {}
        if "k8s.v1.cni.cncf.io/network-status" in ann:
            return {}
        requested = json.loads(ann.get("k8s.v1.cni.cncf.io/networks") or "[]")
        ips = {}
        for entry in requested:
            nkey = f"{entry['namespace']}/{entry['name']}"
            nad = self.sim.cache.nads.get(nkey)
            if nad is None:
                continue
            used = set()
            for other in self.sim.cache.pods.store.values():
                status = (other["metadata"].get("annotations") or {}).get("k8s.v1.cni.cncf.io/network-status")
                if not status or other["metadata"]["uid"] == meta["uid"]:
                    continue
                for net in json.loads(status):
                    if net.get("name") == nkey:
                        used.update(net.get("ips") or [])
            ips[nkey] = multus_addresses(nad, meta["uid"] + nkey, used)
        return {"k8s.v1.cni.cncf.io/network-status": json.dumps(network_status(pod, ip, ips), indent=1)}

    async def _write(self, pod, status):
        meta = pod["metadata"]
        try:
            updated = await self.sim.kube.patch(POD, meta["name"], {"status": status}, meta["namespace"],
                                                sub="status")
        except ApiError as exc:
            if exc.status == 404:
                return
            raise
        self.sim.cache.pods.observe(updated)


def qos_class(pod):
    reqs, lims, any_set = [], [], False
    for c in dig(pod, "spec", "containers", default=[]):
        r = dig(c, "resources", "requests", default={}) or {}
        lm = dig(c, "resources", "limits", default={}) or {}
        if r or lm:
            any_set = True
        reqs.append(r)
        lims.append(lm)
    if not any_set:
        return "BestEffort"
    if all(lm.get("cpu") and lm.get("memory") and (r.get("cpu", lm["cpu"]) == lm["cpu"]) and
           (r.get("memory", lm["memory"]) == lm["memory"]) for r, lm in zip(reqs, lims)):
        return "Guaranteed"
    return "Burstable"
