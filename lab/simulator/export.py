"""VirtualMachineExport controller and the lab's export server (KubeVirt v1.8.4
pkg/storage/export/export/{export,links,vm-source,pvc-source,vmsnapshot-source}.go, virt-exportserver).

The controller, as KubeVirt's:
- a source (spec.source): a VirtualMachine (kubevirt.io), a VirtualMachineSnapshot (snapshot.kubevirt.io:
  a PVC `<export>-<claim>` per volume backup, restored from its VolumeSnapshot, owned by the export) or a
  PersistentVolumeClaim. A running VM (a VMI not Succeeded/Failed) or a claim a pod uses is "in use": the
  export waits in Pending with Ready=False InUse ("Virtual Machine ns/name is running"), and an exporter
  pod already running is deleted (event ExportPaused). A missing VM or snapshot gives phase Skipped.
- Service `virt-export-<name>` (event ServiceCreated), the token Secret (spec.tokenSecretRef, else
  `export-token-<name>` made with a random token, event SecretCreated), the exporter pod `virt-export-<name>`
  (event ExporterPodCreated) mounting the claims; phases Pending, Ready (pod Ready, links set), Terminated
  (pod Succeeded); Ready condition reasons Initializing, InUse, PodPending, PodReady, PodCompleted, ...
- status.links.internal (https://virt-export-<name>.<ns>.svc/volumes/<claim>/disk.img) and .external
  (through the lab's "ingress", the simulator's HTTPS listener: /api/export.kubevirt.io/v1beta1/namespaces/
  <ns>/virtualmachineexports/<name>/volumes/...), each with `cert` (the CA that signed the server, as the
  route/ingress CA KubeVirt reports). KubeVirt disk images (a DataVolume's claim, content type kubevirt, or
  a block claim) give formats raw (disk.img) and gzip (disk.img.gz); other claims dir (dir/) and tar.gz.
- ttlDuration (default 2h): status.ttlExpirationTime; the export is deleted when it passes.

The server answers those external URLs while the export is Ready, with the token in the header
`x-kubevirt-export-token` (or the query parameter of that name), 401 without it: the bytes of the claim's
PersistentVolume (volumedata.VolumeData.image), or zeros of the claim's size when nothing was written yet.
The lab serves no manifests (links carry only volumes).
"""
import asyncio
import datetime as dt
import base64
import secrets
import string
import tarfile
import time
import zlib

from aiohttp import web

from .kube import POD, PVC, SECRET, SERVICE, VMEXPORT, VMSNAPSHOT, VMSNAPSHOT_CONTENT, ApiError, key_of
from .runtime import Controller
from .snapshot import duration
from .util import controller_of, deep, dig, owner_ref, parse_quantity, parse_ts, set_condition, ts

PREFIX = "virt-export"
SERVICE_LABEL = "kubevirt.io.virt-export-service"
CONTENT_TYPE = "cdi.kubevirt.io/storage.contentType"
TOKEN_HEADER = "x-kubevirt-export-token"
DEFAULT_TTL = 2 * 3600.0
EXTERNAL_BASE = "/api/export.kubevirt.io/v1beta1/namespaces/{ns}/virtualmachineexports/{name}"
REQUEUE = 3.0                    # requeueTime while a source is not populated yet
IMAGE = "quay.io/kubevirt/virt-exportserver:v1.8.4"
CHUNK = 1 << 20
FORMAT_FILES = {"raw": "disk.img", "gzip": "disk.img.gz", "tar.gz": "disk.tar.gz", "dir": "dir/"}


def get_name(base, suffix, max_len=63):
    """openshift naming.GetName: `base-suffix`, or a shortened form with an FNV-32a hash past max_len."""
    name = f"{base}-{suffix}"
    if len(name) <= max_len:
        return name
    digest = 0x811c9dc5
    for byte in name.encode():
        digest = ((digest ^ byte) * 0x01000193) & 0xffffffff
    hashed = f"{digest:08x}"
    keep = max_len - 10 - len(suffix)
    if keep < 0:
        return f"{base[:max(0, max_len - 9)]}-{hashed}"[:max_len]
    return f"{base[:keep]}-{hashed}-{suffix}"


def service_name(export):
    return get_name(PREFIX, export["metadata"]["name"].replace(".", "-"))


def pod_name(export):
    return get_name(PREFIX, export["metadata"]["name"])


