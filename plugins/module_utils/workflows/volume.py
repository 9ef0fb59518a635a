# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The volume module: PersistentVolumeClaims and CDI DataVolumes.

Pure builders (options -> object), an immutability check that says which field differs, waits
that follow a DataVolume's phases and import progress, and the module's run. A DataVolume's spec
can't change (CDI's webhook: "Cannot update DataVolume Spec"); a PVC's spec only grows.
"""

from __future__ import annotations

import json
import time

from ansible_collections.virtops.kubevirt.plugins.module_utils import runner
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import parallel, writes
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import (
    ApiError,
    InputError,
    KubevirtError,
    WaitFailed,
    WaitTimeout,
    one_line,
)
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import spec as vmspec
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import preflight
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import wait as waiter
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.redact import diff_of
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.state import condition, condition_true, owner
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.summary import conditions_not_ok

CDI_API_VERSION = "cdi.kubevirt.io/v1beta1"
ACCESS_MODES = ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"]
VOLUME_MODES = ["Filesystem", "Block"]
SOURCE_KEYS = ("blank", "http", "registry", "pvc", "upload", "data_source")
STORAGE_CLASS = res.BY_KIND["StorageClass"]
DV_OWNER_ANNOTATION = "cdi.kubevirt.io/createdForDataVolume"
# Phases at which a wait for a DataVolume ends without the data being there (yet), and why.
DV_PARKED = {
    "WaitForFirstConsumer": "its PVC waits for its first consumer (a WaitForFirstConsumer storage class): CDI binds "
                            "and fills it when a VM that uses it is scheduled",
    "PendingPopulation": "its PVC waits for its first consumer before the populator fills it",
    "UploadReady": "it is ready for an upload (virtctl image-upload dv NAME --image-path=...)",
}

URL_SPEC = dict(
    url=dict(type="str", required=True),
    secret_ref=dict(type="str", no_log=False),
    cert_config_map=dict(type="str"),
)
REGISTRY_SPEC = dict(URL_SPEC, pull_method=dict(type="str", choices=["pod", "node"]))
REF_SPEC = dict(name=dict(type="str", required=True), namespace=dict(type="str"))
SOURCE_SPEC = dict(
    blank=dict(type="bool"),
    http=dict(type="dict", options=URL_SPEC),
    registry=dict(type="dict", options=REGISTRY_SPEC),
    pvc=dict(type="dict", options=REF_SPEC),
    upload=dict(type="bool"),
    data_source=dict(type="dict", options=REF_SPEC),
)


def argument_spec():
    spec = dict(
        name=dict(type="str", required=True),
        namespace=dict(type="str"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        kind=dict(type="str", choices=["datavolume", "pvc"], default="datavolume"),
        size=dict(type="str"),
        storage_class=dict(type="str"),
        access_modes=dict(type="list", elements="str", choices=ACCESS_MODES),
        volume_mode=dict(type="str", choices=VOLUME_MODES),
        storage_api=dict(type="str", choices=["storage", "pvc"], default="storage"),
        source=dict(type="dict", options=SOURCE_SPEC, mutually_exclusive=[list(SOURCE_KEYS)]),
        labels=dict(type="dict"),
        annotations=dict(type="dict"),
        recreate=dict(type="bool", default=False),
        wait=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=300),
        max_restarts=dict(type="int", default=3),
    )
    spec.update(runner.auth_spec())
    return spec


# -- builders -------------------------------------------------------------------------------------
def _source_kind(source):
    given = [k for k in SOURCE_KEYS if (source or {}).get(k)]
    if len(given) > 1:
        raise InputError("source has %d entries (%s); give exactly one of %s." % (
            len(given), ", ".join(given), ", ".join(SOURCE_KEYS)))
    return given[0] if given else "blank"


def _url(kind, value):
    url = (value.get("url") or "").strip()
    if kind == "http":
        if not url.startswith(("http://", "https://")):
            raise InputError("source.http.url %r must start with http:// or https://." % url)
    elif "://" not in url:
        url = "docker://" + url
    elif not url.startswith(("docker://", "oci-archive://")):
        raise InputError("source.registry.url %r must be an image such as quay.io/containerdisks/fedora:41 "
                         "(docker:// or oci-archive:// may be given)." % url)
    out = {"url": url}
    if value.get("secret_ref"):
        out["secretRef"] = value["secret_ref"]
    if value.get("cert_config_map"):
        out["certConfigMap"] = value["cert_config_map"]
    if kind == "registry" and value.get("pull_method"):
        out["pullMethod"] = value["pull_method"]
    return out


def _labels(params):
    return vmspec.p_labels(params)


def _annotations(params):
    return vmspec.p_annotations(params)


def _metadata(params, name, namespace):
    meta = {"name": name, "namespace": namespace}
    if _labels(params):
        meta["labels"] = _labels(params)
    if _annotations(params):
        meta["annotations"] = _annotations(params)
    return meta


def _size(params, required, what):
    if params.get("size") is None:
        if required:
            raise InputError("size is required to create %s (for example size: 10Gi)." % what)
        return None
    return vmspec.check_quantity(params["size"], "size", min_bytes=2 ** 20)


def _target(params, size, default_modes):
    target = {}
    if params.get("access_modes"):
        target["accessModes"] = list(params["access_modes"])
    elif default_modes:
        target["accessModes"] = ["ReadWriteOnce"]
    if size:
        target["resources"] = {"requests": {"storage": size}}
    if params.get("storage_class"):
        target["storageClassName"] = params["storage_class"]
    if params.get("volume_mode"):
        target["volumeMode"] = params["volume_mode"]
    return target


def build_datavolume(params, name, namespace, existing=False):
    """The DataVolume to create for the options (``existing``: it exists, so size may be left out)."""
    source = params.get("source") or {}
    kind = _source_kind(source)
    spec = {}
    if kind == "blank":
        spec["source"] = {"blank": {}}
    elif kind in ("http", "registry"):
        spec["source"] = {kind: _url(kind, source[kind])}
    elif kind == "pvc":
        ref = source["pvc"]
        res.check_name(ref.get("name"), "source.pvc.name", max_len=253)
        spec["source"] = {"pvc": {"namespace": ref.get("namespace") or namespace, "name": ref["name"]}}
    elif kind == "upload":
        spec["source"] = {"upload": {}}
    else:
        ref = source["data_source"]
        spec["sourceRef"] = {"kind": "DataSource", "name": ref["name"], "namespace": ref.get("namespace") or namespace}
    # With the storage API CDI can size a clone from its source; everything else needs a size.
    storage_api = params.get("storage_api") or "storage"
    size = _size(params, not existing and not (storage_api == "storage" and kind in ("pvc", "data_source")),
                 "a DataVolume")
    target_key = "storage" if storage_api == "storage" else "pvc"
    spec[target_key] = _target(params, size, default_modes=target_key == "pvc" and not existing)
    return {"apiVersion": CDI_API_VERSION, "kind": "DataVolume", "metadata": _metadata(params, name, namespace),
            "spec": spec}


def build_pvc(params, name, namespace, existing=False):
    """The PersistentVolumeClaim to create for the options (empty, or a CSI clone of a PVC)."""
    source = params.get("source") or {}
    kind = _source_kind(source)
    if kind not in ("blank", "pvc"):
        raise InputError("source.%s needs kind: datavolume (CDI imports the data; a plain PVC has no importer)." % kind)
    if (params.get("storage_api") or "storage") != "storage":
        raise InputError("storage_api applies to kind: datavolume only.")
    spec = _target(params, _size(params, not existing, "a PVC"), default_modes=not existing)
    if kind == "pvc":
        ref = source["pvc"]
        if ref.get("namespace") and ref["namespace"] != namespace:
            raise InputError("source.pvc.namespace %r: a PVC can clone a PVC of its own namespace only; use kind: "
                             "datavolume to clone across namespaces." % ref["namespace"])
        spec["dataSource"] = {"kind": "PersistentVolumeClaim", "name": ref["name"]}
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": _metadata(params, name, namespace),
            "spec": spec}


# -- comparison -----------------------------------------------------------------------------------
def _is_quantity_path(path):
    return path.endswith("requests.storage")


def differences(want, have, path="spec"):
    """[(path, wanted, current)] for what ``want`` says and ``have`` does not (server defaults are fine)."""
    out = []
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return [(path, want, have)]
        for key, value in want.items():
            out.extend(differences(value, have.get(key), "%s.%s" % (path, key)))
        return out
    if _is_quantity_path(path) and want is not None and have is not None:
        try:
            if vmspec.quantity_bytes(want) == vmspec.quantity_bytes(have):
                return []
        except ValueError:
            pass
    if want != have:
        out.append((path, want, have))
    return out


def describe_differences(diffs, limit=3):
    parts = []
    for path, want, have in diffs[:limit]:
        parts.append("%s is %s, the task asks %s" % (path, _show(have), _show(want)))
    if len(diffs) > limit:
        parts.append("and %d more" % (len(diffs) - limit))
    return "; ".join(parts)


def _show(value):
    if value is None:
        return "unset"
    if isinstance(value, (dict, list)):
        return one_line(json.dumps(value, sort_keys=True), 120)
    return repr(value) if isinstance(value, str) else str(value)


def pvc_growth(diffs):
    """When the only difference of a PVC is a larger size: the new size (else None)."""
    if len(diffs) != 1 or diffs[0][0] != "spec.resources.requests.storage":
        return None
    _path, want, have = diffs[0]
    try:
        if have is not None and vmspec.quantity_bytes(want) > vmspec.quantity_bytes(have):
            return want
    except ValueError:
        return None
    return None


# -- summary --------------------------------------------------------------------------------------
def summarize(obj, pvc=None):
    """What people ask of a volume: phase, progress, bound, size, where."""
    if not obj:
        return None
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    spec = obj.get("spec") or {}
    if obj.get("kind") == "DataVolume":
        target = spec.get("storage") or spec.get("pvc") or {}
        source = spec.get("source") or {}
        claim = pvc or {}
        claim_spec = claim.get("spec") or {}
        out = {
            "kind": "DataVolume",
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "phase": status.get("phase") or "Pending",
            "progress": status.get("progress") or "N/A",
            "restart_count": int(status.get("restartCount") or 0),
            "source": next(iter(source), None) if source else ("sourceRef" if spec.get("sourceRef") else None),
            "claim_name": status.get("claimName") or meta.get("name"),
            "size": ((target.get("resources") or {}).get("requests") or {}).get("storage"),
            "capacity": ((claim.get("status") or {}).get("capacity") or {}).get("storage"),
            "storage_class": claim_spec.get("storageClassName") or target.get("storageClassName"),
            "access_modes": claim_spec.get("accessModes") or target.get("accessModes"),
            "volume_mode": claim_spec.get("volumeMode") or target.get("volumeMode"),
            "bound": condition_true(obj, "Bound"),
            "conditions_not_ok": conditions_not_ok(obj),
        }
        out["ready"] = out["phase"] == "Succeeded"
        return out
    return {
        "kind": "PersistentVolumeClaim",
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "phase": status.get("phase") or "Pending",
        "bound": status.get("phase") == "Bound",
        "ready": status.get("phase") == "Bound",
        "size": ((spec.get("resources") or {}).get("requests") or {}).get("storage"),
        "capacity": (status.get("capacity") or {}).get("storage"),
        "storage_class": spec.get("storageClassName"),
        "access_modes": spec.get("accessModes"),
        "volume_mode": spec.get("volumeMode"),
        "volume_name": spec.get("volumeName"),
        "owner_datavolume": owner(obj, "DataVolume"),
    }


# -- waits ----------------------------------------------------------------------------------------
def _running_message(dv):
    for ctype in ("Running", "Ready", "Bound"):
        cond = condition(dv, ctype)
        if cond and str(cond.get("status")) == "False" and cond.get("message"):
            return one_line(cond["message"], 400)
    return None


def _progress_of(status):
    """CDI's progress ('45.12%'), or None where CDI has none ('N/A', empty, not a percentage)."""
    text = str(status.get("progress") or "").strip()
    if not text.endswith("%"):
        return None
    try:
        value = float(text[:-1])
    except ValueError:
        return None
    return text if 0.0 <= value <= 100.0 else None


