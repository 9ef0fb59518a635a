"""Volume hot-plug, the way KubeVirt does it.

virt-api's `addvolume`/`removevolume` on a VM only add a request to `status.volumeRequests`
(vmVolumePatchStatus). The VM controller (vm.go handleVolumeRequests) applies each request to
`spec.template.spec` and, through the VMI's own addvolume/removevolume, to the running VMI; the
requests are trimmed once the template shows them (trimDoneVolumeRequests).

For a VMI with hotpluggable PVC/DataVolume volumes, virt-controller runs an attachment pod
`hp-volume-xxxxx` (owned by the virt-launcher pod, on its node, label `kubevirt.io=hotplug-disk`)
that holds the claims; `status.volumeStatus[]` goes Bound -> AttachedToNode (pod created) ->
MountedToPod (virt-handler mounted it into the launcher) -> Ready (attached to the domain, with a
`target`). Removal: Ready -> UnMountedFromPod (virt-handler) -> Detaching (the attachment pod is
replaced or deleted) -> gone. Each step of an entry is phases.hotplug_volume's (or
hotplug_volume_leaving's) to decide; this module reads the caches, makes the pods and writes.
"""
import time

from . import phases
from .kube import POD, ApiError
from .launcher import LAUNCHER_IMAGE
from .util import deep, dig

LABEL = "hotplug-disk"


def is_hotplug(vol):
    return bool(dig(vol, "persistentVolumeClaim", "hotpluggable") or dig(vol, "dataVolume", "hotpluggable"))


def claim_of(vol):
    return dig(vol, "persistentVolumeClaim", "claimName") or dig(vol, "dataVolume", "name")


# ------------------------------------------------------------------------------ requests
def apply_volume_request(spec, request):
    """controller.ApplyVolumeRequestOnVMISpec: a copy of a (template or VMI) spec with the request applied."""
    spec = deep(spec or {})
    add, remove = request.get("addVolumeOptions"), request.get("removeVolumeOptions")
    if add:
        name = add.get("name")
        volumes = spec.setdefault("volumes", [])
        devices = spec.setdefault("domain", {}).setdefault("devices", {})
        if not any(v.get("name") == name for v in volumes):
            src = add.get("volumeSource") or {}
            vol = {"name": name}
            if src.get("persistentVolumeClaim") is not None:
                vol["persistentVolumeClaim"] = {**src["persistentVolumeClaim"], "hotpluggable": True}
            elif src.get("dataVolume") is not None:
                vol["dataVolume"] = {**src["dataVolume"], "hotpluggable": True}
            volumes.append(vol)
            if add.get("disk") is not None:
                disk = deep(add["disk"])
                disk["name"] = name
                devices.setdefault("disks", []).append(disk)
    elif remove:
        name = remove.get("name")
        if spec.get("volumes") is not None:
            spec["volumes"] = [v for v in spec["volumes"] if v.get("name") != name]
        devices = dig(spec, "domain", "devices", default={})
        if devices.get("disks") is not None:
            devices["disks"] = [d for d in devices["disks"] if d.get("name") != name]
    return spec


def request_name(request):
    return (request.get("addVolumeOptions") or request.get("removeVolumeOptions") or {}).get("name")


def verify_volume_option(volumes, request):
    """virt-api's verifyVolumeOption: None, or the error text (virt-api answers 409 with it)."""
    add, remove = request.get("addVolumeOptions"), request.get("removeVolumeOptions")
    for vol in volumes or []:
        if add:
            src = add.get("volumeSource") or {}
            src_name = dig(src, "dataVolume", "name") or dig(src, "persistentVolumeClaim", "claimName") or ""
            if vol.get("name") == add.get("name"):
                return f"Unable to add volume [{add.get('name')}] because volume with that name already exists"
            if src_name and claim_of(vol) == src_name:
                return f"Unable to add volume source [{src_name}] because it already exists"
        elif remove and (vol.get("name") == remove.get("name") or claim_of(vol) == remove.get("name")):
            if not is_hotplug(vol):
                return f"Unable to remove volume [{vol['name']}] because it is not hotpluggable"
            return None
    if remove:
        return f"Unable to remove volume [{remove.get('name')}] because it does not exist"
    return None


