# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vm_export module: a VirtualMachineExport (export.kubevirt.io) of a VM, a VM snapshot or a PVC,
waited for until Ready, and optionally one volume downloaded to a local file.

KubeVirt's rules (pkg/storage/export/export, pkg/storage/admitters/vmexport.go): the spec can't change after
creation; the VMExport feature gate must be on (the webhook says "vm export feature gate not enabled"); an
export of a running VM (or of a PVC a pod uses) stays Pending with Ready=False reason InUse until the VM
stops; an export of a VM or snapshot that does not exist ends Skipped. The token that the export server asks
for (header x-kubevirt-export-token) is in the Secret status.tokenSecretRef names: the task returns the
Secret's name only, and reads the token only to download.
"""

from __future__ import annotations

import base64
import hashlib
import os
import ssl
import tempfile
import time

from ansible_collections.virtops.kubevirt.plugins.module_utils import runner
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import writes
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import (
    ApiError,
    InputError,
    KubevirtError,
    WaitFailed,
    WaitTimeout,
    one_line,
)
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.connection import ssl_context
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import gates
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import spec as vmspec
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import wait as waiter
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.redact import diff_of
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.state import condition

EXPORT = res.BY_KIND["VirtualMachineExport"]
API_VERSION = "%s/%s" % (EXPORT.group, EXPORT.version)
# option -> (spec.source kind, apiGroup, resource to check it exists)
SOURCES = {
    "vm": ("VirtualMachine", "kubevirt.io", res.VM),
    "snapshot": ("VirtualMachineSnapshot", "snapshot.kubevirt.io", res.BY_KIND["VirtualMachineSnapshot"]),
    "pvc": ("PersistentVolumeClaim", None, res.PVC),
}
FORMATS = ["raw", "gzip", "tar.gz", "dir"]
TOKEN_HEADER = "x-kubevirt-export-token"
CHUNK = 1 << 20
DOWNLOAD_SPEC = dict(
    dest=dict(type="path", required=True),
    volume=dict(type="str"),
    format=dict(type="str", choices=[f for f in FORMATS if f != "dir"], default="raw"),
)


def argument_spec():
    spec = dict(
        name=dict(type="str", required=True),
        namespace=dict(type="str"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        vm=dict(type="str"),
        snapshot=dict(type="str"),
        pvc=dict(type="str"),
        token_secret=dict(type="str", no_log=False),
        ttl=dict(type="str"),
        labels=dict(type="dict"),
        download=dict(type="dict", options=DOWNLOAD_SPEC),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=300),
    )
    spec.update(runner.auth_spec())
    return spec


MUTUALLY_EXCLUSIVE = [("vm", "snapshot", "pvc")]


# -- builders -------------------------------------------------------------------------------------
def check_ttl(text):
    """ttl as KubeVirt's spec.ttlDuration takes it (a Go duration: 2h, 90m, 1h30m); None when not given."""
    return None if text is None else vmspec.check_duration(text, "ttl", "2h, 90m or 1h30m")


def source_of(params):
    """(option, name) of the one source given; raises when none is (state=present)."""
    given = [key for key in SOURCES if params.get(key)]
    if not given:
        raise InputError("state=present needs what to export: one of vm, snapshot or pvc.")
    return given[0], params[given[0]]


def build(params, name, namespace):
    option, source_name = source_of(params)
    kind, group, _resource = SOURCES[option]
    source = {"kind": kind, "name": res.check_name(source_name, option, max_len=253)}
    if group:
        source["apiGroup"] = group
    spec = {"source": source}
    if params.get("token_secret"):
        spec["tokenSecretRef"] = res.check_name(params["token_secret"], "token_secret", max_len=253)
    if check_ttl(params.get("ttl")):
        spec["ttlDuration"] = params["ttl"].strip()
    meta = {"name": name, "namespace": namespace}
    if params.get("labels"):
        meta["labels"] = {str(k): str(v) for k, v in params["labels"].items()}
    return {"apiVersion": API_VERSION, "kind": "VirtualMachineExport", "metadata": meta, "spec": spec}


