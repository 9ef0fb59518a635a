"""A small asyncio Kubernetes REST client: kubeconfig, requests, watches.

Everything the simulator knows lives in the API; this module is the only place that talks HTTP
to the kube-apiserver.
"""
import asyncio
import base64
import json
import logging
import os
import ssl
import tempfile
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp
import yaml

log = logging.getLogger("simulator.kube")


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace=None, name=None, sub=None):
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if sub:
            base += f"/{sub}"
        return base


VM = Resource("kubevirt.io", "v1", "virtualmachines", "VirtualMachine")
VMI = Resource("kubevirt.io", "v1", "virtualmachineinstances", "VirtualMachineInstance")
VMIM = Resource("kubevirt.io", "v1", "virtualmachineinstancemigrations", "VirtualMachineInstanceMigration")
VMIRS = Resource("kubevirt.io", "v1", "virtualmachineinstancereplicasets", "VirtualMachineInstanceReplicaSet")
POOL = Resource("pool.kubevirt.io", "v1beta1", "virtualmachinepools", "VirtualMachinePool")
MIGRATION_POLICY = Resource("migrations.kubevirt.io", "v1alpha1", "migrationpolicies", "MigrationPolicy",
                            namespaced=False)
VMSNAPSHOT = Resource("snapshot.kubevirt.io", "v1beta1", "virtualmachinesnapshots", "VirtualMachineSnapshot")
VMSNAPSHOT_CONTENT = Resource("snapshot.kubevirt.io", "v1beta1", "virtualmachinesnapshotcontents",
                              "VirtualMachineSnapshotContent")
VMRESTORE = Resource("snapshot.kubevirt.io", "v1beta1", "virtualmachinerestores", "VirtualMachineRestore")
VMCLONE = Resource("clone.kubevirt.io", "v1beta1", "virtualmachineclones", "VirtualMachineClone")
VMEXPORT = Resource("export.kubevirt.io", "v1beta1", "virtualmachineexports", "VirtualMachineExport")
VOLUME_SNAPSHOT = Resource("snapshot.storage.k8s.io", "v1", "volumesnapshots", "VolumeSnapshot")
VOLUME_SNAPSHOT_CLASS = Resource("snapshot.storage.k8s.io", "v1", "volumesnapshotclasses", "VolumeSnapshotClass",
                                 namespaced=False)
VOLUME_SNAPSHOT_CONTENT = Resource("snapshot.storage.k8s.io", "v1", "volumesnapshotcontents",
                                   "VolumeSnapshotContent", namespaced=False)
KUBEVIRT = Resource("kubevirt.io", "v1", "kubevirts", "KubeVirt")
DV = Resource("cdi.kubevirt.io", "v1beta1", "datavolumes", "DataVolume")
NAD = Resource("k8s.cni.cncf.io", "v1", "network-attachment-definitions", "NetworkAttachmentDefinition")
POD = Resource("", "v1", "pods", "Pod")
PVC = Resource("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim")
PV = Resource("", "v1", "persistentvolumes", "PersistentVolume", namespaced=False)
NODE = Resource("", "v1", "nodes", "Node", namespaced=False)
NAMESPACE = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
EVENT = Resource("", "v1", "events", "Event")
SERVICE = Resource("", "v1", "services", "Service")
SECRET = Resource("", "v1", "secrets", "Secret")
SC = Resource("storage.k8s.io", "v1", "storageclasses", "StorageClass", namespaced=False)
LEASE = Resource("coordination.k8s.io", "v1", "leases", "Lease")
CR = Resource("apps", "v1", "controllerrevisions", "ControllerRevision")
CLUSTER_INSTANCETYPE = Resource("instancetype.kubevirt.io", "v1beta1", "virtualmachineclusterinstancetypes",
                                "VirtualMachineClusterInstancetype", namespaced=False)
INSTANCETYPE = Resource("instancetype.kubevirt.io", "v1beta1", "virtualmachineinstancetypes",
                        "VirtualMachineInstancetype")
CLUSTER_PREFERENCE = Resource("instancetype.kubevirt.io", "v1beta1", "virtualmachineclusterpreferences",
                              "VirtualMachineClusterPreference", namespaced=False)