def dv_check(name, namespace, max_restarts, record, clock=time.monotonic, start=None):
    """check() for a DataVolume wait: Succeeded (or parked, see DV_PARKED); fails on Failed or too many restarts.

    ``record`` (a dict) collects the phases seen, in order: each with the second it was first seen
    (counted from ``start``, the wait's start), the import progress when first seen and, when the
    progress moved on in that phase, the last progress seen in it (last_progress). CDI's progress is
    kept as CDI writes it ("45.12%"); a phase without one (CDI says "N/A") has no progress key.
    """
    start = clock() if start is None else start
    record.setdefault("phases", [])

    def check(objects):
        dv = objects.get(name)
        if dv is None:
            return False
        status = dv.get("status") or {}
        phase = status.get("phase") or "Pending"
        progress = _progress_of(status)
        phases = record["phases"]
        if not phases or phases[-1]["phase"] != phase:
            phases.append({"phase": phase, "seconds": round(max(0.0, clock() - start), 2)})
            if progress is not None:
                phases[-1]["progress"] = progress
        elif progress is not None and progress != phases[-1].get("progress"):
            phases[-1].setdefault("progress", progress)
            if progress != phases[-1]["progress"]:
                phases[-1]["last_progress"] = progress
        if progress is not None or phase == "Succeeded":
            record["progress"] = progress
        restarts = int(status.get("restartCount") or 0)
        record["restart_count"] = restarts
        ref = "DataVolume %s/%s" % (namespace, name)
        if phase == "Succeeded":
            return True
        if phase in DV_PARKED:
            record["parked"] = phase
            return True
        message = _running_message(dv)
        if phase == "Failed":
            raise WaitFailed("%s failed (phase Failed, restartCount %d)%s; check its source and the events of "
                             "the importer pod." % (ref, restarts, ": %s" % message if message else ""))
        if max_restarts is not None and max_restarts >= 0 and restarts > max_restarts:
            raise WaitFailed("The import into %s is failing: its importer restarted %d times (max_restarts %d), "
                             "phase %s: %s; check the source URL, its secret and certificate, then delete the "
                             "DataVolume or fix the source." % (ref, restarts, max_restarts, phase,
                                                                message or "no message"))
        return False

    return check


