"""Lookups vm and vmi_address: names and selectors, JMESPath, summaries, redaction, missing objects,
addresses per network, waiting, and the plugins' option wiring."""
import json

import pytest
import yaml

from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import redact
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt.redact import REDACTED
from ansible_collections.virtops.kubevirt.plugins.module_utils.readers import lookups
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import InputError, KubevirtError

from kvfakes import FakeClient, ansible_plugin, running_vmi

SECRET = "Sup3r-secret-pw"


def vm_obj(name, ns="demo", labels=None, strategy="Always", status="Running"):
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {}, "managedFields": [{"x": 1}],
                         "annotations": {redact.LAST_APPLIED: json.dumps({"spec": {"template": {"spec": {
                             "volumes": [{"name": "ci", "cloudInitNoCloud": {"userData": "password: " + SECRET}}]}}}})}},
            "spec": {"runStrategy": strategy, "template": {"spec": {"volumes": [
                {"name": "ci", "cloudInitNoCloud": {"userData": "#cloud-config\npassword: %s\n" % SECRET}}]}}},
            "status": {"printableStatus": status}}


@pytest.fixture
def client():
    c = FakeClient(controller=False)
    c.put(vm_obj("web-1", labels={"app": "web"}))
    c.put(vm_obj("web-2", labels={"app": "web"}))
    c.put(vm_obj("db-1", labels={"app": "db"}, strategy="Halted", status="Stopped"))
    c.put(vm_obj("other", ns="fleet", labels={"app": "web"}))
    c.put(running_vmi("web-1", "demo", ips={"default": "10.244.0.11", "br1": "192.168.50.11"}))
    vmi2 = running_vmi("web-2", "demo", ips={"default": "10.244.0.12"})
    vmi2["status"]["interfaces"][0]["ipAddresses"] = ["10.244.0.12", "fd00::12"]
    c.put(vmi2)
    return c


# -- pure helpers ---------------------------------------------------------------------------------
def test_names_from_terms():
    assert lookups.names_from_terms(["a", ["b", "c"], "d, e", "a", ""]) == ["a", "b", "c", "d", "e"]
    assert lookups.names_from_terms([]) == []


def test_compile_query():
    assert lookups.compile_query(None) is None
    assert lookups.compile_query("status.printableStatus").search({"status": {"printableStatus": "X"}}) == "X"
    with pytest.raises(InputError, match="query '\\[\\[' is not a valid JMESPath expression"):
        lookups.compile_query("[[")


@pytest.mark.parametrize("selector,expected", [
    ("app=web", True), ("app==web", True), ("app!=web", False), ("app", True), ("!app", False),
    ("app=db", False), ("tier", False), ("app in (web,db)", True), ("app=web,tier!=x", True),
])
def test_labels_match(selector, expected):
    assert lookups._labels_match({"metadata": {"labels": {"app": "web"}}}, selector) is expected


@pytest.mark.parametrize("selector,expected", [
    # set-based terms with commas inside the parentheses (before: split on the commas, so "db)" was a key
    # that had to exist and every named object was dropped, or the term matched everything)
    ("app in (web,db)", ["web-1", "db-1"]), ("app notin (web,db)", [None, None]), ("app notin (db,x)", ["web-1", None]),
    ("app in (web,db),tier", [None, None]), ("app in (db, x)", [None, "db-1"]),
])
def test_named_objects_with_set_based_selectors(client, selector, expected):
    found = lookups.vm_lookup(client, ["web-1", "db-1"], "demo", label_selector=selector, allow_missing=True)
    assert [obj and obj["metadata"]["name"] for obj in found] == expected


def test_unparsable_label_selector_is_refused_before_any_request(client):
    before = len(client.calls)
    with pytest.raises(InputError) as err:
        lookups.vm_lookup(client, ["web-1"], "demo", label_selector="app in (web")
    assert str(err.value) == ("label_selector 'app in (web' is not a valid label selector: found 'end of string', "
                              "expected: ',', ')' or identifier.")
    assert len(client.calls) == before


def test_clean_object_redacts_everywhere():
    obj = lookups.clean_object(vm_obj("x"))
    text = json.dumps(obj)
    assert SECRET not in text
    assert "managedFields" not in obj["metadata"]
    assert "userData" in obj["metadata"]["annotations"][redact.LAST_APPLIED]
    bad = vm_obj("y")
    bad["metadata"]["annotations"][redact.LAST_APPLIED] = "{not json " + SECRET
    assert lookups.clean_object(bad)["metadata"]["annotations"][redact.LAST_APPLIED] == REDACTED


# -- vm -------------------------------------------------------------------------------------------
def test_vm_by_name_with_query(client):
    assert lookups.vm_lookup(client, ["web-1"], "demo", query="status.printableStatus") == ["Running"]
    assert lookups.vm_lookup(client, ["web-1", "db-1"], "demo", query="spec.runStrategy") == ["Always", "Halted"]