PREFERENCE = Resource("instancetype.kubevirt.io", "v1beta1", "virtualmachinepreferences", "VirtualMachinePreference")
APISERVICE = Resource("apiregistration.k8s.io", "v1", "apiservices", "APIService", namespaced=False)
VWC = Resource("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations",
               "ValidatingWebhookConfiguration", namespaced=False)
MWC = Resource("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations",
               "MutatingWebhookConfiguration", namespaced=False)
CLUSTERROLE = Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False)


class ApiError(Exception):
    def __init__(self, status, body):
        self.status = status
        self.body = body if isinstance(body, dict) else {"message": str(body)}
        super().__init__(f"{status}: {self.body.get('message', body)}")

    @property
    def reason(self):
        return self.body.get("reason", "")


def key_of(obj):
    meta = obj["metadata"]
    ns = meta.get("namespace")
    return f"{ns}/{meta['name']}" if ns else meta["name"]


def rv_int(obj):
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


class KubeConfig:
    """The bits of a kubeconfig the simulator needs: server, CA and a client credential."""

    def __init__(self, path):
        with open(path) as fh:
            cfg = yaml.safe_load(fh)
        ctx_name = cfg.get("current-context")
        ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in cfg["users"] if u["name"] == ctx["user"])
        self.server = cluster["server"].rstrip("/")
        self._dir = tempfile.mkdtemp(prefix="kubevirt-simulator-")
        os.chmod(self._dir, 0o700)
        base = os.path.dirname(os.path.abspath(path))
        self.ca_file = self._material(cluster, "certificate-authority", "ca.crt", base)
        self.cert_file = self._material(user, "client-certificate", "client.crt", base)
        self.key_file = self._material(user, "client-key", "client.key", base)
        self.token = user.get("token")

    def _material(self, section, field, fname, base):
        if section.get(f"{field}-data"):
            path = os.path.join(self._dir, fname)
            with open(path, "wb") as fh:
                fh.write(base64.b64decode(section[f"{field}-data"]))
            os.chmod(path, 0o600)
            return path
        if section.get(field):
            return os.path.join(base, section[field])
        return None

    def ssl_context(self):
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file and self.key_file:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


