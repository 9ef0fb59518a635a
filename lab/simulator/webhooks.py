"""Validating admission webhooks for KubeVirt's and CDI's main rules, with their messages
(pkg/virt-api/webhooks/validating-webhook/admitters, pkg/network/admitter, CDI's datavolume-validate)."""
import base64
import json
import logging

from aiohttp import web

from .kube import DV, VM, VMI, VMIM, ApiError
from .util import dig

log = logging.getLogger("simulator.webhooks")
CLOUD_INIT_MAX = 2048
VALID_RUN_STRATEGIES = ("Halted", "Manual", "Always", "RerunOnFailure", "Once", "WaitAsReceiver")


def _rules(res, *operations):
    return [{"operations": list(operations), "apiGroups": [res.group], "apiVersions": [res.version],
             "resources": [res.plural]}]


SPEC_CHANGED = "object.spec != oldObject.spec"
# path, webhook name, rules, match condition
WEBHOOKS = [
    ("/virtualmachines-validate", "virtualmachine-validator.kubevirt.io", _rules(VM, "CREATE", "UPDATE"), None),
    ("/virtualmachineinstances-validate-create", "virtualmachineinstances-create-validator.kubevirt.io",
     _rules(VMI, "CREATE"), None),
    ("/virtualmachineinstances-validate-update", "virtualmachineinstances-update-validator.kubevirt.io",
     _rules(VMI, "UPDATE"), SPEC_CHANGED),
    ("/migration-validate-create", "migration-create-validator.kubevirt.io", _rules(VMIM, "CREATE"), None),
    ("/datavolume-validate", "datavolume-validate.cdi.kubevirt.io", _rules(DV, "UPDATE"), SPEC_CHANGED),
]
# virt-api's mutating webhooks (pkg/virt-api/webhooks/mutating-webhook)
MUTATING_WEBHOOKS = [
    ("/virtualmachines-mutate", "virtualmachines-mutator.kubevirt.io", _rules(VM, "CREATE"), None),
]


def cause(ctype, message, field=None):
    c = {"type": ctype, "message": message}
    if field:
        c["field"] = field
    return c


def to_response(causes):
    """KubeVirt's webhookutils.ToAdmissionResponse: 422 Invalid, messages joined by ', '."""
    return {"message": ", ".join(c["message"] for c in causes), "reason": "Invalid", "code": 422,
            "details": {"causes": causes}}


def to_error(message):
    """webhookutils.ToAdmissionResponseError: 400 with the error text."""
    return {"message": message, "code": 400}