def spec_differences(want, have):
    """What the task asks of the spec and the export has otherwise (['source', 'ttlDuration', ...])."""
    out = []
    for key in ("source", "tokenSecretRef", "ttlDuration"):
        wanted, current = want.get(key), (have or {}).get(key)
        if key == "source" and current is not None:
            current = {k: v for k, v in current.items() if k in ("kind", "name", "apiGroup") and v}
        if key in want and wanted != current:
            out.append("%s is %s, the task asks %s" % (key, _show(current), _show(wanted)))
    return out


def _show(value):
    if isinstance(value, dict):
        return "%s %s" % (value.get("kind"), value.get("name"))
    return "unset" if value is None else str(value)


# -- summary --------------------------------------------------------------------------------------
def _links(link):
    if not link:
        return None
    return {"volumes": [{"name": v.get("name"),
                         "formats": {f.get("format"): f.get("url") for f in v.get("formats") or []}}
                        for v in link.get("volumes") or []],
            "manifests": {m.get("type"): m.get("url") for m in link.get("manifests") or []}}


def summarize(export):
    if not export:
        return None
    meta, spec, status = export.get("metadata") or {}, export.get("spec") or {}, export.get("status") or {}
    links = status.get("links") or {}
    ready = condition(export, "Ready") or {}
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "source": {k: v for k, v in (spec.get("source") or {}).items() if k in ("kind", "name")},
        "phase": status.get("phase") or "Pending",
        "ready": status.get("phase") == "Ready",
        "reason": ready.get("reason"),
        "message": ready.get("message"),
        "token_secret": status.get("tokenSecretRef") or spec.get("tokenSecretRef"),
        "ttl_expiration_time": status.get("ttlExpirationTime"),
        "service": status.get("serviceName"),
        "virtual_machine": status.get("virtualMachineName"),
        "links": {"internal": _links(links.get("internal")), "external": _links(links.get("external"))},
        "volumes": [v.get("name") for v in (links.get("external") or links.get("internal") or {}).get("volumes") or []],
    }


# -- wait -----------------------------------------------------------------------------------------
def ready_check(name, namespace, record, clock=time.monotonic, start=None):
    """check() for the wait: Ready ends it; Skipped and Terminated fail it; phases and reasons are recorded."""
    start = clock() if start is None else start
    record.setdefault("phases", [])

    def check(objects):
        export = objects.get(name)
        if export is None:
            return False
        phase = (export.get("status") or {}).get("phase") or "Pending"
        ready = condition(export, "Ready") or {}
        seen = {"phase": phase, "reason": ready.get("reason")}
        phases = record["phases"]
        if not phases or {k: phases[-1].get(k) for k in seen} != seen:
            entry = dict(seen, seconds=round(max(0.0, clock() - start), 2))
            if ready.get("message"):
                entry["message"] = one_line(ready["message"], 300)
            phases.append(entry)
        ref = "VirtualMachineExport %s/%s" % (namespace, name)
        if phase == "Ready":
            return True
        if phase == "Skipped":
            raise WaitFailed("%s was skipped by KubeVirt: %s; check that its source exists and has volumes." % (
                ref, ready.get("message") or "its source has nothing to export"))
        if phase == "Terminated":
            raise WaitFailed("%s is Terminated (its exporter pod completed): delete it and export again." % ref)
        return False

    return check