def token_secret_name(export):
    return get_name("export-token", export["metadata"]["name"])


def ttl_seconds(export):
    value = duration(dig(export, "spec", "ttlDuration"))
    return DEFAULT_TTL if value is None else value


def expiration(export):
    """getExpirationTime: creation + ttlDuration, in epoch seconds."""
    created = parse_ts(export["metadata"].get("creationTimestamp"))
    return (created.timestamp() if created else time.time()) + ttl_seconds(export)


def stamp(epoch):
    return ts(dt.datetime.fromtimestamp(epoch, dt.timezone.utc))


class Source:
    """sourceVolumes: the claims, whether they are populated and in use, the Ready and source conditions."""

    def __init__(self, claims=(), populated=False, in_use=False, ready=("Initializing", ""), condition=None,
                 vm_name=None, namer=None):
        self.claims = list(claims)
        self.populated, self.in_use = populated, in_use
        self.ready = ready                # (reason, message) of Ready=False while no exporter pod runs
        self.condition = condition        # (type, status, reason, message) or None
        self.vm_name = vm_name
        self.namer = namer or (lambda claim: claim)

    @property
    def available(self):
        return not self.in_use and self.populated

    @property
    def has_content(self):
        return bool(self.claims)


class ExportController(Controller):
    name = "export"
    workers = 2

    def enqueue_namespace(self, namespace):
        for exp in self.sim.cache.exports.items(namespace):
            self.enqueue(key_of(exp))

    def enqueue_owner(self, obj):
        ref = controller_of(obj)
        if ref and ref.get("kind") == "VirtualMachineExport":
            self.enqueue(f"{obj['metadata']['namespace']}/{ref['name']}")

    async def sync(self, key):
        export = self.sim.cache.exports.get(key)
        if export is None or export["metadata"].get("deletionTimestamp"):
            return
        ns, name = export["metadata"]["namespace"], export["metadata"]["name"]
        status = deep(export.get("status")) or {
            "phase": "Pending", "ttlExpirationTime": stamp(expiration(export)),
            "conditions": set_condition([], "Ready", "False", "Initializing")}
        if time.time() >= expiration(export):
            await self.sim.kube.delete(VMEXPORT, name, ns)
            return
        source = await self.source(export)
        service = await self.ensure_service(export)
        await self.ensure_token(export, status, source)
        pod = await self.manage_pod(export, status, source)
        status["serviceName"] = service["metadata"]["name"]
        status["links"] = {}
        conds = status.setdefault("conditions", [])
        if pod is None:
            set_condition(conds, "Ready", "False", *source.ready)
            status["phase"] = "Pending"
        elif self.pod_ready(pod):
            set_condition(conds, "Ready", "True", "PodReady")
            status["phase"] = "Ready"
            status["links"] = self.links(export, source)
        elif dig(pod, "status", "phase") == "Succeeded":
            set_condition(conds, "Ready", "False", "PodCompleted")
            status["phase"] = "Terminated"
        elif dig(pod, "status", "phase") in (None, "Pending"):
            set_condition(conds, "Ready", "False", "PodPending")
            status["phase"] = "Pending"
        else:
            set_condition(conds, "Ready", "False", "Unknown")
            status["phase"] = "Pending"
        kind = dig(export, "spec", "source", "kind")
        if source.vm_name is not None:
            status["virtualMachineName"] = source.vm_name
        if source.condition:
            set_condition(conds, source.condition[0], *source.condition[1:])
        if not source.has_content and kind in ("VirtualMachine", "VirtualMachineSnapshot"):
            status["phase"] = "Skipped"
        if status != export.get("status"):
            updated = await self.sim.kube.replace(VMEXPORT, dict(export, status=status), sub="status")
            self.sim.cache.exports.observe(updated)
        if not source.populated and source.ready[0] not in ("VMNotFound", "VMSnapshotNotFound"):
            self.enqueue(key, after=REQUEUE)
        self.enqueue(key, after=max(1.0, expiration(export) - time.time()))

    @staticmethod
    def pod_ready(pod):
        return any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in dig(pod, "status", "conditions", default=[]))

    # --- sources -----------------------------------------------------------------------------
    async def source(self, export):
        kind = dig(export, "spec", "source", "kind")
        if kind == "PersistentVolumeClaim":
            return self.pvc_source(export)
        if kind == "VirtualMachineSnapshot":
            return await self.snapshot_source(export)
        return self.vm_source(export)

    def populated(self, pvc):
        """storagetypes.IsPVCPopulated: bound, and its DataVolume (when it has one) Succeeded."""
        if dig(pvc, "status", "phase") != "Bound":
            return False
        ref = controller_of(pvc)
        if ref and ref.get("kind") == "DataVolume":
            dv = self.sim.cache.dvs.get_ns(pvc["metadata"]["namespace"], ref["name"])
            return dv is not None and dig(dv, "status", "phase") == "Succeeded"
        return True

    def pvc_in_use(self, export, pvc):
        ns, claim = pvc["metadata"]["namespace"], pvc["metadata"]["name"]
        for pod in self.sim.cache.pods.items(ns):
            if dig(pod, "status", "phase") in ("Succeeded", "Failed"):
                continue
            ref = controller_of(pod)
            if ref and ref.get("uid") == export["metadata"]["uid"]:
                continue
            volumes = dig(pod, "spec", "volumes", default=[])
            if any(dig(v, "persistentVolumeClaim", "claimName") == claim for v in volumes):
                return True
        return False

    def pvc_source(self, export):
        ns, name = export["metadata"]["namespace"], dig(export, "spec", "source", "name")
        pvc = self.sim.cache.pvcs.get_ns(ns, name)
        if pvc is None:
            return Source(condition=("PVC", "False", "PVCNotFound", f"PersistentVolumeClaim {ns}/{name} not found"))
        phase = dig(pvc, "status", "phase")
        cond = ("PVC", "True", "PVCBound", "") if phase == "Bound" else \
            ("PVC", "False", "PVCPending" if phase == "Pending" else "Unknown", "")
        src = Source([pvc], populated=self.populated(pvc), condition=cond)
        if not src.populated:
            src.ready = ("PVCPending", f"PersistentVolumeClaim {ns}/{name} is not populated")
        elif self.pvc_in_use(export, pvc):
            src.in_use = True
            src.ready = ("InUse", f"PersistentVolumeClaim {ns}/{name} is in use")
        return src

    def vm_source(self, export):
        ns, name = export["metadata"]["namespace"], dig(export, "spec", "source", "name")
        vm = self.sim.cache.vms.get_ns(ns, name)
        if vm is None:
            return Source(ready=("VMNotFound", f"Virtual Machine {ns}/{name} not found"), vm_name=name)
        claims, populated = [], True
        for vol in dig(vm, "spec", "template", "spec", "volumes", default=[]):
            claim = dig(vol, "persistentVolumeClaim", "claimName") or dig(vol, "dataVolume", "name")
            if not claim:
                continue
            pvc = self.sim.cache.pvcs.get_ns(ns, claim)
            if pvc is None:
                populated = populated and "dataVolume" not in vol
                continue
            claims.append(pvc)
            populated = populated and self.populated(pvc)
        src = Source(claims, populated=populated or not claims, vm_name=name)
        if not claims:
            src.ready = ("VMNoVolumes", f"Virtual Machine {ns}/{name} has no volumes")
        elif not populated:
            src.ready = ("VolumesNotPopulated", f"Not all volumes in the Virtual Machine {ns}/{name} are populated")
        else:
            vmi = self.sim.cache.vmis.get_ns(ns, name)
            if vmi is not None and dig(vmi, "status", "phase") not in ("Succeeded", "Failed"):
                src.in_use = True
                src.ready = ("InUse", f"Virtual Machine {ns}/{name} is running")
        return src

    async def snapshot_source(self, export):
        ns, name = export["metadata"]["namespace"], dig(export, "spec", "source", "name")
        ref = f"VirtualMachineSnapshot {ns}/{name}"
        prefix = export["metadata"]["name"] + "-"
        namer = lambda claim: claim[len(prefix):] if claim.startswith(prefix) else claim  # noqa: E731
        snap = await self.sim.kube.get_or_none(VMSNAPSHOT, name, ns)
        no_volumes = ("VolumesCreated", "False", "VMSnapshotNoVolumes", f"{ref} does not contain any volume snapshots")
        if snap is None:
            return Source(ready=("VMSnapshotNotFound", f"{ref} not found"), condition=no_volumes, namer=namer)
        vm_name = dig(snap, "spec", "source", "name")
        if not dig(snap, "status", "readyToUse"):
            msg = f"{ref} is not ready to use"
            return Source(ready=("NotAllPVCsCreated", msg), condition=("VolumesCreated", "False", "NotAllPVCsCreated",
                                                                      msg), vm_name=vm_name, namer=namer)
        content_name = dig(snap, "status", "virtualMachineSnapshotContentName")
        content = await self.sim.kube.get_or_none(VMSNAPSHOT_CONTENT, content_name, ns) if content_name else None
        claims = []
        total = len(dig(content, "status", "volumeSnapshotStatus", default=[]) or [])
        for backup in dig(content, "spec", "volumeBackups", default=[]) or []:
            claims.append(await self.restore_claim(export, backup))
        if total == 0:
            return Source(condition=no_volumes, vm_name=vm_name, namer=namer)
        if len(claims) != total:
            return Source(condition=("VolumesCreated", "False", "NotAllPVCsCreated",
                                     "Not all PVCs have been successfully restored"), vm_name=vm_name, namer=namer)
        bound = all(dig(c, "status", "phase") == "Bound" for c in claims)
        cond = ("VolumesCreated", "True", "AllPVCsReady", "") if bound else \
            ("VolumesCreated", "False", "NotAllPVCsReady", "Not all PVCs are ready")
        return Source(claims, populated=True, condition=cond, vm_name=vm_name, namer=namer)

    async def restore_claim(self, export, backup):
        """getOrCreatePVCFromSnapshot: the claim `<export>-<claim>` restored from the backup's VolumeSnapshot."""
        ns = export["metadata"]["namespace"]
        source_claim = dig(backup, "persistentVolumeClaim", default={}) or {}
        name = f"{export['metadata']['name']}-{dig(source_claim, 'metadata', 'name')}"
        existing = self.sim.cache.pvcs.get_ns(ns, name)
        if existing is not None:
            return existing
        spec = deep(source_claim.get("spec") or {})
        spec.pop("volumeName", None)
        spec.pop("dataSourceRef", None)
        spec["dataSource"] = {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot",
                              "name": backup.get("volumeSnapshotName")}
        meta = {"name": name, "namespace": ns, "ownerReferences": [owner_ref(export)]}
        if source_claim.get("metadata", {}).get("annotations", {}).get(CONTENT_TYPE) is not None or \
                dig(source_claim, "metadata", "ownerReferences"):
            meta["annotations"] = {CONTENT_TYPE: "kubevirt"}
        return await self.sim.kube.create_or_get(PVC, {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                                       "metadata": meta, "spec": spec}, ns)

    # --- objects -------------------------------------------------------------------------------
    async def ensure_service(self, export):
        ns, name = export["metadata"]["namespace"], service_name(export)
        svc = await self.sim.kube.get_or_none(SERVICE, name, ns)
        if svc is not None:
            return svc
        svc = await self.sim.kube.create(SERVICE, {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "ownerReferences": [owner_ref(export)],
                         "labels": {"kubevirt.io": "virt-exporter"}},
            "spec": {"ports": [{"name": "export", "port": 443, "protocol": "TCP", "targetPort": 8443}],
                     "selector": {SERVICE_LABEL: export["metadata"]["name"]}}}, ns)
        self.sim.recorder.normal(export, "ServiceCreated", f"Created service {ns}/{name}")
        return svc

    async def ensure_token(self, export, status, source):
        """handleVMExportToken: the user's Secret, or one made for this export once its source can be exported."""
        given = dig(export, "spec", "tokenSecretRef")
        if given:
            status["tokenSecretRef"] = given
            return
        if not source.available or not source.has_content:
            return
        status.setdefault("tokenSecretRef", token_secret_name(export))
        ns, name = export["metadata"]["namespace"], status["tokenSecretRef"]
        token = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(20))
        try:
            await self.sim.kube.create(SECRET, {
                "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": name, "namespace": ns, "ownerReferences": [owner_ref(export)]},
                "stringData": {"token": token}}, ns)
        except ApiError as exc:
            if exc.status == 409:
                return
            raise
        self.sim.recorder.normal(export, "SecretCreated", f"Created default secret {ns}/{name}")

    async def manage_pod(self, export, status, source):
        ns, name = export["metadata"]["namespace"], pod_name(export)
        pod = self.sim.cache.pods.get_ns(ns, name)
        if pod is not None and dig(controller_of(pod), "uid") != export["metadata"]["uid"]:
            pod = None
        if pod is None and source.available and source.has_content:
            pod = await self.sim.kube.create(POD, self.pod_manifest(export, status, source), ns)
            self.sim.cache.pods.observe(pod)
            self.sim.recorder.normal(export, "ExporterPodCreated", f"Created exporter pod {ns}/{name}")
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return pod
        if not source.available:
            message = source.condition[3] if source.condition else ""
            await self.delete_pod(export, pod, "ExportPaused", message)
            return None
        if dig(pod, "status", "phase") in ("Succeeded", "Failed"):
            await self.delete_pod(export, pod, "ExporterPodFailedOrCompleted",
                                  f"Exporter pod {ns}/{name} is in phase {pod['status']['phase']}")
        return pod

    async def delete_pod(self, export, pod, reason, message):
        self.sim.recorder.warning(export, reason, message)
        try:
            await self.sim.kube.delete(POD, pod["metadata"]["name"], pod["metadata"]["namespace"])
        except ApiError as exc:
            if exc.status != 404:
                raise

    def pod_manifest(self, export, status, source):
        ns = export["metadata"]["namespace"]
        env, mounts, volumes = [], [], []
        for i, pvc in enumerate(source.claims):
            claim = pvc["metadata"]["name"]
            vol = get_name(PREFIX, claim)
            block = dig(pvc, "spec", "volumeMode") == "Block"
            path = f"/dev/export-volumes/{vol}" if block else f"/export-volumes/{vol}"
            env.append({"name": f"VOLUME{i}_EXPORT_PATH", "value": path})
            for fmt in self.formats(pvc):
                var = {"raw": "RAW_URI", "gzip": "RAW_GZIP_URI", "tar.gz": "ARCHIVE_URI", "dir": "DIR_URI"}[fmt]
                env.append({"name": f"VOLUME{i}_EXPORT_{var}", "value": f"/volumes/{claim}/{FORMAT_FILES[fmt]}"})
            volumes.append({"name": vol, "persistentVolumeClaim": {"claimName": claim}})
            mounts.append({"name": vol, "mountPath": path, "readOnly": True})
        volumes.append({"name": "token", "secret": {"secretName": status.get("tokenSecretRef") or ""}})
        mounts.append({"name": "token", "mountPath": "/token"})
        env += [{"name": "TOKEN_FILE", "value": "/token/token"},
                {"name": "DEADLINE", "value": stamp(expiration(export))}]
        return {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod_name(export), "namespace": ns, "ownerReferences": [owner_ref(export)],
                         "labels": {"kubevirt.io": "virt-exporter", SERVICE_LABEL: export["metadata"]["name"]}},
            "spec": {"nodeName": self.sim.node_names[0], "restartPolicy": "Never", "volumes": volumes,
                     "containers": [{"name": "exporter", "image": IMAGE, "env": env, "volumeMounts": mounts,
                                     "ports": [{"name": "export", "containerPort": 8443, "protocol": "TCP"}]}]}}

    def formats(self, pvc):
        """isKubevirtContentType: disk images (raw, gzip) or a filesystem's files (dir, tar.gz)."""
        if dig(pvc, "spec", "volumeMode") == "Block":
            return ("raw", "gzip")
        ann = pvc["metadata"].get("annotations") or {}
        if CONTENT_TYPE in ann:
            kubevirt = ann[CONTENT_TYPE] in ("kubevirt", "")
        else:
            ref = controller_of(pvc)
            dv = self.sim.cache.dvs.get_ns(pvc["metadata"]["namespace"], ref["name"]) \
                if ref and ref.get("kind") == "DataVolume" else None
            kubevirt = dv is not None and dig(dv, "spec", "contentType") in (None, "", "kubevirt")
        return ("raw", "gzip") if kubevirt else ("dir", "tar.gz")

    def links(self, export, source):
        with open(self.sim.args.ca_bundle) as fh:
            cert = fh.read().strip()
        ns, name = export["metadata"]["namespace"], export["metadata"]["name"]
        host = self.sim.args.listen
        bases = {"internal": f"https://{service_name(export)}.{ns}.svc",
                 "external": f"https://{host}{EXTERNAL_BASE.format(ns=ns, name=name)}"}
        out = {}
        for kind, base in bases.items():
            vols = []
            for pvc in source.claims:
                claim = pvc["metadata"]["name"]
                formats = [{"format": fmt, "url": f"{base}/volumes/{claim}/{FORMAT_FILES[fmt]}"}
                           for fmt in self.formats(pvc)]
                vols.append({"name": source.namer(claim), "formats": formats})
            out[kind] = {"cert": cert, "volumes": vols}
        return out


