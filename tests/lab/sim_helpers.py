"""Helpers for the simulator tests (tests/lab/test_sim_*.py): manifests, waits, raw calls to
the aggregated subresource API, events, and a websocket client with the admin credentials."""
import base64
import json
import os
import ssl
import tempfile
import threading
import time

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

KV = ("kubevirt.io", "v1")
CDI = ("cdi.kubevirt.io", "v1beta1")
SUB = "/apis/subresources.kubevirt.io/v1"
FEDORA = "quay.io/containerdisks/fedora:41"
CIRROS = "quay.io/kubevirt/cirros-container-disk-demo:v1.4.0"


def vm_manifest(name, run_strategy="Always", image=FEDORA, memory="128Mi", running=None, volumes=None,
                disks=None, interfaces=None, networks=None, annotations=None, labels=None, user_data=None,
                data_volume_templates=None, extra_spec=None, node_selector=None):
    disks = disks if disks is not None else [{"name": "root", "disk": {"bus": "virtio"}}]
    volumes = volumes if volumes is not None else [{"name": "root", "containerDisk": {"image": image}}]
    if user_data is not None:
        disks = disks + [{"name": "cloudinit", "disk": {"bus": "virtio"}}]
        volumes = volumes + [{"name": "cloudinit", "cloudInitNoCloud": {"userData": user_data}}]
    tspec = {"domain": {"memory": {"guest": memory}, "devices": {"disks": disks}}, "volumes": volumes,
             "terminationGracePeriodSeconds": 0}
    if interfaces is not None:
        tspec["domain"]["devices"]["interfaces"] = interfaces
    if networks is not None:
        tspec["networks"] = networks
    if node_selector:
        tspec["nodeSelector"] = node_selector
    if extra_spec:
        tspec.update(extra_spec)
    spec = {"template": {"metadata": {"labels": {"app": name, **(labels or {})},
                                      "annotations": annotations or {}}, "spec": tspec}}
    if run_strategy is not None:
        spec["runStrategy"] = run_strategy
    if running is not None:
        spec["running"] = running
    if data_volume_templates:
        spec["dataVolumeTemplates"] = data_volume_templates
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "metadata": {"name": name}, "spec": spec}


def dv_manifest(name, source, size="1Gi", storage_class=None, access_modes=None):
    storage = {"resources": {"requests": {"storage": size}}}
    if storage_class:
        storage["storageClassName"] = storage_class
    if access_modes:
        storage["accessModes"] = access_modes
    return {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume", "metadata": {"name": name},
            "spec": {"source": source, "storage": storage}}