def add_to_requests(current, request):
    """generateVMVolumeRequestPatch's list checks: (new list, None) or (None, error text)."""
    add, remove = request.get("addVolumeOptions"), request.get("removeVolumeOptions")
    if add:
        name = add.get("name")
        for r in current:
            if dig(r, "addVolumeOptions", "name") == name:
                return None, f"add volume request for volume [{name}] already exists"
            if dig(r, "removeVolumeOptions", "name") == name:
                return None, (f"unable to add volume since a remove volume request for volume [{name}] already "
                              "exists and is still being processed")
        return list(current) + [request], None
    name = remove.get("name")
    out = []
    for r in current:
        if dig(r, "addVolumeOptions", "name") == name:
            continue
        if dig(r, "removeVolumeOptions", "name") == name:
            return None, f"a remove volume request for volume [{name}] already exists and is still being processed"
        out.append(r)
    return out + [request], None


def trim_done_requests(requests, template_spec):
    """trimDoneVolumeRequests: drop requests the template already shows."""
    volumes = {v.get("name") for v in (template_spec or {}).get("volumes") or []}
    disks = {d.get("name") for d in dig(template_spec, "domain", "devices", "disks", default=[]) or []}
    out = []
    for r in requests or []:
        name = request_name(r)
        if r.get("addVolumeOptions") and name in volumes and name in disks:
            continue
        if r.get("removeVolumeOptions") and name not in volumes and name not in disks:
            continue
        out.append(r)
    return out


def vmi_volume_patch(vmi, request):
    """generateVMIVolumeRequestPatch: JSON patch for the VMI's volumes and disks."""
    spec = vmi.get("spec") or {}
    new = apply_volume_request(spec, request)
    ops = []
    for path, old, value in (("/spec/volumes", spec.get("volumes"), new.get("volumes") or []),
                             ("/spec/domain/devices/disks", dig(spec, "domain", "devices", "disks"),
                              dig(new, "domain", "devices", "disks", default=[]))):
        if old:
            ops += [{"op": "test", "path": path, "value": old}, {"op": "replace", "path": path, "value": value}]
        else:
            ops.append({"op": "add", "path": path, "value": value})
    return ops


# ------------------------------------------------------------------------------ attachment pods
def attachment_pods(sim, launcher):
    """Attachment pods of a launcher pod (controller owner reference), deleting ones included."""
    if launcher is None:
        return []
    uid, ns = launcher["metadata"]["uid"], launcher["metadata"]["namespace"]
    out = []
    for pod in sim.cache.pods.items(ns):
        if (pod["metadata"].get("labels") or {}).get("kubevirt.io") != LABEL:
            continue
        if any(r.get("uid") == uid and r.get("controller") for r in pod["metadata"].get("ownerReferences") or []):
            out.append(pod)
    return sorted(out, key=lambda p: p["metadata"].get("creationTimestamp") or "")


def pod_volume_names(pod):
    return {v["name"] for v in dig(pod, "spec", "volumes", default=[]) if v.get("persistentVolumeClaim")}


def container_ready(pod):
    statuses = dig(pod, "status", "containerStatuses", default=[]) or []
    return len(statuses) == 1 and bool(statuses[0].get("ready")) and not pod["metadata"].get("deletionTimestamp")


def render_attachment_pod(vmi, launcher, volumes, claims):
    """RenderHotplugAttachmentPodTemplate."""
    node = dig(launcher, "spec", "nodeName")
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": "hp-volume-", "namespace": vmi["metadata"]["namespace"],
                     "labels": {"kubevirt.io": LABEL},
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": launcher["metadata"]["name"],
                                          "uid": launcher["metadata"]["uid"], "controller": True,
                                          "blockOwnerDeletion": True}]},
        "spec": {
            "containers": [{
                "name": LABEL, "image": LAUNCHER_IMAGE,
                "command": ["/bin/sh", "-c", "/usr/bin/container-disk --copy-path /path/hp"],
                "resources": {"limits": {"cpu": "100m", "memory": "80M"},
                              "requests": {"cpu": "10m", "memory": "2M"}},
                "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True, "runAsUser": 107,
                                    "capabilities": {"drop": ["ALL"]},
                                    "seccompProfile": {"type": "RuntimeDefault"}},
                "volumeMounts": [{"name": "hotplug-disks", "mountPath": "/path",
                                  "mountPropagation": "HostToContainer"}],
            }],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}},
            "tolerations": deep(dig(launcher, "spec", "tolerations", default=[]) or []),
            "volumes": [{"name": "hotplug-disks", "emptyDir": {}}],
            "terminationGracePeriodSeconds": 0,
            "restartPolicy": "Always",
            "nodeName": node,
        },
    }
    if not pod["spec"]["tolerations"]:
        pod["spec"].pop("tolerations")
    for vol in volumes:
        pod["spec"]["volumes"].append({"name": vol["name"], "persistentVolumeClaim": {"claimName": claim_of(vol)}})
        pvc = claims.get(vol["name"])
        if pvc is not None and dig(pvc, "spec", "volumeMode") == "Block":
            pod["spec"]["containers"][0].setdefault("volumeDevices", []).append(
                {"name": vol["name"], "devicePath": f"/path/{vol['name']}/{pvc['metadata']['uid']}"})
        else:
            pod["spec"]["containers"][0]["volumeMounts"].append({"name": vol["name"], "mountPath": f"/{vol['name']}"})
    return pod


