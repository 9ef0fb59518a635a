"""Shape checks for the lab's CustomResourceDefinitions (lab/crds/*.yaml).

The lab's kube-apiserver loads these files; a wrong list type or a missing status field would make the
lab kinder (or harsher) than a real KubeVirt cluster without any error, so the expectations below are
written out by hand from the upstream sources named at the top of each file.
"""

import pathlib
import re

import pytest
import yaml

CRD_DIR = pathlib.Path(__file__).resolve().parents[3] / "lab" / "crds"
FILES = sorted(CRD_DIR.glob("*.yaml"))

QUANTITY_PATTERN = (r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
                    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")

AGE = ("Age", ".metadata.creationTimestamp")

# name -> what KubeVirt / CDI / Multus declare for it.
EXPECTED = {
    "virtualmachines.kubevirt.io": dict(
        kind="VirtualMachine", version="v1", scope="Namespaced", short=["vm", "vms"], status=True,
        columns=[AGE, ("Status", ".status.printableStatus"), ("Ready", ".status.conditions[?(@.type=='Ready')].status")]),
    "virtualmachineinstances.kubevirt.io": dict(
        kind="VirtualMachineInstance", version="v1", scope="Namespaced", short=["vmi", "vmis"], status=False,
        columns=[AGE, ("Phase", ".status.phase"), ("IP", ".status.interfaces[0].ipAddress"),
                 ("NodeName", ".status.nodeName"),
                 ("Ready", ".status.conditions[?(@.type=='Ready')].status")]),
    "virtualmachineinstancemigrations.kubevirt.io": dict(
        kind="VirtualMachineInstanceMigration", version="v1", scope="Namespaced", short=["vmim", "vmims"],
        status=True, columns=[("Phase", ".status.phase"), ("VMI", ".spec.vmiName")]),
    "virtualmachineinstancetypes.instancetype.kubevirt.io": dict(
        kind="VirtualMachineInstancetype", version="v1beta1", scope="Namespaced",
        short=["vminstancetype", "vminstancetypes", "vmf", "vmfs"], status=False, columns=[]),
    "virtualmachineclusterinstancetypes.instancetype.kubevirt.io": dict(
        kind="VirtualMachineClusterInstancetype", version="v1beta1", scope="Cluster",
        short=["vmclusterinstancetype", "vmclusterinstancetypes", "vmcf", "vmcfs"], status=False, columns=[]),
    "virtualmachinepreferences.instancetype.kubevirt.io": dict(
        kind="VirtualMachinePreference", version="v1beta1", scope="Namespaced",
        short=["vmpref", "vmprefs", "vmp", "vmps"], status=False, columns=[]),
    "virtualmachineclusterpreferences.instancetype.kubevirt.io": dict(
        kind="VirtualMachineClusterPreference", version="v1beta1", scope="Cluster", short=["vmcp", "vmcps"],
        status=False, columns=[]),
    "virtualmachinesnapshots.snapshot.kubevirt.io": dict(
        kind="VirtualMachineSnapshot", version="v1beta1", scope="Namespaced",
        short=["vmsnapshot", "vmsnapshots"], status=True,
        columns=[("Phase", ".status.phase"), ("ReadyToUse", ".status.readyToUse")]),
    "virtualmachinerestores.snapshot.kubevirt.io": dict(
        kind="VirtualMachineRestore", version="v1beta1", scope="Namespaced", short=["vmrestore", "vmrestores"],
        status=True, columns=[("Complete", ".status.complete"), ("RestoreTime", ".status.restoreTime")]),
    "datavolumes.cdi.kubevirt.io": dict(
        kind="DataVolume", version="v1beta1", scope="Namespaced", short=["dv", "dvs"], status=True,
        columns=[("Phase", ".status.phase"), ("Progress", ".status.progress"),
                 ("Restarts", ".status.restartCount"), AGE]),
    "datasources.cdi.kubevirt.io": dict(
        kind="DataSource", version="v1beta1", scope="Namespaced", short=["das"], status=False, columns=[]),
    "network-attachment-definitions.k8s.cni.cncf.io": dict(
        kind="NetworkAttachmentDefinition", version="v1", scope="Namespaced", short=["net-attach-def"],
        status=False, columns=[]),
}

VMI_SPEC = "spec"
VM_TEMPLATE = "spec.template.spec"

# Every list semantic the upstream generated schemas declare on the paths we model, per CRD, relative
# to the VMI spec / status where shared. Anything not listed here must carry no list type (atomic).
VMI_SPEC_LISTS = {
    "accessCredentials": ("atomic", None),
    "accessCredentials[].sshPublicKey.propagationMethod.qemuGuestAgent.users": ("set", None),
    "domain.devices.filesystems": ("atomic", None),
    "domain.devices.gpus": ("atomic", None),
    "domain.devices.hostDevices": ("atomic", None),
    "domain.devices.interfaces[].portRanges": ("atomic", None),
    "resourceClaims": ("map", ["name"]),
    "topologySpreadConstraints": ("map", ["topologyKey", "whenUnsatisfiable"]),
    "topologySpreadConstraints[].labelSelector.matchExpressions": ("atomic", None),
    "topologySpreadConstraints[].labelSelector.matchExpressions[].values": ("atomic", None),
    "topologySpreadConstraints[].matchLabelKeys": ("atomic", None),
    "utilityVolumes": ("map", ["name"]),
}
MIGRATION_STATE_LISTS = {"targetCPUSet": ("atomic", None)}
VMI_STATUS_LISTS = {
    "migratedVolumes": ("atomic", None),
    "migratedVolumes[].destinationPVCInfo.accessModes": ("atomic", None),
    "migratedVolumes[].sourcePVCInfo.accessModes": ("atomic", None),
    "phaseTransitionTimestamps": ("atomic", None),
    "volumeStatus": ("atomic", None),
    "volumeStatus[].persistentVolumeClaimInfo.accessModes": ("atomic", None),
    **{"migrationState." + k: v for k, v in MIGRATION_STATE_LISTS.items()},
}
DV_SPEC_LISTS = {
    "pvc.accessModes": ("atomic", None),
    "pvc.selector.matchExpressions": ("atomic", None),
    "pvc.selector.matchExpressions[].values": ("atomic", None),
    "storage.selector.matchExpressions": ("atomic", None),
    "storage.selector.matchExpressions[].values": ("atomic", None),
}
VM_STATUS_LISTS = {
    "volumeRequests": ("atomic", None),
    "volumeRequests[].addVolumeOptions.dryRun": ("atomic", None),
    "volumeRequests[].removeVolumeOptions.dryRun": ("atomic", None),
}


def _prefixed(prefix, table):
    return {f"{prefix}.{k}": v for k, v in table.items()}


INSTANCETYPE_LISTS = {"spec.gpus": ("atomic", None), "spec.hostDevices": ("atomic", None)}
EXPECTED_LISTS = {
    "virtualmachineinstances.kubevirt.io": {
        **_prefixed(VMI_SPEC, VMI_SPEC_LISTS), **_prefixed("status", VMI_STATUS_LISTS)},
    "virtualmachines.kubevirt.io": {
        **_prefixed(VM_TEMPLATE, VMI_SPEC_LISTS),
        **_prefixed("spec.dataVolumeTemplates[].spec", DV_SPEC_LISTS),
        **_prefixed("status", VM_STATUS_LISTS)},
    "virtualmachineinstancemigrations.kubevirt.io": {
        "status.phaseTransitionTimestamps": ("atomic", None),
        "status.synchronizationAddresses": ("atomic", None),
        **_prefixed("status.migrationState", MIGRATION_STATE_LISTS)},
    "datavolumes.cdi.kubevirt.io": _prefixed("spec", DV_SPEC_LISTS),
    "datasources.cdi.kubevirt.io": {},
    "virtualmachineinstancetypes.instancetype.kubevirt.io": INSTANCETYPE_LISTS,
    "virtualmachineclusterinstancetypes.instancetype.kubevirt.io": INSTANCETYPE_LISTS,
    "virtualmachinepreferences.instancetype.kubevirt.io": {},
    "virtualmachineclusterpreferences.instancetype.kubevirt.io": {},
    "virtualmachinesnapshots.snapshot.kubevirt.io": {
        "status.conditions": ("atomic", None),
        "status.indications": ("set", None),
        "status.snapshotVolumes.excludedVolumes": ("set", None),
        "status.snapshotVolumes.includedVolumes": ("set", None),
        "status.sourceIndications": ("atomic", None)},
    "virtualmachinerestores.snapshot.kubevirt.io": {
        "spec.patches": ("atomic", None),
        "spec.volumeRestoreOverrides": ("atomic", None),
        "status.conditions": ("atomic", None),
        "status.deletedDataVolumes": ("set", None),
        "status.restores": ("atomic", None)},
    "network-attachment-definitions.k8s.cni.cncf.io": {},
}

# Lists that server-side apply must treat as atomic (upstream declares nothing): guard against someone
# "helpfully" turning them into maps, which would make the lab merge where a real cluster replaces.
MUST_BE_ATOMIC_BY_DEFAULT = {
    "virtualmachines.kubevirt.io": [
        "spec.dataVolumeTemplates", "status.conditions", "status.stateChangeRequests",
        "status.volumeSnapshotStatuses",
        *(f"{VM_TEMPLATE}.{p}" for p in ("domain.devices.disks", "domain.devices.interfaces", "networks",
                                          "volumes", "tolerations", "domain.devices.interfaces[].ports"))],
    "virtualmachineinstances.kubevirt.io": [
        "spec.domain.devices.disks", "spec.domain.devices.interfaces", "spec.networks", "spec.volumes",
        "spec.tolerations", "status.conditions", "status.interfaces", "status.interfaces[].ipAddresses"],
    "datavolumes.cdi.kubevirt.io": ["status.conditions", "spec.storage.accessModes"],
    "virtualmachineinstancemigrations.kubevirt.io": ["status.conditions"],
}

# Fields the collection writes in a VM/VMI spec (relative to the VMI spec / VM template spec).
WRITTEN_SPEC_FIELDS = [
    "domain.cpu.cores", "domain.cpu.sockets", "domain.cpu.threads", "domain.cpu.model",
    "domain.cpu.dedicatedCpuPlacement", "domain.memory.guest", "domain.memory.hugepages.pageSize",
    "domain.resources.requests", "domain.resources.limits", "domain.resources.overcommitGuestOverhead",
    "domain.firmware.uuid", "domain.firmware.serial", "domain.firmware.bootloader.bios.useSerial",
    "domain.firmware.bootloader.efi.secureBoot", "domain.firmware.bootloader.efi.persistent",
    "domain.machine.type", "domain.features", "domain.clock",
    "domain.devices.disks[].name", "domain.devices.disks[].disk.bus", "domain.devices.disks[].disk.readonly",
    "domain.devices.disks[].cdrom.bus", "domain.devices.disks[].cdrom.readonly",
    "domain.devices.disks[].lun.bus", "domain.devices.disks[].bootOrder", "domain.devices.disks[].serial",
    "domain.devices.disks[].cache", "domain.devices.disks[].io", "domain.devices.disks[].dedicatedIOThread",
    "domain.devices.interfaces[].name", "domain.devices.interfaces[].bridge",
    "domain.devices.interfaces[].masquerade", "domain.devices.interfaces[].sriov",
    "domain.devices.interfaces[].binding.name", "domain.devices.interfaces[].model",
    "domain.devices.interfaces[].macAddress", "domain.devices.interfaces[].pciAddress",
    "domain.devices.interfaces[].bootOrder", "domain.devices.interfaces[].ports[].name",
    "domain.devices.interfaces[].ports[].protocol", "domain.devices.interfaces[].ports[].port",
    "domain.devices.autoattachGraphicsDevice", "domain.devices.autoattachSerialConsole",
    "domain.devices.rng", "domain.devices.networkInterfaceMultiqueue",
    "networks[].name", "networks[].pod.vmNetworkCIDR", "networks[].pod.vmIPv6NetworkCIDR",
    "networks[].multus.networkName", "networks[].multus.default",
    "volumes[].name", "volumes[].containerDisk.image", "volumes[].containerDisk.imagePullPolicy",
    "volumes[].containerDisk.path", "volumes[].persistentVolumeClaim.claimName",
    "volumes[].persistentVolumeClaim.readOnly", "volumes[].persistentVolumeClaim.hotpluggable",
    "volumes[].dataVolume.name", "volumes[].dataVolume.hotpluggable",
    *(f"volumes[].{ci}.{f}" for ci in ("cloudInitNoCloud", "cloudInitConfigDrive")
      for f in ("userData", "userDataBase64", "secretRef.name", "networkData", "networkDataBase64",
                "networkDataSecretRef.name")),
    "volumes[].emptyDisk.capacity", "volumes[].ephemeral.persistentVolumeClaim.claimName",
    "volumes[].secret.secretName", "volumes[].configMap.name", "volumes[].serviceAccount.serviceAccountName",
    "volumes[].sysprep.secret.name", "volumes[].hostDisk.path", "volumes[].downwardAPI.fields",
    "nodeSelector", "tolerations[].key", "affinity", "evictionStrategy", "terminationGracePeriodSeconds",
    "hostname", "subdomain", "accessCredentials[].sshPublicKey.source.secret.secretName",
    "readinessProbe", "livenessProbe", "priorityClassName", "schedulerName", "startStrategy", "architecture",
]
WRITTEN_VM_SPEC_FIELDS = [
    "spec.runStrategy", "spec.running", "spec.instancetype.name", "spec.instancetype.kind",
    "spec.instancetype.revisionName", "spec.preference.name", "spec.preference.kind",
    "spec.template.metadata", "spec.dataVolumeTemplates[].metadata",
    "spec.dataVolumeTemplates[].spec.source.http.url", "spec.dataVolumeTemplates[].spec.source.registry.url",
    "spec.dataVolumeTemplates[].spec.source.pvc.name", "spec.dataVolumeTemplates[].spec.source.blank",
    "spec.dataVolumeTemplates[].spec.sourceRef.name", "spec.dataVolumeTemplates[].spec.storage.resources.requests",
    "spec.dataVolumeTemplates[].spec.storage.storageClassName",
    "spec.dataVolumeTemplates[].spec.pvc.resources.requests",
]

# Status fields the simulator writes: anything missing would be pruned silently by the apiserver.
STATUS_FIELDS = {
    "virtualmachines.kubevirt.io": [
        "printableStatus", "ready", "created", "runStrategy", "desiredGeneration", "observedGeneration",
        *(f"conditions[].{f}" for f in ("type", "status", "reason", "message", "lastProbeTime",
                                         "lastTransitionTime")),
        "stateChangeRequests[].action", "stateChangeRequests[].data", "stateChangeRequests[].uid",
        "volumeRequests[].addVolumeOptions.name", "volumeRequests[].addVolumeOptions.disk",
        "volumeRequests[].addVolumeOptions.volumeSource", "volumeRequests[].addVolumeOptions.dryRun",
        "volumeRequests[].removeVolumeOptions.name", "volumeRequests[].removeVolumeOptions.dryRun",
        "volumeSnapshotStatuses[].name", "startFailure.lastFailedVMIUID",
        "startFailure.consecutiveFailCount", "startFailure.retryAfterTimestamp", "restoreInProgress",
        "snapshotInProgress", "memoryDumpRequest.phase", "instancetypeRef.name", "preferenceRef.name",
    ],
    "virtualmachineinstances.kubevirt.io": [
        "phase", "phaseTransitionTimestamps[].phase", "phaseTransitionTimestamps[].phaseTransitionTimestamp",
        "nodeName", "reason", "conditions[].type", "conditions[].status", "conditions[].lastProbeTime",
        *(f"interfaces[].{f}" for f in ("name", "ipAddress", "ipAddresses", "mac", "interfaceName",
                                         "infoSource", "queueCount", "linkState", "podInterfaceName")),
        *(f"guestOSInfo.{f}" for f in ("id", "name", "prettyName", "version", "versionId", "kernelRelease",
                                        "kernelVersion", "machine")),
        *(f"migrationState.{f}" for f in ("sourceNode", "targetNode", "targetPod", "startTimestamp",
                                           "endTimestamp", "completed", "failed", "abortRequested",
                                           "migrationUid", "mode", "sourcePod", "targetNodeAddress")),
        "migrationMethod", "migrationTransport", "activePods",
        *(f"volumeStatus[].{f}" for f in ("name", "target", "phase", "reason", "message",
                                           "hotplugVolume.attachPodName", "hotplugVolume.attachPodUID",
                                           "persistentVolumeClaimInfo.claimName", "size")),
        "launcherContainerImageVersion", "qosClass", "evacuationNodeName", "selinuxContext", "fsFreezeStatus",
        "currentCPUTopology.cores", "currentCPUTopology.sockets", "currentCPUTopology.threads",
        "memory.guestAtBoot", "memory.guestCurrent", "memory.guestRequested", "machine.type", "runtimeUser",
        "virtualMachineRevisionName",
    ],
    "virtualmachineinstancemigrations.kubevirt.io": [
        "phase", "phaseTransitionTimestamps[].phase", "migrationState.targetNode", "conditions[].type"],
    "datavolumes.cdi.kubevirt.io": [
        "phase", "progress", "restartCount", "claimName", "conditions[].type", "conditions[].status",
        "conditions[].reason", "conditions[].message", "conditions[].lastTransitionTime"],
    "virtualmachinesnapshots.snapshot.kubevirt.io": [
        "phase", "readyToUse", "conditions[].type", "creationTime", "virtualMachineSnapshotContentName",
        "error.message"],
    "virtualmachinerestores.snapshot.kubevirt.io": ["complete", "restoreTime", "conditions[].type"],
}

# Quantities must look like generated Kubernetes quantities: int-or-string + the quantity pattern.
QUANTITY_FIELDS = {
    "virtualmachines.kubevirt.io": [
        f"{VM_TEMPLATE}.domain.memory.guest", f"{VM_TEMPLATE}.domain.resources.requests{{}}",
        f"{VM_TEMPLATE}.domain.resources.limits{{}}", f"{VM_TEMPLATE}.volumes[].emptyDisk.capacity",
        "spec.dataVolumeTemplates[].spec.storage.resources.requests{}",
        "spec.dataVolumeTemplates[].spec.pvc.resources.requests{}"],
    "virtualmachineinstances.kubevirt.io": [
        "spec.domain.memory.guest", "spec.domain.resources.requests{}", "status.memory.guestAtBoot",
        "status.memory.guestCurrent", "status.memory.guestRequested"],
    "datavolumes.cdi.kubevirt.io": ["spec.storage.resources.requests{}", "spec.pvc.resources.requests{}"],
    "virtualmachineinstancetypes.instancetype.kubevirt.io": ["spec.memory.guest"],
    "virtualmachineclusterinstancetypes.instancetype.kubevirt.io": ["spec.memory.guest"],
}


def _load(path):
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    assert len(docs) == 1, f"{path.name}: one CRD per file"
    return docs[0]


CRDS = {}
for _path in FILES:
    _crd = _load(_path)
    CRDS[_crd["metadata"]["name"]] = (_path, _crd)


def schema_of(name):
    return CRDS[name][1]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def node(schema, path):
    """Walk 'a.b[].c{}' (`[]` = array items, `{}` = map values) from an object schema."""
    cur = schema
    for part in path.split("."):
        suffixes = re.findall(r"\[\]|\{\}", part)
        key = re.sub(r"\[\]|\{\}", "", part)
        props = cur.get("properties")
        assert props is not None and key in props, f"no field {key!r} on the way to {path!r}"
        cur = props[key]
        for s in suffixes:
            cur = cur["items"] if s == "[]" else cur["additionalProperties"]
            assert isinstance(cur, dict), f"{path!r}: {s} does not lead to a schema"
    return cur


def walk(schema, path="", parent_is_root=True):
    """Yield (path, schema) for every schema node, with the path notation of node()."""
    yield path, schema
    for key, sub in (schema.get("properties") or {}).items():
        yield from walk(sub, f"{path}.{key}" if path else key, False)
    if isinstance(schema.get("items"), dict):
        yield from walk(schema["items"], path + "[]", False)
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], path + "{}", False)


