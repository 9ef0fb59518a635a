import json

import pytest
from modhelp import run_module
from opsfakes import OpsClient, vm_obj, warnings_text

from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows import network as network_flow
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import InputError
from ansible_collections.virtops.kubevirt.plugins.modules import network


def opts(**kw):
    base = {"type": None, "bridge": None, "cni_type": None, "cni_name": None, "cni_version": "0.3.1", "vlan": None,
            "mtu": None, "macspoofchk": None, "disable_container_interface": None, "resource_name": None,
            "ipam": None, "config": None, "labels": None, "annotations": None}
    base.update(kw)
    return base


# -- builders ------------------------------------------------------------------------------------
def test_bridge_config_and_annotation():
    config, resource = network_flow.build_config(opts(bridge="br1", vlan=100, mtu=9000, macspoofchk=True,
                                                      disable_container_interface=True), "br1-net")
    assert config == {"cniVersion": "0.3.1", "name": "br1-net", "type": "bridge", "bridge": "br1", "vlan": 100,
                      "mtu": 9000, "macspoofchk": True, "disableContainerInterface": True}
    assert resource == "bridge.network.kubevirt.io/br1"
    legacy, _resource = network_flow.build_config(opts(bridge="br0", cni_type="cnv-bridge", cni_name="legacy"), "x")
    assert legacy["type"] == "cnv-bridge" and legacy["name"] == "legacy"


def test_sriov_config():
    config, resource = network_flow.build_config(opts(type="sriov", resource_name="intel.com/sriov_net", vlan=5,
                                                      macspoofchk=False), "s1")
    assert config == {"cniVersion": "0.3.1", "name": "s1", "type": "sriov", "vlan": 5, "spoofchk": "off"}
    assert resource == "intel.com/sriov_net"


@pytest.mark.parametrize("ipam, expected", [
    ({"type": "none"}, None),
    ({"type": "dhcp"}, {"type": "dhcp"}),
    ({"type": "host-local", "subnet": "192.168.1.0/24", "range_start": "192.168.1.10", "range_end": "192.168.1.20",
      "gateway": "192.168.1.1", "routes": [{"dst": "0.0.0.0/0", "gw": "192.168.1.1"}]},
     {"type": "host-local", "subnet": "192.168.1.0/24", "rangeStart": "192.168.1.10", "rangeEnd": "192.168.1.20",
      "gateway": "192.168.1.1", "routes": [{"dst": "0.0.0.0/0", "gw": "192.168.1.1"}]}),
    ({"type": "whereabouts", "range": "10.0.0.0/16", "exclude": ["10.0.0.0/24"], "range_start": "10.0.1.1"},
     {"type": "whereabouts", "range": "10.0.0.0/16", "range_start": "10.0.1.1", "exclude": ["10.0.0.0/24"]}),
    ({"type": "whereabouts", "subnet": "10.0.0.0/16"}, {"type": "whereabouts", "range": "10.0.0.0/16"}),
    ({"type": "static", "addresses": [{"address": "10.1.0.5/24", "gateway": "10.1.0.1"}]},
     {"type": "static", "addresses": [{"address": "10.1.0.5/24", "gateway": "10.1.0.1"}]}),
    ({"type": "host-local", "subnet": "fd00::/64"}, {"type": "host-local", "subnet": "fd00::/64"}),
])
def test_ipam(ipam, expected):
    assert network_flow.build_ipam(ipam) == expected


@pytest.mark.parametrize("kw, message", [
    ({"bridge": None}, "type bridge needs bridge"),
    ({"bridge": "a-very-long-bridge-name"}, "is not a Linux interface name"),
    ({"bridge": "br1", "vlan": 4095}, "vlan must be 0-4094, got 4095."),
    ({"bridge": "br1", "mtu": 100}, "mtu must be 576-65535"),
    ({"type": "sriov"}, "type sriov needs resource_name"),
    ({"type": "sriov", "resource_name": "x/y", "bridge": "br1"}, "bridge applies to type bridge only"),
    ({"type": "sriov", "resource_name": "x/y", "mtu": 1500}, "mtu applies to type bridge only"),
    ({"bridge": "br1", "ipam": {"type": "host-local"}}, "ipam type host-local needs ipam.subnet"),
    ({"bridge": "br1", "ipam": {"type": "host-local", "subnet": "300.1.1.0/24"}}, "is not a CIDR"),
    ({"bridge": "br1", "ipam": {"type": "host-local", "subnet": "10.0.0.0/24", "range_start": "10.0.1.1"}},
     "ipam.range_start 10.0.1.1 is outside 10.0.0.0/24."),
    ({"bridge": "br1", "ipam": {"type": "whereabouts"}}, "ipam type whereabouts needs ipam.range"),
    ({"bridge": "br1", "ipam": {"type": "static"}}, "ipam type static needs ipam.addresses"),
    ({"bridge": "br1", "ipam": {"type": "static", "addresses": [{"address": "10.0.0.5"}]}}, "is not an address with"),
    ({"bridge": "br1", "ipam": {"type": "dhcp", "subnet": "10.0.0.0/24"}}, "ipam.subnet does not apply to ipam type dhcp"),
    ({"bridge": "br1", "ipam": {"type": "host-local", "subnet": "10.0.0.0/24", "routes": [{"dst": "x"}]}},
     "ipam.routes[0].dst 'x' is not a CIDR"),
])
def test_config_errors(kw, message):
    with pytest.raises(InputError) as exc:
        network_flow.build_config(opts(**kw), "n1")
    assert message in str(exc.value)


