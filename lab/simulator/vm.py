"""VirtualMachine controller (virt-controller's vm.go): run strategies, state change requests,
DataVolumes from templates, the VMI, and the VM status (printableStatus, conditions, ...)."""
from . import hotplug, instancetype, liveresize, netlive
from .kube import CR, DV, VM, VMI, ApiError, key_of
from .runtime import Controller
from .util import (deep, dig, get_condition, has_condition, owner_ref, set_condition, set_latest_api_version,
                   stable_uuid, ts)
from .vmi import FINAL, VM_FINALIZER

LIVE_UPDATABLE = ("nodeSelector", "affinity", "tolerations")
MAX_BACKOFF = 300
RETRY_MISSING_REF = 5.0   # seconds until a VM whose instancetype or preference is missing is synced again


def run_strategy(vm):
    spec = vm.get("spec") or {}
    if spec.get("running") is not None and spec.get("runStrategy") is not None:
        return None
    if spec.get("running") is not None:
        return "Always" if spec["running"] else "Halted"
    return spec.get("runStrategy") or "Halted"


def requests(vm):
    return dig(vm, "status", "stateChangeRequests", default=[]) or []


def has_start_request(vm):
    r = requests(vm)
    return bool(r) and r[0].get("action") == "Start"


def has_start_paused(vm):
    r = requests(vm)
    return bool(r) and r[0].get("action") == "Start" and (r[0].get("data") or {}).get("paused") == "true"


def has_stop_request_for(vm, vmi):
    r = requests(vm)
    return bool(r) and vmi is not None and r[0].get("action") == "Stop" and r[0].get("uid") == vmi["metadata"]["uid"]


def is_final(vmi):
    return dig(vmi, "status", "phase") in FINAL


def is_set_to_start(vm, vmi):
    rs = run_strategy(vm)
    if rs == "Always":
        return True
    if rs == "Manual":
        return not has_stop_request_for(vm, vmi) if vmi is not None else has_start_request(vm)
    if rs == "RerunOnFailure":
        return dig(vmi, "status", "phase") != "Succeeded" if vmi is not None else True
    if rs == "Once":
        return vmi is None
    return False


def was_running(vmi):
    return any(s.get("phase") == "Running" for s in dig(vmi, "status", "phaseTransitionTimestamps", default=[]))


def template_spec_for_compare(spec):
    spec = deep(spec or {})
    for k in LIVE_UPDATABLE:
        spec.pop(k, None)
    vols = [v for v in spec.get("volumes") or [] if not (dig(v, "persistentVolumeClaim", "hotpluggable") or
                                                         dig(v, "dataVolume", "hotpluggable"))]
    names = {v["name"] for v in vols}
    spec["volumes"] = vols
    disks = dig(spec, "domain", "devices", "disks", default=None)
    if disks is not None:
        spec["domain"]["devices"]["disks"] = [d for d in disks if d["name"] in names or d.get("cdrom") is not None]
    return spec


