"""Inventory: connection options, names and groups, ansible_host selection (network, Services, pod IP),
Windows/WinRM, reading with skipped namespaces, and the plugin's constructed options."""
import copy
import json
import re
import threading

import pytest

from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import access
from ansible_collections.virtops.kubevirt.plugins.module_utils.readers import inventory as inv
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import ApiError, InputError, KubevirtError

from kvfakes import FakeClient, ansible_plugin, running_vmi

SECRET = "Inv3ntory-secret"


def vm_obj(name, ns="demo", labels=None, template_labels=None, strategy="Always", status="Running", annotations=None):
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "metadata": {"name": name, "namespace": ns, "uid": "uid-%s" % name, "labels": labels or {},
                         "annotations": annotations or {}},
            "spec": {"runStrategy": strategy, "template": {
                "metadata": {"labels": template_labels or {}},
                "spec": {"volumes": [{"name": "ci", "cloudInitNoCloud": {"userData": "password: " + SECRET}}]}}},
            "status": {"printableStatus": status}}


def vmi_obj(name, ns="demo", labels=None, ips=None, owner=True, node="node01", os_id="fedora"):
    vmi = running_vmi(name, ns, uid="vmi-%s" % name, node=node, ips=ips or {"default": "10.244.0.%d" % len(name)})
    vmi["metadata"]["labels"] = dict(labels or {}, **{"kubevirt.io/nodeName": node})
    if not owner:
        vmi["metadata"].pop("ownerReferences")
    if os_id == "mswindows":
        vmi["status"]["guestOSInfo"] = {"id": "mswindows", "name": "Microsoft Windows Server 2022"}
    elif os_id is None:
        vmi["status"].pop("guestOSInfo")
    return vmi


def service(name, stype, selector, target, port=None, node_port=None, ingress=None, ns="demo"):
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
           "spec": {"type": stype, "selector": selector,
                    "ports": [{"port": port or target, "targetPort": target, "protocol": "TCP",
                               **({"nodePort": node_port} if node_port else {})}]}}
    if ingress:
        svc["status"] = {"loadBalancer": {"ingress": [ingress]}}
    return svc


NODE = {"metadata": {"name": "node01"}, "status": {"addresses": [
    {"type": "Hostname", "address": "node01"}, {"type": "InternalIP", "address": "192.0.2.10"}]}}


def cv(vm, vmi, services, nodes, network_name=None, use_service=True, access_mode="auto", pod_reachable=False):
    """connection_vars() -> (vars, source, windows)."""
    out, where, windows = inv.connection_vars(vm, vmi, services, nodes, {
        "network_name": network_name, "use_service": use_service, "access": access_mode,
        "pod_reachable": pod_reachable}, proxy=("/usr/bin/python3", "/c/ssh_proxy.py", {}))
    return out, where["source"], windows


# -- options and names ----------------------------------------------------------------------------
def test_normalize_connection():
    auth, opts = inv.normalize_connection(0, {"kubeconfig": "/k", "verify_ssl": "no", "ssl_ca_cert": "/ca",
                                              "namespaces": "a, b", "network_name": "br1", "name": "lab"})
    assert auth == {"kubeconfig": "/k", "validate_certs": False, "ca_cert": "/ca"}
    assert opts == {"namespaces": ["a", "b"], "network_name": "br1", "name": "lab"}
    assert inv.normalize_connection(1, None) == ({}, {})


@pytest.mark.parametrize("raw,msg", [
    ({"hots": "x"}, "connections[0]: unknown key 'hots' (did you mean 'host'?)."),
    ({"zzz": "x"}, "connections[0]: unknown key 'zzz'; known: access, api_key, "),
    ({"kube_secondary_dns": True}, "connections[0]: kube_secondary_dns: true (an option of kubevirt.core.kubevirt) "
                                   "is not supported: ansible_host is never a kubesecondarydns name here"),
    ("kubeconfig", "connections[0] must be a mapping"),
    ({"namespaces": [1, 2]}, "connections[0].namespaces must be a list of namespace names"),
    ({"network_name": ["a"]}, "connections[0].network_name must be a string"),
])
def test_normalize_connection_errors(raw, msg):
    with pytest.raises(InputError, match=re.escape(msg)):
        inv.normalize_connection(0, raw)


def test_names():
    assert inv.cluster_name("https://api.example.com:6443/") == "api-example-com_6443"
    assert inv.group_name("label", "app.kubernetes.io/name", "Web-1") == "label_app_kubernetes_io_name_web_1"
    assert inv.group_name("status", "ErrImagePull") == "status_errimagepull"
    assert inv.host_name("{cluster}.{namespace}.{name}", "demo", "web1", cluster="lab") == "lab.demo.web1"
    assert inv.host_name("{kind}-{uid}", "demo", "w", uid="u1", kind="VirtualMachine") == "virtualmachine-u1"
    with pytest.raises(InputError, match="host_format '{nmae}' is invalid"):
        inv.host_name("{nmae}", "demo", "web1")


