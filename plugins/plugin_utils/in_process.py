# Copyright (c) virtops.kubevirt developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run this collection's modules inside Ansible's worker process when the task runs locally.

Every module here only talks HTTP to an API server, and is almost always run on the controller
(``hosts: localhost``, ``connection: local``, ``delegate_to: localhost``). For such a task the
usual path - build the AnsiballZ zip, write it out, start a Python, import ansible.module_utils
again - costs more than the API calls themselves (about 0.25 s a task; measured in
docs/benchmarks.md). Here the same module code runs in the worker that Ansible already forked for
the task: arguments and results still go through ansible-core's module (de)serialisation, so the
module sees exactly the arguments it would see in its own process and the controller gets the same
result (no_log values removed, check and diff mode). One difference, by ansible-core's design for
module_utils running on the controller: a module's warnings and deprecations are shown as they
happen instead of coming back in the registered result.

It falls back to the ordinary module process whenever running in the worker could behave
differently: another connection than ``local`` (a delegated or remote host), ``become``, ``async``,
an ansible-core older than 2.19, a library from requirements.txt missing from the controller's
Python, an ansible-core whose internals this path is not tested on (``TESTED_CORE``) or are not
what it expects, or ``virtops_kubevirt_in_process: false`` set for the host or task. No library
does this: ansible-core only offers the module process; ansible.netcommon does the same for
network modules.

Either way, while a module waits, this action shows a live line per wait every
``virtops_kubevirt_progress_interval`` seconds (10 unless the host or task sets it; 0: none): what
it waits on, for how long, what it last saw. In the worker the lines come from the waits themselves;
a module process on a local connection (every ansible-core from 2.16) publishes them to a private
file this action names and reads (module_utils/kubevirt/progress.py). Ansible's display in a worker
goes to the controller's output, so the lines reach the terminal and AWX's job events.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import json
import os
import tempfile
import threading

from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action.normal import ActionModule as NormalAction
from ansible.release import __version__ as ANSIBLE_CORE_VERSION
from ansible.utils.display import Display

display = Display()

SWITCH_VAR = "virtops_kubevirt_in_process"
# Seconds between two live progress lines of a task's waits (0: none), for the host or the task.
PROGRESS_VAR = "virtops_kubevirt_progress_interval"
# Imported lazily by module_utils; when the controller's Python lacks one, the module process
# (whose interpreter may have it) is used instead.
REQUIRED_LIBRARIES = ("urllib3", "yaml", "jmespath", "websocket", "kubernetes")
PROGRESS_EVERY = 10  # seconds between two progress lines of a wait, unless PROGRESS_VAR says otherwise
PROFILE = "legacy"  # this collection's modules declare no METADATA, so ansible-core uses 'legacy'
# The ansible-core releases whose internals tests/run-compat.sh runs this path on. Any other
# release (a newer one included) runs the module process until a CI run proves the worker path.
TESTED_CORE = ("2.19", "2.20", "2.21")


