# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How every module runs: connect, run its workflow, report warnings, exit or fail."""

from __future__ import annotations

import copy

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.client import AUTH_ARG_SPEC, connect
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import KubevirtError


WAIT_ARG_SPEC = dict(
    wait=dict(type="bool", default=False),
    wait_for=dict(type="list", elements="str"),
    wait_timeout=dict(type="int", default=300),
)


def auth_spec():
    return copy.deepcopy(AUTH_ARG_SPEC)


def auth_spec():
    return copy.deepcopy(AUTH_ARG_SPEC)


def connect_module(module):
    """The Client for a module; connection problems fail the module with one sentence."""
    try:
        client = connect(module.params)
    except KubevirtError as exc:
        module.fail_json(msg=str(exc))
    # One Client per process and settings keeps its connections; a loop run in Ansible's worker
    # reuses it from item to item, so api_requests counts from here, per module run.
    client.requests = 0
    for warning in client.warnings:
        module.warn(warning)
    return client


def run_runner(module, runner_class):
    """Run a module's runner: connect, run, report its warnings, fail or exit.

    A runner has .run() -> (result, wait_error), .warnings and .progress; a wait error still returns
    the result (with the wait's own progress record when it has one).
    """
    client = connect_module(module)
    runner = runner_class(module, client)
    try:
        result, wait_error = runner.run()
    except KubevirtError as exc:
        for warning in runner.warnings:
            module.warn(warning)
        module.fail_json(msg=str(exc), changed=False, progress=runner.progress, api_requests=client.requests)
    for warning in runner.warnings:
        module.warn(warning)
    if wait_error is not None:
        details = getattr(wait_error, "details", {}) or {}
        if details.get("progress"):
            result["progress"] = runner.progress + [details["progress"]]
        module.fail_json(msg=str(wait_error), **result)
    module.exit_json(**result)