# ------------------------------------------------------------------------------ VMI spec rules
def validate_vmi_spec(field, spec, instancetype=False):
    causes = []
    domain = spec.get("domain") or {}
    devices = domain.get("devices") or {}
    if not instancetype and not dig(domain, "resources", "requests", "memory") and \
            not dig(domain, "memory", "guest") and not dig(domain, "memory", "hugepages"):
        causes.append(cause("FieldValueRequired",
                            f"no memory requested, at least one of '{field}.domain.memory.guest', "
                            f"'{field}.domain.memory.hugepages.size' or '{field}.domain.resources.requests.memory' must be set"))
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    for idx, disk in enumerate(devices.get("disks") or []):
        if disk.get("name") not in volumes and disk.get("cdrom") is None:
            causes.append(cause("FieldValueInvalid",
                                f"{field}.domain.devices.disks[{idx}].Name '{disk.get('name')}' not found.",
                                f"{field}.domain.devices.disks[{idx}].name"))
    networks = spec.get("networks") or []
    ifaces = devices.get("interfaces") or []
    net_by_name = {n.get("name"): n for n in networks}
    iface_names = {i.get("name") for i in ifaces}
    seen = set()
    for idx, iface in enumerate(ifaces):
        f = f"{field}.domain.devices.interfaces[{idx}].name"
        net = net_by_name.get(iface.get("name"))
        if net is None:
            causes.append(cause("FieldValueInvalid", f"{f} '{iface.get('name')}' not found.", f))
        elif iface.get("masquerade") is not None and net.get("pod") is None:
            causes.append(cause("FieldValueInvalid", "Masquerade interface only implemented with pod network", f))
        if iface.get("name") in seen:
            causes.append(cause("FieldValueDuplicate", "Only one interface can be connected to one specific network", f))
        seen.add(iface.get("name"))
    for idx, net in enumerate(networks):
        if net.get("name") not in iface_names:
            f = f"{field}.networks[{idx}].name"
            causes.append(cause("FieldValueRequired", f"{f} '{net.get('name')}' not found.", f))
    pod_nets = [n for n in networks if n.get("pod") is not None]
    if len(pod_nets) > 1:
        causes.append(cause("FieldValueDuplicate",
                            f"more than one interface is connected to a pod network in {field}.interfaces",
                            f"{field}.interfaces"))
    for idx, net in enumerate(networks):
        if net.get("multus") is not None and not dig(net, "multus", "networkName"):
            causes.append(cause("FieldValueRequired", "CNI delegating plugin must have a networkName",
                                f"{field}.networks[{idx}]"))
    for idx, vol in enumerate(spec.get("volumes") or []):
        for kind in ("cloudInitNoCloud", "cloudInitConfigDrive"):
            src = vol.get(kind)
            if not src:
                continue
            f = f"{field}.volumes[{idx}].{kind}"
            user = src.get("userData") or ""
            ulen = len(user.encode())
            if src.get("userDataBase64"):
                try:
                    ulen = len(base64.b64decode(src["userDataBase64"]))
                except ValueError:
                    causes.append(cause("FieldValueInvalid", f"{f}.userDataBase64 is not a valid base64 value.",
                                        f"{f}.userDataBase64"))
            if sum(1 for k in ("userData", "userDataBase64", "secretRef") if src.get(k)) > 1:
                causes.append(cause("FieldValueInvalid", f"{f} must have only one userdatasource set.", f))
            if ulen > CLOUD_INIT_MAX:
                causes.append(cause("FieldValueInvalid", f"{f} userdata exceeds {CLOUD_INIT_MAX} byte limit. "
                                    "Should use UserDataSecretRef for larger data.", f))
            nlen = len((src.get("networkData") or "").encode())
            if src.get("networkDataBase64"):
                try:
                    nlen = len(base64.b64decode(src["networkDataBase64"]))
                except ValueError:
                    nlen = 0
            if nlen > CLOUD_INIT_MAX:
                causes.append(cause("FieldValueInvalid", f"{f} networkdata exceeds {CLOUD_INIT_MAX} byte limit. "
                                    "Should use NetworkDataSecretRef for larger data.", f))
    return causes


INSTANCETYPE_FIELDS = [
    (("domain", "cpu", "sockets"), "domain.cpu.sockets"), (("domain", "cpu", "cores"), "domain.cpu.cores"),
    (("domain", "cpu", "threads"), "domain.cpu.threads"), (("domain", "cpu", "model"), "domain.cpu.model"),
    (("domain", "cpu", "dedicatedCpuPlacement"), "domain.cpu.dedicatedCpuPlacement"),
    (("domain", "memory", "guest"), "domain.memory.guest"), (("domain", "memory", "hugepages"), "domain.memory.hugepages"),
    (("domain", "resources", "requests", "cpu"), "domain.resources.requests.cpu"),
    (("domain", "resources", "requests", "memory"), "domain.resources.requests.memory"),
    (("domain", "resources", "limits", "cpu"), "domain.resources.limits.cpu"),
    (("domain", "resources", "limits", "memory"), "domain.resources.limits.memory"),
]


def validate_vm(vm):
    spec = vm.get("spec") or {}
    causes = []
    running, rs = spec.get("running"), spec.get("runStrategy")
    if running is not None and rs is not None:
        causes.append(cause("FieldValueInvalid", "Running and RunStrategy are mutually exclusive. Note that Running "
                            "is deprecated, please use RunStrategy instead", "spec.running"))
    if running is None and rs is None:
        causes.append(cause("FieldValueInvalid", "RunStrategy must be specified", "spec.running"))
    if rs is not None and rs not in VALID_RUN_STRATEGIES:
        causes.append(cause("FieldValueInvalid", f"Invalid RunStrategy ({rs})", "spec.runStrategy"))
    template = spec.get("template")
    if template is None:
        causes.append(cause("FieldValueRequired", "missing virtual machine template.", "spec.template"))
        return causes
    tspec = template.get("spec") or {}
    vols = tspec.get("volumes") or []
    for idx, dvt in enumerate(spec.get("dataVolumeTemplates") or []):
        name = dig(dvt, "metadata", "name")
        if not any(dig(v, "dataVolume", "name") == name for v in vols):
            f = f"spec.dataVolumeTemplate[{idx}]"
            causes.append(cause("FieldValueRequired", f"DataVolumeTemplate entry {f} must be referenced in the VMI "
                                "template's 'volumes' list", f))
    has_it = bool(spec.get("instancetype"))
    if has_it:
        conflicts = [f"spec.template.spec.{name}" for path, name in INSTANCETYPE_FIELDS if dig(tspec, *path) is not None]
        if conflicts:
            causes.append(cause("FieldValueInvalid", f"VM field(s) {', '.join(conflicts)} conflicts with selected "
                                "instance type", conflicts[0]))
    causes += validate_vmi_spec("spec.template.spec", tspec, instancetype=has_it)
    return causes


