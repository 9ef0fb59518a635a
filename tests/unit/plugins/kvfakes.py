"""A fake API for unit tests: an in-memory object store with a tiny KubeVirt 'controller'.

It implements the Client methods the modules use (get_or_none, list, apply, merge_patch, delete,
watch...) with the semantics that matter: server defaults added on write, resourceVersions,
dry runs that store nothing, watches that send the initial state then a bookmark, and a
controller that creates a Running VMI (with IPs) for a running VM and removes it when halted.
"""
import copy
import json

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import ApiError


def merge(base, patch):
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(base.get(key), value)
    return out


def running_vmi(name, namespace, uid="vmi-uid", node="node01", ips=None, phase="Running", ready=True, owner_uid=None):
    ips = ips or {"default": "10.244.0.10"}
    return {
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
        "metadata": {"name": name, "namespace": namespace, "uid": uid, "resourceVersion": "1",
                     "ownerReferences": [{"kind": "VirtualMachine", "name": name, "controller": True,
                                          "uid": owner_uid or "uid-%s" % name}]},
        "spec": {"networks": [{"name": n, "pod": {}} for n in ips],
                 "volumes": [{"name": "root", "containerDisk": {"image": "quay.io/x:1"}}]},
        "status": {
            "phase": phase, "nodeName": node,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"},
                           {"type": "AgentConnected", "status": "True"}],
            "interfaces": [{"name": n, "ipAddress": ip, "ipAddresses": [ip], "mac": "02:00:00:00:00:0%d" % i,
                            "interfaceName": "eth%d" % i} for i, (n, ip) in enumerate(ips.items())],
            "guestOSInfo": {"id": "fedora", "name": "Fedora Linux", "version": "41", "prettyName": "Fedora 41",
                            "kernelRelease": "6.11"},
        },
    }