class VMController(Controller):
    name = "vm"
    workers = 8

    def __init__(self, sim):
        super().__init__(sim)
        self.expect_delete = {}     # vm key -> vmi uid we deleted (until the cache shows it)
        self.revisions = {}         # ControllerRevision name -> VM spec
        self.it_revisions = {}      # instancetype/preference ControllerRevision name -> spec

    # ------------------------------------------------------------------------------ sync
    async def sync(self, key):
        vm = self.sim.cache.vms.get(key)
        if vm is None:
            self.expect_delete.pop(key, None)
            return
        vmi = self.sim.cache.vmis.get(key)
        if vmi is not None:
            ref = next((r for r in vmi["metadata"].get("ownerReferences") or [] if r.get("controller")), None)
            if ref is not None and ref.get("uid") != vm["metadata"]["uid"]:
                vmi = None  # someone else's
        if vmi is not None and self.expect_delete.get(key) == vmi["metadata"]["uid"] and \
                not vmi["metadata"].get("deletionTimestamp"):
            return   # our delete has not reached the cache yet
        if vmi is None or vmi["metadata"].get("deletionTimestamp"):
            self.expect_delete.pop(key, None)
        new = deep(vm)
        sync_err = None
        if vm["metadata"].get("deletionTimestamp"):
            if vmi is None:
                await self._remove_vm_finalizer(vm)
                return
            await self.stop_vmi(new, vmi)
        else:
            meta = deep(vm["metadata"])
            if set_latest_api_version(meta) or VM_FINALIZER not in (meta.get("finalizers") or []):
                # the first sync's metadata writes (execute()'s api version annotations, addVMFinalizer) in one
                patched = await self.sim.kube.patch(VM, vm["metadata"]["name"], {"metadata": {
                    "annotations": meta["annotations"],
                    "finalizers": [f for f in meta.get("finalizers") or [] if f != VM_FINALIZER] + [VM_FINALIZER]}},
                    vm["metadata"]["namespace"])
                self.sim.cache.vms.observe(patched)
                vm = patched
                new = deep(vm)
            rs = run_strategy(vm)
            sync_err = await self.sync_instancetype(new)
            try:
                if sync_err is None:
                    ready = await self.handle_datavolumes(new)
                    if ready or rs == "Halted":
                        vmi = await self.sync_run_strategy(new, vmi, rs)
            except ApiError as exc:
                sync_err = ("FailedCreate", f"Failure while starting VMI: {exc.body.get('message', exc)}")
            except StartError as exc:
                sync_err = exc.args
            self.restart_required(new, vmi)
            if sync_err is None:
                vm, sync_err = await self.sync_live_updates(vm, new, vmi)
        await self.update_status(vm, new, vmi, sync_err)

    # ------------------------------------------------------------------------------ live updates
    async def sync_live_updates(self, vm, new, vmi):
        """The network synchronizer and handleVolumeRequests of vm.go's sync(): interface hot-plug and
        hot-unplug on the VMI, volume requests applied to the template and the running VMI; the VM
        spec is updated once at the end. Returns (vm, sync error or None)."""
        tspec = deep(dig(vm, "spec", "template", "spec", default={}) or {})
        live = vmi is not None and not vmi["metadata"].get("deletionTimestamp")
        if live:
            err = await self._sync_interfaces(tspec, vmi)
            if err:
                return vm, err
        if live and not has_condition(new, "RestartRequired"):
            err = await self._hotplug_cpu_memory(tspec, new, vmi)
            if err:
                return vm, err
        for req in dig(new, "status", "volumeRequests", default=[]) or []:
            tspec = hotplug.apply_volume_request(tspec, req)
            if not live:
                continue
            name = hotplug.request_name(req)
            present = any(v.get("name") == name for v in dig(vmi, "spec", "volumes", default=[]))
            if (req.get("addVolumeOptions") and present) or (req.get("removeVolumeOptions") and not present):
                continue
            vmi, err = await self._vmi_volume_request(vmi, req)
            if err:
                return vm, ("HotPlugVolumeError", f"Error encountered while handling volume hotplug requests: {err}")
        if tspec == (dig(vm, "spec", "template", "spec", default={}) or {}):
            return vm, None
        body = deep(vm)
        body["spec"].setdefault("template", {})["spec"] = tspec
        try:
            updated = await self.sim.kube.replace(VM, body)
        except ApiError as exc:
            if exc.status == 409:
                raise
            return vm, ("FailedUpdateError", "Error encountered when trying to update vm according to add volume "
                        f"and/or memory dump requests: {exc.body.get('message', exc)}")
        self.sim.cache.vms.observe(updated)
        new["metadata"] = deep(updated["metadata"])
        new["spec"] = deep(updated["spec"])
        return updated, None

    async def _sync_interfaces(self, tspec, vmi):
        """pkg/network/controllers VMController.Sync: mutates tspec, patches the VMI's interfaces."""
        status_names = {i.get("name") for i in dig(vmi, "status", "interfaces", default=[]) or []}
        devices = dig(tspec, "domain", "devices", default={}) or {}
        t_ifaces, t_nets = netlive.clear_detached(devices.get("interfaces") or [], tspec.get("networks") or [],
                                                  status_names)
        if not netlive.same_list(t_ifaces, devices.get("interfaces")):
            tspec["domain"]["devices"]["interfaces"] = t_ifaces
        if not netlive.same_list(t_nets, tspec.get("networks")):
            tspec["networks"] = t_nets
        cur_ifaces = dig(vmi, "spec", "domain", "devices", "interfaces", default=[]) or []
        cur_nets = dig(vmi, "spec", "networks", default=[]) or []
        v_ifaces, v_nets = netlive.clear_detached(cur_ifaces, cur_nets, status_names)
        ifaces, nets = netlive.apply_dynamic(t_ifaces, t_nets, v_ifaces, v_nets)
        if ifaces == cur_ifaces:
            return None
        ops = [{"op": "test", "path": "/spec/networks", "value": dig(vmi, "spec", "networks")},
               {"op": "add", "path": "/spec/networks", "value": nets},
               {"op": "test", "path": "/spec/domain/devices/interfaces",
                "value": dig(vmi, "spec", "domain", "devices", "interfaces")},
               {"op": "add", "path": "/spec/domain/devices/interfaces", "value": ifaces}]
        try:
            patched = await self.sim.kube.patch(VMI, vmi["metadata"]["name"], ops, vmi["metadata"]["namespace"],
                                                kind="json")
        except ApiError as exc:
            return ("HotPlugNetworkInterfaceError",
                    f"error encountered when trying to patch vmi: {exc.body.get('message', exc)}")
        self.sim.cache.vmis.observe(patched)
        return None

    async def _hotplug_cpu_memory(self, tspec, new, vmi):
        """handleCPUChangeRequest and handleMemoryHotplugRequest (liveresize.py): patch the VMI spec, or set
        RestartRequired on the VM (new) with KubeVirt's message. Returns a sync error or None."""
        spec = deep(tspec)
        it_spec, pref_spec = (None, None)
        if dig(new, "spec", "instancetype"):
            try:
                it_spec, pref_spec = await self.instancetype_specs(new)
            except instancetype.FindError:
                return None
            instancetype.apply_to_vmi("spec", it_spec, pref_spec, spec, {})
        migrating = _is_migrating(vmi)
        migratable = has_condition(vmi, "LiveMigratable", "True")
        for name, decide, reason, fmt in (
                ("cpu", lambda: liveresize.cpu_change(spec, vmi, migrating), "HotPlugCPUError",
                 "Error encountered while handling CPU change request: {}"),
                ("memory", lambda: liveresize.memory_change(spec, vmi, migrating, migratable), "HotPlugMemoryError",
                 "error encountered while handling memory hotplug requests: {}")):
            outcome = decide()
            if outcome is None:
                continue
            what, detail = outcome
            if what == "restart":
                set_condition(new.setdefault("status", {}).setdefault("conditions", []), "RestartRequired", "True",
                              message=detail)
                continue
            if what == "error":
                return reason, fmt.format(detail)
            try:
                vmi = await self.sim.kube.patch(VMI, vmi["metadata"]["name"], detail, vmi["metadata"]["namespace"],
                                                kind="json")
            except ApiError as exc:
                return reason, fmt.format(exc.body.get("message", exc))
            self.sim.cache.vmis.observe(vmi)
        return None

    async def _vmi_volume_request(self, vmi, req):
        """What the VMI's addvolume/removevolume subresource does for the VM controller: (vmi, error text)."""
        name = vmi["metadata"]["name"]
        if dig(vmi, "status", "phase") != "Running":
            return vmi, (f'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "{name}": '
                         "VMI is not running")
        err = hotplug.verify_volume_option(dig(vmi, "spec", "volumes", default=[]), req)
        if err:
            return vmi, f'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "{name}": {err}'
        try:
            patched = await self.sim.kube.patch(VMI, name, hotplug.vmi_volume_patch(vmi, req),
                                                vmi["metadata"]["namespace"], kind="json")
        except ApiError as exc:
            return vmi, f"unable to patch vmi: {exc.body.get('message', exc)}"
        self.sim.cache.vmis.observe(patched)
        return patched, None

    # ------------------------------------------------------------------------------ DataVolumes
    async def handle_datavolumes(self, vm):
        ready = True
        ns = vm["metadata"]["namespace"]
        for tpl in dig(vm, "spec", "dataVolumeTemplates", default=[]):
            name = tpl["metadata"]["name"]
            dv = self.sim.cache.dvs.get_ns(ns, name)
            if dv is None:
                ready = False
                body = {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
                        "metadata": {"name": name, "namespace": ns,
                                     "labels": {**(tpl["metadata"].get("labels") or {}),
                                                "kubevirt.io/created-by": vm["metadata"]["uid"]},
                                     "annotations": dict(tpl["metadata"].get("annotations") or {}),
                                     "ownerReferences": [owner_ref(vm)]},
                        "spec": deep(tpl.get("spec") or {})}
                if not body["metadata"]["annotations"]:
                    body["metadata"].pop("annotations")
                try:
                    created = await self.sim.kube.create(DV, body, ns)
                except ApiError as exc:
                    if exc.status == 409:
                        continue
                    self.sim.recorder.warning(vm, "FailedDataVolumeCreate", f"Error creating DataVolume {name}: "
                                              f"{exc.body.get('message', exc)}")
                    raise
                self.sim.cache.dvs.observe(created)
                self.sim.recorder.normal(vm, "SuccessfulDataVolumeCreate", f"Created DataVolume {name}")
                continue
            phase = dig(dv, "status", "phase")
            if phase in ("Succeeded", "WaitForFirstConsumer", "PendingPopulation"):
                continue
            if phase == "Failed":
                self.sim.recorder.warning(vm, "FailedDataVolumeImport", f"DataVolume {name} failed to import disk image")
            ready = False
        return ready

    # ------------------------------------------------------------------------------ run strategy
    async def sync_run_strategy(self, vm, vmi, rs):
        if rs == "Always":
            if vmi is not None:
                if has_stop_request_for(vm, vmi) or is_final(vmi):
                    await self.stop_vmi(vm, vmi)
                return vmi
            return await self.start_after_backoff(vm)
        if rs == "RerunOnFailure":
            if vmi is not None:
                phase = dig(vmi, "status", "phase")
                if not vmi["metadata"].get("deletionTimestamp") and (
                        has_stop_request_for(vm, vmi) or phase in FINAL):
                    await self.stop_vmi(vm, vmi)
                    if phase == "Failed":
                        await self.add_start_request(vm)
                return vmi
            if not has_start_request(vm) and dig(vm, "status", "runStrategy") == rs:
                return None
            return await self.start_after_backoff(vm)
        if rs == "Manual":
            if vmi is not None:
                if has_stop_request_for(vm, vmi):
                    await self.stop_vmi(vm, vmi)
                return vmi
            if has_start_request(vm):
                return await self.start_vmi(vm)
            return None
        if rs == "Halted":
            if vmi is None:
                if has_start_request(vm):
                    spec_patch = {"spec": {"runStrategy": "Always"}} if dig(vm, "spec", "runStrategy") else \
                        {"spec": {"running": True}}
                    patched = await self.sim.kube.patch(VM, vm["metadata"]["name"], spec_patch, vm["metadata"]["namespace"])
                    self.sim.cache.vms.observe(patched)
                    self.enqueue(key_of(vm))
                return None
            await self.stop_vmi(vm, vmi)
            return vmi
        if rs == "Once":
            if vmi is None:
                return await self.start_vmi(vm)
            return vmi
        return vmi

    def backoff_left(self, vm):
        sf = dig(vm, "status", "startFailure")
        if not sf or not sf.get("retryAfterTimestamp"):
            return 0
        from .util import age
        return max(0.0, -age(sf["retryAfterTimestamp"]))

    async def start_after_backoff(self, vm):
        """Start the VMI unless the start-failure back-off holds it (then look again when it ends)."""
        left = self.backoff_left(vm)
        if left > 0:
            self.enqueue(key_of(vm), after=left)
            return None
        return await self.start_vmi(vm)

    async def add_start_request(self, vm):
        reqs = requests(vm) + [{"action": "Start"}]
        patched = await self.sim.kube.patch(VM, vm["metadata"]["name"], [
            {"op": "add", "path": "/status/stateChangeRequests", "value": reqs}],
            vm["metadata"]["namespace"], sub="status", kind="json")
        vm["status"] = patched.get("status", {})
        vm["metadata"]["resourceVersion"] = patched["metadata"]["resourceVersion"]
        self.sim.cache.vms.observe(patched)

    async def start_vmi(self, vm):
        ns, name = vm["metadata"]["namespace"], vm["metadata"]["name"]
        self._cleanup_restart_required(vm)
        revision = await self.create_revision(vm)
        tpl = vm["spec"].get("template") or {}
        tmeta = tpl.get("metadata") or {}
        spec = deep(tpl.get("spec") or {})
        if has_start_paused(vm):
            spec["startStrategy"] = "Paused"
        spec.setdefault("domain", {}).setdefault("firmware", {}).setdefault("uuid", stable_uuid(name))
        meta = {"annotations": dict(tmeta.get("annotations") or {})}
        _add_volume_disks(spec)
        err = await self.expand_instancetype(vm, spec, meta)
        if err:
            raise StartError(*err)
        _default_disk_bus(spec)
        status = {"virtualMachineRevisionName": revision}
        liveresize.set_vmi_defaults(spec, status)
        annotations = meta["annotations"]
        annotations["kubevirt.io/vm-generation"] = str(vm["metadata"].get("generation", 1))
        set_latest_api_version(meta)
        vmi = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
               "metadata": {"name": name, "namespace": ns, "labels": dict(tmeta.get("labels") or {}),
                            "annotations": annotations, "ownerReferences": [owner_ref(vm)],
                            "finalizers": [VM_FINALIZER]},
               "spec": spec,
               "status": status}
        try:
            created = await self.sim.kube.create(VMI, vmi, ns)
        except ApiError as exc:
            if exc.status == 409:
                return self.sim.cache.vmis.get(key_of(vm))
            self.sim.recorder.warning(vm, "FailedCreate", f"Error creating virtual machine instance: "
                                      f"{exc.body.get('message', exc)}")
            raise
        if not dig(created, "status", "virtualMachineRevisionName"):
            created.setdefault("status", {})["virtualMachineRevisionName"] = revision
        self.sim.cache.vmis.observe(created)
        self.sim.vmi_ctl.enqueue(key_of(created))
        self.sim.recorder.normal(vm, "SuccessfulCreate",
                                 f"Started the virtual machine by creating the new virtual machine instance {name}")
        return created

    async def instancetype_specs(self, vm):
        """The instancetype and preference specs of a VM (find.SpecFinder), from its ControllerRevisions once
        stored; those never change, so they are kept in memory."""
        specs = []
        for field in ("instancetype", "preference"):
            rev = dig(vm, "status", f"{field}Ref", "controllerRevisionRef", "name")
            if rev and rev in self.it_revisions:
                specs.append(self.it_revisions[rev])
                continue
            spec = await instancetype.find_spec(self.sim.kube, vm, field)
            if rev and spec is not None:
                self.it_revisions[rev] = spec
            specs.append(spec)
        return specs

    async def sync_instancetype(self, vm):
        """pkg/instancetype/controller/vm Sync with the default Reference policy: the objects must exist
        (Failure FailedFindInstancetype / FailedFindPreference with client-go's error otherwise), and the VM
        gets a ControllerRevision of each plus status.instancetypeRef / preferenceRef naming it.
        Mutates vm["status"]; returns a sync error or None."""
        if not dig(vm, "spec", "instancetype") and not dig(vm, "spec", "preference"):
            return None
        for field, reason in (("instancetype", "FailedFindInstancetype"), ("preference", "FailedFindPreference")):
            try:
                await instancetype.find_spec(self.sim.kube, vm, field)
            except instancetype.FindError as exc:
                self.enqueue(key_of(vm), after=RETRY_MISSING_REF)  # KubeVirt re-syncs it with back-off
                return reason, str(exc)
        try:
            for field in ("instancetype", "preference"):
                matcher = dig(vm, "spec", field)
                if not matcher:
                    continue
                ref, needs_revision = instancetype.status_ref(matcher, dig(vm, "status", f"{field}Ref"))
                if needs_revision:
                    ref["controllerRevisionRef"] = {"name": await self._store_revision(vm, field, matcher)}
                vm.setdefault("status", {})[f"{field}Ref"] = ref
        except (instancetype.FindError, ApiError) as exc:
            msg = f"error encountered while storing instancetype.kubevirt.io controllerRevisions: {exc}"
            self.sim.recorder.warning(vm, "FailedCreate", msg)
            return "FailedCreate", msg
        return None

    async def _store_revision(self, vm, field, matcher):
        res = instancetype.resource_for(field, matcher)
        if res is None:
            raise instancetype.FindError(f"got unexpected kind in {field.capitalize()}Matcher: {matcher.get('kind')}")
        obj = await instancetype.get_object(self.sim.kube, res, matcher["name"], vm["metadata"]["namespace"])
        if field == "instancetype":
            # the window between admission and here: check the instance type once more (checkForInstancetypeConflicts)
            conflicts = instancetype.apply_to_vmi("spec.template.spec", obj.get("spec") or {}, None,
                                                  deep(dig(vm, "spec", "template", "spec", default={}) or {}),
                                                  deep(dig(vm, "spec", "template", "metadata", default={}) or {}))
            if conflicts:
                raise instancetype.FindError(instancetype.CONFLICT_FMT.format(", ".join(conflicts)))
        body = instancetype.revision_for(vm, obj)
        try:
            await self.sim.kube.create(CR, body, vm["metadata"]["namespace"])
        except ApiError as exc:
            if exc.status != 409:
                raise instancetype.FindError(f"failed to create ControllerRevision: {exc.body.get('message', exc)}") \
                    from None
        self.it_revisions[body["metadata"]["name"]] = obj.get("spec") or {}
        return body["metadata"]["name"]

    async def expand_instancetype(self, vm, spec, meta):
        """What start() in vm.go does around the instance type, in its order: auto-attach preferences, the default
        input device and NIC, then ApplyToVMI (annotations naming the objects, instancetype, preferences).
        Returns a sync error or None."""
        it_spec = pref_spec = None
        if dig(vm, "spec", "instancetype") or dig(vm, "spec", "preference"):
            try:
                it_spec, pref_spec = await self.instancetype_specs(vm)
            except instancetype.FindError as exc:
                self.sim.recorder.warning(vm, "FailedCreate", f"Error applying device preferences again: {exc}")
                return "FailedCreate", str(exc)
        instancetype.apply_autoattach_preferences(pref_spec, spec)
        _auto_attach_input(spec)
        _default_network(spec)
        if it_spec is None and pref_spec is None:
            return None
        annotations = meta.setdefault("annotations", {})
        for field in ("instancetype", "preference"):
            matcher = dig(vm, "spec", field)
            key = instancetype.annotation_for(field, matcher) if matcher else None
            if key:
                annotations[key] = matcher["name"]
        conflicts = instancetype.apply_to_vmi("spec", it_spec, pref_spec, spec, meta)
        if conflicts:
            err = f"VMI conflicts with instancetype spec in fields: [{', '.join(conflicts)}]"
            self.sim.recorder.warning(vm, "FailedCreate", "Error creating virtual machine instance: Failed to apply "
                                      f"instancetype: {err}")
            return "FailedCreate", err
        return None

    async def stop_vmi(self, vm, vmi):
        if vmi is None or vmi["metadata"].get("deletionTimestamp"):
            return
        ns, name = vm["metadata"]["namespace"], vm["metadata"]["name"]
        self.expect_delete[key_of(vm)] = vmi["metadata"]["uid"]
        try:
            res = await self.sim.kube.delete(VMI, name, ns, preconditions={"uid": vmi["metadata"]["uid"]})
        except ApiError as exc:
            self.expect_delete.pop(key_of(vm), None)
            if exc.status == 409:
                return
            self.sim.recorder.warning(vm, "FailedDelete", f"Error deleting virtual machine instance {name}: {exc}")
            raise
        if res and dig(res, "metadata", "deletionTimestamp"):
            self.sim.cache.vmis.observe(res)
        self._cleanup_restart_required(vm)
        self.sim.recorder.normal(vm, "SuccessfulDelete", "Stopped the virtual machine by deleting the virtual "
                                 f"machine instance {vmi['metadata']['uid']}")

    async def create_revision(self, vm):
        name = f"revision-start-vm-{vm['metadata']['uid']}-{vm['metadata'].get('generation', 1)}"
        body = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
                "metadata": {"name": name, "namespace": vm["metadata"]["namespace"], "ownerReferences": [owner_ref(vm)]},
                "data": {"spec": vm["spec"]}, "revision": vm["metadata"].get("generation", 1)}
        try:
            await self.sim.kube.create(CR, body, vm["metadata"]["namespace"])
        except ApiError as exc:
            if exc.status != 409:
                raise
        self.revisions[name] = deep(vm["spec"])
        return name

    async def revision_spec(self, vmi):
        name = dig(vmi, "status", "virtualMachineRevisionName")
        if not name:
            return None
        if name not in self.revisions:
            try:
                cr = await self.sim.kube.get(CR, name, vmi["metadata"]["namespace"])
            except ApiError:
                return None
            self.revisions[name] = dig(cr, "data", "spec")
            if len(self.revisions) > 5000:
                self.revisions.clear()
        return self.revisions.get(name)

    # ------------------------------------------------------------------------------ conditions
    def _cleanup_restart_required(self, vm):
        conds = dig(vm, "status", "conditions", default=None)
        if conds:
            vm["status"]["conditions"] = [c for c in conds if c["type"] != "RestartRequired"]

    def restart_required(self, vm, vmi):
        if vmi is None or vmi["metadata"].get("deletionTimestamp") or is_final(vmi):
            return
        name = dig(vmi, "status", "virtualMachineRevisionName")
        seen = self.revisions.get(name) if name else None
        if seen is None:
            if name:
                self._fetch_revision_later(vmi)
            return
        if has_condition(vm, "RestartRequired"):
            return
        seen_spec = template_spec_for_compare(dig(seen, "template", "spec"))
        cur_spec = template_spec_for_compare(dig(vm, "spec", "template", "spec"))
        if not netlive.is_restart_required(vm, vmi):
            # NIC hot-plug/unplug with the LiveUpdate rollout strategy: interfaces and networks are live
            for spec_ in (seen_spec, cur_spec):
                spec_.setdefault("domain", {}).setdefault("devices", {})
            seen_spec["domain"]["devices"]["interfaces"] = cur_spec["domain"]["devices"].get("interfaces")
            seen_spec["networks"] = cur_spec.get("networks")
            cur_spec["domain"]["devices"]["interfaces"] = seen_spec["domain"]["devices"]["interfaces"]
            cur_spec["networks"] = seen_spec["networks"]
        # LiveUpdate: CPU sockets and guest memory are live-updatable (handled by sync_live_updates)
        if dig(seen_spec, "domain", "cpu") is not None and dig(cur_spec, "domain", "cpu") is not None:
            seen_spec["domain"]["cpu"]["sockets"] = cur_spec["domain"]["cpu"].get("sockets")
            if seen_spec["domain"]["cpu"]["sockets"] is None:
                seen_spec["domain"]["cpu"].pop("sockets")
        if dig(cur_spec, "domain", "memory", "guest") is not None:
            seen_spec.setdefault("domain", {}).setdefault("memory", {})["guest"] = cur_spec["domain"]["memory"]["guest"]
        if seen_spec != cur_spec:
            conds = vm.setdefault("status", {}).setdefault("conditions", [])
            conds.append({"type": "RestartRequired", "status": "True", "lastProbeTime": None,
                          "lastTransitionTime": ts(),
                          "message": "a non-live-updatable field was changed in the template spec"})

    def _fetch_revision_later(self, vmi):
        import asyncio

        async def fetch():
            if await self.revision_spec(vmi) is not None:
                self.enqueue(key_of(vmi))
        asyncio.get_running_loop().create_task(fetch())

    # ------------------------------------------------------------------------------ status
    async def update_status(self, vm, new, vmi, sync_err):
        st = new.setdefault("status", {})
        st["created"] = vmi is not None
        st["ready"] = vmi is not None and has_condition(vmi, "Ready", "True")
        rs = run_strategy(vm)
        if st.get("runStrategy") or st["created"]:
            st["runStrategy"] = rs or "Unknown"
        if vmi is not None:
            gen = (vmi["metadata"].get("annotations") or {}).get("kubevirt.io/vm-generation")
            if gen:
                st["observedGeneration"] = int(gen)
                st["desiredGeneration"] = vm["metadata"].get("generation", 1)
        self._trim_requests(st, vmi)
        volume_requests = hotplug.trim_done_requests(st.get("volumeRequests"), dig(new, "spec", "template", "spec"))
        if volume_requests:
            st["volumeRequests"] = volume_requests
        else:
            st.pop("volumeRequests", None)
        self._start_failure(new, vmi)
        self._conditions(new, vmi, sync_err)
        st["printableStatus"] = self.printable_status(new, vmi)
        if not st.get("stateChangeRequests"):
            st.pop("stateChangeRequests", None)
        if st != (vm.get("status") or {}):
            body = deep(vm)
            body["status"] = st
            if await self.sim.cache.vms.replace(body, sub="status") is None:
                return
        if vmi is not None and is_final(vmi) and VM_FINALIZER in (vmi["metadata"].get("finalizers") or []):
            fins = [f for f in vmi["metadata"]["finalizers"] if f != VM_FINALIZER]
            try:
                patched = await self.sim.kube.patch(VMI, vmi["metadata"]["name"], [
                    {"op": "test", "path": "/metadata/finalizers", "value": vmi["metadata"]["finalizers"]},
                    {"op": "replace", "path": "/metadata/finalizers", "value": fins}],
                    vmi["metadata"]["namespace"], kind="json")
                self.sim.cache.vmis.observe(patched)
            except ApiError as exc:
                if exc.status not in (404, 422):
                    raise

    @staticmethod
    def _trim_requests(st, vmi):
        reqs = st.get("stateChangeRequests") or []
        if not reqs:
            return
        first = reqs[0]
        drop = False
        if first.get("action") == "Stop":
            drop = vmi is None or not first.get("uid") or first.get("uid") != vmi["metadata"]["uid"]
        elif first.get("action") == "Start":
            drop = vmi is not None and not vmi["metadata"].get("deletionTimestamp") and not is_final(vmi)
        if drop:
            st["stateChangeRequests"] = reqs[1:]

    @staticmethod
    def _start_failure(vm, vmi):
        st = vm["status"]
        rs = run_strategy(vm)
        if was_running(vmi) or rs not in ("Always", "RerunOnFailure", "Once"):
            st.pop("startFailure", None)
            return
        if vmi is not None and is_final(vmi) and not was_running(vmi):
            sf = st.get("startFailure") or {}
            if sf.get("lastFailedVMIUID") == vmi["metadata"]["uid"]:
                return
            count = int(sf.get("consecutiveFailCount") or 0) + 1
            delay = min(10 * count * count, MAX_BACKOFF)
            st["startFailure"] = {"lastFailedVMIUID": vmi["metadata"]["uid"], "consecutiveFailCount": count,
                                  "retryAfterTimestamp": ts(_after(delay))}

    @staticmethod
    def _conditions(vm, vmi, sync_err):
        st = vm["status"]
        conds = st.setdefault("conditions", [])
        ready = get_condition(vmi, "Ready") if vmi else None
        if vmi is None:
            set_condition(conds, "Ready", "False", "VMINotExists", "VMI does not exist", probe=True)
        elif ready is None:
            set_condition(conds, "Ready", "False", "VMIConditionMissing", "VMI is missing the Ready condition", probe=True)
        else:
            set_condition(conds, "Ready", ready["status"], ready.get("reason", ""), ready.get("message", ""), probe=True)
        if sync_err:
            set_condition(conds, "Failure", "True", sync_err[0], sync_err[1])
        else:
            conds[:] = [c for c in conds if c["type"] != "Failure"]
        if vmi is None:
            return
        ignore = {"Ready", "Failure", "RestartRequired"}
        vmi_types = set()
        for c in dig(vmi, "status", "conditions", default=[]):
            if c["type"] in ignore:
                continue
            vmi_types.add(c["type"])
            mirrored = {k: v for k, v in c.items()}
            mirrored.setdefault("lastProbeTime", None)
            existing = next((x for x in conds if x["type"] == c["type"]), None)
            if existing is None:
                conds.append(mirrored)
            elif existing != mirrored:
                existing.clear()
                existing.update(mirrored)
        conds[:] = [c for c in conds if c["type"] in ignore or c["type"] in vmi_types or
                    c["type"] in ("ManualRecoveryRequired",)]

    def printable_status(self, vm, vmi):
        sim = self.sim
        ns = vm["metadata"]["namespace"]
        tspec = dig(vm, "spec", "template", "spec", default={}) or {}
        if vm["metadata"].get("deletionTimestamp"):
            return "Terminating"
        if vmi is not None and not is_final(vmi) and vmi["metadata"].get("deletionTimestamp"):
            return "Stopping"
        if vmi is not None and _is_migrating(vmi):
            return "Migrating"
        paused = vmi is not None and has_condition(vmi, "Paused", "True")
        if vmi is not None and dig(vmi, "status", "phase") == "Running":
            return "Paused" if paused else "Running"
        if vmi is not None and has_condition(vmi, "Synchronized", "False", "FailedPvcNotFound"):
            return "ErrorPvcNotFound"
        if _dv_error(sim, ns, tspec):
            return "DataVolumeError"
        if vmi is not None and has_condition(vmi, "PodScheduled", "False", "Unschedulable"):
            return "ErrorUnschedulable"
        if _dv_provisioning(sim, ns, tspec):
            return "Provisioning"
        if is_set_to_start(vm, vmi) and _unbound_pvc(sim, ns, tspec):
            return "WaitingForVolumeBinding"
        if vmi is not None and has_condition(vmi, "Synchronized", "False", "ErrImagePull"):
            return "ErrImagePull"
        if vmi is not None and has_condition(vmi, "Synchronized", "False", "ImagePullBackOff"):
            return "ImagePullBackOff"
        if vmi is not None and dig(vmi, "status", "phase", default="") in ("", "Pending", "Scheduling", "Scheduled"):
            return "Starting"
        if vmi is None and run_strategy(vm) != "Halted" and is_set_to_start(vm, vmi) and \
                not has_condition(vm, "Failure", "True") and \
                dig(vm, "status", "startFailure") is None and _dvs_pending(sim, ns, vm):
            return "Starting"
        if (vmi is None or is_final(vmi)) and dig(vm, "status", "startFailure", "consecutiveFailCount", default=0) > 0 \
                and run_strategy(vm) in ("Always", "RerunOnFailure", "Once"):
            return "CrashLoopBackOff"
        if vmi is None or is_final(vmi):
            return "Stopped"
        return "Unknown"

    async def _remove_vm_finalizer(self, vm):
        fins = vm["metadata"].get("finalizers") or []
        if VM_FINALIZER not in fins:
            return
        try:
            patched = await self.sim.kube.patch(VM, vm["metadata"]["name"], [
                {"op": "test", "path": "/metadata/finalizers", "value": fins},
                {"op": "replace", "path": "/metadata/finalizers", "value": [f for f in fins if f != VM_FINALIZER]}],
                vm["metadata"]["namespace"], kind="json")
            self.sim.cache.vms.observe(patched)
        except ApiError as exc:
            if exc.status not in (404, 422):
                raise