def test_every_expected_crd_has_exactly_one_file():
    assert sorted(CRDS) == sorted(EXPECTED)
    assert len(FILES) == len(EXPECTED)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_file_is_a_crd_named_after_its_resource(path):
    crd = _load(path)
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    spec = crd["spec"]
    assert crd["metadata"]["name"] == f"{spec['names']['plural']}.{spec['group']}"
    assert path.name == f"{spec['group']}_{spec['names']['plural']}.yaml"
    text = path.read_text()
    assert text.startswith("#") and "Upstream read:" in text.split("apiVersion:")[0], \
        "header comment must say which upstream version was read"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_names_scope_and_versions(name):
    exp = EXPECTED[name]
    spec = CRDS[name][1]["spec"]
    names = spec["names"]
    assert spec["group"] == name.split(".", 1)[1]
    assert names["kind"] == exp["kind"]
    assert names["listKind"] == exp["kind"] + "List"
    assert names["plural"] == name.split(".", 1)[0]
    assert names["singular"] == names["plural"][:-1]
    assert names.get("shortNames", []) == exp["short"]
    assert spec["scope"] == exp["scope"]
    versions = spec["versions"]
    assert [v["name"] for v in versions if v["storage"]] == [exp["version"]], "exactly one storage version"
    assert all(v["served"] for v in versions)
    for v in versions:
        assert v["schema"]["openAPIV3Schema"]["type"] == "object"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_status_subresource_exactly_where_upstream_has_one(name):
    for v in CRDS[name][1]["spec"]["versions"]:
        subresources = v.get("subresources") or {}
        assert ("status" in subresources) is EXPECTED[name]["status"]
        assert set(subresources) <= {"status"}
        if EXPECTED[name]["status"]:
            assert "status" in v["schema"]["openAPIV3Schema"]["properties"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_printer_columns(name):
    cols = CRDS[name][1]["spec"]["versions"][0].get("additionalPrinterColumns", [])
    shown = [(c["name"], c["jsonPath"]) for c in cols if not c.get("priority")]
    expected = EXPECTED[name]["columns"]
    # the listed columns appear, in that order, among the default (priority 0) columns
    assert [c for c in shown if c in expected] == expected
    for c in cols:
        assert c["type"] in {"string", "integer", "number", "boolean", "date"}
        assert c["jsonPath"].startswith(".")
    if name.startswith("virtualmachineinstances."):
        assert shown == expected


def test_vm_run_strategy_enum_rejects_sometimes():
    run_strategy = node(schema_of("virtualmachines.kubevirt.io"), "spec.runStrategy")
    assert run_strategy["type"] == "string"
    assert sorted(run_strategy["enum"]) == sorted(["Always", "Halted", "Manual", "RerunOnFailure", "Once"])
    assert "Sometimes" not in run_strategy["enum"]
    assert node(schema_of("virtualmachines.kubevirt.io"), "spec.running")["type"] == "boolean"


@pytest.mark.parametrize("name,path,values", [
    ("virtualmachines.kubevirt.io", f"{VM_TEMPLATE}.evictionStrategy",
     ["None", "LiveMigrate", "LiveMigrateIfPossible", "External"]),
    ("virtualmachines.kubevirt.io", f"{VM_TEMPLATE}.startStrategy", ["Paused"]),
    ("virtualmachines.kubevirt.io", f"{VM_TEMPLATE}.domain.devices.disks[].disk.bus",
     ["virtio", "sata", "scsi", "usb"]),
    ("virtualmachineinstances.kubevirt.io", "status.phase",
     ["Pending", "Scheduling", "Scheduled", "Running", "Succeeded", "Failed", "Unknown"]),
    ("virtualmachineinstancemigrations.kubevirt.io", "status.phase",
     ["Pending", "Scheduling", "Scheduled", "PreparingTarget", "TargetReady", "Running", "Succeeded",
      "Failed"]),
    ("datavolumes.cdi.kubevirt.io", "spec.contentType", ["kubevirt", "archive"]),
])
def test_enums(name, path, values):
    assert sorted(node(schema_of(name), path)["enum"]) == sorted(values)


def test_datavolume_phase_enum_covers_the_simulated_phases():
    phases = node(schema_of("datavolumes.cdi.kubevirt.io"), "status.phase")["enum"]
    for p in ("Pending", "PVCBound", "ImportScheduled", "ImportInProgress", "CloneScheduled",
              "CloneInProgress", "UploadScheduled", "UploadReady", "WaitForFirstConsumer",
              "PendingPopulation", "Paused", "Succeeded", "Failed", "Unknown"):
        assert p in phases


def test_interface_model_is_a_free_string():
    model = node(schema_of("virtualmachines.kubevirt.io"), f"{VM_TEMPLATE}.domain.devices.interfaces[].model")
    assert model == {**model, "type": "string"} and "enum" not in model


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_schema_is_structural(name):
    problems = []
    for path, s in walk(schema_of(name)):
        here = path or "<root>"
        if s.get("x-kubernetes-int-or-string"):
            if s.get("anyOf") != [{"type": "integer"}, {"type": "string"}] or "type" in s:
                problems.append(f"{here}: int-or-string must be anyOf integer/string without a type")
            continue
        if "type" not in s:
            problems.append(f"{here}: no type")
            continue
        if "anyOf" in s or "oneOf" in s or "allOf" in s:
            problems.append(f"{here}: composition outside int-or-string")
        t = s["type"]
        if "enum" in s:
            pytype = {"string": str, "integer": int, "boolean": bool}[t]
            assert all(isinstance(v, pytype) for v in s["enum"]), here
        if "required" in s:
            missing = set(s["required"]) - set(s.get("properties") or {})
            if missing:
                problems.append(f"{here}: required {sorted(missing)} not in properties")
        if t == "array" and not isinstance(s.get("items"), dict):
            problems.append(f"{here}: array without an items schema")
        if t != "array" and any(k.startswith("x-kubernetes-list") for k in s):
            problems.append(f"{here}: list semantics on a {t}")
        if t == "object":
            # root metadata is the apiserver's own; everything else says what it holds: named fields
            # (properties, empty for KubeVirt's marker structs such as bridge{}), a map
            # (additionalProperties), or an explicitly preserved subtree.
            kinds = [k for k in ("properties", "additionalProperties", "x-kubernetes-preserve-unknown-fields")
                     if k in s]
            if path != "metadata" and not kinds:
                problems.append(f"{here}: object with neither properties nor preserve-unknown-fields")
            if "properties" in s and "additionalProperties" in s:
                problems.append(f"{here}: properties and additionalProperties together")
    assert problems == []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_list_maps_have_required_scalar_keys(name):
    found = 0
    for path, s in walk(schema_of(name)):
        if s.get("type") != "array":
            continue
        lt = s.get("x-kubernetes-list-type")
        keys = s.get("x-kubernetes-list-map-keys")
        assert lt in (None, "atomic", "set", "map"), path
        if lt == "map":
            found += 1
            items = s["items"]
            assert keys, f"{path}: list-type map without map keys"
            assert items["type"] == "object"
            for k in keys:
                assert k in items.get("required", []), f"{path}: map key {k} must be required"
                assert items["properties"][k]["type"] in ("string", "integer", "boolean"), path
        else:
            assert keys is None, f"{path}: map keys without list-type map"
        if lt == "set":
            assert s["items"]["type"] in ("string", "integer", "number", "boolean"), f"{path}: set of non-scalars"
    expected_maps = sum(1 for lt, _ in EXPECTED_LISTS[name].values() if lt == "map")
    assert found == expected_maps


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_list_semantics_are_exactly_upstreams(name):
    declared = {}
    for path, s in walk(schema_of(name)):
        if s.get("type") == "array" and "x-kubernetes-list-type" in s:
            declared[path] = (s["x-kubernetes-list-type"], s.get("x-kubernetes-list-map-keys"))
    assert declared == EXPECTED_LISTS[name]


@pytest.mark.parametrize("name,path", [(n, p) for n, paths in MUST_BE_ATOMIC_BY_DEFAULT.items() for p in paths])
def test_lists_upstream_leaves_atomic(name, path):
    s = node(schema_of(name), path)
    assert s["type"] == "array"
    assert "x-kubernetes-list-type" not in s and "x-kubernetes-list-map-keys" not in s


@pytest.mark.parametrize("name,path", [
    ("virtualmachines.kubevirt.io", f"{VM_TEMPLATE}.volumes[].configMap"),
    ("virtualmachines.kubevirt.io", f"{VM_TEMPLATE}.volumes[].cloudInitNoCloud.secretRef"),
    ("virtualmachines.kubevirt.io", f"{VM_TEMPLATE}.volumes[].cloudInitConfigDrive.networkDataSecretRef"),
    ("virtualmachines.kubevirt.io", f"{VM_TEMPLATE}.volumes[].sysprep.secret"),
    ("virtualmachines.kubevirt.io", "spec.dataVolumeTemplates[].spec.pvc.dataSource"),
    ("virtualmachines.kubevirt.io", "spec.dataVolumeTemplates[].spec.pvc.selector"),
    ("virtualmachineinstances.kubevirt.io", "spec.topologySpreadConstraints[].labelSelector"),
    ("virtualmachinesnapshots.snapshot.kubevirt.io", "spec.source"),
    ("virtualmachinerestores.snapshot.kubevirt.io", "spec.target"),
])
def test_atomic_structs_as_upstream(name, path):
    assert node(schema_of(name), path)["x-kubernetes-map-type"] == "atomic"


def test_map_types_are_only_where_upstream_declares_them():
    allowed_suffixes = ("configMap", "secretRef", "networkDataSecretRef", "sysprep.secret", "sysprep.configMap",
                        "dataSource", "selector", "labelSelector", "spec.source", "spec.target")
    for name in EXPECTED:
        for path, s in walk(schema_of(name)):
            if "x-kubernetes-map-type" in s:
                assert s["x-kubernetes-map-type"] == "atomic"
                assert path.endswith(allowed_suffixes), f"{name}: unexpected map type at {path}"


def test_vm_template_spec_is_the_vmi_spec():
    assert node(schema_of("virtualmachines.kubevirt.io"), VM_TEMPLATE) == \
        node(schema_of("virtualmachineinstances.kubevirt.io"), VMI_SPEC)


def test_vm_data_volume_templates_carry_the_datavolume_spec():
    assert node(schema_of("virtualmachines.kubevirt.io"), "spec.dataVolumeTemplates[].spec") == \
        node(schema_of("datavolumes.cdi.kubevirt.io"), "spec")


@pytest.mark.parametrize("field", WRITTEN_SPEC_FIELDS)
@pytest.mark.parametrize("prefix", [VM_TEMPLATE, VMI_SPEC])
def test_spec_fields_the_collection_writes_are_typed(prefix, field):
    name = "virtualmachines.kubevirt.io" if prefix == VM_TEMPLATE else "virtualmachineinstances.kubevirt.io"
    s = node(schema_of(name), f"{prefix}.{field}")
    assert "type" in s or s.get("x-kubernetes-int-or-string")


@pytest.mark.parametrize("path", WRITTEN_VM_SPEC_FIELDS)
def test_vm_spec_fields_the_collection_writes_are_typed(path):
    s = node(schema_of("virtualmachines.kubevirt.io"), path)
    assert "type" in s or s.get("x-kubernetes-int-or-string")


@pytest.mark.parametrize("name,field", [(n, f) for n, fields in STATUS_FIELDS.items() for f in fields])
def test_status_fields_the_simulator_writes_are_kept(name, field):
    s = node(schema_of(name), f"status.{field}")
    assert "type" in s or s.get("x-kubernetes-int-or-string")


def test_status_free_form_maps_are_string_maps():
    vm = schema_of("virtualmachines.kubevirt.io")
    assert node(vm, "status.stateChangeRequests[].data")["additionalProperties"] == {"type": "string"}
    vmi = schema_of("virtualmachineinstances.kubevirt.io")
    assert node(vmi, "status.activePods")["additionalProperties"] == {"type": "string"}


@pytest.mark.parametrize("name,path", [(n, p) for n, paths in QUANTITY_FIELDS.items() for p in paths])
def test_quantities_are_int_or_string_with_the_quantity_pattern(name, path):
    s = node(schema_of(name), path)
    assert s["x-kubernetes-int-or-string"] is True
    assert s["anyOf"] == [{"type": "integer"}, {"type": "string"}]
    assert s["pattern"] == QUANTITY_PATTERN


def test_every_int_or_string_is_a_quantity():
    for name in EXPECTED:
        for path, s in walk(schema_of(name)):
            if s.get("x-kubernetes-int-or-string"):
                assert s.get("pattern") == QUANTITY_PATTERN, f"{name}: {path}"


@pytest.mark.parametrize("value,ok", [
    ("1Gi", True), ("512Mi", True), ("100m", True), ("1.5", True), ("2e3", True), ("+1G", True),
    ("1GB", False), ("1 Gi", False), ("Gi", False), ("", False),
])
def test_quantity_pattern(value, ok):
    assert bool(re.match(QUANTITY_PATTERN, value)) is ok


@pytest.mark.parametrize("name,path", [
    ("virtualmachines.kubevirt.io", "spec.template.metadata"),
    ("virtualmachines.kubevirt.io", "spec.dataVolumeTemplates[].metadata"),
])
def test_embedded_metadata_is_preserved_as_upstream(name, path):
    s = node(schema_of(name), path)
    assert s["x-kubernetes-preserve-unknown-fields"] is True and s["nullable"] is True


def test_preserved_subtrees_are_the_documented_ones():
    """Preserve-unknown only for big subtrees the collection never interprets; each says so."""
    for name in EXPECTED:
        for path, s in walk(schema_of(name)):
            if s.get("x-kubernetes-preserve-unknown-fields"):
                if path.endswith("metadata"):
                    continue
                assert s.get("description", "").startswith("Lab:"), f"{name}: {path} preserved without a note"
                assert not path.startswith("status.conditions"), path
    vmi = schema_of("virtualmachineinstances.kubevirt.io")
    for path in ("spec.affinity", "spec.domain.features", "spec.domain.clock", "spec.readinessProbe",
                 "spec.livenessProbe"):
        assert node(vmi, path)["x-kubernetes-preserve-unknown-fields"] is True


def test_the_printable_status_defaults_like_upstream():
    s = node(schema_of("virtualmachines.kubevirt.io"), "status.printableStatus")
    assert s["default"] == "Stopped"


def test_network_attachment_definition_config_is_a_string():
    s = schema_of("network-attachment-definitions.k8s.cni.cncf.io")
    assert node(s, "spec.config") == {**node(s, "spec.config"), "type": "string"}
    assert node(s, "spec")["required"] == ["config"]