# -- download -------------------------------------------------------------------------------------
class Download:
    """One volume's bytes to a file; shows "N of M bytes" while it runs (waiter.ACTIVE, like a wait)."""

    def __init__(self, url, description, clock=time.monotonic):
        self.url = url
        self.description = description
        self.clock = clock
        self.done = 0
        self.total = None
        self.started = clock()

    def status(self):
        total = " of %d bytes (%d%%)" % (self.total, 100 * self.done // max(1, self.total)) if self.total else " bytes"
        return "downloading %s: %d%s in %ds" % (self.description, self.done, total, self.clock() - self.started)

    def run(self, token, ctx, out):
        """Write the body to the open file ``out``; returns its sha256."""
        import urllib3

        pool = urllib3.PoolManager(ssl_context=ctx)
        digest = hashlib.sha256()
        waiter.ACTIVE.append(self)
        try:
            resp = pool.request("GET", self.url, headers={TOKEN_HEADER: token}, preload_content=False,
                                timeout=urllib3.Timeout(connect=30, read=300), retries=False)
            try:
                if resp.status != 200:
                    body = one_line(resp.data.decode("utf-8", "replace"), 200)
                    raise KubevirtError("The export server answered HTTP %d (%s) for %s%s." % (
                        resp.status, body or resp.reason, self.description,
                        "; the token of the export's Secret was refused" if resp.status == 401 else ""))
                length = resp.headers.get("Content-Length")
                self.total = int(length) if length and length.isdigit() else None
                for block in resp.stream(CHUNK):
                    out.write(block)
                    digest.update(block)
                    self.done += len(block)
            finally:
                resp.release_conn()
        except urllib3.exceptions.HTTPError as exc:
            raise KubevirtError("Downloading %s from %s failed: %s; check that the export's external link is "
                                "reachable from here and its certificate." % (self.description, self.url,
                                                                              one_line(exc, 300)))
        finally:
            waiter.ACTIVE.remove(self)
        return digest.hexdigest()

    def record(self):
        return {"downloaded": self.description, "bytes": self.done, "total": self.total,
                "seconds": round(self.clock() - self.started, 2), "result": "ok"}


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def pick_volume(summary, want):
    """(volume name, its formats) from the export's external links (internal ones if there are none)."""
    links = summary["links"]["external"] or summary["links"]["internal"] or {"volumes": []}
    names = [v["name"] for v in links["volumes"]]
    if want is None:
        if len(names) != 1:
            raise KubevirtError("VirtualMachineExport %s/%s has %d volumes (%s); name the one to download with "
                                "download.volume." % (summary["namespace"], summary["name"], len(names),
                                                      ", ".join(names) or "none"))
        want = names[0]
    for vol in links["volumes"]:
        if vol["name"] == want:
            return want, vol["formats"]
    raise KubevirtError("download.volume %r is not a volume of VirtualMachineExport %s/%s; its volumes: %s." % (
        want, summary["namespace"], summary["name"], ", ".join(names) or "none"))


# -- the module -----------------------------------------------------------------------------------
class VmExportRunner(runner.Runner):
    @classmethod
    def before_connect(cls, module):
        p = module.params
        cls.check_target(p)
        if p["state"] == "present":
            source_of(p)
            check_ttl(p.get("ttl"))
            dl = p.get("download")
            if dl:
                parent = os.path.dirname(os.path.abspath(dl["dest"])) or "."
                if not os.path.isdir(parent):
                    raise InputError("download.dest %s: its folder %s does not exist." % (dl["dest"], parent))
                if os.path.isdir(dl["dest"]):
                    raise InputError("download.dest %s is a folder; give the file to write." % dl["dest"])
        elif p.get("download"):
            raise InputError("download needs state=present (an export to download from).")

    def run(self):
        p = self.params
        name, namespace = self.target()
        ref = EXPORT.ref(name, namespace)
        try:
            current = self.client.get_or_none(EXPORT, name, namespace)
        except ApiError as exc:
            raise KubevirtError(writes.explain(exc, "read", ref, EXPORT))
        if p["state"] == "absent":
            return self.absent(name, namespace, current)
        current = waiter.present_unless_going(self.client, EXPORT, current, p["wait_timeout"], self.check_mode,
                                              self.progress)
        desired = build(p, name, namespace)
        if current is None:
            self.check_source(desired, namespace)
            outcome = self.create(desired, ref)
        else:
            diffs = spec_differences(desired["spec"], current.get("spec"))
            if diffs:
                raise KubevirtError("%s exists with another spec (%s) and KubeVirt keeps an export's spec as it was "
                                    "created; delete it first (state: absent) or choose another name." % (
                                        ref, "; ".join(diffs)))
            outcome = writes.labels_added(self.client, EXPORT, current, desired["metadata"].get("labels"),
                                          self.check_mode)
        after = outcome.after
        error = None
        if p["wait"] and not self.check_mode and after is not None:
            try:
                after = self.wait(name, namespace, after)
            except (WaitTimeout, WaitFailed) as exc:
                error = exc
                after = self.client.get_or_none(EXPORT, name, namespace) or after
        summary = summarize(after)
        result = dict(changed=outcome.changed, method=outcome.method, export=summary, progress=self.progress)
        if p.get("download") and error is None:
            result["download"] = self.download(summary, after)
            result["changed"] = result["changed"] or result["download"]["changed"]
        if self.diff_mode:
            result["diff"] = diff_of(outcome.before, outcome.after)
            if result.get("download"):
                dl = result["download"]
                result["diff"]["before"] = dict(result["diff"].get("before") or {}, download=dl.pop("_before"))
                result["diff"]["after"] = dict(result["diff"].get("after") or {}, download={
                    "dest": dl["dest"], "sha256": dl.get("sha256"), "size": dl.get("size")})
        if result.get("download"):
            result["download"].pop("_before", None)
        return result, error

    def check_source(self, desired, namespace):
        """The source exists before the export is made (KubeVirt would only skip the export later)."""
        source = desired["spec"]["source"]
        option = next(k for k, v in SOURCES.items() if v[0] == source["kind"])
        resource = SOURCES[option][2]
        try:
            found = self.client.get_or_none(resource, source["name"], namespace)
        except ApiError as exc:
            if exc.status == 403:
                return
            raise KubevirtError(writes.explain(exc, "read", resource.ref(source["name"], namespace), resource))
        if found is None:
            raise KubevirtError("%s %s/%s does not exist, so there is nothing to export (%s: %s)." % (
                resource.kind, namespace, source["name"], option, source["name"]))
        volumes = (((found.get("spec") or {}).get("template") or {}).get("spec") or {}).get("volumes") or []
        if option == "vm" and not any(v.get("persistentVolumeClaim") or v.get("dataVolume") for v in volumes):
            raise KubevirtError("VirtualMachine %s/%s has no PVC or DataVolume disk, so KubeVirt has nothing to export "
                                "(it would mark the export Skipped); container disks are not exported." % (
                                    namespace, source["name"]))

    def create(self, desired, ref):
        return gates.create_gated(self.client, EXPORT, desired, self.check_mode, ref, "VMExport")

    def wait(self, name, namespace, after):
        record = {}
        check = ready_check(name, namespace, record)
        wait = waiter.Wait(self.client, EXPORT, namespace, check,
                           "VirtualMachineExport %s/%s to be Ready" % (namespace, name), self.params["wait_timeout"],
                           names=[name], resource_version=(after.get("metadata") or {}).get("resourceVersion"))
        try:
            progress = wait.run()
        except (WaitTimeout, WaitFailed) as exc:
            exc.details.setdefault("progress", dict(waited_for=wait.description, result="failed"))
            exc.details["progress"]["phases"] = record.get("phases")
            raise
        progress["phases"] = record["phases"]
        self.progress.append(progress)
        return wait.objects.get(name) or after

    def download(self, summary, export):
        """One volume to download.dest; the file is replaced only when its bytes differ."""
        dl = self.params["download"]
        dest = os.path.abspath(dl["dest"])
        before = {"dest": dest}
        if os.path.isfile(dest):
            before.update(size=os.path.getsize(dest), sha256=file_sha256(dest))
        out = dict(dest=dest, changed=True, _before=before)
        if summary is None or not summary["ready"]:
            if not self.check_mode:
                raise KubevirtError("VirtualMachineExport %s/%s is %s, not Ready, so download can't start; set wait: "
                                    "true to wait for it." % (summary["namespace"], summary["name"], summary["phase"]))
            # check mode on an export still to be made or readied: the file would be written
            out.update(volume=dl.get("volume"), format=dl["format"])
            return out
        volume, formats = pick_volume(summary, dl.get("volume"))
        if dl["format"] not in formats:
            raise KubevirtError("download.format %s is not offered for volume %s of VirtualMachineExport %s/%s; it "
                                "offers %s." % (dl["format"], volume, summary["namespace"], summary["name"],
                                                ", ".join(sorted(formats))))
        link = ((export.get("status") or {}).get("links") or {}).get("external")
        if not link:
            raise KubevirtError("VirtualMachineExport %s/%s has no external link (KubeVirt sets one when the cluster "
                                "has an Ingress or Route for virt-exportproxy), so it can't be downloaded from "
                                "outside the cluster." % (summary["namespace"], summary["name"]))
        url = formats[dl["format"]]
        token = self.token(summary)
        job = Download(url, "volume %s of VirtualMachineExport %s/%s (%s)" % (
            volume, summary["namespace"], summary["name"], dl["format"]))
        fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(dest), suffix=".part",
                                   dir=os.path.dirname(dest))
        try:
            with os.fdopen(fd, "wb") as fh:
                sha = job.run(token, self.tls(link), fh)
            self.progress.append(job.record())
            out.update(volume=volume, format=dl["format"], url=url, size=job.done, sha256=sha)
            if before.get("sha256") == sha and before.get("size") == job.done:
                out["changed"] = False
            elif not self.check_mode:
                os.chmod(tmp, 0o644)
                os.replace(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return out

    def token(self, summary):
        secret_name = summary["token_secret"]
        ref = res.SECRET.ref(secret_name, summary["namespace"])
        try:
            secret = self.client.get(res.SECRET, secret_name, summary["namespace"])
        except ApiError as exc:
            raise KubevirtError(writes.explain(exc, "read", ref, res.SECRET)[:-1] +
                                "; the download needs the export's token from it.")
        data = (secret.get("data") or {}).get("token")
        if not data:
            raise KubevirtError("%s has no key token; the export server needs it." % ref)
        return base64.b64decode(data).decode()

    def tls(self, link):
        """Verify the export server against the export's own certificate, else as the API server is verified."""
        if link.get("cert"):
            try:
                return ssl.create_default_context(cadata=link["cert"])
            except (ssl.SSLError, ValueError) as exc:
                raise KubevirtError("The certificate in the export's status.links.external.cert could not be "
                                    "loaded: %s." % one_line(exc, 200))
        conn = self.client.conn
        ctx = ssl_context(conn) if conn.host.startswith("https://") else None
        if ctx is None or not conn.verify:
            self.warnings.append("The export server's certificate is not verified: the export names no certificate "
                                 "and TLS verification of the cluster is off.")
        return ctx or ssl.create_default_context()

    def absent(self, name, namespace, current):
        changed, last = writes.absent(self.client, EXPORT, name, namespace, self.check_mode, current=current,
                                      have_current=True)
        error = None
        if last is not None and self.params["wait"] and not self.check_mode:
            try:
                self.progress.append(waiter.wait_gone(self.client, EXPORT, namespace, [name],
                                                      self.params["wait_timeout"]))
            except WaitTimeout as exc:
                error = exc
        result = dict(changed=changed, method="delete" if changed else "none", export=None, progress=self.progress)
        if self.diff_mode:
            result["diff"] = diff_of(last if changed else None, None)
        return result, error