@pytest.mark.parametrize("config, message", [
    ('{"cniVersion": "0.3.1",', "config is not valid JSON"),
    ("[]", "must be a JSON object"),
    ({"type": "bridge"}, "has no cniVersion"),
    ({"cniVersion": "0.3.1"}, "has no type"),
    ({"cniVersion": "0.3.1", "plugins": []}, "plugins must be a non-empty list"),
    ({"cniVersion": "0.3.1", "plugins": [{"type": "bridge"}, {"capabilities": {}}]}, "plugins[1] has no type"),
])
def test_raw_config_errors(config, message):
    with pytest.raises(InputError) as exc:
        network_flow.parse_config(config)
    assert message in str(exc.value)


def test_raw_config_resource_names():
    bridge = network_flow.parse_config('{"cniVersion": "0.3.1", "type": "cnv-bridge", "bridge": "br0"}')
    assert network_flow.resource_for_raw(bridge, None) == "bridge.network.kubevirt.io/br0"
    chain = network_flow.parse_config({"cniVersion": "0.4.0", "plugins": [{"type": "bridge", "bridge": "b2"}]})
    assert network_flow.resource_for_raw(chain, None) == "bridge.network.kubevirt.io/b2"
    assert network_flow.resource_for_raw({"cniVersion": "1", "type": "macvlan"}, None) is None
    assert network_flow.resource_for_raw({"cniVersion": "1", "type": "sriov"}, "a/b") == "a/b"
    with pytest.raises(InputError):
        network_flow.resource_for_raw({"cniVersion": "1", "type": "sriov"}, None)


def test_annotation_conflict():
    with pytest.raises(InputError) as exc:
        network_flow.build_nad(opts(bridge="br1", annotations={"k8s.v1.cni.cncf.io/resourceName": "other"}), "n", "demo")
    assert "use resource_name" in str(exc.value)


# -- the module ----------------------------------------------------------------------------------
@pytest.fixture
def client():
    return OpsClient()


@pytest.fixture
def run(client, monkeypatch, capsys):
    def _run(args, **kw):
        return run_module(network, dict({"name": "br1-net", "namespace": "demo"}, **args), client, monkeypatch,
                          capsys, **kw)
    return _run


BR = {"bridge": "br1", "vlan": 10, "ipam": {"type": "host-local", "subnet": "192.168.5.0/24"}}


def test_create_and_idempotent(run, client):
    first = run(dict(BR))
    assert first["changed"] and first["method"] == "create"
    nad = client.store[("NetworkAttachmentDefinition", "demo", "br1-net")]
    assert nad["metadata"]["annotations"] == {"k8s.v1.cni.cncf.io/resourceName": "bridge.network.kubevirt.io/br1"}
    assert json.loads(nad["spec"]["config"]) == first["config"]
    assert run(dict(BR))["changed"] is False
    assert run(dict(BR), check_mode=True)["changed"] is False


def test_equal_config_in_another_form_is_not_rewritten(run, client):
    first = run(dict(BR))
    raw = ('{ "ipam": {"subnet": "192.168.5.0/24", "type": "host-local"},\n "vlan": 10, "bridge": "br1", '
           '"type": "bridge", "name": "br1-net", "cniVersion": "0.3.1" }')
    before = len(client.calls)
    result = run({"config": raw})
    assert result["changed"] is False and result["network"]["spec"]["config"] == first["network"]["spec"]["config"]
    assert [c[0] for c in client.calls[before:]] == ["GET"]


def test_change_shows_parsed_config_in_diff(run, client):
    run(dict(BR))
    result = run(dict(BR, vlan=20), diff=True)
    assert result["changed"]
    assert result["diff"]["before"]["spec"]["config"]["vlan"] == 10
    assert result["diff"]["after"]["spec"]["config"]["vlan"] == 20


def test_check_mode_creates_nothing(run, client):
    result = run(dict(BR), check_mode=True)
    assert result["changed"] and ("NetworkAttachmentDefinition", "demo", "br1-net") not in client.store


def test_label_only_change_keeps_config_string(run, client):
    first = run(dict(BR))
    result = run(dict(BR, labels={"team": "net"}))
    assert result["changed"] and result["network"]["spec"]["config"] == first["network"]["spec"]["config"]


def test_absent_warns_about_users(run, client):
    run(dict(BR))
    client.put(vm_obj(networks=[{"name": "br1", "multus": {"networkName": "demo/br1-net"}}],
                      interfaces=[{"name": "br1", "bridge": {}}]))
    result = run({"state": "absent"})
    assert result["changed"] and "still used by VM web1" in warnings_text(result)
    assert run({"state": "absent"})["changed"] is False


@pytest.mark.parametrize("args, message", [
    ({"config": {"cniVersion": "0.3.1", "type": "bridge"}, "vlan": 3}, "mutually exclusive"),
    ({"config": "{nope"}, "config is not valid JSON"),
    ({"type": "sriov"}, "type sriov needs resource_name"),
])
def test_bad_input_fails_before_any_request(run, client, args, message):
    result = run(args)
    assert result["failed"] and message in result["msg"]
    assert not [c for c in client.calls if c[0] != "GET"]


def test_present_on_a_network_being_deleted_creates_it_again_once_gone(run, client):
    # Applying onto it would report it unchanged, and then it would vanish.
    run(dict(BR))
    client.being_deleted("NetworkAttachmentDefinition", "br1-net")
    assert run(dict(BR), check_mode=True)["changed"] is True
    again = run(dict(BR))
    assert again["changed"] is True and again["method"] == "create"
    assert "deletionTimestamp" not in client.store[("NetworkAttachmentDefinition", "demo", "br1-net")]["metadata"]