# --- the export server ---------------------------------------------------------------------------
class ExportServer:
    """The external side of every export's virt-exportserver, on the simulator's HTTPS listener."""

    def __init__(self, sim):
        self.sim = sim

    def routes(self, app):
        base = EXTERNAL_BASE.format(ns="{ns}", name="{name}")
        app.router.add_get(base + "/volumes/{claim}/{file:.*}", self.volume)

    async def volume(self, request):
        ns, name = request.match_info["ns"], request.match_info["name"]
        claim, file = request.match_info["claim"], request.match_info["file"]
        export = self.sim.cache.exports.get_ns(ns, name)
        if export is None or dig(export, "status", "phase") != "Ready":
            return web.Response(status=503, text="export not ready\n")
        urls = [f["url"] for v in dig(export, "status", "links", "external", "volumes", default=[])
                for f in v.get("formats") or []]
        if not any(u.endswith(f"/volumes/{claim}/{file}") or (file.startswith("dir/") and
                                                             u.endswith(f"/volumes/{claim}/dir/")) for u in urls):
            return web.Response(status=404, text="not found\n")
        token = request.headers.get(TOKEN_HEADER) or request.query.get(TOKEN_HEADER)
        secret_name = dig(export, "status", "tokenSecretRef")
        secret = await self.sim.kube.get_or_none(SECRET, secret_name, ns) if secret_name else None
        want = dig(secret, "data", "token")
        if not token or want is None or not secrets.compare_digest(base64.b64decode(want).decode(), token):
            return web.Response(status=401, text="Unauthorized\n")
        pvc = self.sim.cache.pvcs.get_ns(ns, claim)
        if pvc is None:
            return web.Response(status=404, text="not found\n")
        path, size = self.image(pvc)
        if file == "disk.img" or file == "dir/disk.img":
            return await self.stream(request, path, size, None)
        if file == "disk.img.gz":
            return await self.stream(request, path, size, "gzip")
        if file == "disk.tar.gz":
            return await self.stream(request, path, size, "tar")
        if file == "dir/":
            return web.Response(text='<pre>\n<a href="disk.img">disk.img</a>\n</pre>\n', content_type="text/html")
        return web.Response(status=404, text="not found\n")

    def image(self, pvc):
        """(path or None, size): the claim's PersistentVolume image, or None for an empty claim of its size."""
        size = int(parse_quantity(dig(pvc, "status", "capacity", "storage")
                                  or dig(pvc, "spec", "resources", "requests", "storage") or 0))
        pv = dig(pvc, "spec", "volumeName")
        path = self.sim.volumes.image(pv) if pv else None
        if path is not None and path.exists():
            return path, path.stat().st_size
        return None, size

    async def stream(self, request, path, size, wrap):
        resp = web.StreamResponse()
        resp.content_type = "application/octet-stream"
        if wrap is None:
            resp.content_length = size
        await resp.prepare(request)
        if wrap == "tar":
            header = tarfile.TarInfo("disk.img")
            header.size, header.mtime, header.mode = size, int(time.time()), 0o644
            packer = zlib.compressobj(6, zlib.DEFLATED, 31)
            head = packer.compress(header.tobuf(format=tarfile.GNU_FORMAT))
        else:
            packer = zlib.compressobj(6, zlib.DEFLATED, 31) if wrap == "gzip" else None
            head = b""
        if head:
            await resp.write(head)
        fh = await asyncio.to_thread(open, path, "rb") if path is not None else None
        try:
            left = size
            while left > 0:
                n = min(CHUNK, left)
                data = await asyncio.to_thread(fh.read, n) if fh else bytes(n)
                data = data.ljust(n, b"\0")
                left -= n
                if packer is not None:
                    data = await asyncio.to_thread(packer.compress, data)
                if data:
                    await resp.write(data)
            if wrap == "tar":
                pad = (-size) % tarfile.BLOCKSIZE
                await resp.write(packer.compress(b"\0" * (pad + 2 * tarfile.BLOCKSIZE)))
            if packer is not None:
                await resp.write(packer.flush())
        finally:
            if fh:
                fh.close()
        await resp.write_eof()
        return resp

