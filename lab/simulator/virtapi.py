"""virt-api's subresources.kubevirt.io/v1 API (pkg/virt-api/rest): same paths, status codes
and messages. Requests arrive through the kube-apiserver's aggregation layer, which has already
authenticated and authorised the user (e.g. `update` on `virtualmachines/start`)."""
import asyncio
import json
import logging

from aiohttp import web

from . import console, guest, hotplug, portforward
from .handler import datavolumes_of
from .kube import POD, VM, VMI, VMIM, ApiError
from .realguest import GuestError
from .util import deep, dig, has_condition, set_condition, ts
from .vm import run_strategy
from .vmi import FINAL

log = logging.getLogger("simulator.virtapi")
GROUP = "subresources.kubevirt.io"
PREFIX = f"/apis/{GROUP}/v1/namespaces/{{namespace}}"
JSONPATCH_TEST_ERR = "jsonpatch test operation does not apply"
MANUAL_RECOVERY = ("VM recovery required: Volume migration failed, leaving some volumes pointing to "
                   "non-consistent targets; manual intervention is needed to reassign them to their original volumes.")


# ------------------------------------------------------------------------------ metav1.Status
class StatusError(Exception):
    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def body(self):
        out = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            out["details"] = self.details
        return out

    def response(self):
        return web.json_response(self.body(), status=self.code)


def not_found(kind, name):
    return StatusError(404, "NotFound", f'{kind}.kubevirt.io "{name}" not found',
                       {"name": name, "group": "kubevirt.io", "kind": kind})


def conflict(kind, name, msg):
    return StatusError(409, "Conflict", f'Operation cannot be fulfilled on {kind}.kubevirt.io "{name}": {msg}',
                       {"name": name, "group": "kubevirt.io", "kind": kind})


def internal(msg):
    return StatusError(500, "InternalError", f"Internal error occurred: {msg}", {"causes": [{"message": msg}]})


def bad_request(msg):
    return StatusError(400, "BadRequest", msg)


def forbidden(kind, name, msg):
    return StatusError(403, "Forbidden", f'{kind}.kubevirt.io "{name}" is forbidden: {msg}',
                       {"name": name, "group": "kubevirt.io", "kind": kind})


# ------------------------------------------------------------------------------ the API
RESOURCES = [
    ("virtualmachineinstances/vnc", ["get"]), ("virtualmachineinstances/vnc/screenshot", ["get"]),
    ("virtualmachineinstances/console", ["get"]), ("virtualmachineinstances/portforward", ["get", "update"]),
    ("virtualmachineinstances/pause", ["update"]), ("virtualmachineinstances/unpause", ["update"]),
    ("virtualmachineinstances/freeze", ["update"]), ("virtualmachineinstances/unfreeze", ["update"]),
    ("virtualmachineinstances/softreboot", ["update"]), ("virtualmachineinstances/reset", ["update"]),
    ("virtualmachineinstances/guestosinfo", ["get"]), ("virtualmachineinstances/userlist", ["get"]),
    ("virtualmachineinstances/filesystemlist", ["get"]), ("virtualmachineinstances/addvolume", ["update"]),
    ("virtualmachineinstances/removevolume", ["update"]), ("virtualmachineinstances/sev/fetchcertchain", ["get"]),
    ("virtualmachines/start", ["update"]), ("virtualmachines/stop", ["update"]),
    ("virtualmachines/restart", ["update"]), ("virtualmachines/migrate", ["update"]),
    ("virtualmachines/addvolume", ["update"]), ("virtualmachines/removevolume", ["update"]),
    ("virtualmachines/expand-spec", ["get"]), ("virtualmachines/portforward", ["get", "update"]),
    ("virtualmachines/memorydump", ["update"]), ("virtualmachines/removememorydump", ["update"]),
]


