"""Validating admission webhooks for KubeVirt's and CDI's main rules, with their messages
(pkg/virt-api/webhooks/validating-webhook/admitters, pkg/network/admitter, CDI's datavolume-validate)."""
import base64
import json
import logging

from aiohttp import web

from . import instancetype
from .kube import DV, VM, VMI, VMIM, VMRESTORE, VMSNAPSHOT, ApiError
from .util import deep, dig

log = logging.getLogger("simulator.webhooks")
CLOUD_INIT_MAX = 2048
# vms-admitter.go validRunStrategies; WaitAsReceiver needs the (alpha) DecentralizedLiveMigration gate
VALID_RUN_STRATEGIES = ("Halted", "Manual", "Always", "RerunOnFailure", "Once")
# vmi-create-admitter.go restrictedVmiLabels: only KubeVirt's service accounts may set them
RESTRICTED_LABELS = ("kubevirt.io/created-by", "kubevirt.io/migrationJobUID", "kubevirt.io/nodeName",
                     "kubevirt.io/migrationTargetNodeName", "kubevirt.io/schedulable", "kubevirt.io/install-strategy")
# The lab's KubeVirt CR enables no feature gates: these alpha gates are off, as on a default v1.8 install
FEATURE_GATES = ()


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
    ("/virtualmachinesnapshots-validate", "virtualmachinesnapshot-validator.snapshot.kubevirt.io",
     _rules(VMSNAPSHOT, "CREATE", "UPDATE"), None),
    ("/virtualmachinerestores-validate", "virtualmachinerestore-validator.snapshot.kubevirt.io",
     _rules(VMRESTORE, "CREATE", "UPDATE"), None),
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
def validate_vmi_mandatory_fields(field, spec):
    """ValidateVirtualMachineInstanceMandatoryFields: VMI reviews only, never a VM's template."""
    domain = spec.get("domain") or {}
    if dig(domain, "resources", "requests", "memory") or dig(domain, "memory", "guest") or \
            dig(domain, "memory", "hugepages"):
        return []
    return [cause("FieldValueRequired",
                  f"no memory requested, at least one of '{field}.domain.memory.guest', "
                  f"'{field}.domain.memory.hugepages.pageSize' or '{field}.domain.resources.requests.memory' "
                  "must be set")]


def validate_vmi_metadata(field, meta, kubevirt_sa):
    """ValidateVirtualMachineInstanceMetadata: reserved labels, and annotations of disabled feature gates."""
    causes = []
    labels = meta.get("labels") or {}
    ann = meta.get("annotations") or {}
    if not kubevirt_sa and any(k in labels for k in RESTRICTED_LABELS):
        causes.append(cause("FieldValueNotSupported", "creation of the following reserved kubevirt.io/ labels on a "
                            "VMI object is prohibited", f"{field}.labels"))
    if ann.get("kubevirt.io/ignitiondata") and "ExperimentalIgnitionSupport" not in FEATURE_GATES:
        causes.append(cause("FieldValueInvalid", "ExperimentalIgnitionSupport feature gate is not enabled in "
                            f"kubevirt-config, invalid entry {field}.annotations.kubevirt.io/ignitiondata",
                            f"{field}.annotations"))
    if ann.get("hooks.kubevirt.io/hookSidecars") and "Sidecar" not in FEATURE_GATES:
        causes.append(cause("FieldValueInvalid", "sidecar feature gate is not enabled in kubevirt-config, invalid "
                            f"entry {field}.annotations.hooks.kubevirt.io/hookSidecars", f"{field}.annotations"))
    return causes


def validate_feature_gated(field, spec):
    """The rules of ValidateVirtualMachineInstanceSpec that refuse fields of alpha feature gates."""
    causes = []
    devices = dig(spec, "domain", "devices", default={}) or {}
    if devices.get("hostDevices") is not None and "HostDevices" not in FEATURE_GATES:
        causes.append(cause("FieldValueInvalid", "Host Devices feature gate is not enabled in kubevirt-config",
                            f"{field}.HostDevices"))
    if devices.get("autoattachVSOCK") and "VSOCK" not in FEATURE_GATES:
        causes.append(cause("FieldValueInvalid", "VSOCK feature gate is not enabled in kubevirt-config",
                            f"{field}.domain.devices.autoattachVSOCK"))
    causes += validate_dra_gpus(field, devices.get("gpus") or [])
    for idx, vol in enumerate(spec.get("volumes") or []):
        if vol.get("downwardMetrics") is not None and "DownwardMetrics" not in FEATURE_GATES:
            causes.append(cause("FieldValueInvalid", "downwardMetrics disks are not allowed: DownwardMetrics feature "
                                "gate is not enabled.", f"{field}.volumes[{idx}]"))
        if vol.get("hostDisk") is not None and "HostDisk" not in FEATURE_GATES:
            causes.append(cause("FieldValueInvalid", "HostDisk feature gate is not enabled", f"{field}.volumes[{idx}]"))
    return causes