def test_vm_defaults_to_the_context_namespace(client):
    client.namespace = "demo"
    assert lookups.vm_lookup(client, ["web-2"], query="metadata.namespace") == ["demo"]


def test_vm_by_selector_in_one_and_all_namespaces(client):
    assert lookups.vm_lookup(client, [], "demo", label_selector="app=web", query="metadata.name") == ["web-1", "web-2"]
    assert sorted(lookups.vm_lookup(client, [], None, label_selector="app=web", query="metadata.name")) == [
        "other", "web-1", "web-2"]


def test_vm_objects_are_redacted(client):
    [obj] = lookups.vm_lookup(client, ["web-1"], "demo")
    assert obj["metadata"]["name"] == "web-1" and SECRET not in json.dumps(obj)


def test_vm_missing(client):
    with pytest.raises(KubevirtError, match="VirtualMachine demo/nope does not exist; check the name and namespace"):
        lookups.vm_lookup(client, ["nope"], "demo")
    assert lookups.vm_lookup(client, ["nope", "web-1"], "demo", allow_missing=True,
                             query="metadata.name") == [None, "web-1"]


def test_vm_named_with_selector_filters(client):
    assert lookups.vm_lookup(client, ["web-1", "db-1"], "demo", label_selector="app=web", allow_missing=True,
                             query="metadata.name") == ["web-1", None]


def test_vm_summary(client):
    [summ] = lookups.vm_lookup(client, ["web-1"], "demo", summary=True)
    assert summ["status"] == "Running" and summ["networks"]["br1"]["ip_address"] == "192.168.50.11"
    assert lookups.vm_lookup(client, ["web-1", "db-1"], "demo", summary=True, query="ready") == [True, False]


def test_vmi_kind(client):
    assert lookups.vm_lookup(client, ["web-1"], "demo", kind="vmi", query="status.nodeName") == ["node01"]
    with pytest.raises(InputError, match="kind 'pod' is unknown"):
        lookups.vm_lookup(client, ["web-1"], "demo", kind="pod")


def test_vm_bad_names(client):
    with pytest.raises(InputError, match="name 'Web_1' is invalid"):
        lookups.vm_lookup(client, ["Web_1"], "demo")
    with pytest.raises(InputError, match="namespace"):
        lookups.vm_lookup(client, ["web-1"], "Demo")


# -- vmi_address ----------------------------------------------------------------------------------
def test_addresses(client):
    assert lookups.vmi_addresses(client, ["web-1"], "demo") == ["10.244.0.11"]
    assert lookups.vmi_addresses(client, ["web-1"], "demo", network="br1") == ["192.168.50.11"]
    assert lookups.vmi_addresses(client, ["web-1", "web-2"], "demo") == ["10.244.0.11", "10.244.0.12"]
    assert lookups.vmi_addresses(client, ["web-2"], "demo", all_addresses=True) == [["10.244.0.12", "fd00::12"]]


def test_address_errors(client):
    with pytest.raises(KubevirtError) as err:
        lookups.vmi_addresses(client, ["web-2"], "demo", network="br1")
    assert str(err.value) == ("VMI demo/web-2 has no IP address on network br1; its interfaces: default "
                              "(10.244.0.12). Use wait=true to wait for one.")
    with pytest.raises(KubevirtError, match="VMI demo/db-1 does not exist: the VM is not running"):
        lookups.vmi_addresses(client, ["db-1"], "demo")
    with pytest.raises(InputError, match="at least one"):
        lookups.vmi_addresses(client, [], "demo")


def test_address_of_without_status():
    vmi = {"spec": {"networks": [{"name": "default", "pod": {}}]}, "status": {}}
    assert lookups.address_of(vmi) is None
    assert lookups.address_of(vmi, all_addresses=True) == []


def test_address_wait(client):
    client.watch_script = [[
        ("ADDED", running_vmi("web-1", "demo", ips={"default": "10.244.0.11", "br1": "192.168.50.11"})),
        ("BOOKMARK", {"metadata": {"resourceVersion": "9", "annotations": {"k8s.io/initial-events-end": "true"}}}),
    ]]
    assert lookups.vmi_addresses(client, ["web-1"], "demo", network="br1", wait=True, timeout=5) == ["192.168.50.11"]
    watches = [c for c in client.calls if c[0] == "WATCH"]
    assert len(watches) == 1 and watches[0][2]["field_selector"] == "metadata.name=web-1"


def test_address_wait_timeout(client):
    client.watch_script = [[
        ("BOOKMARK", {"metadata": {"resourceVersion": "9", "annotations": {"k8s.io/initial-events-end": "true"}}}),
    ]]
    with pytest.raises(KubevirtError, match="Timed out after .* waiting for VMI demo/db-1 to be given an IP address "
                                            "on network br1; last seen: db-1 does not exist"):
        lookups.vmi_addresses(client, ["db-1"], "demo", network="br1", wait=True, timeout=0.3)