# -- pairing and records --------------------------------------------------------------------------
def test_pairs():
    data = {"vms": [vm_obj("web1"), vm_obj("off", strategy="Halted", status="Stopped")],
            "vmis": [vmi_obj("web1"), vmi_obj("solo", owner=False), vmi_obj("orphan")], "standalone_names": None}
    names = [((vm or vmi)["metadata"]["name"], vm is not None, vmi is not None) for vm, vmi in inv.pairs(data)]
    assert names == [("web1", True, True), ("off", True, False), ("solo", False, True)]
    assert len(inv.pairs(data, include_stopped=False, include_vmis=False)) == 1
    data["standalone_names"] = set()
    assert [p[1] is not None for p in inv.pairs(data)] == [True, False]


def test_connection_vars_pod_network_default():
    out, source, windows = cv(vm_obj("web1"), vmi_obj("web1"), [], {}, access_mode="network")
    assert out == {"ansible_host": "10.244.0.4"} and source == "network:default" and windows is False
    # auto: the pod network only from inside the cluster
    assert cv(vm_obj("web1"), vmi_obj("web1"), [], {}, pod_reachable=True)[0] == {"ansible_host": "10.244.0.4"}


PROXY = ("-o 'ProxyCommand=/usr/bin/python3 /c/ssh_proxy.py vm/web1/demo %p'")


def test_auto_falls_back_to_the_port_forward_from_outside_the_cluster():
    out, source, windows = cv(vm_obj("web1"), vmi_obj("web1"), [], {})
    assert out == {"ansible_host": "vm.web1.demo", "ansible_connection": "ssh", "ansible_ssh_common_args": PROXY}
    assert source == "portforward" and windows is False
    # a stopped VM too: the ProxyCommand finds whatever runs when ssh connects
    assert cv(vm_obj("web1"), None, [], {})[0]["ansible_ssh_common_args"] == PROXY
    # a stand-alone VMI is forwarded as a VMI
    solo = vmi_obj("solo", owner=False)
    assert cv(None, solo, [], {})[0]["ansible_host"] == "vmi.solo.demo"
    # a chosen network without an IP there: the port-forward too
    assert cv(None, vmi_obj("web1"), [], {}, "br9")[1] == "portforward"


def test_auto_uses_a_secondary_network_and_services_first():
    vmi = vmi_obj("web1", ips={"default": "10.244.0.4", "br1": "192.168.50.4"})
    assert cv(None, vmi, [], {}, "br1")[0] == {"ansible_host": "192.168.50.4"}
    bridged = copy.deepcopy(vmi_obj("web1", ips={"br1": "192.168.50.4"}))
    bridged["spec"]["networks"] = [{"name": "br1", "multus": {"networkName": "br1"}}]
    assert cv(None, bridged, [], {})[:2] == ({"ansible_host": "192.168.50.4"}, "network:br1")
    vm = vm_obj("web1", template_labels={"kubevirt.io/domain": "web1"})
    nodeport = service("ssh-np", "NodePort", {"kubevirt.io/domain": "web1"}, 22, node_port=30022)
    labelled = vmi_obj("web1", labels={"kubevirt.io/domain": "web1"})
    assert cv(vm, labelled, [nodeport], {"node01": NODE})[1] == "service:demo/ssh-np"
    assert cv(vm, labelled, [nodeport], {"node01": NODE}, use_service=False)[1] == "portforward"


def test_forced_access_modes():
    vm = vm_obj("web1", template_labels={"kubevirt.io/domain": "web1"})
    vmi = vmi_obj("web1", labels={"kubevirt.io/domain": "web1"})
    nodeport = service("ssh-np", "NodePort", {"kubevirt.io/domain": "web1"}, 22, node_port=30022)
    assert cv(vm, vmi, [nodeport], {}, access_mode="portforward")[1] == "portforward"
    assert cv(vm, vmi, [nodeport], {}, access_mode="network")[:2] == ({"ansible_host": "10.244.0.4"},
                                                                      "network:default")
    assert cv(vm, vmi, [], {}, access_mode="service") == ({}, None, False)
    assert cv(vm, None, [], {}, access_mode="network") == ({}, None, False)


