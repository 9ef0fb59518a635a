"""Run a module's main() in-process with given args and a FakeClient; return its JSON result."""
import json

import pytest
from ansible.module_utils import _internal
from ansible.module_utils.common import warnings as module_warnings
from ansible.module_utils.testing import patch_module_args

from ansible_collections.virtops.kubevirt.plugins.module_utils import runner


def run_module(module, args, client, monkeypatch, capsys, check_mode=False, diff=False):
    monkeypatch.setattr(runner, "connect", lambda params, environ=None: client)
    # Run as a module even if controller code was imported by other test files in this process
    # (then Ansible would send module warnings to Display instead of returning them).
    monkeypatch.setattr(_internal, "is_controller", False)
    # A module process starts with no warnings; this test process has collected those of earlier runs.
    for name in ("_global_warnings", "_global_deprecations"):
        if hasattr(module_warnings, name):
            monkeypatch.setattr(module_warnings, name, type(getattr(module_warnings, name))())
    args = dict(args)
    if check_mode:
        args["_ansible_check_mode"] = True
    if diff:
        args["_ansible_diff"] = True
    capsys.readouterr()
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)