def validate_dra_gpus(field, gpus):
    """pkg/dra/admitter validateDRAGPUs: a GPU with a claim and no deviceName is a DRA GPU, refused while
    the (alpha) GPUsWithDRA gate is off; DRA and device-plugin GPUs never mix."""
    dra = [g for g in gpus if not g.get("deviceName") and (g.get("claimName") or g.get("requestName"))]
    if not dra:
        return []
    path = f"{field}.domain.devices.gpus"
    if len(dra) < len(gpus):
        return [cause("FieldValueInvalid", "vmi.spec.domain.devices.gpus contains both DRA and non-DRA GPUs; each GPU "
                      "must be either DRA or non-DRA", path)]
    if "GPUsWithDRA" not in FEATURE_GATES:
        return [cause("FieldValueInvalid", "vmi.spec.domain.devices.gpus contains DRA enabled GPUs but feature gate is "
                      "not enabled", path)]
    return []


# pkg/storage/admitters/disks.go validateBusSupport: the buses KubeVirt knows (as Go prints the list)
DISK_BUSES = ("virtio", "scsi", "sata", "usb")
# vmi-create-admitter.go isValidEvictionStrategy
EVICTION_STRATEGIES = ("LiveMigrate", "LiveMigrateIfPossible", "None", "External")


def validate_disk_bus(path, disk):
    """disks.go validateBusSupport: the bus of a disk, lun or cdrom (the schema takes any string)."""
    kind = next((k for k in ("disk", "lun", "cdrom") if disk.get(k) is not None), None)
    bus = (disk.get(kind) or {}).get("bus") if kind else None
    if not bus:
        return []
    if bus == "ide":
        return [cause("FieldValueInvalid", "IDE bus is not supported", f"{path}.{kind}.bus")]
    if bus == "virtio" and kind == "cdrom":
        return [cause("FieldValueInvalid", "Bus type virtio is invalid for CD-ROM device", f"{path}.cdrom.bus")]
    if bus == "sata" and kind == "disk" and disk["disk"].get("readonly"):
        return [cause("FieldValueInvalid", "sata hard-disks do not support read-only.", f"{path}.disk.bus")]
    if bus not in DISK_BUSES:
        return [cause("FieldValueInvalid", f"{path} is set with an unrecognized bus {bus}, must be one of: "
                      f"[{' '.join(DISK_BUSES)}]", f"{path}.{kind}.bus")]
    return []


def validate_strategies(field, spec):
    """vmi-create-admitter.go validateLiveMigration (evictionStrategy) and validateStartStrategy."""
    causes = []
    eviction = spec.get("evictionStrategy")
    if eviction is not None and eviction not in EVICTION_STRATEGIES:
        causes.append(cause("FieldValueInvalid", f"{field}.evictionStrategy is set with an unrecognized option: "
                            f"{eviction}", f"{field}.evictionStrategy"))
    start = spec.get("startStrategy")
    if start is not None and start != "Paused":
        causes.append(cause("FieldValueInvalid", f"{field}.startStrategy is set with an unrecognized option: {start}",
                            f"{field}.startStrategy"))
    elif start == "Paused" and spec.get("livenessProbe") is not None:
        causes.append(cause("FieldValueInvalid", f"either {field}.startStrategy or {field}.livenessProbe should be "
                            "provided.Pausing VMI with LivenessProbe is not supported", f"{field}.startStrategy"))
    return causes


def validate_vmi_spec(field, spec):
    """The part of ValidateVirtualMachineInstanceSpec the lab enforces (shared by VMIs and VM templates)."""
    causes = validate_feature_gated(field, spec)
    domain = spec.get("domain") or {}
    devices = domain.get("devices") or {}
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    for idx, disk in enumerate(devices.get("disks") or []):
        if disk.get("name") not in volumes and disk.get("cdrom") is None:
            causes.append(cause("FieldValueInvalid",
                                f"{field}.domain.devices.disks[{idx}].Name '{disk.get('name')}' not found.",
                                f"{field}.domain.devices.disks[{idx}].name"))
        causes += validate_disk_bus(f"{field}.domain.devices.disks[{idx}]", disk)
    causes += validate_strategies(field, spec)
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
    causes += validate_access_credentials(f"{field}.accessCredentials", spec)
    return causes