class CoreInternals:
    """The private ansible-core pieces this path needs, bound once; ``reason`` says why not.

    They are not a public API and have moved between releases (2.21 replaced
    ansible.vars.clean.remove_internal_keys with a result object), so each is looked up here,
    and anything missing or of another shape sends the task to the module process instead
    of failing it.
    """

    def __init__(self, core_version=ANSIBLE_CORE_VERSION):
        self.reason = ""
        release = ".".join(core_version.split(".")[:2])
        if release not in TESTED_CORE:
            old = tuple(int(part) for part in release.split(".") if part.isdigit()) < (2, 19)
            self.reason = ("ansible-core older than 2.19" if old else
                           "ansible-core %s is not one the worker path is tested on (%s)" % (release, ", ".join(TESTED_CORE)))
            return
        try:
            self._bind()
        except Exception as exc:  # pylint: disable=broad-except  # any difference at all means: not here
            self.reason = "ansible-core %s internals differ (%s: %s)" % (core_version, type(exc).__name__, exc)

    def _bind(self):
        from ansible.module_utils import basic
        from ansible.module_utils.common.json import Direction, get_module_encoder
        from ansible.module_utils._internal._ansiballz._loader import _handle_exception

        for name in ("_ANSIBLE_ARGS", "_ANSIBLE_PROFILE"):
            if not hasattr(basic, name):
                raise AttributeError("ansible.module_utils.basic has no %s" % name)
        for name in ("_parse_returned_data", "_update_module_args", "_compute_environment_string"):
            if not callable(getattr(NormalAction, name, None)):
                raise AttributeError("ActionBase has no %s" % name)
        self.basic = basic
        self.encoder = get_module_encoder(PROFILE, Direction.CONTROLLER_TO_MODULE)
        self.handle_exception = _handle_exception
        try:  # ansible-core 2.19 and 2.20: _parse_returned_data gives a dict, cleaned in place
            from ansible.vars.clean import remove_internal_keys
            self.remove_internal_keys = remove_internal_keys
        except ImportError:  # 2.21: it gives a UnifiedTaskResult that cleans itself
            from ansible._internal._task import UnifiedTaskResult
            for name in ("remove_internal_keys", "as_result_dict"):
                if not callable(getattr(UnifiedTaskResult, name, None)):
                    raise AttributeError("UnifiedTaskResult has no %s" % name)
            self.remove_internal_keys = None

    def result_dict(self, parsed):
        """The task result dict from what _parse_returned_data gave, internal keys removed."""
        if self.remove_internal_keys:
            self.remove_internal_keys(parsed)
            return parsed
        parsed.remove_internal_keys()
        return parsed.as_result_dict(for_round_trip=True)


CORE = CoreInternals()


def progress():
    """module_utils/kubevirt/progress.py, imported when first needed (as module_utils imports its libraries)."""
    from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import progress as published
    return published


def missing_libraries():
    return [name for name in REQUIRED_LIBRARIES if importlib.util.find_spec(name) is None]