class FakeClient:
    def __init__(self, namespace="default", controller=True, namespaces=("default", "demo", "fleet")):
        self.namespace = namespace
        self.host = "https://fake:6443"
        self.warnings = []
        self.requests = 0
        self.calls = []
        self.store = {}
        self.rv = 100
        self.controller = controller
        self.namespaces = set(namespaces)
        self.watchlist_supported = True
        self.watch_script = None  # list of lists of events, consumed per watch call
        self.going = set()  # (kind, namespace, name): gone as soon as a watch on the kind starts
        self.fail = {}  # (method, kind) -> ApiError to raise
        self.unschedulable = set()
        self.failing = {}  # VM name -> the Failure condition its 'controller' sets instead of creating the VMI

    # -- helpers
    def being_deleted(self, kind, name, namespace="demo", finalizer="example.com/hold"):
        """Mark the stored object deleted and held by a finalizer, until someone watches its kind."""
        obj = self.store[(kind, namespace, name)]
        obj["metadata"].update(deletionTimestamp="2026-01-01T00:00:00Z", finalizers=[finalizer])
        self.going.add((kind, namespace, name))
        return obj

    def _tick(self):
        self.rv += 1
        return str(self.rv)

    def _key(self, resource, namespace, name):
        return (resource.kind, namespace, name)

    def _call(self, method, resource, **kw):
        self.requests += 1
        self.calls.append((method, resource.kind, kw))
        err = self.fail.get((method, resource.kind))
        if err is not None:
            raise err

    def put(self, obj):
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta["resourceVersion"] = self._tick()
        meta.setdefault("uid", "uid-%s" % meta["name"])
        meta.setdefault("creationTimestamp", "2025-01-01T00:00:00Z")
        res_ = res.BY_KIND[obj["kind"]]
        self.store[self._key(res_, meta.get("namespace"), meta["name"])] = obj
        return obj

    def _ns_check(self, namespace):
        if namespace and namespace not in self.namespaces:
            body = {"kind": "Status", "reason": "NotFound", "message": 'namespaces "%s" not found' % namespace,
                    "details": {"name": namespace, "kind": "namespaces"}}
            raise ApiError(404, "PATCH", "/x", body)

    # -- Client API
    def get(self, resource, name, namespace=None):
        obj = self.get_or_none(resource, name, namespace)
        if obj is None:
            raise ApiError(404, "GET", "/x", {"reason": "NotFound", "message": "%s \"%s\" not found" % (
                resource.plural, name), "details": {"name": name, "kind": resource.plural}})
        return obj

    def get_or_none(self, resource, name, namespace=None):
        self._call("GET", resource, name=name, namespace=namespace)
        obj = self.store.get(self._key(resource, namespace, name))
        return copy.deepcopy(obj) if obj else None

    def list(self, resource, namespace=None, label_selector=None, field_selector=None, limit=500):
        self._call("LIST", resource, namespace=namespace, label_selector=label_selector,
                   field_selector=field_selector)
        return {"metadata": {"resourceVersion": str(self.rv)}, "items": self._matching(
            resource, namespace, label_selector, field_selector)}

    def _matching(self, resource, namespace, label_selector=None, field_selector=None):
        out = []
        for (kind, ns, name), obj in sorted(self.store.items()):
            if kind != resource.kind or (namespace and ns != namespace):
                continue
            if field_selector:
                ok = True
                for part in field_selector.split(","):
                    key, dummy, value = part.partition("=")
                    if key == "metadata.name" and name != value:
                        ok = False
                    if key == "type" and obj.get("type") != value:
                        ok = False
                if not ok:
                    continue
            if label_selector:
                labels = obj["metadata"].get("labels") or {}
                if not all(labels.get(p.split("=")[0]) == p.split("=")[1] for p in label_selector.split(",")):
                    continue
            out.append(copy.deepcopy(obj))
        return out

    def _with_defaults(self, obj):
        obj = copy.deepcopy(obj)
        if obj.get("kind") == "VirtualMachine":
            tspec = obj["spec"].setdefault("template", {}).setdefault("spec", {})
            tspec.setdefault("domain", {}).setdefault("machine", {"type": "q35"})
            obj["metadata"].setdefault("annotations", {})["kubevirt.io/latest-observed-api-version"] = "v1"
            obj["metadata"]["finalizers"] = ["kubevirt.io/virtualMachineControllerFinalize"]
        return obj

    def apply(self, resource, obj, dry_run=False, force=True, field_manager=None):
        self._call("APPLY", resource, name=obj["metadata"]["name"], dry_run=dry_run, body=copy.deepcopy(obj))
        ns = obj["metadata"].get("namespace")
        self._ns_check(ns)
        current = self.store.get(self._key(resource, ns, obj["metadata"]["name"]))
        new = self._with_defaults(obj)
        if current is not None:
            # Fields of the current object the apply does not mention stay (other managers own them).
            keep = copy.deepcopy(current)
            keep.pop("status", None)
            new_meta = new["metadata"]
            for key in ("uid", "creationTimestamp", "generation"):
                new_meta[key] = current["metadata"].get(key)
            if (current.get("spec") or {}) != (new.get("spec") or {}):  # the API server's generation
                new_meta["generation"] = (new_meta.get("generation") or 0) + 1
            if current.get("status"):
                new["status"] = copy.deepcopy(current["status"])
            if current["metadata"].get("labels") and "labels" not in new_meta:
                new_meta["labels"] = copy.deepcopy(current["metadata"]["labels"])
            if self._strip(current) == self._strip(new):
                return copy.deepcopy(current)
        if dry_run:
            new["metadata"].setdefault("uid", "dry")
            new["metadata"]["resourceVersion"] = str(self.rv)
            return new
        template_changed = current is not None and (current.get("spec") or {}).get("template") != \
            (new.get("spec") or {}).get("template")
        stored = self.put(new)
        self._control(stored, template_changed)
        return copy.deepcopy(self.store[self._key(resource, ns, obj["metadata"]["name"])])

    @staticmethod
    def _strip(obj):
        obj = copy.deepcopy(obj)
        obj.pop("status", None)
        for key in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
            obj["metadata"].pop(key, None)
        return obj

    def merge_patch(self, resource, name, namespace, patch, dry_run=False, field_manager=None, retry=True):
        self._call("MERGE", resource, name=name, dry_run=dry_run, body=copy.deepcopy(patch))
        current = self.get_or_none(resource, name, namespace)
        self.requests -= 1
        new = merge(current, patch)
        if self._strip(new) == self._strip(current) or dry_run:
            return new
        stored = self.put(new)
        self._control(stored)
        return copy.deepcopy(stored)

    def delete(self, resource, name, namespace=None, propagation="Foreground", dry_run=False, grace_period=None,
               uid=None):
        self._call("DELETE", resource, name=name, dry_run=dry_run)
        key = self._key(resource, namespace, name)
        obj = self.store.get(key)
        if obj is None:
            return None
        if not dry_run:
            del self.store[key]
            if self.controller and resource.kind == "VirtualMachine":
                self.store.pop(self._key(res.VMI, namespace, name), None)
            if self.controller:
                for k in [k for k, o in self.store.items() if k[0] == "Pod" and
                          (o["metadata"].get("labels") or {}).get("vm.kubevirt.io/name") == name]:
                    del self.store[k]
        return {"kind": "Status", "status": "Success"}

    def watch(self, resource, namespace=None, resource_version=None, label_selector=None, field_selector=None,
              timeout=60, send_initial_events=False, idle=None):
        self._call("WATCH", resource, namespace=namespace, rv=resource_version, initial=send_initial_events,
                   field_selector=field_selector, label_selector=label_selector, idle=idle)
        for key in [k for k in self.going if k[0] == resource.kind]:
            self.store.pop(key, None)
            self.going.discard(key)
        if self.watch_script is not None:
            if not self.watch_script:
                import time
                time.sleep(0.05)
                return iter([])
            step = self.watch_script.pop(0)
            if isinstance(step, Exception):
                raise step
            return iter(step)
        if send_initial_events and not self.watchlist_supported:
            raise ApiError(422, "GET", "/x", {"reason": "Invalid", "message": "sendInitialEvents is forbidden"})
        events = []
        if send_initial_events:
            for obj in self._matching(resource, namespace, label_selector, field_selector):
                events.append(("ADDED", obj))
            events.append(("BOOKMARK", {"metadata": {"resourceVersion": str(self.rv),
                                                     "annotations": {"k8s.io/initial-events-end": "true"}}}))
        else:
            import time
            time.sleep(0.05)
        return iter(events)

    # -- the 'controller'
    def _control(self, obj, template_changed=False):
        if not self.controller or obj.get("kind") != "VirtualMachine":
            return
        meta = obj["metadata"]
        ns, name = meta["namespace"], meta["name"]
        strategy = obj["spec"].get("runStrategy")
        key = self._key(res.VMI, ns, name)
        if strategy in ("Always", "RerunOnFailure", "Once") and name in self.failing:
            self.store[self._key(res.VM, ns, name)]["status"] = {
                "printableStatus": "Stopped", "ready": False, "created": False, "conditions": [
                    {"type": "Ready", "status": "False", "reason": "VMINotExists", "message": "VMI does not exist"},
                    dict(self.failing[name], type="Failure", status="True")]}
        elif strategy in ("Always", "RerunOnFailure", "Once"):
            if key not in self.store:
                owner = meta.get("uid")
                if name in self.unschedulable:
                    vmi = running_vmi(name, ns, phase="Scheduling", ready=False, owner_uid=owner)
                    vmi["status"]["conditions"] = [{
                        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                        "message": "0/1 nodes are available: 1 Insufficient memory."}]
                    vmi["status"].pop("interfaces")
                    vmi["status"].pop("nodeName")
                else:
                    vmi = running_vmi(name, ns, uid="uid-vmi-%s" % name, owner_uid=owner)
                self.put(vmi)
                self.put({"apiVersion": "v1", "kind": "Pod", "metadata": {
                    "name": "virt-launcher-%s-abcde" % name, "namespace": ns,
                    "labels": {"kubevirt.io": "virt-launcher", "vm.kubevirt.io/name": name,
                               "kubevirt.io/created-by": "uid-vmi-%s" % name},
                    "annotations": {"kubevirt.io/domain": name}},
                    "spec": {"nodeName": "node01"}, "status": {"phase": "Running"}})
                status = {"printableStatus": "Running", "ready": True, "created": True}
            else:
                status = obj.get("status") or {}
                if template_changed:
                    # A template change on a running VM needs a restart.
                    status = dict(status, conditions=[{"type": "RestartRequired", "status": "True",
                                                       "message": "a restart is required"}])
            stored = self.store[self._key(res.VM, ns, name)]
            stored["status"] = status
            stored["status"]["observedGeneration"] = stored["metadata"].get("generation")
        elif strategy == "Halted":
            self.store.pop(key, None)
            for k in [k for k, o in self.store.items() if k[0] == "Pod" and
                      (o["metadata"].get("labels") or {}).get("vm.kubevirt.io/name") == name]:
                del self.store[k]
            self.store[self._key(res.VM, ns, name)]["status"] = {"printableStatus": "Stopped", "ready": False}