def validate_access_credentials(field, spec):
    """validateAccessCredentials: one kind per entry, exactly one source and one propagation method,
    users for the agent, the cloud-init volume noCloud / configDrive need."""
    causes = []
    volumes = spec.get("volumes") or []
    has = {kind: any(v.get(kind) is not None for v in volumes) for kind in ("cloudInitNoCloud", "cloudInitConfigDrive")}
    for idx, cred in enumerate(spec.get("accessCredentials") or []):
        f = f"{field}[{idx}]"
        kinds = [k for k in ("sshPublicKey", "userPassword") if cred.get(k) is not None]
        for kind in kinds:
            entry = cred[kind]
            method = entry.get("propagationMethod") or {}
            methods = 0
            if kind == "sshPublicKey":
                for name, volume in (("noCloud", "cloudInitNoCloud"), ("configDrive", "cloudInitConfigDrive")):
                    if method.get(name) is not None:
                        methods += 1
                        if not has[volume]:
                            causes.append(cause("FieldValueInvalid", f"{f} requires a {name} volume to exist when the "
                                                f"{name} propagationMethod is in use.",
                                                f"{f}.sshPublicKey.propagationMethod"))
                agent = method.get("qemuGuestAgent")
                if agent is not None:
                    methods += 1
                    if not agent.get("users"):
                        causes.append(cause("FieldValueInvalid", f"{f} requires at least one user to be present in "
                                            "the users list", f"{f}.sshPublicKey.propagationMethod.qemuGuestAgent.users"))
            elif method.get("qemuGuestAgent") is not None:
                methods += 1
            if dig(entry, "source", "secret") is None:
                causes.append(cause("FieldValueInvalid", f"{f} must have exactly one source set", f"{f}.{kind}.source"))
            if methods != 1:
                causes.append(cause("FieldValueInvalid", f"{f} must have exactly one propagationMethod set",
                                    f"{f}.{kind}.propagationMethod"))
        if len(kinds) != 1:
            causes.append(cause("FieldValueInvalid", f"{f} must have exactly one access credential type set", f))
    return causes


def validate_matchers(spec):
    """instancetype webhooks/vm mutator.go validateInstancetypeMatcher / validatePreferenceMatcher."""
    causes = []
    for field, label in (("instancetype", "InstancetypeMatcher"), ("preference", "PreferenceMatcher")):
        m = spec.get(field)
        if m is None:
            continue
        if not m.get("name") and not m.get("inferFromVolume"):
            causes.append(cause("FieldValueNotFound", f"Either Name or InferFromVolume should be provided within the "
                                f"{label}", f"spec.{field}"))
        if m.get("inferFromVolume"):
            for key in ("name", "kind"):
                if m.get(key):
                    causes.append(cause("FieldValueNotSupported", f"{key.capitalize()} already set, should be cleared "
                                        "before setting inferFromVolume", f"spec.{field}.{key}"))
        policy = m.get("inferFromVolumeFailurePolicy")
        if policy is not None and policy not in ("Ignore", "Reject"):
            causes.append(cause("FieldValueInvalid", f"Invalid value '{policy}' for InferFromVolumeFailurePolicy",
                                f"spec.{field}.inferFromVolumeFailurePolicy"))
    return causes


def validate_run_strategy(spec):
    """vms-admitter.go validateRunStrategy."""
    causes = []
    running, rs = spec.get("running"), spec.get("runStrategy")
    if running is not None and rs is not None:
        causes.append(cause("FieldValueInvalid", "Running and RunStrategy are mutually exclusive. Note that Running "
                            "is deprecated, please use RunStrategy instead", "spec.running"))
    if running is None and rs is None:
        causes.append(cause("FieldValueInvalid", "RunStrategy must be specified", "spec.running"))
    if rs == "WaitAsReceiver":
        if "DecentralizedLiveMigration" not in FEATURE_GATES:
            causes.append(cause("FieldValueInvalid", f"Invalid RunStrategy ({rs}), DecentralizedLiveMigration feature "
                                "gate is not enabled in kubevirt resource", "spec.runStrategy"))
    elif rs is not None and rs not in VALID_RUN_STRATEGIES:
        causes.append(cause("FieldValueInvalid", f"Invalid RunStrategy ({rs})", "spec.runStrategy"))
    return causes