def _after(seconds):
    import datetime as dt
    return dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)


def _is_migrating(vmi):
    ms = dig(vmi, "status", "migrationState")
    return bool(ms) and bool(ms.get("startTimestamp")) and not ms.get("completed") and not ms.get("failed")


def _dv_names(tspec):
    return [dig(v, "dataVolume", "name") for v in tspec.get("volumes") or [] if dig(v, "dataVolume", "name")]


def _dv_error(sim, ns, tspec):
    for name in _dv_names(tspec):
        dv = sim.cache.dvs.get_ns(ns, name)
        if dv is None:
            continue
        if dig(dv, "status", "phase") == "Failed":
            return True
        running = get_condition(dv, "Running")
        if running and running.get("status") == "False" and running.get("reason") in ("Error", "ImagePullFailed"):
            return True
    return False


def _dv_provisioning(sim, ns, tspec):
    for name in _dv_names(tspec):
        dv = sim.cache.dvs.get_ns(ns, name)
        if dv is not None and dig(dv, "status", "phase") not in ("Succeeded", "Failed", "WaitForFirstConsumer",
                                                                 "PendingPopulation"):
            return True
    return False


def _dvs_pending(sim, ns, vm):
    for tpl in dig(vm, "spec", "dataVolumeTemplates", default=[]):
        if sim.cache.dvs.get_ns(ns, tpl["metadata"]["name"]) is None:
            return True
    return False