def test_windows_guests_never_fall_back_to_the_port_forward_unless_asked():
    vmi = vmi_obj("win1", os_id="mswindows")
    out, source, _w = cv(None, vmi, [], {})
    assert out["ansible_connection"] == "winrm" and source == "network:default"
    out, source, _w = cv(None, vmi, [], {}, access_mode="portforward")
    assert out["ansible_connection"] == "ssh" and out["ansible_shell_type"] == "powershell"
    assert out["ansible_host"] == "vmi.win1.demo" and "ansible_port" not in out


@pytest.mark.parametrize("raw", [{"access": "tunnel"}, {"access": "Auto"}])
def test_unknown_access_is_an_error(raw):
    with pytest.raises(InputError, match=re.escape("connections[0].access %r is unknown; use auto, network, service, "
                                                   "portforward." % raw["access"])):
        inv.normalize_connection(0, raw)


def test_proxy_warnings_for_what_a_command_line_cannot_carry():
    assert inv.proxy_warnings(0, {"kubeconfig": "/k"}, {}) == []
    [warning] = inv.proxy_warnings(1, {"api_key": SECRET}, {})
    assert warning.startswith("connections[1]: api_key from the inventory file is not handed to the port-forward "
                              "ProxyCommand") and SECRET not in warning
    assert inv.proxy_warnings(1, {"api_key": SECRET}, {"K8S_AUTH_API_KEY": "x"}) == []
    assert "mapping" in inv.proxy_warnings(0, {"kubeconfig": {"clusters": []}}, {})[0]


def test_connection_vars_chosen_network():
    vmi = vmi_obj("web1", ips={"default": "10.244.0.4", "br1": "192.168.50.4"})
    assert cv(None, vmi, [], {}, "br1", True, access_mode="network")[0] == {"ansible_host": "192.168.50.4"}
    assert cv(None, vmi, [], {}, "br9", True, access_mode="network")[0] == {}


def test_connection_vars_nodeport_and_loadbalancer():
    vm = vm_obj("web1", template_labels={"kubevirt.io/domain": "web1"})
    vmi = vmi_obj("web1", labels={"kubevirt.io/domain": "web1"})
    nodeport = service("ssh-np", "NodePort", {"kubevirt.io/domain": "web1"}, 22, node_port=30022)
    out, source, _w = cv(vm, vmi, [nodeport], {"node01": NODE}, None, True, pod_reachable=True)
    assert out == {"ansible_host": "192.0.2.10", "ansible_port": 30022} and source == "service:demo/ssh-np"
    lb = service("ssh-lb", "LoadBalancer", {"kubevirt.io/domain": "web1"}, 22, port=2222, node_port=31022,
                 ingress={"ip": "203.0.113.5"})
    out, source, _w = cv(vm, vmi, [nodeport, lb], {}, None, True, pod_reachable=True)
    assert out == {"ansible_host": "203.0.113.5", "ansible_port": 2222} and source == "service:demo/ssh-lb"
    # use_service false, or a chosen network, ignore Services
    assert cv(vm, vmi, [lb], {}, None, False, pod_reachable=True)[0] == {"ansible_host": "10.244.0.4"}
    # a stopped VM behind a NodePort has no node: no address at all
    assert cv(vm, None, [nodeport], {}, None, True, access_mode="service")[0] == {}
    # a LoadBalancer address stays valid while the VM is stopped
    assert cv(vm, None, [lb], {}, None, True, pod_reachable=True)[0]["ansible_host"] == "203.0.113.5"


@pytest.mark.parametrize("svc", [
    service("other", "NodePort", {"app": "db"}, 22, node_port=30022),          # selector does not match
    service("web", "NodePort", {"kubevirt.io/domain": "web1"}, 80, node_port=30080),  # not the SSH port
    service("cip", "ClusterIP", {"kubevirt.io/domain": "web1"}, 22),             # not reachable from outside
    service("lb-pending", "LoadBalancer", {"kubevirt.io/domain": "web1"}, 22),   # no ingress, no node port
    service("nosel", "NodePort", {}, 22, node_port=30022),                       # no selector
])
def test_services_that_do_not_apply(svc):
    vmi = vmi_obj("web1", labels={"kubevirt.io/domain": "web1"})
    out, source, _w = cv(None, vmi, [svc], {}, None, True, pod_reachable=True)
    assert source == "network:default" and "ansible_port" not in out


def test_service_in_another_namespace_is_ignored():
    vmi = vmi_obj("web1", labels={"kubevirt.io/domain": "web1"})
    svc = service("np", "NodePort", {"kubevirt.io/domain": "web1"}, 22, node_port=30022, ns="other")
    assert cv(None, vmi, [svc], {}, None, True, pod_reachable=True)[1] == "network:default"