def pvc_check(name, namespace, wffc):
    def check(objects):
        pvc = objects.get(name)
        if pvc is None:
            return False
        phase = (pvc.get("status") or {}).get("phase") or "Pending"
        if phase == "Bound":
            return True
        if phase == "Lost":
            raise WaitFailed("PersistentVolumeClaim %s/%s is Lost: its PersistentVolume is gone; delete and "
                             "recreate the claim." % (namespace, name))
        return bool(wffc)
    return check


# -- the module -----------------------------------------------------------------------------------
class VolumeRunner(runner.Runner):
    def run(self):
        p = self.params
        name, namespace = self.target(max_len=253)
        resource = res.DATAVOLUME if p["kind"] == "datavolume" else res.PVC
        ref = resource.ref(name, namespace)
        if p["state"] == "absent":
            return self.absent(resource, name, namespace, ref)
        # Inputs are checked before any request; the size may be left out for a volume that exists.
        build = build_datavolume if resource is res.DATAVOLUME else build_pvc
        try:
            build(p, name, namespace)
        except InputError as exc:
            if not str(exc).startswith("size is required"):
                raise
        try:
            current = self.client.get_or_none(resource, name, namespace)
        except ApiError as exc:
            raise KubevirtError(writes.explain(exc, "read", ref, resource))
        current = waiter.present_unless_going(self.client, resource, current, p["wait_timeout"], self.check_mode,
                                              self.progress)
        desired = build(p, name, namespace, existing=current is not None)
        if current is None or p["recreate"]:
            # Before creating, and before a recreate deletes the volume it replaces.
            preflight.require(self.client, preflight.references(desired), ref, self.check_mode, self.warnings)
        outcome = None
        if current is None:
            self.check_name_clash(resource, name, namespace)
            self.check_clone_source(desired, namespace)
            outcome = writes.present(self.client, resource, desired, self.check_mode, current=None, have_current=True)
        else:
            outcome = self.update(resource, desired, current, ref)
        result = dict(changed=outcome.changed, method=outcome.method)
        after = outcome.after
        wait_error = None
        if p["wait"] and not self.check_mode and after is not None:
            try:
                after = self.wait(resource, name, namespace, after)
            except (WaitTimeout, WaitFailed) as exc:
                wait_error = exc
                details = getattr(exc, "details", {}) or {}
                if details.get("progress"):
                    self.progress.append(details["progress"])
                after = self.client.get_or_none(resource, name, namespace) or after
        pvc = None
        if resource is res.DATAVOLUME and p["wait"] and not self.check_mode:
            pvc = parallel.read_quiet(lambda: self.client.get_or_none(res.PVC, name, namespace))
        result.update(volume=after, summary=summarize(after, pvc), progress=self.progress,)
        if self.diff_mode:
            result["diff"] = diff_of(outcome.before, outcome.after)
        return result, wait_error

    def check_name_clash(self, resource, name, namespace):
        """A DataVolume whose name a plain PVC has already: CDI would not fill that PVC."""
        if resource is not res.DATAVOLUME:
            return
        pvc = parallel.read_quiet(lambda: self.client.get_or_none(res.PVC, name, namespace))
        if pvc is not None and not owner(pvc, "DataVolume"):
            raise KubevirtError("PersistentVolumeClaim %s/%s exists and belongs to no DataVolume, so a DataVolume "
                                "of that name would not import into it; manage it with kind: pvc, or choose another "
                                "name." % (namespace, name))

    def check_clone_source(self, desired, namespace):
        src = ((desired.get("spec") or {}).get("source") or {}).get("pvc") \
            or (((desired.get("spec") or {}).get("dataSource") or {}) if desired["kind"] == "PersistentVolumeClaim"
                else None)
        if not src or not src.get("name"):
            return
        ns = src.get("namespace") or namespace
        found = parallel.read_quiet(lambda: self.client.get_or_none(res.PVC, src["name"], ns), default=False)
        if found is None:
            self.warnings.append("The clone source PersistentVolumeClaim %s/%s does not exist (yet); the clone waits "
                                 "for it." % (ns, src["name"]))

    def update(self, resource, desired, current, ref):
        p = self.params
        diffs = differences(desired["spec"], current.get("spec") or {})
        grow = pvc_growth(diffs) if resource is res.PVC else None
        if diffs and not grow:
            if p["recreate"]:
                return self.recreate(resource, desired, current, ref)
            what = "a DataVolume's spec is immutable" if resource is res.DATAVOLUME else \
                "a PVC's spec is immutable except for growing its size"
            raise KubevirtError("%s exists with another spec and %s: %s; set recreate: true to delete and recreate "
                                "it (its data is lost), or change the task to match." % (
                                    ref, what, describe_differences(diffs)))
        patch = {}
        meta = {}
        if _labels(p):
            meta["labels"] = _labels(p)
        if _annotations(p):
            meta["annotations"] = _annotations(p)
        if meta:
            patch["metadata"] = meta
        if grow:
            patch["spec"] = {"resources": {"requests": {"storage": grow}}}
        if not patch:
            return writes.Outcome(False, current, current, "none")
        return writes.present(self.client, resource, desired, self.check_mode, current=current, have_current=True,
                              partial=patch)

    def recreate(self, resource, desired, current, ref):
        name, namespace = desired["metadata"]["name"], desired["metadata"]["namespace"]
        if self.check_mode:
            return writes.Outcome(True, current, desired, "recreate")
        writes.absent(self.client, resource, name, namespace)
        gone = [(resource, name)]
        if resource is res.DATAVOLUME:
            gone.append((res.PVC, name))
        for kind, obj_name in gone:
            self.progress.append(waiter.wait_gone(self.client, kind, namespace, [obj_name], self.params["wait_timeout"]))
        outcome = writes.present(self.client, resource, desired, False, current=None, have_current=True)
        return writes.Outcome(True, current, outcome.after, "recreate")

    def wait(self, resource, name, namespace, after):
        rv = (after.get("metadata") or {}).get("resourceVersion")
        timeout = self.params["wait_timeout"]
        if resource is res.DATAVOLUME:
            record = {}
            check = dv_check(name, namespace, self.params.get("max_restarts"), record)
            wait = waiter.Wait(self.client, res.DATAVOLUME, namespace, check,
                               "DataVolume %s/%s to be imported (Succeeded)" % (namespace, name), timeout,
                               names=[name], resource_version=rv)
            try:
                progress = wait.run()
            except (WaitTimeout, WaitFailed) as exc:
                if isinstance(exc, WaitTimeout):
                    exc.details.setdefault("progress", {})["phases"] = record.get("phases")
                else:
                    exc.details["progress"] = dict(waited_for=wait.description, result="failed",
                                                   phases=record.get("phases"))
                raise
            progress["phases"] = record["phases"]
            progress["import_progress"] = record.get("progress")
            self.progress.append(progress)
            if record.get("parked"):
                self.warnings.append("DataVolume %s/%s is %s: %s." % (namespace, name, record["parked"],
                                                                      DV_PARKED[record["parked"]]))
            return wait.objects.get(name) or after
        wffc = self.storage_class_wffc((after.get("spec") or {}).get("storageClassName"))
        wait = waiter.Wait(self.client, res.PVC, namespace, pvc_check(name, namespace, wffc),
                           "PersistentVolumeClaim %s/%s to be Bound" % (namespace, name), timeout, names=[name],
                           resource_version=rv)
        self.progress.append(wait.run())
        pvc = wait.objects.get(name) or after
        if wffc and (pvc.get("status") or {}).get("phase") != "Bound":
            self.warnings.append("PersistentVolumeClaim %s/%s stays Pending until a pod (a VM) uses it: storage class "
                                 "%s binds volumes on first consumer (WaitForFirstConsumer)." % (
                                     namespace, name, (pvc.get("spec") or {}).get("storageClassName")))
        return pvc

    def storage_class_wffc(self, name):
        if not name:
            return False
        sc = parallel.read_quiet(lambda: self.client.get_or_none(STORAGE_CLASS, name))
        return bool(sc) and sc.get("volumeBindingMode") == "WaitForFirstConsumer"

    def absent(self, resource, name, namespace, ref):
        p = self.params
        current = None
        if resource is res.PVC:
            try:
                current = self.client.get_or_none(res.PVC, name, namespace)
            except ApiError as exc:
                raise KubevirtError(writes.explain(exc, "read", ref, res.PVC))
            dv = owner(current, "DataVolume")
            if dv:
                raise KubevirtError("%s belongs to DataVolume %s/%s, which would create it again; delete the "
                                    "DataVolume instead (kind: datavolume, name: %s)." % (ref, namespace, dv, dv))
        users = self.users(name, namespace)
        changed, last = writes.absent(self.client, resource, name, namespace, self.check_mode)
        if changed and users:
            self.warnings.append("%s is used by VirtualMachineInstance%s %s; Kubernetes deletes its claim only when "
                                 "no pod uses it (kubernetes.io/pvc-protection)." % (
                                     ref, "s" if len(users) > 1 else "", ", ".join(users)))
        wait_error = None
        if last is not None and p["wait"] and not self.check_mode:
            try:
                self.progress.append(waiter.wait_gone(self.client, resource, namespace, [name], p["wait_timeout"]))
            except WaitTimeout as exc:
                wait_error = exc
        result = dict(changed=changed, method="delete" if changed else "none", volume=None, summary=None,
                      progress=self.progress)
        if self.diff_mode:
            result["diff"] = diff_of(last if changed else None, None)
        return result, wait_error

    def users(self, claim, namespace):
        """Names of VMIs in the namespace with a volume on this claim or DataVolume (best effort)."""
        listing = parallel.read_quiet(lambda: self.client.list(res.VMI, namespace), {}) or {}
        out = []
        for vmi in listing.get("items") or []:
            for vol in (vmi.get("spec") or {}).get("volumes") or []:
                if ((vol.get("persistentVolumeClaim") or {}).get("claimName") == claim
                        or (vol.get("dataVolume") or {}).get("name") == claim):
                    out.append(vmi["metadata"]["name"])
                    break
        return out