def _unbound_pvc(sim, ns, tspec):
    for v in tspec.get("volumes") or []:
        claim = dig(v, "persistentVolumeClaim", "claimName") or dig(v, "dataVolume", "name")
        if not claim:
            continue
        pvc = sim.cache.pvcs.get_ns(ns, claim)
        if pvc is not None and dig(pvc, "status", "phase") == "Pending":
            return True
    return False


def _default_network(spec):
    devices = spec.setdefault("domain", {}).setdefault("devices", {})
    if devices.get("autoattachPodInterface") is False:
        return
    if not spec.get("networks") and not devices.get("interfaces"):
        spec["networks"] = [{"name": "default", "pod": {}}]
        devices["interfaces"] = [{"name": "default", "masquerade": {}}]


def _add_volume_disks(spec):
    """util.SetDefaultVolumeDisk: a disk (no device yet) for each volume without one."""
    devices = spec.setdefault("domain", {}).setdefault("devices", {})
    disks = devices.setdefault("disks", [])
    names = {d["name"] for d in disks}
    for vol in spec.get("volumes") or []:
        if vol["name"] not in names and not (dig(vol, "persistentVolumeClaim", "hotpluggable") or
                                             dig(vol, "dataVolume", "hotpluggable")):
            disks.append({"name": vol["name"]})


def _default_disk_bus(spec):
    """The VMI mutating webhook's disk defaults, after preferences had their say: a virtio disk target."""
    for d in dig(spec, "domain", "devices", "disks", default=[]) or []:
        if "disk" not in d and "cdrom" not in d and "lun" not in d:
            d["disk"] = {"bus": "virtio"}
        elif "disk" in d and not (d["disk"] or {}).get("bus"):
            d["disk"] = {**(d["disk"] or {}), "bus": "virtio"}


def _auto_attach_input(spec):
    """vm.go AutoAttachInputDevice: with autoattachInputDevice true and no inputs, one input `default-0`
    (bus and type from a preference, else the VMI defaults usb/tablet)."""
    devices = dig(spec, "domain", "devices", default={}) or {}
    if devices.get("autoattachInputDevice") and not devices.get("inputs"):
        devices["inputs"] = [{"name": "default-0"}]


class StartError(Exception):
    """A failure of vm.go start() that becomes the VM's Failure condition (reason, message)."""

