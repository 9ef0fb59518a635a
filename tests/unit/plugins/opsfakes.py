"""FakeClient plus what vm_power, vm_volume and vm_nic need: virt-api subresources, update_with_retry.

The subresources follow virt-api's rules closely enough for the modules' logic: start/stop switch the
run strategy (or record a request), restart gives the VMI a new uid, pause/unpause set the Paused
condition, migrate creates a Succeeded migration that moves the VMI to node02, addvolume and
removevolume edit the VM and VMI specs and the VMI's volumeStatus. ``sub_fail`` makes a verb answer
with an ApiError, as virt-api's 409s do.
"""
import copy

from kvfakes import FakeClient, running_vmi

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import ApiError


def conflict(kind, name, message):
    return ApiError(409, "PUT", "/apis/subresources.kubevirt.io/x", {
        "kind": "Status", "reason": "Conflict", "code": 409,
        "message": 'Operation cannot be fulfilled on %s.kubevirt.io "%s": %s' % (kind, name, message)})


def vm_obj(name="web1", ns="demo", strategy="Always", interfaces=None, networks=None, disks=None, volumes=None):
    tspec = {"domain": {"memory": {"guest": "1Gi"}, "devices": {
        "disks": disks if disks is not None else [{"name": "root", "disk": {"bus": "virtio"}}]}},
        "volumes": volumes if volumes is not None else [{"name": "root", "containerDisk": {"image": "quay.io/x:1"}}]}
    if interfaces is not None:
        tspec["domain"]["devices"]["interfaces"] = interfaces
    if networks is not None:
        tspec["networks"] = networks
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "metadata": {"name": name, "namespace": ns, "generation": 1},
            "spec": {"runStrategy": strategy, "template": {"spec": tspec}}}