def test_windows_guests_get_winrm():
    vmi = vmi_obj("win1", labels={"kubevirt.io/domain": "win1"}, os_id="mswindows")
    out, source, windows = cv(None, vmi, [], {}, None, True, pod_reachable=True)
    assert windows and out == {"ansible_host": "10.244.0.4", "ansible_connection": "winrm", "ansible_port": 5986,
                               "ansible_winrm_scheme": "https"}
    svc = service("winrm", "NodePort", {"kubevirt.io/domain": "win1"}, 5985, node_port=30985)
    out, _s, _w = cv(None, vmi, [svc], {}, None, True, pod_reachable=True)
    assert out == {"ansible_host": "node01", "ansible_connection": "winrm", "ansible_port": 30985,
                   "ansible_winrm_scheme": "http"}


@pytest.mark.parametrize("vm,vmi,expected", [
    (None, {"status": {"guestOSInfo": {"id": "mswindows"}}}, True),
    (None, {"status": {"guestOSInfo": {"id": "fedora", "name": "Fedora"}}}, False),
    ({"metadata": {"annotations": {"vm.kubevirt.io/os": "windows2k22"}}}, None, True),
    ({"metadata": {"annotations": {"kubevirt.io/cluster-preference-name": "windows.2k22"}}}, None, True),
    ({"metadata": {}, "spec": {"preference": {"name": "windows.11"}}}, None, True),
    ({"metadata": {"labels": {"os.template.kubevirt.io/win2k22": "true"}}}, None, True),
    ({"metadata": {}, "spec": {"template": {"metadata": {"annotations": {"vm.kubevirt.io/os": "win10"}}}}}, None,
     True),
    # the agent's answer wins over an annotation
    ({"metadata": {"annotations": {"vm.kubevirt.io/os": "windows"}}},
     {"status": {"guestOSInfo": {"id": "rhel", "name": "Red Hat"}}}, False),
    ({"metadata": {"annotations": {"vm.kubevirt.io/os": "rhel9"}}}, None, False),
])
def test_is_windows(vm, vmi, expected):
    assert access.is_windows(vm, vmi) is expected


def test_node_address():
    assert access.node_address(NODE) == "192.0.2.10"
    ext = copy.deepcopy(NODE)
    ext["status"]["addresses"].append({"type": "ExternalIP", "address": "198.51.100.1"})
    assert access.node_address(ext) == "198.51.100.1"
    assert access.node_address(None, "node07") == "node07"


def test_groups():
    vm = vm_obj("web1", labels={"app": "web", "app.kubernetes.io/part-of": "shop"})
    vmi = vmi_obj("web1", node="lab-worker-1")
    summ = inv.summary(vm, vmi, "lab")
    groups = inv.groups_for(summ, vm, vmi, False, inv.GROUP_BY_CHOICES)
    assert groups == ["cluster_lab", "namespace_demo", "label_app_web", "label_app_kubernetes_io_part_of_shop",
                      "node_lab_worker_1", "status_running", "os_fedora"]
    assert inv.groups_for(summ, vm, vmi, False, ["status"]) == ["status_running"]
    solo = vmi_obj("solo", owner=False, labels={"app": "x"}, os_id=None)
    summ = inv.summary(None, solo, "lab")
    groups = inv.groups_for(summ, None, solo, False, inv.GROUP_BY_CHOICES)
    assert "label_app_x" in groups and not any("nodename" in g for g in groups)
    assert not any(g.startswith("os_") for g in groups)
    win = vm_obj("w", annotations={"vm.kubevirt.io/os": "windows2k22"}, strategy="Halted", status="Stopped")
    summ = inv.summary(win, None, "lab")
    assert inv.groups_for(summ, win, None, True, ["os", "status", "node"]) == ["status_stopped", "os_windows"]


def test_host_records_compact_and_redacted():
    data = {"cluster": "lab", "vms": [vm_obj("web1", labels={"app": "web"}, annotations={
        inv.HIDDEN_ANNOTATIONS[0]: "password: " + SECRET, "owner": "team-a"}),
        vm_obj("off", strategy="Halted", status="Stopped")],
        "vmis": [vmi_obj("web1", ips={"default": "10.244.0.4", "br1": "192.168.50.4"})],
        "services": [], "nodes": {}}
    records = inv.host_records(data, {"network_name": None, "use_service": True, "access": "network"})
    by_name = {r["name"]: r for r in records}
    web = by_name["demo-web1"]["vars"]
    assert web["ansible_host"] == "10.244.0.4"
    kv = web["kubevirt"]
    assert kv["status"] == "Running" and kv["ready"] and kv["node"] == "node01" and kv["cluster"] == "lab"
    assert kv["networks"]["br1"]["ip_address"] == "192.168.50.4" and kv["guest_os"]["id"] == "fedora"
    assert kv["labels"] == {"app": "web"} and kv["annotations"] == {"owner": "team-a"}
    assert kv["address_source"] == "network:default" and kv["windows"] is False
    assert kv["access"] == "network" and kv["proxy_command"] is None
    off = by_name["demo-off"]["vars"]
    assert "ansible_host" not in off and off["kubevirt"]["status"] == "Stopped"
    assert off["kubevirt"]["reason"] == "Stopped: run_strategy is Halted"
    assert SECRET not in json.dumps(records)
    assert "kubevirt_vm" not in web
    from ansible_collections.virtops.kubevirt.plugins.module_utils.readers.lookups import clean_object

    raw = inv.host_records(data, {}, raw_objects=True, redact=clean_object)
    assert raw[0]["vars"]["kubevirt_vm"]["metadata"]["name"] == "web1" and SECRET not in json.dumps(raw)
    assert raw[1]["vars"]["kubevirt_vmi"] is None
    json.dumps(records)  # cacheable