# -- the plugins ---------------------------------------------------------------------------------
def make_plugin(module):
    """The plugin's LookupModule as Ansible loads it (options from its DOCUMENTATION and the auth fragment)."""
    doc = yaml.safe_load(module.DOCUMENTATION)
    assert doc["extends_documentation_fragment"] == ["virtops.kubevirt.auth"]
    return ansible_plugin("lookup", "virtops.kubevirt.%s" % doc["name"])


def use_client(monkeypatch, plugin, client, seen=None):
    """Make the plugin's connect() return ``client`` (recording the connection params in ``seen``)."""
    def fake_connect(params, environ=None):
        if seen is not None:
            seen.update(params)
        return client

    monkeypatch.setitem(type(plugin).run.__globals__, "connect", fake_connect)


def test_auth_params_leave_unset_options_out():
    options = {"host": "https://h", "api_key": "t", "kubeconfig": None, "impersonate_groups": [], "context": ""}
    assert lookups.auth_params(options.get) == {"host": "https://h", "api_key": "t"}


@pytest.mark.parametrize("which,kwargs,expected", [
    ("vm", {"query": "status.printableStatus"}, ["Running"]),
    ("vmi_address", {"network": "br1"}, ["192.168.50.11"]),
])
def test_plugins_wire_options(client, monkeypatch, which, kwargs, expected):
    from ansible_collections.virtops.kubevirt.plugins.lookup import vm as vm_plugin
    from ansible_collections.virtops.kubevirt.plugins.lookup import vmi_address as addr_plugin

    module = vm_plugin if which == "vm" else addr_plugin
    seen = {}
    plugin = make_plugin(module)
    use_client(monkeypatch, plugin, client, seen)
    kwargs = dict(kwargs, namespace="demo", host="https://api:6443", api_key="tok")
    assert plugin.run(["web-1"], variables={}, **kwargs) == expected
    assert seen == {"host": "https://api:6443", "api_key": "tok"}


def test_plugin_errors_are_ansible_errors(client, monkeypatch):
    from ansible.errors import AnsibleError

    from ansible_collections.virtops.kubevirt.plugins.lookup import vm as vm_plugin

    plugin = make_plugin(vm_plugin)
    use_client(monkeypatch, plugin, client)
    with pytest.raises(AnsibleError, match="VirtualMachine demo/nope does not exist"):
        plugin.run(["nope"], variables={}, namespace="demo")


@pytest.mark.parametrize("which, kwargs, message", [
    ("vm", {"namespce": "demo"},
     "lookup('virtops.kubevirt.vm'): unknown keyword 'namespce' (did you mean 'namespace'?)."),
    ("vm", {"querry": "status"}, "lookup('virtops.kubevirt.vm'): unknown keyword 'querry' (did you mean 'query'?)."),
    ("vm", {"label_selecter": "a=b"}, "unknown keyword 'label_selecter' (did you mean 'label_selector'?)."),
    ("vm", {"api_kye": "t"}, "unknown keyword 'api_kye' (did you mean 'api_key'?)."),
    ("vmi_address", {"netwrk": "br9"}, "lookup('virtops.kubevirt.vmi_address'): unknown keyword 'netwrk' "
                                       "(did you mean 'network'?)."),
    ("vmi_address", {"zzz": 1}, "unknown keyword 'zzz'; known: all_addresses, api_key, "),
])
def test_unknown_keywords_are_errors_naming_them(client, monkeypatch, which, kwargs, message):
    """Ansible drops keywords a lookup does not document: namespce= searched the default namespace,
    netwrk= gave the first network's IP, querry= the whole object."""
    from ansible.errors import AnsibleError

    from ansible_collections.virtops.kubevirt.plugins.lookup import vm as vm_plugin
    from ansible_collections.virtops.kubevirt.plugins.lookup import vmi_address as addr_plugin

    plugin = make_plugin(vm_plugin if which == "vm" else addr_plugin)
    seen = {}
    use_client(monkeypatch, plugin, client, seen)
    with pytest.raises(AnsibleError) as exc:
        plugin.run(["web-1"], variables={}, **dict(kwargs, namespace="demo"))
    assert message in str(exc.value)
    assert not seen  # refused before connecting


def test_aliases_are_known_keywords(client, monkeypatch):
    from ansible_collections.virtops.kubevirt.plugins.lookup import vmi_address as addr_plugin

    plugin = make_plugin(addr_plugin)
    seen = {}
    use_client(monkeypatch, plugin, client, seen)
    assert plugin.run(["web-1"], variables={}, namespace="demo", network_name="br1", verify_ssl=False) == \
        ["192.168.50.11"]
    assert seen == {"validate_certs": False}