def wait_for(fn, timeout=20.0, interval=0.1, what="condition"):
    """Call fn() until it returns something truthy; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except ApiException as exc:
            if exc.status != 404:
                raise
            last = None
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


def cond(obj, ctype):
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


class Lab:
    """Small facade over the kubernetes client for one test namespace."""

    def __init__(self, api, custom, core, ns):
        self.api, self.custom, self.core, self.ns = api, custom, core, ns

    # objects -------------------------------------------------------------------------------
    def create_vm(self, manifest):
        return self.custom.create_namespaced_custom_object(*KV, self.ns, "virtualmachines", manifest)

    def vm(self, name):
        return self.custom.get_namespaced_custom_object(*KV, self.ns, "virtualmachines", name)

    def vmi(self, name):
        return self.custom.get_namespaced_custom_object(*KV, self.ns, "virtualmachineinstances", name)

    def vmi_or_none(self, name):
        try:
            return self.vmi(name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def patch_vm(self, name, patch):
        return self.custom.patch_namespaced_custom_object(*KV, self.ns, "virtualmachines", name, patch)

    def delete_vm(self, name):
        return self.custom.delete_namespaced_custom_object(*KV, self.ns, "virtualmachines", name)

    def create_dv(self, manifest):
        return self.custom.create_namespaced_custom_object(*CDI, self.ns, "datavolumes", manifest)

    def dv(self, name):
        return self.custom.get_namespaced_custom_object(*CDI, self.ns, "datavolumes", name)

    def create(self, group, version, plural, manifest):
        return self.custom.create_namespaced_custom_object(group, version, self.ns, plural, manifest)

    def get(self, group, version, plural, name):
        return self.custom.get_namespaced_custom_object(group, version, self.ns, plural, name)

    def pods(self, vmi_name=None):
        sel = f"vm.kubevirt.io/name={vmi_name}" if vmi_name else "kubevirt.io=virt-launcher"
        return self.core.list_namespaced_pod(self.ns, label_selector=sel).items

    # waits ----------------------------------------------------------------------------------
    def wait_printable(self, name, status, timeout=20):
        return wait_for(lambda: (lambda vm: vm if vm.get("status", {}).get("printableStatus") == status else None)(
            self.vm(name)), timeout, what=f"VM {name} printableStatus {status}")

    def wait_vmi_phase(self, name, phase, timeout=20):
        return wait_for(lambda: (lambda v: v if v.get("status", {}).get("phase") == phase else None)(self.vmi(name)),
                        timeout, what=f"VMI {name} phase {phase}")

    def wait_running(self, name, timeout=20):
        def ok():
            vmi = self.vmi(name)
            c = cond(vmi, "Ready")
            return vmi if vmi.get("status", {}).get("phase") == "Running" and c and c["status"] == "True" else None
        return wait_for(ok, timeout, what=f"VMI {name} Running and Ready")

    def wait_vmi_gone(self, name, timeout=20):
        return wait_for(lambda: self.vmi_or_none(name) is None, timeout, what=f"VMI {name} deleted")

    # events ---------------------------------------------------------------------------------
    def events(self, name, kind=None):
        evs = self.core.list_namespaced_event(self.ns, field_selector=f"involvedObject.name={name}").items
        return [e for e in evs if kind is None or e.involved_object.kind == kind]

    def wait_event(self, name, reason, contains="", kind=None, timeout=15):
        def find():
            for e in self.events(name, kind):
                if e.reason == reason and contains in (e.message or ""):
                    return e
            return None
        return wait_for(find, timeout, interval=0.2, what=f"event {reason} on {name}")

    # aggregated API ---------------------------------------------------------------------------
    def call(self, method, path, body=None, api=None):
        """(status, parsed body or text) of a raw request through the kube-apiserver."""
        api = api or self.api
        headers = {"Accept": "application/json, */*", "Content-Type": "application/json"}
        m, url, h, b, pp = api.param_serialize(method, path, header_params=headers, body=body,
                                               auth_settings=["BearerToken"])
        resp = api.call_api(m, url, header_params=h, body=b, post_params=pp)
        resp.read()
        raw, status = resp.data, resp.status
        text = raw.decode() if isinstance(raw, bytes) else (raw or "")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def vm_sub(self, name, verb, body=None, method="PUT", api=None):
        return self.call(method, f"{SUB}/namespaces/{self.ns}/virtualmachines/{name}/{verb}", body, api)

    def vmi_sub(self, name, verb, body=None, method="PUT", api=None):
        return self.call(method, f"{SUB}/namespaces/{self.ns}/virtualmachineinstances/{name}/{verb}", body, api)


class ObjectWatch:
    """Every version of one object, as a watch delivers them from now on (transient states
    included, which polling could miss). Use as a context manager or call stop()."""

    def __init__(self, lab, group, version, plural, name, seconds=120):
        from kubernetes import watch
        self.items = []
        self._lock = threading.Lock()
        listed = lab.custom.list_namespaced_custom_object(group, version, lab.ns, plural,
                                                          field_selector=f"metadata.name={name}")
        self.items.extend(listed["items"])
        self._watch = watch.Watch()
        args = (lab.custom.list_namespaced_custom_object, group, version, lab.ns, plural)
        kwargs = {"field_selector": f"metadata.name={name}",
                  "resource_version": listed["metadata"]["resourceVersion"], "timeout_seconds": seconds}
        self._thread = threading.Thread(target=self._run, args=(args, kwargs), daemon=True)
        self._thread.start()

    def _run(self, args, kwargs):
        try:
            for ev in self._watch.stream(*args, **kwargs):
                with self._lock:
                    self.items.append(ev["object"])
        except Exception:  # noqa: BLE001 - the watch ends with the test
            pass

    def seen(self):
        with self._lock:
            return list(self.items)

    def stop(self):
        self._watch.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def changes(values):
    """values with consecutive repeats dropped."""
    out = []
    for v in values:
        if not out or out[-1] != v:
            out.append(v)
    return out


@pytest.fixture
def lab(api, custom, core, namespace):
    return Lab(api, custom, core, namespace)


@pytest.fixture(scope="session")
def admin_tls(kubeconfig):
    """(server, ca file, cert file, key file) from the admin kubeconfig, for websocket clients."""
    with open(kubeconfig) as fh:
        cfg = yaml.safe_load(fh)
    cluster = cfg["clusters"][0]["cluster"]
    user = cfg["users"][0]["user"]
    folder = tempfile.mkdtemp(prefix="simtest-")
    paths = []
    for section, key, fname in ((cluster, "certificate-authority", "ca.crt"), (user, "client-certificate", "tls.crt"),
                                (user, "client-key", "tls.key")):
        if section.get(f"{key}-data"):
            path = os.path.join(folder, fname)
            with open(path, "wb") as fh:
                fh.write(base64.b64decode(section[f"{key}-data"]))
            paths.append(path)
        else:
            paths.append(section.get(key))
    return (cluster["server"], *paths)


def websocket(admin_tls, path, subprotocols=("plain.kubevirt.io",)):
    import websocket as wsc
    server, ca, cert, key = admin_tls
    url = server.replace("https://", "wss://") + path
    return wsc.create_connection(url, subprotocols=list(subprotocols), timeout=10,
                                 sslopt={"ca_certs": ca, "certfile": cert, "keyfile": key,
                                         "cert_reqs": ssl.CERT_REQUIRED})


def token_client(api, core, namespace, sa_name):
    """An ApiClient authenticated as a ServiceAccount (TokenRequest), same server and CA."""
    tr = core.create_namespaced_service_account_token(sa_name, namespace, client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)))
    cfg = client.Configuration()
    cfg.host = api.configuration.host
    cfg.ssl_ca_cert = api.configuration.ssl_ca_cert
    cfg.verify_ssl = True
    cfg.api_key = {"authorization": "Bearer " + tr.status.token}
    return client.ApiClient(cfg)