class InProcessModuleAction(NormalAction):
    """The action of every module in this collection (see the module docstring)."""

    _progress_file = None  # where this task's module process publishes its progress, while it runs

    def __init_subclass__(cls, **kwargs):
        """Import the module when Ansible's controller loads its action, before it forks the task's worker.

        The controller loads an action's class once, to see whether it bypasses the host loop; every
        worker it forks afterwards inherits what is imported by then. Importing the module (and its
        module_utils) there instead of in each worker saves that import, 50-100 ms, on every task.
        """
        super().__init_subclass__(**kwargs)
        if not CORE.reason and not missing_libraries():
            with contextlib.suppress(ImportError):
                importlib.import_module(cls.__module__.replace(".plugins.action.", ".plugins.modules.", 1))

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        try:
            every = self.progress_interval(task_vars)
        except ValueError as exc:
            return {"failed": True, "msg": str(exc)}
        label = "[%s] %s" % (task_vars.get("inventory_hostname", "localhost"), self._task.resolved_action)
        reason = self.module_process_reason(task_vars)
        if reason:
            display.vvv("%s: running as a module process (%s)" % (self._task.resolved_action, reason),
                        host=self._play_context.remote_addr)
            if not every or self._connection.transport != "local" or self._task.async_val:
                return super().run(tmp, task_vars)  # a file the module writes could not be read here
            with published_progress() as path:
                self._progress_file = path
                try:
                    with progress_display(label, every, lambda: progress().read(path)):
                        return super().run(tmp, task_vars)
                finally:
                    self._progress_file = None
        display.vvv("%s: running in Ansible's worker (ansible-core %s)" % (self._task.resolved_action, ANSIBLE_CORE_VERSION),
                    host=self._play_context.remote_addr)
        result = super(NormalAction, self).run(tmp, task_vars)  # ActionBase: check-mode and async checks
        result.update(self.run_in_worker(task_vars, label, every))
        return result

    def progress_interval(self, task_vars):
        """PROGRESS_VAR for this task: seconds between two progress lines, 0 for none."""
        value = task_vars.get(PROGRESS_VAR, PROGRESS_EVERY)
        value = self._templar.template(value) if isinstance(value, str) else value
        try:
            every = float(value)
        except (TypeError, ValueError):
            every = -1
        if isinstance(value, bool) or every < 0:
            raise ValueError("%s must be a number of seconds between two progress lines (0: none), got %r."
                             % (PROGRESS_VAR, value))
        return every

    def _compute_environment_string(self, raw_environment_out=None):
        """The task's environment, and for a module process whose progress is shown, where to publish it."""
        prefix = super()._compute_environment_string(raw_environment_out)
        if self._progress_file:
            prefix = " ".join(part for part in (
                self._connection._shell.env_prefix(**{progress().PROGRESS_ENV: self._progress_file}), prefix) if part)
        return prefix

    def module_process_reason(self, task_vars):
        """Why this task must run as an ordinary module process; '' when it can run here."""
        switch = task_vars.get(SWITCH_VAR, True)
        try:
            if not boolean(self._templar.template(switch) if isinstance(switch, str) else switch):
                return "%s is false" % SWITCH_VAR
        except TypeError:
            return "%s is not a boolean" % SWITCH_VAR
        if CORE.reason:
            return CORE.reason
        if self._connection.transport != "local":
            return "connection %s" % self._connection.transport
        if self._play_context.become or getattr(self._connection, "become", None):
            return "become"
        if self._task.async_val:
            return "async"
        missing = missing_libraries()
        if missing:
            return "the controller's Python lacks %s" % ", ".join(missing)
        return ""

    def run_in_worker(self, task_vars, label="", every=PROGRESS_EVERY):
        """Run the module's main() here, its stdout captured, as AnsiballZ would run it."""
        fqcn = self._task.resolved_action
        args = dict(self._task.args)
        self._update_module_args(fqcn, args, task_vars)
        environment = {}
        self._compute_environment_string(raw_environment_out=environment)
        module = importlib.import_module("ansible_collections.%s.plugins.modules.%s" % tuple(fqcn.rsplit(".", 1)))
        CORE.basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}, cls=CORE.encoder).encode()
        CORE.basic._ANSIBLE_PROFILE = PROFILE
        stdout = io.StringIO()
        rc = 0
        with task_environment(environment), progress_display(label or fqcn, every, progress().lines), \
                contextlib.redirect_stdout(stdout):
            try:
                module.main()
            except SystemExit as exc:  # exit_json / fail_json end with sys.exit, as in a module process
                rc = exc.code if isinstance(exc.code, int) else 1
            except Exception as exc:  # pylint: disable=broad-except
                try:  # what the AnsiballZ wrapper does with an exception escaping a module
                    CORE.handle_exception(exc, PROFILE)
                except SystemExit:
                    rc = 1
        return CORE.result_dict(self._parse_returned_data({"stdout": stdout.getvalue(), "stderr": "", "rc": rc}, PROFILE))


@contextlib.contextmanager
def progress_display(label, every, source):
    """Every ``every`` seconds (none when 0), show the lines ``source()`` gives: what the module's waits
    wait on, for how long, what they last saw (module_utils/kubevirt/progress.py)."""
    if not every:
        yield
        return
    stop = threading.Event()

    def show():
        while not stop.wait(every):
            for line in source():
                display.display("%s: %s" % (label, line))

    ticker = threading.Thread(target=show, name="virtops-progress", daemon=True)
    ticker.start()
    try:
        yield
    finally:
        stop.set()
        ticker.join()


@contextlib.contextmanager
def published_progress():
    """A private file for a module process to publish its progress to, removed afterwards."""
    handle, path = tempfile.mkstemp(prefix="virtops-progress-")
    os.close(handle)
    try:
        yield path
    finally:
        for leftover in (path, path + ".new"):
            with contextlib.suppress(OSError):
                os.remove(leftover)


@contextlib.contextmanager
def task_environment(environment):
    """The task's `environment:` keyword applied to os.environ (only in this worker) while the module runs."""
    saved = {key: os.environ.get(key) for key in environment}
    os.environ.update({key: str(value) for key, value in environment.items()})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