def validate_vm(vm, it_spec=None, pref_spec=None, kubevirt_sa=False):
    """vms-admitter.go Admit for a VM whose instancetype/preference specs were found (None when missing: KubeVirt
    ignores a failed lookup here and lets the VM controller report it). Checks run in KubeVirt's order and,
    like KubeVirt, each group answers on its own."""
    spec = vm.get("spec") or {}
    causes = validate_matchers(spec)
    if causes:
        return causes
    template = spec.get("template")
    copy = deep(template or {})
    if template is not None and (it_spec is not None or pref_spec is not None):
        conflicts = instancetype.apply_to_vmi("spec.template.spec", it_spec, pref_spec, copy.setdefault("spec", {}),
                                              copy.setdefault("metadata", {}))
        if conflicts:
            return instancetype.conflict_causes(conflicts)
        instancetype.set_vmi_defaults(copy["spec"])
        failed = instancetype.check_requirements(it_spec, pref_spec, copy["spec"])
        if failed:
            return [cause("FieldValueNotFound", f"failure checking preference requirements: {failed[1]}",
                          ", ".join(failed[0]))]
    if template is None:
        return [cause("FieldValueRequired", "missing virtual machine template.", "spec.template")]
    tspec = copy.get("spec") or {}
    causes = validate_vmi_metadata("spec.template.metadata", copy.get("metadata") or {}, kubevirt_sa)
    causes += validate_vmi_spec("spec.template.spec", tspec)
    vols = tspec.get("volumes") or []
    for idx, dvt in enumerate(spec.get("dataVolumeTemplates") or []):
        name = dig(dvt, "metadata", "name")
        if not any(dig(v, "dataVolume", "name") == name for v in vols):
            f = f"spec.dataVolumeTemplate[{idx}]"
            causes.append(cause("FieldValueRequired", f"DataVolumeTemplate entry {f} must be referenced in the VMI "
                                "template's 'volumes' list", f))
    causes += validate_run_strategy(spec)
    return causes


def _run_strategy(spec):
    """VirtualMachine.RunStrategy(): runStrategy, else the deprecated running (true Always, false Halted)."""
    if spec.get("runStrategy") is not None:
        return spec["runStrategy"]
    return None if spec.get("running") is None else ("Always" if spec["running"] else "Halted")


def _same_running(old, new):
    """compareRunningSpec: both say running alike, or both runStrategy alike."""
    if old.get("running") is not None and new.get("running") is not None:
        return old["running"] == new["running"]
    if old.get("runStrategy") is not None and new.get("runStrategy") is not None:
        return old["runStrategy"] == new["runStrategy"]
    return False