# -- reading a cluster ----------------------------------------------------------------------------
class RbacClient(FakeClient):
    """A FakeClient whose credentials may read only some namespaces (and maybe not all at once)."""

    def __init__(self, allowed, cluster_wide=False, list_namespaces=False, **kw):
        super().__init__(controller=False, **kw)
        self.allowed = set(allowed)
        self.cluster_wide = cluster_wide
        self.list_namespaces = list_namespaces

    def list(self, resource, namespace=None, label_selector=None, field_selector=None, limit=500):
        forbidden = ApiError(403, "GET", "/x", {"reason": "Forbidden", "message": "%s is forbidden: User "
                                                "\"system:serviceaccount:a:reader\" cannot list resource \"%s\"" % (
                                                    resource.plural, resource.plural)})
        if resource.kind == "Namespace":
            if not self.list_namespaces:
                raise forbidden
            self.requests += 1
            return {"items": [{"metadata": {"name": n}} for n in sorted(self.namespaces)]}
        if namespace is None and not self.cluster_wide:
            raise forbidden
        if namespace is not None and namespace not in self.allowed:
            raise forbidden
        return super().list(resource, namespace, label_selector, field_selector, limit)


def seeded(client):
    client.put(vm_obj("web1", "demo", template_labels={"kubevirt.io/domain": "web1"}))
    client.put(vmi_obj("web1", "demo", labels={"kubevirt.io/domain": "web1"}))
    client.put(vm_obj("db1", "fleet", labels={"app": "db"}))
    client.put(vmi_obj("db1", "fleet"))
    client.put(service("ssh", "NodePort", {"kubevirt.io/domain": "web1"}, 22, node_port=30022))
    client.put({"apiVersion": "v1", "kind": "Node", **copy.deepcopy(NODE)})
    return client


def test_collect_cluster_wide_uses_few_requests():
    client = seeded(RbacClient(["demo", "fleet"], cluster_wide=True))
    warnings = []
    data = inv.collect(client, {"use_service": True}, "lab", warnings.append)
    assert warnings == [] and data["namespaces"] is None
    assert {v["metadata"]["name"] for v in data["vms"]} == {"web1", "db1"}
    assert client.requests == 4  # VMs, VMIs, Services, Nodes
    records = inv.host_records(data, {"use_service": True})
    web = [r for r in records if r["name"] == "demo-web1"][0]["vars"]
    assert web["ansible_host"] == "192.0.2.10" and web["ansible_port"] == 30022


def test_collect_skips_forbidden_namespace_with_warning():
    client = seeded(RbacClient(["demo"]))
    warnings = []
    data = inv.collect(client, {"namespaces": ["demo", "fleet"]}, "lab", warnings.append)
    assert [v["metadata"]["name"] for v in data["vms"]] == ["web1"]
    assert len(warnings) == 1
    assert warnings[0].startswith("Skipping namespace fleet of lab: the credentials may not list VirtualMachines "
                                  "there (")


def test_collect_falls_back_to_namespace_list_then_context():
    client = seeded(RbacClient(["demo"], list_namespaces=True, namespaces=("demo", "fleet")))
    warnings = []
    data = inv.collect(client, {}, "lab", warnings.append)
    assert [v["metadata"]["name"] for v in data["vms"]] == ["web1"]
    assert len(warnings) == 1 and "Skipping namespace fleet" in warnings[0]
    client = seeded(RbacClient(["demo"], namespace="demo"))
    warnings = []
    data = inv.collect(client, {}, "lab", warnings.append)
    assert [v["metadata"]["name"] for v in data["vms"]] == ["web1"]
    assert "reading only namespace demo" in warnings[0]


