"""virt-api's VM mutator: spec.instancetype / spec.preference `inferFromVolume` (pkg/instancetype/infer).

At creation the matcher's name and kind are read from labels of what the named volume comes from:
a PVC; a DataVolume (its labels, else its source); a dataVolumeTemplate's source PVC or sourceRef
DataSource. A failure rejects the VM, unless inferFromVolumeFailurePolicy is
Ignore (v1.IgnoreInferFromVolumeFailure) and the failure is one KubeVirt may ignore (no label, a source it can't
read): then the matcher is dropped.
"""
from .kube import DV, PVC, ApiError, Resource
from .util import dig

DATASOURCE = Resource("cdi.kubevirt.io", "v1beta1", "datasources", "DataSource")
LABELS = {"instancetype": ("instancetype.kubevirt.io/default-instancetype",
                           "instancetype.kubevirt.io/default-instancetype-kind"),
          "preference": ("instancetype.kubevirt.io/default-preference",
                         "instancetype.kubevirt.io/default-preference-kind")}
IGNORE = "Ignore"   # v1.IgnoreInferFromVolumeFailure (api core/v1 types.go)


class Ignorable(Exception):
    """An inference failure that the Ignore policy lets pass."""


def _from_labels(labels, field):
    name_label, kind_label = LABELS[field]
    labels = labels or {}
    if name_label not in labels:
        raise Ignorable(f"unable to find required {name_label} label on the volume")
    return labels[name_label], labels.get(kind_label)


async def _get(kube, res, name, namespace):
    try:
        return await kube.get(res, name, namespace)
    except ApiError as exc:
        message = (exc.body or {}).get("message") if isinstance(exc.body, dict) else None
        raise ValueError(message or f'{res.plural}.{res.group or "core"} "{name}" not found') from None


async def _from_pvc(kube, name, namespace, field):
    return _from_labels(dig(await _get(kube, PVC, name, namespace), "metadata", "labels"), field)


async def _from_dv_spec(kube, spec, namespace, field):
    src_pvc = dig(spec, "source", "pvc")
    if src_pvc:
        return await _from_pvc(kube, src_pvc.get("name"), src_pvc.get("namespace") or namespace, field)
    ref = spec.get("sourceRef")
    if ref:
        if ref.get("kind") != "DataSource":
            raise Ignorable(f"unable to infer defaults from DataVolumeSourceRef as Kind {ref.get('kind')} is not "
                            "supported")
        ds = await _get(kube, DATASOURCE, ref.get("name"), ref.get("namespace") or namespace)
        try:
            return _from_labels(dig(ds, "metadata", "labels"), field)
        except Ignorable:
            pvc = dig(ds, "spec", "source", "pvc")
            if not pvc:
                raise Ignorable("unable to infer defaults from DataSource that doesn't provide "
                                "DataVolumeSourcePVC") from None
            return await _from_pvc(kube, pvc.get("name"), pvc.get("namespace"), field)
    raise Ignorable("unable to infer defaults from DataVolumeSpec as DataVolumeSource is not supported")


async def _from_volume(kube, vm, volume_name, field):
    namespace = vm["metadata"].get("namespace")
    for volume in dig(vm, "spec", "template", "spec", "volumes", default=[]) or []:
        if volume.get("name") != volume_name:
            continue
        if volume.get("persistentVolumeClaim"):
            return await _from_pvc(kube, volume["persistentVolumeClaim"].get("claimName"), namespace, field)
        if volume.get("dataVolume"):
            dv_name = volume["dataVolume"].get("name")
            for tpl in dig(vm, "spec", "dataVolumeTemplates", default=[]) or []:
                if dig(tpl, "metadata", "name") == dv_name:
                    return await _from_dv_spec(kube, tpl.get("spec") or {}, namespace, field)
            try:
                dv = await kube.get(DV, dv_name, namespace)
            except ApiError as exc:
                if exc.status == 404:   # a garbage-collected DataVolume: its PVC
                    return await _from_pvc(kube, dv_name, namespace, field)
                raise
            try:
                return _from_labels(dig(dv, "metadata", "labels"), field)
            except Ignorable:
                return await _from_dv_spec(kube, dv.get("spec") or {}, namespace, field)
        raise Ignorable(f"unable to infer defaults from volume {volume_name} as type is not supported")
    raise ValueError(f"unable to find volume {volume_name} to infer defaults")


async def infer(kube, vm):
    """The JSON patch operations for the VM's inferFromVolume matchers; raises ValueError to reject it."""
    ops = []
    for field in ("instancetype", "preference"):
        matcher = dig(vm, "spec", field)
        if not matcher or not matcher.get("inferFromVolume"):
            continue
        ignore = matcher.get("inferFromVolumeFailurePolicy") == IGNORE
        try:
            name, kind = await _from_volume(kube, vm, matcher["inferFromVolume"], field)
        except Ignorable as exc:
            if not ignore:
                raise ValueError(str(exc)) from None
            ops.append({"op": "remove", "path": f"/spec/{field}"})
            continue
        value = {"name": name}
        if kind:
            value["kind"] = kind
        ops.append({"op": "replace", "path": f"/spec/{field}", "value": value})
        if field == "instancetype" and ignore and dig(vm, "spec", "template", "spec", "domain", "memory"):
            ops.append({"op": "remove", "path": "/spec/template/spec/domain/memory"})
    return ops
