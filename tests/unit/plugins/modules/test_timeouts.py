"""Every module's timeout option is checked before connecting, by the one shared check (runner.check_timeout)."""
import importlib

import pytest
from kvfakes import FakeClient
from modhelp import run_module

from ansible_collections.virtops.kubevirt.plugins.module_utils import runner
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import InputError

CASES = [  # (module, required options, timeout option)
    ("vm", {"name": "web1", "memory": "1Gi", "wait": True}, "wait_timeout"),
    ("vmi", {"name": "web1", "memory": "1Gi", "wait": True}, "wait_timeout"),
    ("vm_info", {"name": "web1", "wait": True}, "wait_timeout"),
    ("vmi_info", {"name": "web1", "wait": True}, "wait_timeout"),
    ("vm_power", {"name": "web1", "state": "started"}, "wait_timeout"),
    ("vm_volume", {"vm": "web1", "pvc": "data"}, "wait_timeout"),
    ("vm_nic", {"vm": "web1", "name": "br1", "network_name": "br1-net"}, "wait_timeout"),
    ("volume", {"name": "d1", "size": "1Gi", "wait": True}, "wait_timeout"),
    ("guest_info", {"name": "web1", "wait": True}, "wait_timeout"),
    ("console", {"name": "web1"}, "timeout"),
    ("vm_export", {"name": "e1", "vm": "web1"}, "wait_timeout"),
    ("vm_clone", {"name": "c1", "vm": "web1", "target": "web2"}, "wait_timeout"),
    ("vm_pool", {"name": "web", "memory": "1Gi", "wait": True}, "wait_timeout"),
    ("vm_snapshot", {"name": "s1", "vm": "web1"}, "wait_timeout"),
    ("vm_restore", {"name": "r1", "snapshot": "s1"}, "wait_timeout"),
]


@pytest.mark.parametrize("module_name, args, option", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("value", [0, -5])
def test_a_timeout_of_zero_or_less_fails_before_any_request(module_name, args, option, value, monkeypatch, capsys):
    module = importlib.import_module("ansible_collections.virtops.kubevirt.plugins.modules." + module_name)
    client = FakeClient(namespace="demo")
    result = run_module(module, dict(args, **{option: value}), client, monkeypatch, capsys)
    assert result["failed"] and result["msg"] == "%s must be a positive number of seconds, got %d." % (option, value)
    assert client.calls == []


def test_every_module_with_a_timeout_option_is_covered():
    import pkgutil
    from ansible_collections.virtops.kubevirt.plugins import modules
    covered = {c[0] for c in CASES}
    for info in pkgutil.iter_modules(modules.__path__):
        module = importlib.import_module("ansible_collections.virtops.kubevirt.plugins.modules." + info.name)
        spec = module.argument_spec() if hasattr(module, "argument_spec") else {}
        if set(spec) & set(runner.TIMEOUT_OPTIONS):
            assert info.name in covered, info.name


@pytest.mark.parametrize("value", [None, 1, 300, 2.5])
def test_check_timeout_accepts_positive_seconds(value):
    assert runner.check_timeout(value, "wait_timeout") == value


@pytest.mark.parametrize("value", [0, -1, True, "5"])
def test_check_timeout_refuses_the_rest(value):
    with pytest.raises(InputError, match="^wait_timeout must be a positive number of seconds, got "):
        runner.check_timeout(value, "wait_timeout")