def test_collect_other_errors_fail():
    client = seeded(FakeClient(controller=False))
    client.fail[("LIST", "VirtualMachine")] = ApiError(404, "GET", "/apis/kubevirt.io/v1/virtualmachines", {
        "reason": "NotFound", "message": "the server could not find the requested resource"})
    with pytest.raises(KubevirtError, match="Could not list VirtualMachines in all namespaces of lab: the server "
                                            "could not find the requested resource; check that KubeVirt"):
        inv.collect(client, {}, "lab", lambda text: None)


def test_collect_unauthorized_is_an_error_not_a_skip():
    client = seeded(FakeClient(controller=False))
    unauthorized = ApiError(401, "GET", "/x", {"reason": "Unauthorized", "message": "Unauthorized"})
    client.fail[("LIST", "VirtualMachine")] = unauthorized
    with pytest.raises(KubevirtError, match="Could not list VirtualMachines in namespace demo of lab: Unauthorized; "
                                            "check api_key"):
        inv.collect(client, {"namespaces": ["demo"]}, "lab", lambda text: None)


def test_collect_label_selector_for_standalone_vmis():
    client = FakeClient(controller=False)
    client.put(vm_obj("web1", labels={"app": "web"}))
    client.put(vmi_obj("web1"))  # the VMI of a selected VM has the template's labels, not the VM's
    client.put(vmi_obj("solo-web", owner=False, labels={"app": "web"}))
    client.put(vmi_obj("solo-db", owner=False, labels={"app": "db"}))
    data = inv.collect(client, {"label_selector": "app=web", "use_service": False}, "lab", lambda t: None)
    names = sorted(r["name"] for r in inv.host_records(data, {}))
    assert names == ["demo-solo-web", "demo-web1"]
    web = [r for r in inv.host_records(data, {"pod_reachable": True}) if r["name"] == "demo-web1"][0]
    assert web["vars"]["ansible_host"] == "10.244.0.4"


# -- the plugin's Ansible side --------------------------------------------------------------------
class FakeDisplay:
    def __init__(self):
        self.warnings = []

    def warning(self, text):
        self.warnings.append(text)


def make_plugin(options, monkeypatch, client, seen=None):
    """The plugin as ansible-core loads it, its options set as from an inventory file."""
    from ansible.inventory.data import InventoryData
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    options = dict(options)
    # Expressions read from an inventory file are trusted templates; these come from a test.
    options["compose"] = {k: trust_as_template(v) for k, v in options.get("compose", {}).items()}
    options["groups"] = {k: trust_as_template(v) for k, v in options.get("groups", {}).items()}
    options["keyed_groups"] = [dict(k, key=trust_as_template(k["key"])) for k in options.get("keyed_groups", [])]
    plugin = ansible_plugin("inventory", "virtops.kubevirt.kubevirt")
    use_client(monkeypatch, plugin, client, seen)
    plugin.set_options(direct=dict(options, plugin="virtops.kubevirt.kubevirt"))
    plugin.inventory = InventoryData()
    plugin.templar = Templar(loader=DataLoader())
    plugin.display = FakeDisplay()
    return plugin


def use_client(monkeypatch, plugin, client, seen=None):
    """The plugin's connect() returns ``client``; each connection's params are appended to ``seen``."""
    def fake_connect(params, environ=None):
        if seen is not None:
            seen.append(params)
        return client

    monkeypatch.setitem(type(plugin).fetch.__globals__, "connect", fake_connect)


def test_plugin_populate_with_constructed_options(monkeypatch):
    client = seeded(RbacClient(["demo"]))
    plugin = make_plugin({
        "connections": [{"name": "lab", "namespaces": ["demo", "fleet"]}],
        "compose": {"where": "kubevirt.node ~ '/' ~ kubevirt.namespace"},
        "groups": {"ready_ones": "kubevirt.ready"},
        "keyed_groups": [{"key": "kubevirt.guest_os.id", "prefix": "distro"}],
    }, monkeypatch, client)
    result = plugin.fetch()
    plugin.populate(result["hosts"])
    inventory = plugin.inventory
    host = inventory.get_host("demo-web1")
    assert host.get_vars()["where"] == "node01/demo"
    # these credentials may not list nodes: the NodePort address is the node's name
    assert host.get_vars()["ansible_host"] == "node01" and host.get_vars()["ansible_port"] == 30022
    groups = {g.name for g in host.get_groups()}
    assert {"cluster_lab", "namespace_demo", "status_running", "os_fedora", "ready_ones", "distro_fedora",
            "node_node01"} <= groups
    assert "fleet-db1" not in inventory.hosts
    assert len(plugin.display.warnings) == 1 and "Skipping namespace fleet of lab" in plugin.display.warnings[0]
    assert result["warnings"] == plugin.display.warnings
    json.dumps(result)