def validate_snapshot_restore_status(vm, old):
    """pkg/storage/admitters/vm-storage-status.go, on a VM update: while a snapshot is in progress its volumes
    and running state stay; while a restore is in progress its run strategy stays."""
    spec, old_spec = vm.get("spec") or {}, old.get("spec") or {}
    snapshot = dig(vm, "status", "snapshotInProgress")
    if snapshot:
        if dig(old_spec, "template", "spec", "volumes") != dig(spec, "template", "spec", "volumes"):
            return [cause("FieldValueNotSupported", f'Cannot update vm disks or volumes until snapshot "{snapshot}" '
                          "completes", "spec")]
        if not _same_running(old_spec, spec):
            return [cause("FieldValueNotSupported", f'Cannot update vm running state until snapshot "{snapshot}" '
                          "completes", "spec")]
    restore = dig(vm, "status", "restoreInProgress")
    if restore and old_spec != spec and _run_strategy(old_spec) != _run_strategy(spec):
        return [cause("FieldValueNotSupported", f'Cannot update VM runStrategy until restore "{restore}" completes',
                      "spec")]
    return []


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
        app.router.add_post("/virtualmachinesnapshots-validate", self._wrap(self.vm_snapshot))
        app.router.add_post("/virtualmachinerestores-validate", self._wrap(self.vm_restore))

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

    def _kubevirt_sa(self, req):
        return (req.get("userInfo") or {}).get("username") == self.sim.user

    async def vm(self, req):
        vm = self._obj(req)
        if vm.get("metadata", {}).get("deletionTimestamp"):
            return None
        vm.setdefault("metadata", {}).setdefault("namespace", req.get("namespace"))
        specs = []
        for field in ("instancetype", "preference"):
            try:
                specs.append(await instancetype.find_spec(self.sim.kube, vm, field))
            except instancetype.FindError as exc:
                log.info("ignoring err %r when looking for %s", str(exc), field)
                specs.append(None)
        causes = validate_vm(vm, *specs, kubevirt_sa=self._kubevirt_sa(req))
        if not causes and req.get("operation") == "UPDATE":
            causes = validate_snapshot_restore_status(vm, self._obj(req, "oldObject"))
        return to_response(causes) if causes else None

    async def vm_mutate(self, req):
        """{'patch': [...]} with the inferred instancetype/preference, or a rejection."""
        from .infer import infer
        try:
            return {"patch": await infer(self.sim.kube, self._obj(req))}
        except ValueError as exc:
            return to_error(str(exc))

    async def vmi_create(self, req):
        vmi = self._obj(req)
        spec = vmi.get("spec") or {}
        causes = validate_vmi_spec("spec", spec) + validate_vmi_mandatory_fields("spec", spec) + \
            validate_vmi_metadata("metadata", vmi.get("metadata") or {}, self._kubevirt_sa(req))
        return to_response(causes) if causes else None

    async def vmi_update(self, req):
        if self._kubevirt_sa(req):
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

    async def vm_snapshot(self, req):
        """pkg/storage/admitters/vmsnapshot.go: the source is a kubevirt.io VirtualMachine; the spec is fixed."""
        snap = self._obj(req)
        if req.get("operation") == "UPDATE":
            if snap.get("spec") != self._obj(req, "oldObject").get("spec"):
                return to_response([cause("FieldValueInvalid", "spec in immutable after creation", "spec")])
            return None
        return _target_causes(dig(snap, "spec", "source", default={}) or {}, "spec.source")

    async def vm_restore(self, req):
        """pkg/storage/admitters/vmrestore.go: the target is a kubevirt.io VirtualMachine, the spec is fixed, one
        unfinished restore per target at a time, patches only under /spec/."""
        restore = self._obj(req)
        if req.get("operation") == "UPDATE":
            if restore.get("spec") != self._obj(req, "oldObject").get("spec"):
                return to_response([cause("FieldValueInvalid", "spec in immutable after creation", "spec")])
            return None
        target = dig(restore, "spec", "target", default={}) or {}
        found = _target_causes(target, "spec.target")
        causes = list(dig(found, "details", "causes", default=[]) or []) if found else []
        for patch in dig(restore, "spec", "patches", default=[]) or []:
            causes += _patch_causes(patch)
        ns = restore.get("metadata", {}).get("namespace") or req.get("namespace")
        for other in self.sim.cache.vmrestores.items(ns):
            if other.get("spec", {}).get("target") == target and not dig(other, "status", "complete"):
                causes.append(cause("FieldValueInvalid", f'VirtualMachineRestore "{other["metadata"]["name"]}" '
                                    "in progress", "spec.target"))
        return to_response(causes) if causes else None


def _target_causes(ref, field):
    if ref.get("apiGroup") is None:
        return to_response([cause("FieldValueNotFound", "missing apiGroup", f"{field}.apiGroup")])
    if ref["apiGroup"] != "kubevirt.io":
        return to_response([cause("FieldValueInvalid", "invalid apiGroup", f"{field}.apiGroup")])
    if ref.get("kind") != "VirtualMachine":
        return to_response([cause("FieldValueInvalid", "invalid kind", f"{field}.kind")])
    return None


def _patch_causes(patch):
    """validatePatches: each `key: value` of a JSON patch operation given as text has one colon, and a "path" is
    under /spec/ (or a label or annotation)."""
    causes = []
    for pair in patch.strip("{}").split(","):
        parts = pair.split(":")
        if len(parts) != 2:
            causes.append(cause("FieldValueInvalid", 'patch format is not valid - one ":" expected in a single '
                                f"key-value json patch: {pair}", "spec.patches"))
            continue
        key, value = parts[0].strip(), parts[1].strip()
        if key == '"path"' and not value.startswith(('"/metadata/labels/', '"/metadata/annotations/', '"/spec/')):
            causes.append(cause("FieldValueInvalid", f"patching is valid only for elements under /spec/ only: {pair}",
                                "spec.patches"))
    return causes