class OpsClient(FakeClient):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.sub_calls = []
        self.sub_verify = []  # the verify callable given with each subresource call
        self.sub_fail = {}
        self.migratable = True

    # -- setup helpers
    def add_vm(self, vm, vmi_phase=None, paused=False, node="node01", restart_required=False):
        vm = copy.deepcopy(vm)
        status = {"printableStatus": "Stopped", "ready": False}
        if vmi_phase:
            status = {"printableStatus": "Paused" if paused else "Running", "ready": vmi_phase == "Running",
                      "created": True}
        if restart_required:
            status["conditions"] = [{"type": "RestartRequired", "status": "True"}]
        vm["status"] = status
        stored = self.put(vm)
        if vmi_phase:
            self.add_vmi(stored, vmi_phase, paused, node)
        return stored

    def add_vmi(self, vm, phase="Running", paused=False, node="node01"):
        meta = vm["metadata"]
        vmi = running_vmi(meta["name"], meta["namespace"], uid="vmi-%d" % self.rv, node=node, phase=phase)
        vmi["spec"] = copy.deepcopy(vm["spec"]["template"]["spec"])
        conds = vmi["status"]["conditions"]
        conds.append({"type": "LiveMigratable", "status": "True" if self.migratable else "False",
                      "reason": None if self.migratable else "DisksNotLiveMigratable",
                      "message": None if self.migratable else "cannot migrate VMI: PVC data is not shared"})
        if paused:
            conds.append({"type": "Paused", "status": "True", "reason": "PausedByUser"})
        self._volume_status(vmi)
        return self.put(vmi)

    def _volume_status(self, vmi):
        out = []
        for vol in vmi["spec"].get("volumes") or []:
            entry = {"name": vol["name"], "target": "sda"}
            claim = (vol.get("persistentVolumeClaim") or {}).get("claimName") or (vol.get("dataVolume") or {}).get("name")
            if claim:
                entry["persistentVolumeClaimInfo"] = {"claimName": claim}
            if (vol.get("persistentVolumeClaim") or vol.get("dataVolume") or {}).get("hotpluggable"):
                entry.update(phase="Ready", reason="VolumeReady", hotplugVolume={})
            out.append(entry)
        vmi["status"]["volumeStatus"] = out

    def vmi(self, name="web1", ns="demo"):
        return self.store.get(("VirtualMachineInstance", ns, name))

    def vm(self, name="web1", ns="demo"):
        return self.store.get(("VirtualMachine", ns, name))

    # -- Client API additions
    def replace(self, resource, obj, dry_run=False, field_manager=None):
        self._call("PUT", resource, name=obj["metadata"]["name"], dry_run=dry_run)
        if dry_run:
            return copy.deepcopy(obj)
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        current = self.store.get(self._key(resource, meta.get("namespace"), meta["name"]))
        if current is not None and current["metadata"].get("resourceVersion") != meta.get("resourceVersion"):
            raise ApiError(409, "PUT", "/x", {"reason": "Conflict", "message": "the object has been modified"})
        if resource.kind == "VirtualMachine" and (current or {}).get("spec") != obj.get("spec"):
            meta["generation"] = meta.get("generation", 1) + 1
            status = obj.setdefault("status", {})
            status["desiredGeneration"] = meta["generation"]
            vmi = self.store.get(self._key(res.VMI, meta["namespace"], meta["name"]))
            if vmi is not None and (current["spec"].get("template") != obj["spec"].get("template")):
                live = _without_hotplug(vmi["spec"]) == _without_hotplug(obj["spec"]["template"]["spec"])
                if not live:
                    status["conditions"] = [{"type": "RestartRequired", "status": "True",
                                             "message": "a non-live-updatable field was changed"}]
        return self.put(obj)

    def update_with_retry(self, resource, name, namespace, mutate, attempts=5, dry_run=False):
        current = self.get(resource, name, namespace)
        if mutate(current) is False:
            return current, False
        return self.replace(resource, current, dry_run=dry_run), True

    def subresource(self, method, path, body=None, query=None, verify=None):
        parts = path.strip("/").split("/")
        self.sub_verify.append(verify)
        ns, plural, name, verb = parts[4], parts[5], parts[6], parts[7]
        self.requests += 1
        self.sub_calls.append((plural, name, verb, copy.deepcopy(body)))
        err = self.sub_fail.get(verb)
        if err is not None:
            raise err
        if (body or {}).get("dryRun"):
            return {}
        getattr(self, "_sub_" + verb)(ns, name, body or {})
        return {}

    # -- virt-api behaviour
    def _sub_start(self, ns, name, body):
        vm = self.vm(name, ns)
        if vm["spec"]["runStrategy"] == "Halted":
            vm["spec"]["runStrategy"] = "Always"
        self.add_vmi(vm, "Running", paused=bool(body.get("paused")))
        vm["status"] = {"printableStatus": "Running", "ready": True, "created": True}

    def _sub_stop(self, ns, name, body):
        vm = self.vm(name, ns)
        if vm["spec"]["runStrategy"] in ("Always", "Once"):
            vm["spec"]["runStrategy"] = "Halted"
        self.store.pop(("VirtualMachineInstance", ns, name), None)
        vm["status"] = {"printableStatus": "Stopped", "ready": False}

    def _sub_restart(self, ns, name, body):
        self.add_vmi(self.vm(name, ns), "Running")

    def _sub_pause(self, ns, name, body):
        self.vmi(name, ns)["status"]["conditions"].append({"type": "Paused", "status": "True"})

    def _sub_unpause(self, ns, name, body):
        vmi = self.vmi(name, ns)
        vmi["status"]["conditions"] = [c for c in vmi["status"]["conditions"] if c["type"] != "Paused"]

    def _sub_softreboot(self, ns, name, body):
        pass

    def _sub_migrate(self, ns, name, body):
        vmi = self.vmi(name, ns)
        source = vmi["status"]["nodeName"]
        vmi["status"]["nodeName"] = "node02"
        state = {"sourceNode": source, "targetNode": "node02", "completed": True, "migrationUid": "mig-uid"}
        vmi["status"]["migrationState"] = state
        self.put({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
                  "metadata": {"name": "kubevirt-migrate-vm-abcde", "namespace": ns,
                               "creationTimestamp": "2025-01-01T00:00:01Z"},
                  "spec": dict({"vmiName": name}, **({"addedNodeSelector": body["addedNodeSelector"]}
                                                     if body.get("addedNodeSelector") else {})),
                  "status": {"phase": "Succeeded", "migrationState": state}})

    def _sub_addvolume(self, ns, name, body):
        vm = self.vm(name, ns)
        volume = dict(body["volumeSource"], name=body["name"])
        for target in (vm["spec"]["template"]["spec"], (self.vmi(name, ns) or {}).get("spec")):
            if target is None:
                continue
            target.setdefault("volumes", []).append(copy.deepcopy(volume))
            target["domain"]["devices"].setdefault("disks", []).append(copy.deepcopy(body["disk"]))
        vmi = self.vmi(name, ns)
        if vmi is not None:
            self._volume_status(vmi)

    def _sub_removevolume(self, ns, name, body):
        vm = self.vm(name, ns)
        for target in (vm["spec"]["template"]["spec"], (self.vmi(name, ns) or {}).get("spec")):
            if target is None:
                continue
            target["volumes"] = [v for v in target.get("volumes") or [] if v["name"] != body["name"]]
            target["domain"]["devices"]["disks"] = [d for d in target["domain"]["devices"].get("disks") or []
                                                    if d["name"] != body["name"]]
        vmi = self.vmi(name, ns)
        if vmi is not None:
            self._volume_status(vmi)


def _without_hotplug(spec):
    spec = copy.deepcopy(spec)
    vols = [v for v in spec.get("volumes") or []
            if not (v.get("persistentVolumeClaim") or v.get("dataVolume") or {}).get("hotpluggable")]
    names = {v["name"] for v in vols}
    spec["volumes"] = vols
    devices = spec.get("domain", {}).get("devices", {})
    if "disks" in devices:
        devices["disks"] = [d for d in devices["disks"] if d["name"] in names]
    return spec


def warnings_text(result):
    """The module's warnings as one string (ansible-core may return them as structured summaries)."""
    import json
    return " ".join(w if isinstance(w, str) else json.dumps(w) for w in result.get("warnings") or [])