def test_plugin_duplicate_host_names_warn(monkeypatch):
    client = seeded(RbacClient(["demo"]))
    plugin = make_plugin({"connections": [{"name": "a", "namespaces": ["demo"]}, {"name": "b", "namespaces": ["demo"]}]},
                         monkeypatch, client)
    result = plugin.fetch()
    assert [w for w in result["warnings"] if "same name" in w and "{cluster}" in w]


def test_plugin_bad_options(monkeypatch):
    from ansible.errors import AnsibleOptionsError

    client = seeded(RbacClient(["demo"]))
    with pytest.raises(KubevirtError, match=re.escape("connections[0]: unknown key 'namespace' (did you mean "
                                                      "'namespaces'?).")):
        make_plugin({"connections": [{"namespace": "demo"}]}, monkeypatch, client).fetch()
    with pytest.raises(AnsibleOptionsError, match="Config 'connections' .* has an invalid value"):
        make_plugin({"connections": {"host": "x"}}, monkeypatch, client)


def test_verify_file():
    from ansible_collections.virtops.kubevirt.plugins.inventory.kubevirt import InventoryModule

    plugin = InventoryModule()
    assert not plugin.verify_file("/nonexistent/demo.yml")


@pytest.mark.parametrize("value, expected", [("true", True), ("no", False), ("OFF", False)])
def test_connection_validate_certs_strings(value, expected):
    auth, _opts = inv.normalize_connection(0, {"validate_certs": value})
    assert auth["validate_certs"] is expected


def test_connection_validate_certs_typo_is_an_error_not_off():
    with pytest.raises(InputError, match=r"connections\[0\].validate_certs 'ture' is not a boolean"):
        inv.normalize_connection(0, {"validate_certs": "ture"})


# -- the inventory file: unknown options, kubevirt.core's options ----------------------------------
def parse_file(tmp_path, monkeypatch, text, client, seen=None):
    """Run the plugin on an inventory file as ansible-inventory does; returns the InventoryData."""
    from ansible.inventory.data import InventoryData
    from ansible.parsing.dataloader import DataLoader

    path = tmp_path / "lab.kubevirt.yml"
    path.write_text(text)
    plugin = ansible_plugin("inventory", "virtops.kubevirt.kubevirt")
    use_client(monkeypatch, plugin, client, seen)
    plugin.display = FakeDisplay()
    inventory = InventoryData()
    plugin.parse(inventory, DataLoader(), str(path), cache=False)
    return inventory


def parse_error(tmp_path, monkeypatch, text):
    from ansible.errors import AnsibleParserError

    seen = []
    with pytest.raises(AnsibleParserError) as exc:
        parse_file(tmp_path, monkeypatch, text, seeded(RbacClient(["demo", "fleet"], cluster_wide=True)), seen)
    assert seen == []  # refused before connecting
    return str(exc.value)


def test_a_kubevirt_core_file_keeps_its_namespace_filter(tmp_path, monkeypatch):
    """The defect: top-level namespaces/label_selector/network_name (kubevirt.core 2.x) were ignored and
    the inventory listed every VM in the cluster."""
    client = seeded(RbacClient(["demo", "fleet"], cluster_wide=True))
    seen = []
    inventory = parse_file(tmp_path, monkeypatch, """
plugin: virtops.kubevirt.kubevirt
kubeconfig: /path/to/config
context: lab-admin
namespaces: [fleet]
label_selector: app=db
interface_name: default
use_service: false
kube_secondary_dns: false
append_base_domain: false
unset_ansible_port: false
api_version: kubevirt.io/v1
""", client, seen)
    assert set(inventory.hosts) == {"fleet-db1"}
    assert seen == [{"kubeconfig": "/path/to/config", "context": "lab-admin"}]
    assert inventory.get_host("fleet-db1").get_vars()["kubevirt"]["address_source"] == "network:default"


def test_top_level_options_are_defaults_of_each_connection(tmp_path, monkeypatch):
    client = seeded(RbacClient(["demo", "fleet"], cluster_wide=True))
    seen = []
    inventory = parse_file(tmp_path, monkeypatch, """
plugin: virtops.kubevirt.kubevirt
api_key: shared-token
namespaces: [demo]
host_format: "{cluster}-{name}"
connections:
  - name: a
    host: https://a:6443
  - name: b
    host: https://b:6443
    api_key: own-token
    namespaces: [fleet]
""", client, seen)
    assert set(inventory.hosts) == {"a-web1", "b-db1"}
    assert seen == [{"host": "https://a:6443", "api_key": "shared-token"},
                    {"host": "https://b:6443", "api_key": "own-token"}]