class VirtAPI:
    def __init__(self, sim):
        self.sim = sim
        self.kube = sim.kube

    def routes(self, app):
        r = app.router
        r.add_get("/apis", self.group_list)
        r.add_get(f"/apis/{GROUP}", self.group)
        r.add_get(f"/apis/{GROUP}/v1", self.resource_list)
        r.add_get(f"/apis/{GROUP}/v1/version", self.version)
        r.add_get(f"/apis/{GROUP}/v1/healthz", self.healthz)
        r.add_get(f"/apis/{GROUP}/v1/guestfs", self.guestfs)
        r.add_get("/openapi/v2", self.openapi_v2)
        r.add_get("/openapi/v3", self.openapi_v3)
        for verb in ("start", "stop", "restart", "migrate", "addvolume", "removevolume"):
            r.add_put(f"{PREFIX}/virtualmachines/{{name}}/{verb}", self._wrap(getattr(self, f"vm_{verb}")))
        for verb in ("pause", "unpause", "softreboot", "freeze", "unfreeze", "reset", "addvolume", "removevolume"):
            r.add_put(f"{PREFIX}/virtualmachineinstances/{{name}}/{verb}", self._wrap(getattr(self, f"vmi_{verb}")))
        for verb in ("guestosinfo", "userlist", "filesystemlist"):
            r.add_get(f"{PREFIX}/virtualmachineinstances/{{name}}/{verb}", self._wrap_agent(verb))
        r.add_get(f"{PREFIX}/virtualmachineinstances/{{name}}/console", self._wrap(self.vmi_console))
        r.add_get(f"{PREFIX}/virtualmachineinstances/{{name}}/vnc", self._wrap(self.vmi_vnc))
        r.add_get(f"{PREFIX}/virtualmachineinstances/{{name}}/vnc/screenshot", self._wrap(self.vmi_vnc_screenshot))
        for kind in ("virtualmachineinstances", "virtualmachines"):
            for tail in ("{port}", "{port}/{protocol}"):
                handler = self._wrap(getattr(self, f"{kind[:-1]}_portforward"))
                r.add_get(f"{PREFIX}/{kind}/{{name}}/portforward/{tail}", handler)

    # ---------------------------------------------------------------------- plumbing
    def _authenticated(self, request):
        cert = request.transport.get_extra_info("peercert") if request.transport else None
        return bool(cert)

    def _wrap(self, fn):
        async def handler(request):
            if not self._authenticated(request):
                return StatusError(401, "Unauthorized", "Unauthorized").response()
            try:
                return await fn(request, request.match_info["namespace"], request.match_info["name"])
            except StatusError as exc:
                return exc.response()
            except ApiError as exc:
                return internal(exc.body.get("message", str(exc))).response()
        return handler

    async def _body(self, request):
        raw = await request.read()
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise bad_request(f"Can not unmarshal Request body to struct, error: {exc}") from None
        return body if isinstance(body, dict) else {}

    async def _vm(self, ns, name):
        try:
            return await self.kube.get(VM, name, ns)
        except ApiError as exc:
            if exc.status == 404:
                raise not_found("virtualmachine", name) from None
            raise internal(f"unable to retrieve vm [{name}]: {exc}") from None

    async def _vmi(self, ns, name, required=True):
        try:
            return await self.kube.get(VMI, name, ns)
        except ApiError as exc:
            if exc.status == 404:
                if required:
                    raise not_found("virtualmachineinstance", name) from None
                return None
            raise internal(f"unable to retrieve vmi [{name}]: {exc}") from None

    async def _patch(self, res, name, ns, ops, sub=None, dry=False, kind_name="virtualmachine"):
        if dry:
            return
        try:
            await self.kube.patch(res, name, ops, ns, sub=sub, kind="json")
        except ApiError as exc:
            msg = exc.body.get("message", str(exc))
            if JSONPATCH_TEST_ERR in msg or "test failed" in msg or "testing value" in msg:
                raise conflict(kind_name, name, msg) from None
            raise internal(msg) from None

    @staticmethod
    def _dry(body):
        dry = body.get("dryRun")
        return bool(dry) and (dry == "All" or "All" in dry if isinstance(dry, list) else bool(dry))

    @staticmethod
    def change_request_ops(vm, *changes):
        st = vm.get("status") or {}
        ops = []
        if not st:
            ops.append({"op": "add", "path": "/status", "value": {"stateChangeRequests": list(changes)}})
        else:
            current = st.get("stateChangeRequests")
            ops.append({"op": "test", "path": "/status/stateChangeRequests", "value": current})
            if not current:
                ops.append({"op": "add", "path": "/status/stateChangeRequests", "value": list(changes)})
            elif len(changes) == 1 and changes[0]["action"] == "Stop":
                ops.append({"op": "replace", "path": "/status/stateChangeRequests", "value": list(changes)})
            else:
                raise internal("unable to complete request: stop/start already underway")
        if st.get("startFailure"):
            ops.append({"op": "remove", "path": "/status/startFailure"})
        return ops

    @staticmethod
    def running_ops(vm, running):
        if dig(vm, "spec", "runStrategy") is not None:
            return [{"op": "test", "path": "/spec/runStrategy", "value": vm["spec"]["runStrategy"]},
                    {"op": "replace", "path": "/spec/runStrategy", "value": "Always" if running else "Halted"}]
        return [{"op": "test", "path": "/spec/running", "value": dig(vm, "spec", "running")},
                {"op": "replace", "path": "/spec/running", "value": running}]

    # ---------------------------------------------------------------------- discovery
    async def group_list(self, request):
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": [self._group()]})

    def _group(self):
        gv = {"groupVersion": f"{GROUP}/v1", "version": "v1"}
        return {"name": GROUP, "versions": [gv], "preferredVersion": gv}

    async def group(self, request):
        return web.json_response({"kind": "APIGroup", "apiVersion": "v1", **self._group()})

    async def resource_list(self, request):
        return web.json_response({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{GROUP}/v1",
                                  "resources": [{"name": n, "singularName": "", "namespaced": True, "kind": "",
                                                 "verbs": v} for n, v in RESOURCES]})

    async def version(self, request):
        return web.json_response({"gitVersion": "v1.6.0", "gitCommit": "lab-simulator", "gitTreeState": "clean",
                                  "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23", "compiler": "gc",
                                  "platform": "linux/amd64"})

    async def healthz(self, request):
        return web.json_response({"apiserver": "ok", "restcontrollers": "ok"})

    async def guestfs(self, request):
        return web.json_response({"guestfsImage": "quay.io/kubevirt/libguestfs-tools:v1.6.0"})

    async def openapi_v2(self, request):
        return web.json_response({"swagger": "2.0", "info": {"title": "KubeVirt API", "version": "v1"}, "paths": {}})

    async def openapi_v3(self, request):
        return web.json_response({"paths": {}})

    # ---------------------------------------------------------------------- VM lifecycle
    async def vm_start(self, request, ns, name):
        vm = await self._vm(ns, name)
        vmi = await self._vmi(ns, name, required=False)
        phase = dig(vmi, "status", "phase", default="") if vmi else ""
        if vmi is not None and phase not in FINAL and phase not in ("Unknown", ""):
            raise conflict("virtualmachine", name, "VM is already running")
        if has_condition(vm, "ManualRecoveryRequired", "True"):
            raise conflict("virtualmachine", name, MANUAL_RECOVERY)
        body = await self._body(request)
        paused = bool(body.get("paused"))
        dry = self._dry(body)
        data = {"paused": "true"} if paused else None
        rs = run_strategy(vm)
        if rs is None:
            raise internal("running and runstrategy are mutually exclusive")
        start = {"action": "Start", **({"data": data} if data else {})}
        if rs == "Halted":
            if paused and dig(vm, "spec", "template", "spec", "startStrategy") != "Paused":
                await self._patch(VM, name, ns, self.change_request_ops(vm, start), sub="status", dry=dry)
            else:
                await self._patch(VM, name, ns, self.running_ops(vm, True), dry=dry)
        elif rs in ("RerunOnFailure", "Manual"):
            needs_restart = (rs == "RerunOnFailure" and phase == "Succeeded") or (rs == "Manual" and phase in FINAL)
            if rs == "RerunOnFailure" and phase == "Failed":
                raise conflict("virtualmachine", name, "RerunOnFailure does not support starting VM from failed state")
            if needs_restart:
                ops = self.change_request_ops(vm, {"action": "Stop", "uid": vmi["metadata"]["uid"]}, start)
            else:
                ops = self.change_request_ops(vm, start)
            await self._patch(VM, name, ns, ops, sub="status", dry=dry)
        else:
            raise conflict("virtualmachine", name, f"{rs} does not support manual start requests")
        return web.Response(status=202)

    async def vm_stop(self, request, ns, name):
        body = await self._body(request)
        dry = self._dry(body)
        vm = await self._vm(ns, name)
        rs = run_strategy(vm)
        if rs is None:
            raise internal("running and runstrategy are mutually exclusive")
        vmi = await self._vmi(ns, name, required=False)
        final = vmi is None or dig(vmi, "status", "phase") in FINAL
        grace = body.get("gracePeriod")
        old_grace = None
        if vmi is not None and not final and grace is not None:
            old_grace = dig(vmi, "spec", "terminationGracePeriodSeconds")
            await self._patch(VMI, name, ns, [
                {"op": "test", "path": "/spec/terminationGracePeriodSeconds", "value": old_grace},
                {"op": "replace", "path": "/spec/terminationGracePeriodSeconds", "value": int(grace)}],
                dry=dry, kind_name="virtualmachineinstance")
        if rs == "Halted":
            if final:
                raise conflict("virtualmachine", name, "VM is not running")
            if grace is None or (old_grace is not None and int(grace) >= int(old_grace)):
                raise conflict("virtualmachine", name, "Halted only supports manual stop requests with a shorter graceperiod")
            await self._patch(VM, name, ns, self.change_request_ops(vm, {"action": "Stop", "uid": vmi["metadata"]["uid"]}),
                              sub="status", dry=dry)
        elif rs in ("RerunOnFailure", "Manual"):
            if final:
                raise conflict("virtualmachine", name, "VM is not running")
            await self._patch(VM, name, ns, self.change_request_ops(vm, {"action": "Stop", "uid": vmi["metadata"]["uid"]}),
                              sub="status", dry=dry)
        else:
            await self._patch(VM, name, ns, self.running_ops(vm, False), dry=dry)
        return web.Response(status=202)

    async def vm_restart(self, request, ns, name):
        body = await self._body(request)
        grace = body.get("gracePeriodSeconds")
        if grace is not None:
            if int(grace) > 0:
                raise bad_request("For force restart, only gracePeriod=0 is supported for now")
            if int(grace) < 0:
                raise bad_request("gracePeriod has to be greater or equal to 0")
        vm = await self._vm(ns, name)
        rs = run_strategy(vm)
        if rs is None:
            raise internal("running and runstrategy are mutually exclusive")
        if rs in ("Halted", "Once"):
            raise conflict("virtualmachine", name, f"RunStategy {rs} does not support manual restart requests")
        vmi = await self._vmi(ns, name, required=False)
        if vmi is None:
            raise conflict("virtualmachine", name, "VM is not running: Halted")
        dry = self._dry(body)
        await self._patch(VM, name, ns, self.change_request_ops(vm, {"action": "Stop", "uid": vmi["metadata"]["uid"]},
                                                                {"action": "Start"}), sub="status", dry=dry)
        if grace is not None and int(grace) == 0 and not dry:
            for pod in self.sim.vmi_pods(vmi):
                if dig(pod, "status", "phase") == "Running":
                    await self.kube.delete(POD, pod["metadata"]["name"], ns, grace=1)
        return web.Response(status=202)

    async def vm_migrate(self, request, ns, name):
        body = await self._body(request)
        await self._vm(ns, name)
        vmi = await self._vmi(ns, name)
        if dig(vmi, "status", "phase") != "Running":
            raise conflict("virtualmachine", name, "VM is not running")
        mig = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
               "metadata": {"generateName": "kubevirt-migrate-vm-", "namespace": ns},
               "spec": {"vmiName": name}}
        if body.get("addedNodeSelector"):
            mig["spec"]["addedNodeSelector"] = body["addedNodeSelector"]
        if self._dry(body):
            return web.Response(status=202)
        try:
            await self.kube.create(VMIM, mig, ns)
        except ApiError as exc:
            raise internal(exc.body.get("message", str(exc))) from None
        return web.Response(status=202)

    # ---------------------------------------------------------------------- volumes
    @staticmethod
    def _volume_request(body, add):
        """addVolumeRequestHandler / removeVolumeRequestHandler: the request, or 400 as virt-api answers."""
        if add:
            name = body.get("name")
            if not name:
                raise bad_request("AddVolumeOptions requires name to be set")
            if body.get("disk") is None:
                raise bad_request("AddVolumeOptions requires disk to not be nil")
            src = body.get("volumeSource")
            if not src or not (src.get("persistentVolumeClaim") is not None or src.get("dataVolume") is not None):
                raise bad_request("AddVolumeOptions requires VolumeSource to not be nil")
            opts = {"name": name, "disk": {**deep(body["disk"]), "name": name}}
            if src.get("dataVolume") is not None:
                opts["volumeSource"] = {"dataVolume": {**src["dataVolume"], "hotpluggable": True}}
            else:
                opts["volumeSource"] = {"persistentVolumeClaim": {**src["persistentVolumeClaim"], "hotpluggable": True}}
            for key in ("serial", "dryRun"):
                if body.get(key) is not None:
                    opts[key] = body[key]
            return {"addVolumeOptions": opts}
        if not body.get("name"):
            raise bad_request("RemoveVolumeOptions requires name to be set")
        opts = {"name": body["name"]}
        if body.get("dryRun") is not None:
            opts["dryRun"] = body["dryRun"]
        return {"removeVolumeOptions": opts}

    async def _vm_volume_request(self, request, ns, name, add):
        """vmVolumePatchStatus: the request goes to the VM's status.volumeRequests; the VM controller
        applies it to the template and the running VMI."""
        body = await self._body(request)
        req = self._volume_request(body, add)
        vm = await self._vm(ns, name)
        err = hotplug.verify_volume_option(dig(vm, "spec", "template", "spec", "volumes", default=[]), req)
        if err:
            raise conflict("virtualmachine", name, err)
        current = dig(vm, "status", "volumeRequests", default=[]) or []
        requests, err = hotplug.add_to_requests(current, req)
        if err:
            raise conflict("virtualmachine", name, err)
        if not vm.get("status"):
            ops = [{"op": "add", "path": "/status", "value": {"volumeRequests": requests}}]
        elif current:
            ops = [{"op": "test", "path": "/status/volumeRequests", "value": current},
                   {"op": "replace", "path": "/status/volumeRequests", "value": requests}]
        else:
            ops = [{"op": "add", "path": "/status/volumeRequests", "value": requests}]
        await self._patch(VM, name, ns, ops, sub="status", dry=self._dry(body))
        return web.Response(status=202)

    async def vm_addvolume(self, request, ns, name):
        return await self._vm_volume_request(request, ns, name, add=True)

    async def vm_removevolume(self, request, ns, name):
        return await self._vm_volume_request(request, ns, name, add=False)

    async def _vmi_volume_request(self, request, ns, name, add):
        """vmiVolumePatch: straight into the VMI's spec (not kept in a VM's template)."""
        body = await self._body(request)
        req = self._volume_request(body, add)
        vmi = await self._vmi(ns, name)
        if dig(vmi, "status", "phase") != "Running":
            raise conflict("virtualmachineinstance", name, "VMI is not running")
        err = hotplug.verify_volume_option(dig(vmi, "spec", "volumes", default=[]), req)
        if err:
            raise conflict("virtualmachineinstance", name, err)
        await self._patch(VMI, name, ns, hotplug.vmi_volume_patch(vmi, req), dry=self._dry(body),
                          kind_name="virtualmachineinstance")
        return web.Response(status=202)

    async def vmi_addvolume(self, request, ns, name):
        return await self._vmi_volume_request(request, ns, name, add=True)

    async def vmi_removevolume(self, request, ns, name):
        return await self._vmi_volume_request(request, ns, name, add=False)

    # ---------------------------------------------------------------------- VMI actions (virt-handler)
    async def _update_vmi_status(self, vmi, mutate):
        cur = vmi
        for _ in range(5):
            new = deep(cur)
            new.setdefault("status", {}).setdefault("conditions", [])
            mutate(new)
            try:
                updated = await self.kube.replace(VMI, new)
                self.sim.cache.vmis.observe(updated)
                return updated
            except ApiError as exc:
                if exc.status != 409:
                    raise internal(f"{exc}") from None
                cur = await self._vmi(vmi["metadata"]["namespace"], vmi["metadata"]["name"])
        raise internal("too many conflicts updating the VMI")

    async def _real_guest(self, vmi, call, command, **arguments):
        """Run COMMAND (QMP or the agent) on the VMI's real guest, if it has one; 500 with QEMU's
        or the agent's words when it fails, as virt-handler relays libvirt's."""
        if not self.sim.guests.guest_for(vmi):
            return None
        try:
            return await call(vmi, command, **arguments)
        except (GuestError, OSError) as exc:
            raise internal(f"{command} failed on the guest of {vmi['metadata']['name']}: {exc}") from None

    async def vmi_pause(self, request, ns, name):
        body = await self._body(request)
        vmi = await self._vmi(ns, name)
        if dig(vmi, "status", "phase") != "Running":
            raise conflict("virtualmachineinstance", name, "VM is not running")
        if dig(vmi, "spec", "livenessProbe"):
            raise forbidden("virtualmachineinstance", name, "Pausing VMIs with LivenessProbe is currently not supported")
        if has_condition(vmi, "Paused"):
            raise conflict("virtualmachineinstance", name, "VMI is already paused")
        ms = dig(vmi, "status", "migrationState")
        if ms and not ms.get("completed"):
            raise conflict("virtualmachineinstance", name, f"Cannot pause VM '{name}' because it is currently being migrated")
        if not self._dry(body):
            await self._real_guest(vmi, self.sim.guests.qmp, "stop")
            await self._update_vmi_status(vmi, lambda v: set_condition(
                v["status"]["conditions"], "Paused", "True", "PausedByUser", "VMI was paused by user", probe=True))
            self.sim.recorder.normal(vmi, "Paused", "VirtualMachineInstance paused", "virt-handler")
        return web.Response(status=200)

    async def vmi_unpause(self, request, ns, name):
        body = await self._body(request)
        vmi = await self._vmi(ns, name)
        if dig(vmi, "status", "phase") != "Running":
            raise conflict("virtualmachineinstance", name, "VMI is not running")
        if not has_condition(vmi, "Paused"):
            raise conflict("virtualmachineinstance", name, "VMI is not paused")
        if not self._dry(body):
            def mutate(v):
                v["status"]["conditions"] = [c for c in v["status"]["conditions"] if c["type"] != "Paused"]
            await self._real_guest(vmi, self.sim.guests.qmp, "cont")
            await self._update_vmi_status(vmi, mutate)
            self.sim.recorder.normal(vmi, "Resumed", "VirtualMachineInstance unpaused", "virt-handler")
        return web.Response(status=200)

    async def vmi_softreboot(self, request, ns, name):
        vmi = await self._vmi(ns, name)
        if dig(vmi, "status", "phase") != "Running":
            raise conflict("virtualmachineinstance", name, "VM is not running")
        if has_condition(vmi, "Paused", "True"):
            raise conflict("virtualmachineinstance", name, "VMI is paused")
        if not has_condition(vmi, "AgentConnected") and \
                dig(vmi, "spec", "domain", "features", "acpi", "enabled") is False:
            raise conflict("virtualmachineinstance", name, "VMI neither have the agent connected nor the ACPI feature enabled")
        if self.sim.guests.guest_for(vmi):
            # virt-launcher: the agent's guest-shutdown (reboot) when it is connected, else ACPI
            if has_condition(vmi, "AgentConnected"):
                await self._real_guest(vmi, self.sim.guests.agent_call, "guest-shutdown", mode="reboot")
            else:
                await self._real_guest(vmi, self.sim.guests.qmp, "system_reset")
        else:
            console.reboot(vmi)
        self.sim.recorder.normal(vmi, "SoftRebooted", "VirtualMachineInstance soft rebooted", "virt-handler")
        return web.Response(status=200)

    async def vmi_freeze(self, request, ns, name):
        vmi = await self._vmi(ns, name)
        if dig(vmi, "status", "phase") != "Running":
            raise conflict("virtualmachineinstance", name, "VM is not running")
        return web.Response(status=200)

    async def vmi_unfreeze(self, request, ns, name):
        vmi = await self._vmi(ns, name)
        if dig(vmi, "status", "phase") != "Running":
            raise conflict("virtualmachineinstance", name, "VMI is not running")
        return web.Response(status=200)

    async def vmi_reset(self, request, ns, name):
        vmi = await self._vmi(ns, name)
        if dig(vmi, "status", "phase") != "Running":
            raise internal(f"Failed to reset non-running VMI with phase {dig(vmi, 'status', 'phase')}: "
                           "VMI is not running")
        if self.sim.guests.guest_for(vmi):
            await self._real_guest(vmi, self.sim.guests.qmp, "system_reset")
        else:
            console.reboot(vmi)
        return web.Response(status=200)

    # ---------------------------------------------------------------------- guest agent (500 + text)
    def _wrap_agent(self, verb):
        async def handler(request):
            if not self._authenticated(request):
                return StatusError(401, "Unauthorized", "Unauthorized").response()
            ns, name = request.match_info["namespace"], request.match_info["name"]
            try:
                vmi = await self._vmi(ns, name)
                if dig(vmi, "status", "phase") != "Running":
                    raise conflict("virtualmachineinstance", name, "VMI is not running")
                if not has_condition(vmi, "AgentConnected"):
                    raise conflict("virtualmachineinstance", name, "VMI does not have guest agent connected")
            except StatusError as exc:
                return web.Response(status=500, text=exc.message)
            if self.sim.guests.guest_for(vmi):
                return await self._real_agent(vmi, verb)
            dvs = datavolumes_of(self.sim, vmi)
            since = next((s["phaseTransitionTimestamp"] for s in dig(vmi, "status", "phaseTransitionTimestamps", default=[])
                          if s["phase"] == "Running"), ts())
            if verb == "guestosinfo":
                return web.json_response(guest.guest_agent_info(vmi, since, dvs))
            if verb == "userlist":
                return web.json_response({"metadata": {}, "items": guest.users(vmi, since, dvs)})
            return web.json_response({"metadata": {}, "items": guest.filesystems(vmi)})
        return handler

    async def _real_agent(self, vmi, verb):
        """guestosinfo / userlist / filesystemlist from a real guest's qemu-ga, read now."""
        try:
            data = await self.sim.guests.refresh_agent(vmi)
        except (GuestError, OSError) as exc:
            return web.Response(status=500, text=f"guest agent of {vmi['metadata']['name']}: {exc}")
        if verb == "guestosinfo":
            return web.json_response({k: v for k, v in data.items() if k != "interfaces"})
        if verb == "userlist":
            return web.json_response({"metadata": {}, "items": data["userList"]})
        return web.json_response({"metadata": {}, "items": data["fsInfo"]["disks"]})

    # ---------------------------------------------------------------------- console and VNC
    async def _running_vmi_for_stream(self, ns, name):
        vmi = await self._vmi(ns, name)
        if dig(vmi, "status", "phase") != "Running":
            raise bad_request(f"Unable to connect to VirtualMachineInstance because phase is "
                              f"{dig(vmi, 'status', 'phase') or 'unset'} instead of Running")
        return vmi

    async def vmi_console(self, request, ns, name):
        vmi = await self._running_vmi_for_stream(ns, name)
        ws = web.WebSocketResponse(protocols=("plain.kubevirt.io", "base64.binary.k8s.io", "binary.k8s.io"))
        await ws.prepare(request)
        if self.sim.guests.guest_for(vmi):
            await console.real_session("serial", ws, vmi, self.sim.guests.serial_socket)
        else:
            await console.serial_session(self.sim, ws, vmi, datavolumes_of(self.sim, vmi))
        return ws

    async def vmi_vnc(self, request, ns, name):
        vmi = await self._running_vmi_for_stream(ns, name)
        ws = web.WebSocketResponse(protocols=("plain.kubevirt.io", "binary.kubevirt.io", "base64.binary.k8s.io"))
        await ws.prepare(request)
        if self.sim.guests.guest_for(vmi):
            await console.real_session("vnc", ws, vmi, self.sim.guests.vnc_socket)
        else:
            await console.vnc_session(ws, vmi)
        return ws

    async def vmi_vnc_screenshot(self, request, ns, name):
        """VNCScreenshot: one frame of the display as image/png (moveCursor=true only wakes a real screen)."""
        vmi = await self._running_vmi_for_stream(ns, name)
        console.disconnect("vnc", vmi)   # virt-api reads the screen over a VNC connection of its own
        if self.sim.guests.guest_for(vmi) is None:
            return web.Response(body=console.screenshot(vmi), content_type="image/png")
        try:
            image = await self.sim.guests.screenshot(vmi)
        except (OSError, RuntimeError, asyncio.TimeoutError) as exc:
            raise internal(f"failed to retrieve the VNC screen: {exc}") from None
        return web.Response(body=image, content_type="image/png")
    # ---------------------------------------------------------------------- port-forward (portforward.py)
    async def _portforward(self, request, vmi):
        if has_condition(vmi, "Paused"):   # validateVMIForPortForward: the condition, whatever its status
            raise conflict("virtualmachineinstance", vmi["metadata"]["name"], "VMI is paused")
        try:
            reader, writer = await portforward.dial(self.sim.guests, vmi, request.match_info["port"],
                                                    request.match_info.get("protocol"))
        except portforward.DialError as exc:
            raise (bad_request(exc.message) if exc.kind == "bad_request" else internal(exc.message)) from None
        return await portforward.serve(request, reader, writer)

    async def virtualmachineinstance_portforward(self, request, ns, name):
        return await self._portforward(request, await self._vmi(ns, name))

    async def virtualmachine_portforward(self, request, ns, name):
        """FetchVirtualMachineInstanceForVM: the VM must have created its VMI, and own it."""
        vm = await self._vm(ns, name)
        if not dig(vm, "status", "created"):
            raise conflict("virtualmachine", name, "VMI is not started")
        vmi = await self._vmi(ns, name)
        if not any(ref.get("uid") == vm["metadata"]["uid"] for ref in vmi["metadata"].get("ownerReferences") or []):
            raise internal(f"unable to retrieve vmi [{name}] for vm: <nil>")
        return await self._portforward(request, vmi)
