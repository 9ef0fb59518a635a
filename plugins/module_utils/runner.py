# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How every module runs: one Runner base and one run_module(), the only exit and fail path.

A module's main() builds its AnsibleModule and calls ``run_module(module, SomeRunner)``:

1. ``check_timeout`` for every timeout option of the module, then ``SomeRunner.before_connect(module)``:
   checks that need no cluster (and masking of inline secrets); a KubevirtError fails the task with
   its one sentence;
2. connect (connection problems fail the task with one sentence; the client's warnings are shown);
3. ``runner.run()`` -> ``(result, error)``; a KubevirtError raised by run() fails the task; meanwhile
   the module's waits publish their progress for the action plugin (kubevirt/progress.py);
4. the runner's warnings are shown, ``api_requests`` (this run's request count) is added, and the
   task exits with the result, or fails with ``error`` and the result (a failed wait adds its own
   progress record to the runner's).
"""

from __future__ import annotations

import copy

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.client import connect
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.connection import AUTH_ARG_SPEC
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import InputError, KubevirtError
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import progress as live_progress

WAIT_ARG_SPEC = dict(
    wait=dict(type="bool", default=False),
    wait_for=dict(type="list", elements="str"),
    wait_timeout=dict(type="int", default=300),
)


# Options that are a number of seconds to wait (every module's, the vmi_address lookup's).
TIMEOUT_OPTIONS = ("wait_timeout", "timeout")


def check_timeout(value, option):
    """A timeout option is a positive number of seconds: 0 or less would end every wait at once."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
        raise InputError("%s must be a positive number of seconds, got %r." % (option, value))
    return value


def auth_spec():
    return copy.deepcopy(AUTH_ARG_SPEC)


class Runner:
    """One run of one module: its options, client, check and diff mode, progress and warnings."""

    # False for a module whose results carry no progress records (its failures then carry none).
    reports_progress = True

    def __init__(self, module, client):
        self.module = module
        self.client = client
        self.params = module.params
        self.check_mode = module.check_mode
        self.diff_mode = module._diff
        self.progress = []
        self.warnings = []

    @classmethod
    def before_connect(cls, module):
        """Checks that need no cluster; raise KubevirtError to fail the task before connecting."""

    def run(self):
        """Do the task: -> (result dict, None or the error the task fails with, the result kept)."""
        raise NotImplementedError

    @staticmethod
    def check_target(params, key="name"):
        """For before_connect: the object's name and, when given, its namespace are valid names."""
        if params.get("namespace"):
            res.check_namespace(params["namespace"])
        res.check_name(params[key], key)

    def target(self, key="name", max_len=63):
        """(name, namespace) of the object the task is about, checked; the namespace defaults to the
        client's (the kubeconfig context's, or the ServiceAccount's)."""
        name = res.check_name(self.params[key], key, max_len=max_len)
        return name, res.check_namespace(self.params.get("namespace") or self.client.namespace)


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


def run_module(module, runner_class):
    """Run a module's Runner and exit or fail the task (see the module docstring)."""
    try:
        for option in TIMEOUT_OPTIONS:
            check_timeout(module.params.get(option), option)
        runner_class.before_connect(module)
    except KubevirtError as exc:
        module.fail_json(msg=str(exc))
    client = connect_module(module)
    runner = runner_class(module, client)
    try:
        with live_progress.publish():  # live lines of the waits, when run as a module process (progress.py)
            result, error = runner.run()
    except KubevirtError as exc:
        for warning in runner.warnings:
            module.warn(warning)
        failed = dict(changed=False, api_requests=client.requests)
        if runner.reports_progress:
            failed["progress"] = runner.progress
        module.fail_json(msg=str(exc), **failed)
    for warning in runner.warnings:
        module.warn(warning)
    result["api_requests"] = client.requests
    if error is not None:
        details = getattr(error, "details", {}) or {}
        record = details.get("progress")
        progress = result.get("progress", runner.progress)
        if record and not any(r is record for r in progress):
            # The failed wait's record, once (a workflow may have kept it already).
            result["progress"] = list(progress) + [record]
        module.fail_json(msg=str(error), **result)
    module.exit_json(**result)