@pytest.mark.parametrize("text, message", [
    ("namespace: demo", "Inventory file {path}: unknown option 'namespace' (did you mean 'namespaces'?)."),
    ("labelselector: a=b", "unknown option 'labelselector' (did you mean 'label_selector'?)."),
    ("nothing_like_it: 1", "unknown option 'nothing_like_it'; the options are listed by ansible-doc -t inventory "
                           "virtops.kubevirt.kubevirt."),
    ("kube_secondary_dns: true", "Inventory file {path}: kube_secondary_dns: true (an option of "
                                 "kubevirt.core.kubevirt) is not supported: ansible_host is never a kubesecondarydns "
                                 "name here; use network_name"),
    ("create_groups: true", "create_groups: true (an option of kubevirt.core.kubevirt) is not supported: label "
                            "groups come from group_by here"),
    ("create_groups: false", "create_groups: false (an option of kubevirt.core.kubevirt) is not supported"),
    ("base_domain: example.com", "base_domain: 'example.com' (an option of kubevirt.core.kubevirt) is not supported"),
    ("append_base_domain: true", "append_base_domain: true (an option"),
    ("unset_ansible_port: true", "unset_ansible_port: true (an option"),
    ("api_version: kubevirt.io/v1alpha3", "api_version: 'kubevirt.io/v1alpha3' (an option of kubevirt.core.kubevirt) "
                                          "is not supported: this plugin reads kubevirt.io/v1 only"),
    ("connections:\n  - namespces: [demo]", "connections[0]: unknown key 'namespces' (did you mean 'namespaces'?)."),
    ("connections:\n  - kube_secondary_dns: true", "connections[0]: kube_secondary_dns: true (an option"),
    ("name: one\nconnections:\n  - host: https://a\n  - host: https://b", "name 'one' at the top level would name "
                                                                          "all 2 connections"),
])
def test_file_options_refused_with_a_sentence(tmp_path, monkeypatch, text, message):
    error = parse_error(tmp_path, monkeypatch, "plugin: virtops.kubevirt.kubevirt\n%s\n" % text)
    assert message.format(path=tmp_path / "lab.kubevirt.yml") in error
    assert "\n" not in error.strip() and "Traceback" not in error


def test_portforward_hosts_from_a_file(tmp_path, monkeypatch):
    import shlex
    import sys

    client = seeded(RbacClient(["demo", "fleet"], cluster_wide=True))
    monkeypatch.delenv("K8S_AUTH_API_KEY", raising=False)
    inventory = parse_file(tmp_path, monkeypatch, """
plugin: virtops.kubevirt.kubevirt
host: https://api.example:6443
api_key: %s
ca_cert: /etc/ca.crt
namespaces: [fleet]
access: portforward
""" % SECRET, client)
    hostvars = inventory.get_host("fleet-db1").get_vars()
    assert hostvars["ansible_host"] == "vm.db1.fleet" and hostvars["ansible_connection"] == "ssh"
    assert hostvars["kubevirt"]["access"] == "portforward"
    assert hostvars["kubevirt"]["proxy_command"] == hostvars["ansible_ssh_common_args"]
    option, command = shlex.split(hostvars["ansible_ssh_common_args"])
    argv = shlex.split(command[len("ProxyCommand="):])
    assert option == "-o" and argv[0] == sys.executable
    assert argv[1].endswith("/ansible_collections/virtops/kubevirt/plugins/plugin_utils/ssh_proxy.py")
    assert argv[2:] == ["--ca-cert", "/etc/ca.crt", "--host", "https://api.example:6443", "vm/db1/fleet", "%p"]
    assert SECRET not in json.dumps(hostvars)


class MeetingClient(FakeClient):
    """A FakeClient whose VM and VMI lists each wait (up to 5 s) until the other one is in flight too."""

    def __init__(self, **kw):
        super().__init__(controller=False, **kw)
        self.meeting = threading.Barrier(2, timeout=5)

    def list(self, resource, namespace=None, label_selector=None, field_selector=None, limit=500):
        if resource.kind in ("VirtualMachine", "VirtualMachineInstance") and not label_selector:
            self.meeting.wait()
        return super().list(resource, namespace, label_selector, field_selector, limit)


@pytest.mark.parametrize("namespaces", [None, ["demo"]])
def test_collect_lists_vms_and_vmis_at_the_same_time(namespaces):
    """Issue 19: an inventory of 1000 VMs read its pages of VMs, then of VMIs, one round trip after another."""
    client = MeetingClient()
    client.put(vm_obj("web1"))
    client.put(vmi_obj("web1"))
    data = inv.collect(client, {"namespaces": namespaces, "use_service": False}, "lab", lambda text: None)
    assert [v["metadata"]["name"] for v in data["vms"]] == ["web1"]
    assert [v["metadata"]["name"] for v in data["vmis"]] == ["web1"]