class Webhooks:
    def __init__(self, sim):
        self.sim = sim

    def routes(self, app):
        app.router.add_post("/virtualmachines-validate", self._wrap(self.vm))
        app.router.add_post("/virtualmachineinstances-validate-create", self._wrap(self.vmi_create))
        app.router.add_post("/virtualmachineinstances-validate-update", self._wrap(self.vmi_update))
        app.router.add_post("/migration-validate-create", self._wrap(self.migration_create))
        app.router.add_post("/datavolume-validate", self._wrap(self.dv_update))
        app.router.add_post("/virtualmachines-mutate", self._wrap(self.vm_mutate))

    def _wrap(self, fn):
        async def handler(request):
            review = await request.json()
            req = review.get("request") or {}
            try:
                result = await fn(req)
            except Exception as exc:  # never let a bug block the cluster silently
                log.exception("webhook %s", request.path)
                result = to_error(f"simulator webhook error: {exc}")
            patch = result.get("patch") if isinstance(result, dict) else None
            if patch is not None:
                result = None
            resp = {"uid": req.get("uid"), "allowed": result is None}
            if result is not None:
                resp["status"] = result
            if patch:
                resp["patchType"] = "JSONPatch"
                resp["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
            return web.json_response({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                                      "response": resp})
        return handler

    @staticmethod
    def _obj(req, key="object"):
        obj = req.get(key)
        if isinstance(obj, str):
            obj = json.loads(obj)
        return obj or {}

    async def vm(self, req):
        causes = validate_vm(self._obj(req))
        return to_response(causes) if causes else None

    async def vm_mutate(self, req):
        """{'patch': [...]} with the inferred instancetype/preference, or a rejection."""
        from .infer import infer
        try:
            return {"patch": await infer(self.sim.kube, self._obj(req))}
        except ValueError as exc:
            return to_error(str(exc))

    async def vmi_create(self, req):
        causes = validate_vmi_spec("spec", self._obj(req).get("spec") or {})
        return to_response(causes) if causes else None

    async def vmi_update(self, req):
        if (req.get("userInfo") or {}).get("username") == self.sim.user:
            return None
        new, old = self._obj(req), self._obj(req, "oldObject")
        if new.get("spec") != old.get("spec"):
            return to_response([cause("FieldValueNotSupported", "update of VMI object is restricted")])
        return None

    async def migration_create(self, req):
        mig = self._obj(req)
        ns = mig.get("metadata", {}).get("namespace") or req.get("namespace")
        name = dig(mig, "spec", "vmiName")
        if not name:
            return to_response([cause("FieldValueRequired", "vmiName is missing", "spec.vmiName")])
        try:
            vmi = await self.sim.kube.get(VMI, name, ns)
        except ApiError as exc:
            if exc.status == 404:
                return to_error(f'the VMI "{ns}/{name}" does not exist')
            return to_error(str(exc))
        if dig(vmi, "status", "phase") in ("Succeeded", "Failed"):
            return to_error("Cannot migrate VMI in finalized state.")
        for c in dig(vmi, "status", "conditions", default=[]):
            if c.get("type") == "LiveMigratable" and c.get("status") == "False":
                return to_error(f"Cannot migrate VMI, Reason: {c.get('reason')}, Message: {c.get('message')}")
        for other in self.sim.cache.vmims.items(ns):
            if dig(other, "spec", "vmiName") == name and dig(other, "status", "phase") not in ("Succeeded", "Failed"):
                return to_error(f"in-flight migration detected. Active migration job ({other['metadata']['uid']}) "
                                f"is currently already in progress for VMI {name}.")
        return None

    async def dv_update(self, req):
        new, old = self._obj(req), self._obj(req, "oldObject")
        if new.get("spec") != old.get("spec"):
            return {"message": " Cannot update DataVolume Spec", "code": 422,
                    "details": {"causes": [cause("FieldValueDuplicate", "Cannot update DataVolume Spec",
                                                 "DataVolume.Spec")]}}
        return None