# ------------------------------------------------------------------------------ the VMI side
class Hotplug:
    """Attachment pods and the hotplug entries of a running VMI's volumeStatus (virt-controller's
    part and virt-handler's mount/attach part). One phase step per volume per reconcile, at least
    `step()` seconds apart, so each phase is visible for a moment as on a real cluster."""

    def __init__(self, sim):
        self.sim = sim
        self.marks = {}      # (vmi uid, volume, phase) -> monotonic time the phase was written
        self.expected = {}   # launcher uid -> (volume names, monotonic) of a pod create not yet in the cache
        self.fresh = {}      # VMI uid -> name of the attachment pod created in the reconcile under way

    def step(self):
        return max(0.15, 0.1 * self.sim.boot_delay)

    def _since(self, vmi, name, phase):
        t = self.marks.get((vmi["metadata"]["uid"], name, phase))
        return 3600.0 if t is None else time.monotonic() - t

    def _mark(self, vmi, name, phase):
        self.marks[(vmi["metadata"]["uid"], name, phase)] = time.monotonic()
        if len(self.marks) > 20000:
            self.marks.clear()

    @staticmethod
    def involved(vmi):
        """Whether the VMI has hotplug volumes, in its spec or still in its status."""
        return any(is_hotplug(v) for v in dig(vmi, "spec", "volumes", default=[])) or \
            any("hotplugVolume" in s for s in dig(vmi, "status", "volumeStatus", default=[]))

    def ready_volumes(self, vmi):
        """Hotplug volumes whose claim is bound (and DataVolume populated): what the attachment pod holds."""
        ns = vmi["metadata"]["namespace"]
        out = []
        for vol in dig(vmi, "spec", "volumes", default=[]):
            if not is_hotplug(vol):
                continue
            pvc = self.sim.cache.pvcs.get_ns(ns, claim_of(vol))
            if pvc is None or dig(pvc, "status", "phase") != "Bound":
                continue
            if vol.get("dataVolume"):
                dv = self.sim.cache.dvs.get_ns(ns, claim_of(vol))
                if dv is not None and dig(dv, "status", "phase") != "Succeeded":
                    continue
            out.append(vol)
        return out

    async def sync_pods(self, vmi, launcher):
        """Create the attachment pod for the ready hotplug volumes; retire the ones it replaces.
        Returns a requeue delay or None."""
        if launcher is None or not dig(launcher, "spec", "nodeName") or \
                (not self.involved(vmi) and launcher["metadata"]["uid"] not in self.expected):
            return None
        sim = self.sim
        ns = vmi["metadata"]["namespace"]
        ready = self.ready_volumes(vmi)
        names = {v["name"] for v in ready}
        pods = attachment_pods(sim, launcher)
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        active = next((p for p in reversed(live) if pod_volume_names(p) == names), None) if names else None
        luid = launcher["metadata"]["uid"]
        requeue = None
        if names and active is None:
            exp = self.expected.get(luid)
            if exp and exp[0] == names and time.monotonic() - exp[1] < 5:
                return 0.5
            claims = {v["name"]: sim.cache.pvcs.get_ns(ns, claim_of(v)) for v in ready}
            body = render_attachment_pod(vmi, launcher, ready, claims)
            self.expected[luid] = (names, time.monotonic())
            created = await sim.kube.create(POD, body, ns)
            self.fresh[vmi["metadata"]["uid"]] = created["metadata"]["name"]   # the status sees it next time
            sim.recorder.normal(vmi, "SuccessfulCreate", f"Created attachment pod {created['metadata']['name']}")
            sim.recorder.normal(created, "Scheduled", f"Successfully assigned {ns}/{created['metadata']['name']} to "
                                f"{created['spec']['nodeName']}", component="default-scheduler")
            return 0.5   # the pods it replaces go once it is ready
        if active is not None:
            self.expected.pop(luid, None)
        statuses = {s.get("name"): s for s in dig(vmi, "status", "volumeStatus", default=[])}
        for old in live:
            if old is active:
                continue
            if active is not None and not container_ready(active):
                requeue = 0.3
                continue
            # volumes leaving with this pod must be unmounted first
            leaving = [n for n in pod_volume_names(old) - names
                       if (statuses.get(n) or {}).get("phase") not in (None, "Detaching")]
            if leaving:
                requeue = self.step()
                continue
            try:
                res = await sim.kube.delete(POD, old["metadata"]["name"], ns)
                if res and dig(res, "metadata", "deletionTimestamp"):
                    sim.cache.pods.observe(res)
            except ApiError as exc:
                if exc.status != 409:
                    raise
        return requeue

    async def delete_all(self, launchers):
        """A final or deleted VMI: its attachment pods go (the garbage collector would follow too)."""
        for launcher in launchers:
            for pod in attachment_pods(self.sim, launcher):
                if not pod["metadata"].get("deletionTimestamp"):
                    await self.sim.kube.delete(POD, pod["metadata"]["name"], pod["metadata"]["namespace"])
            self.expected.pop(launcher["metadata"]["uid"], None)

    def _take(self, vmi, name, requeue, result):
        """Carry out one phases.VolumeStep: start the phase's clock, record the event, note the requeue."""
        if result.entered:
            self._mark(vmi, name, result.entry["phase"])
        if result.event:
            self.sim.recorder.normal(vmi, *result.event)
        if result.requeue is not None:
            requeue.append(result.requeue)
        return result.entry

    def volume_statuses(self, vmi, launcher, targets, pvc_info):
        """(hotplug entries of volumeStatus by name, requeue delay or None). Emits the events.
        Each entry's next phase is phases.hotplug_volume's (or hotplug_volume_leaving's) to decide."""
        if not self.involved(vmi):
            self.fresh.pop(vmi["metadata"]["uid"], None)
            return {}, None
        ns = vmi["metadata"]["namespace"]
        step = self.step()
        requeue = []
        old = {s.get("name"): s for s in dig(vmi, "status", "volumeStatus", default=[])}
        pods = attachment_pods(self.sim, launcher)
        ready_names = {v["name"] for v in self.ready_volumes(vmi)}
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        active = next((p for p in reversed(live) if pod_volume_names(p) == ready_names), None) if ready_names else None
        if active is not None and active["metadata"]["name"] == self.fresh.pop(vmi["metadata"]["uid"], None):
            active = None   # created in this reconcile: virt-controller's pod cache does not have it yet
        out = {}
        spec_names = set()
        for vol in dig(vmi, "spec", "volumes", default=[]):
            name = vol["name"]
            spec_names.add(name)
            if not is_hotplug(vol):
                continue
            entry = old.get(name)
            att = active if name in ready_names else None
            pvc = self.sim.cache.pvcs.get_ns(ns, claim_of(vol))
            s = self._take(vmi, name, requeue, phases.hotplug_volume(
                entry, name, pod=attach_pod(att), claim=claim_of(vol),
                pvc_phase=None if pvc is None else dig(pvc, "status", "phase", default=""),
                dwell=self._since(vmi, name, (entry or {}).get("phase") or ""), step=step))
            s.setdefault("target", "")   # virt-handler fills it in from the domain
            if s.get("phase") == "Ready" and targets.get(name):
                s["target"] = targets[name]
            if name in pvc_info:
                s["persistentVolumeClaimInfo"] = pvc_info[name]
            out[name] = s

        # volumes gone from the spec: kept while an attachment pod still holds them
        for name, s in old.items():
            if name in spec_names or "hotplugVolume" not in s:
                continue
            att = next((p for p in pods if name in pod_volume_names(p)), None)
            if att is None:
                continue
            out[name] = self._take(vmi, name, requeue, phases.hotplug_volume_leaving(
                s, name, attach_pod(att), dwell=self._since(vmi, name, s.get("phase") or ""), step=step))
        return out, (min(requeue) if requeue else None)


def attach_pod(pod):
    """An attachment pod as phases.hotplug_volume sees it."""
    if pod is None:
        return None
    meta = pod["metadata"]
    return phases.AttachPod(meta["name"], meta["uid"], ready=container_ready(pod),
                            deleting=bool(meta.get("deletionTimestamp")))