class Kube:
    """Async REST client. Writes return the object the server returned."""

    def __init__(self, kubeconfig, field_manager="kubevirt-simulator", max_connections=24):
        self.cfg = KubeConfig(kubeconfig)
        self.server = self.cfg.server
        self.field_manager = field_manager
        self._ssl = self.cfg.ssl_context()
        self._max = max_connections
        self.session = None
        self.requests = 0
        self._warned = set()

    async def start(self):
        headers = {"Accept": "application/json", "User-Agent": "kubevirt-simulator/1.0"}
        if self.cfg.token:
            headers["Authorization"] = f"Bearer {self.cfg.token}"
        conn = aiohttp.TCPConnector(ssl=self._ssl, limit=self._max, keepalive_timeout=60)
        self.session = aiohttp.ClientSession(connector=conn, headers=headers,
                                             timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        # A separate small pool for watches so long-lived streams never starve requests.
        wconn = aiohttp.TCPConnector(ssl=self._ssl, limit=0)
        self.watch_session = aiohttp.ClientSession(connector=wconn, headers=headers,
                                                   timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))

    async def close(self):
        for s in (self.session, getattr(self, "watch_session", None)):
            if s:
                await s.close()

    async def request(self, method, path, body=None, params=None, content_type="application/json",
                      timeout=30, raw=False):
        url = self.server + path
        if params:
            url += "?" + urlencode({k: v for k, v in params.items() if v is not None})
        data = None
        headers = {}
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body, separators=(",", ":"))
            headers["Content-Type"] = content_type
        self.requests += 1
        async with self.session.request(method, url, data=data, headers=headers,
                                        timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            text = await resp.read()
            for warning in resp.headers.getall("Warning", []):
                # fieldValidation=Warn: a field the CRD schema does not know (it would be pruned)
                if warning not in self._warned:
                    self._warned.add(warning)
                    log.warning("apiserver warning for %s %s: %s", method, path, warning)
            if resp.status >= 400:
                try:
                    payload = json.loads(text)
                except ValueError:
                    payload = {"message": text.decode(errors="replace")}
                raise ApiError(resp.status, payload)
            if raw:
                return text
            return json.loads(text) if text else {}

    # --- verbs -------------------------------------------------------------------------
    async def get(self, res, name, namespace=None, sub=None):
        return await self.request("GET", res.path(namespace, name, sub))

    async def get_or_none(self, res, name, namespace=None):
        try:
            return await self.get(res, name, namespace)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def list(self, res, namespace=None, label_selector=None, field_selector=None, **params):
        return await self.request("GET", res.path(namespace), params={
            "labelSelector": label_selector, "fieldSelector": field_selector, **params})

    async def create(self, res, obj, namespace=None, sub=None, name=None):
        ns = namespace or obj.get("metadata", {}).get("namespace")
        return await self.request("POST", res.path(ns, name, sub), obj,
                                  params={"fieldManager": self.field_manager, "fieldValidation": "Warn"})

    async def create_or_get(self, res, obj, namespace=None):
        """Create obj; when it exists already (409 AlreadyExists: our earlier sync made it), the one there."""
        ns = namespace or obj.get("metadata", {}).get("namespace")
        try:
            return await self.create(res, obj, ns)
        except ApiError as exc:
            if exc.status != 409:
                raise
            return await self.get(res, obj["metadata"]["name"], ns)

    async def replace(self, res, obj, sub=None):
        meta = obj["metadata"]
        return await self.request("PUT", res.path(meta.get("namespace"), meta["name"], sub), obj,
                                  params={"fieldManager": self.field_manager, "fieldValidation": "Warn"})

    async def patch(self, res, name, patch, namespace=None, sub=None, kind="merge"):
        ctype = {"merge": "application/merge-patch+json", "json": "application/json-patch+json",
                 "strategic": "application/strategic-merge-patch+json"}[kind]
        return await self.request("PATCH", res.path(namespace, name, sub), patch, content_type=ctype,
                                  params={"fieldManager": self.field_manager, "fieldValidation": "Warn"})

    async def apply(self, res, obj, force=True):
        meta = obj["metadata"]
        return await self.request("PATCH", res.path(meta.get("namespace"), meta["name"]), obj,
                                  content_type="application/apply-patch+yaml",
                                  params={"fieldManager": self.field_manager, "force": "true" if force else None})

    async def delete(self, res, name, namespace=None, grace=None, preconditions=None, propagation=None):
        body = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace is not None:
            body["gracePeriodSeconds"] = grace
        if preconditions:
            body["preconditions"] = preconditions
        if propagation:
            body["propagationPolicy"] = propagation
        try:
            return await self.request("DELETE", res.path(namespace, name), body)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def watch(self, res, resource_version, namespace=None, label_selector=None, timeout=290):
        """Yield (type, object) from one watch request until the server closes it."""
        params = {"watch": "1", "resourceVersion": resource_version, "allowWatchBookmarks": "true",
                  "timeoutSeconds": str(timeout), "labelSelector": label_selector}
        url = self.server + res.path(namespace) + "?" + urlencode({k: v for k, v in params.items() if v})
        async with self.watch_session.get(url, timeout=aiohttp.ClientTimeout(total=timeout + 30,
                                                                              sock_read=timeout + 30)) as resp:
            if resp.status >= 400:
                text = await resp.read()
                try:
                    payload = json.loads(text)
                except ValueError:
                    payload = {"message": text.decode(errors="replace")}
                raise ApiError(resp.status, payload)
            buf = b""
            async for chunk in resp.content.iter_any():
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        ev = json.loads(line)
                        yield ev["type"], ev["object"]

    async def whoami(self):
        review = await self.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                    {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
        return review.get("status", {}).get("userInfo", {}).get("username", "")


async def retry_conflicts(fn, attempts=5):
    """Run fn() again on 409 Conflict (fn re-reads what it needs)."""
    for i in range(attempts):
        try:
            return await fn()
        except ApiError as exc:
            if exc.status != 409 or i == attempts - 1:
                raise
            await asyncio.sleep(0.05 * (i + 1))