def dumps(obj):
    return json.dumps(obj, sort_keys=True)


# -- a fake urllib3 transport, for tests of the real Client ----------------------------------------
class FakeResponse:
    """One HTTP answer: a status with a body (bytes as given, anything else as JSON), or a stream of chunks (a watch)."""

    def __init__(self, status=200, body=None, headers=None, chunks=None):
        self.status = status
        self.data = body if isinstance(body, bytes) else json.dumps(body if body is not None else {}).encode()
        self.headers = headers or {}
        self._chunks = chunks

    def stream(self, amt, decode_content=True):
        for chunk in self._chunks or []:
            if isinstance(chunk, Exception):
                raise chunk
            yield chunk

    def read(self):
        return self.data

    def release_conn(self):
        pass


class FakePool:
    """A urllib3 pool stand-in answering in order from a script: a FakeResponse, an Exception (raised),
    or a callable(method, url, body) that returns either. ``sent`` holds (method, url, request kwargs)."""

    def __init__(self, script):
        self.script = list(script)
        self.sent = []

    def request(self, method, url, **kw):
        self.sent.append((method, url, kw))
        if not self.script:
            raise AssertionError("unexpected request %s %s" % (method, url))
        answer = self.script.pop(0)
        if callable(answer) and not isinstance(answer, FakeResponse):
            answer = answer(method, url, kw.get("body"))
        if isinstance(answer, Exception):
            raise answer
        return answer

    def methods(self):
        return [method for method, _url, _kw in self.sent]

    def bodies(self):
        return [kw.get("body") for _method, _url, kw in self.sent]


def ansible_plugin(kind, name):
    """A plugin of this collection as ansible-core loads it (its option definitions from DOCUMENTATION and
    the doc fragments, as in a playbook run). ``kind``: lookup or inventory. Needs the collection finder
    that tests/unit/conftest.py (or ansible-test units) installs."""
    from ansible.plugins import loader

    plugin = getattr(loader, "%s_loader" % kind).get(name)
    assert plugin is not None, "ansible-core could not load %s %s" % (kind, name)
    return plugin
