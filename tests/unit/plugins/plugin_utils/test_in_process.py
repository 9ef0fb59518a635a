"""The in-worker module runner: when it runs a module in Ansible's worker, and that the result is
what the module process would have returned (validation, no_log, warnings, exceptions, environment)."""
import os
import sys
import time
import types
from pathlib import Path
from unittest import mock

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.playbook.play_context import PlayContext
from ansible.playbook.task import Task

from ansible_collections.virtops.kubevirt.plugins.plugin_utils import in_process
from ansible_collections.virtops.kubevirt.plugins.plugin_utils.in_process import InProcessModuleAction

FAKE = "ansible_collections.virtops.kubevirt.plugins.modules.fake_for_tests"


def make_action(args=None, transport="local", become=False, async_val=0, environment=None,
                action="virtops.kubevirt.fake_for_tests"):
    task = Task()
    task.args = dict(args or {})
    task.async_val = async_val
    task.environment = environment or []
    task._resolved_action = action
    task.action = action
    play_context = PlayContext()
    play_context.become = become
    play_context.executable = "/bin/sh"
    connection = mock.MagicMock(transport=transport, socket_path=None, has_native_async=False, become=None)
    connection._shell.tmpdir = None
    connection._shell.get_option.return_value = "~/.ansible/tmp"
    templar = mock.MagicMock()
    templar.template.side_effect = lambda value, **kw: value
    return InProcessModuleAction(task, connection, play_context, loader=None, templar=templar,
                                 shared_loader_obj=None)


@pytest.fixture
def fake_module(monkeypatch):
    """Installs a module named fake_for_tests whose main() is the given function."""
    def install(main):
        module = types.ModuleType(FAKE)
        module.main = main
        monkeypatch.setitem(sys.modules, FAKE, module)
    return install


def echo_main():
    module = AnsibleModule(argument_spec={"password": {"type": "str", "no_log": True},
                                          "count": {"type": "int", "default": 1}},
                           supports_check_mode=True)
    module.warn("a warning from the module")
    module.exit_json(changed=not module.check_mode, said="the password is %s" % module.params["password"],
                     count=module.params["count"], env=os.environ.get("VIRTOPS_TEST_ENV"))


class TestWhereItRuns:
    def test_local_task_runs_in_the_worker(self):
        assert make_action().module_process_reason({}) == ""

    @pytest.mark.parametrize("kwargs, vars_, reason", [
        ({"transport": "ssh"}, {}, "connection ssh"),
        ({"become": True}, {}, "become"),
        ({"async_val": 30}, {}, "async"),
        ({}, {"virtops_kubevirt_in_process": False}, "virtops_kubevirt_in_process is false"),
        ({}, {"virtops_kubevirt_in_process": "no"}, "virtops_kubevirt_in_process is false"),
        ({}, {"virtops_kubevirt_in_process": "maybe"}, "virtops_kubevirt_in_process is not a boolean"),
    ])
    def test_module_process_when_the_worker_could_differ(self, kwargs, vars_, reason):
        assert make_action(**kwargs).module_process_reason(vars_) == reason

    def test_module_process_when_a_library_is_missing(self, monkeypatch):
        real = in_process.importlib.util.find_spec
        monkeypatch.setattr(in_process.importlib.util, "find_spec",
                            lambda name: None if name == "jmespath" else real(name))
        assert make_action().module_process_reason({}) == "the controller's Python lacks jmespath"

    def test_module_process_on_old_ansible_core(self, monkeypatch):
        monkeypatch.setattr(in_process, "CORE", in_process.CoreInternals("2.16.14"))
        assert make_action().module_process_reason({}) == "ansible-core older than 2.19"

    def test_module_process_on_an_ansible_core_ci_has_not_run(self, monkeypatch):
        monkeypatch.setattr(in_process, "CORE", in_process.CoreInternals("2.22.0"))
        assert make_action().module_process_reason({}) == (
            "ansible-core 2.22 is not one the worker path is tested on (2.19, 2.20, 2.21)")

    @pytest.mark.parametrize("release", in_process.TESTED_CORE)
    def test_the_tested_releases_bind_here(self, release):
        # This Python has one ansible-core; on it, binding must work whichever tested release it is.
        from ansible.release import __version__
        if __version__.startswith(release + "."):
            assert in_process.CoreInternals(__version__).reason == ""


class TestInternalsMissing:
    """ansible-core's internals are private: whatever is missing sends the task to the module process."""

    @pytest.fixture
    def reload_without(self, monkeypatch):
        """Re-imports in_process and an action plugin with the given modules/attributes made missing."""
        action_name = "ansible_collections.virtops.kubevirt.plugins.action.vm_info"
        original_action = sys.modules.get(action_name)

        def reload(*missing):
            import importlib
            for target in missing:
                if ":" in target:
                    module, attribute = target.split(":")
                    monkeypatch.delattr(importlib.import_module(module), attribute)
                else:
                    monkeypatch.setitem(sys.modules, target, None)  # import raises ImportError
            monkeypatch.delitem(sys.modules, in_process.__name__)
            sys.modules.pop(action_name, None)
            fresh = importlib.import_module(in_process.__name__)
            action = importlib.import_module(action_name)
            return fresh, action
        yield reload
        # The originals back for the other tests (monkeypatch restores in_process itself).
        if original_action is None:
            sys.modules.pop(action_name, None)
        else:
            sys.modules[action_name] = original_action

    @pytest.mark.parametrize("missing, what", [
        (["ansible.vars.clean:remove_internal_keys", "ansible._internal._task"], "ModuleNotFoundError"),
        (["ansible.module_utils._internal._ansiballz._loader"], "ModuleNotFoundError"),
        (["ansible.module_utils.basic:_ANSIBLE_PROFILE"], "AttributeError: ansible.module_utils.basic has no _ANSIBLE_PROFILE"),
        (["ansible.module_utils.common.json:get_module_encoder"], "ImportError"),
    ])
    def test_the_action_plugin_imports_and_falls_back(self, reload_without, monkeypatch, missing, what):
        fresh, action_plugin = reload_without(*missing)
        assert "internals differ (%s" % what in fresh.CORE.reason
        calls = []
        monkeypatch.setattr(fresh.NormalAction, "run", lambda self, tmp=None, task_vars=None: calls.append(1) or {"via": "module"})
        shown = []
        monkeypatch.setattr(fresh.display, "vvv", lambda msg, host=None: shown.append(msg))
        task = make_action(action="virtops.kubevirt.vm_info")
        action = action_plugin.ActionModule(task._task, task._connection, task._play_context, loader=None,
                                            templar=task._templar, shared_loader_obj=None)
        assert action.run(task_vars={}) == {"via": "module"} and calls == [1]
        assert shown == ["virtops.kubevirt.vm_info: running as a module process (%s)" % fresh.CORE.reason]

    def test_run_falls_back_to_the_module_process(self, monkeypatch):
        calls = []
        monkeypatch.setattr(in_process.NormalAction, "run", lambda self, tmp=None, task_vars=None: calls.append(1) or {"via": "module"})
        assert make_action(transport="ssh").run(task_vars={}) == {"via": "module"}
        assert calls == [1]


class TestRunInWorker:
    def test_result_as_the_module_process_returns_it(self, fake_module, capfd):
        fake_module(echo_main)
        result = make_action({"password": "S3cret-value", "count": "3"}).run(task_vars={})
        assert result["changed"] is True
        assert result["count"] == 3  # validated and converted by the module's argument spec
        assert "S3cret-value" not in repr(result)  # no_log values removed, as in a module process
        assert result["said"] == "the password is ********"
        assert result["invocation"]["module_args"]["password"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
        assert result["_ansible_parsed"] is True
        assert not any(key.startswith("_ansible") and key != "_ansible_parsed" for key in result)
        # In a controller process ansible-core shows module warnings at once instead of returning them.
        assert "a warning from the module" in capfd.readouterr().err

    def test_check_mode_reaches_the_module(self, fake_module):
        fake_module(echo_main)
        action = make_action({"password": "x"})
        action._task.check_mode = True
        assert action.run(task_vars={})["changed"] is False

    def test_bad_input_fails_with_the_modules_message(self, fake_module):
        fake_module(echo_main)
        result = make_action({"count": "many"}).run(task_vars={})
        assert result["failed"] is True
        assert "argument 'count' is of type" in result["msg"] and "int" in result["msg"]

    def test_unknown_option(self, fake_module):
        fake_module(echo_main)
        result = make_action({"colour": "red"}).run(task_vars={})
        assert result["failed"] is True and "Unsupported parameters" in result["msg"] and "colour" in result["msg"]

    def test_an_exception_becomes_a_failed_result(self, fake_module):
        def boom():
            raise RuntimeError("boom from the module")
        fake_module(boom)
        result = make_action().run(task_vars={})
        assert result["failed"] is True
        assert "boom from the module" in repr(result["exception"])  # as the AnsiballZ wrapper reports it

    def test_task_environment_applies_only_while_the_module_runs(self, fake_module, monkeypatch):
        fake_module(echo_main)
        monkeypatch.delenv("VIRTOPS_TEST_ENV", raising=False)
        result = make_action(environment=[{"VIRTOPS_TEST_ENV": "from-the-task"}]).run(task_vars={})
        assert result["env"] == "from-the-task"
        assert "VIRTOPS_TEST_ENV" not in os.environ

    def test_a_real_module_fails_cleanly_without_connection_settings(self, tmp_path):
        action = make_action({"name": "x", "namespace": "y"}, action="virtops.kubevirt.vm_info",
                             environment=[{"KUBECONFIG": str(tmp_path / "missing"), "HOME": str(tmp_path)}])
        with mock.patch.dict(os.environ, {}, clear=False):
            for key in [k for k in os.environ if k.startswith("K8S_AUTH_")]:
                os.environ.pop(key)
            result = action.run(task_vars={})
        assert result["failed"] is True
        assert str(tmp_path / "missing") in result["msg"]


def test_progress_display_shows_the_running_waits(monkeypatch):
    from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import wait as waiter

    shown = []
    monkeypatch.setattr(in_process.display, "display", lambda msg, **kw: shown.append(msg))
    wait = mock.Mock(status=lambda: "waiting for VMIs ns/a to be ready: 12s of 300s, last seen: a phase Scheduling")
    monkeypatch.setattr(waiter, "ACTIVE", [wait])
    with in_process.progress_display("[localhost] virtops.kubevirt.vm", 0.02, in_process.progress().lines):
        time.sleep(0.1)
    count = len(shown)
    assert count >= 2
    assert shown[0] == "[localhost] virtops.kubevirt.vm: waiting for VMIs ns/a to be ready: 12s of 300s, last seen: a phase Scheduling"
    time.sleep(0.05)
    assert len(shown) == count  # stopped with the module


# Modules that are an action plugin only (they run on the controller and read no API).
ACTION_ONLY = {"vm_monitor_report"}


def test_every_module_has_its_in_process_action():
    """A module without plugins/action/<name>.py would run as a module process on every task (slower, and
    without the worker's live progress): each module has its action, and each action its module."""
    root = Path(__file__).resolve().parents[4] / "plugins"
    modules = {p.stem for p in (root / "modules").glob("*.py") if p.stem != "__init__"}
    actions = {p.stem for p in (root / "action").glob("*.py") if p.stem != "__init__"}
    assert modules == actions
    for name in actions - ACTION_ONLY:
        assert "InProcessModuleAction" in (root / "action" / f"{name}.py").read_text()
    for name in ACTION_ONLY:  # no module code to run: documentation only, and it says so
        assert "def main" not in (root / "modules" / f"{name}.py").read_text()
        assert "An action plugin only" in (root / "modules" / f"{name}.py").read_text()


def test_no_progress_display_at_interval_0(monkeypatch):
    shown = []
    monkeypatch.setattr(in_process.display, "display", lambda msg, **kw: shown.append(msg))
    with in_process.progress_display("[localhost] virtops.kubevirt.vm", 0, lambda: ["a line"]):
        time.sleep(0.05)
    assert shown == []


class TestProgressInterval:
    @pytest.mark.parametrize("value, expected", [(None, in_process.PROGRESS_EVERY), (5, 5), ("2", 2), (0, 0), (0.5, 0.5)])
    def test_from_the_task_vars(self, value, expected):
        task_vars = {} if value is None else {in_process.PROGRESS_VAR: value}
        assert make_action().progress_interval(task_vars) == expected

    @pytest.mark.parametrize("value", ["often", -1, True, [5]])
    def test_a_bad_value_fails_the_task_with_one_sentence(self, value, fake_module):
        fake_module(echo_main)
        result = make_action().run(task_vars={in_process.PROGRESS_VAR: value})
        assert result["failed"] is True
        assert result["msg"].startswith("virtops_kubevirt_progress_interval must be a number of seconds")


class TestModuleProcessProgress:
    """A module process publishes its waits' lines to a file this action names, reads and shows."""

    def run_module_process(self, monkeypatch, task_vars, transport="local", async_val=0):
        """run() of an action whose module process is faked: it writes to the progress file it was given."""
        from ansible.plugins.action.normal import ActionModule as NormalAction

        shown, seen = [], {}
        monkeypatch.setattr(in_process.display, "display", lambda msg, **kw: shown.append(msg))
        action = make_action(transport=transport, async_val=async_val)
        action._connection._shell.env_prefix.side_effect = lambda **env: " ".join("%s=%s" % kv for kv in env.items())

        def module_process(self, tmp=None, task_vars=None):
            seen["env"] = self._compute_environment_string()
            path = self._progress_file
            if path:
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write("waiting for 3 VirtualMachines in ns to be ready: 4s of 600s, 1/3 done")
                time.sleep(0.1)
            return {"changed": False}

        monkeypatch.setattr(NormalAction, "run", module_process)
        monkeypatch.setattr(action, "module_process_reason", lambda task_vars: "ansible-core older than 2.19")
        result = action.run(task_vars=dict(task_vars, inventory_hostname="localhost"))
        return result, shown, seen

    def test_lines_are_shown_and_the_file_removed(self, monkeypatch):
        result, shown, seen = self.run_module_process(monkeypatch, {in_process.PROGRESS_VAR: 0.02})
        assert result == {"changed": False}
        assert shown and shown[0] == ("[localhost] virtops.kubevirt.fake_for_tests: waiting for 3 VirtualMachines "
                                      "in ns to be ready: 4s of 600s, 1/3 done")
        path = seen["env"].split("=", 1)[1]
        assert seen["env"].startswith("VIRTOPS_KUBEVIRT_PROGRESS_FILE=") and not os.path.exists(path)

    @pytest.mark.parametrize("task_vars, transport, async_val", [
        ({in_process.PROGRESS_VAR: 0}, "local", 0),  # asked for none
        ({}, "ssh", 0),                              # the module runs elsewhere: its file is not here
        ({}, "local", 60),                           # async: the module outlives the action
    ])
    def test_no_file_when_it_could_not_be_shown(self, monkeypatch, task_vars, transport, async_val):
        _result, shown, seen = self.run_module_process(monkeypatch, task_vars, transport, async_val)
        assert "VIRTOPS_KUBEVIRT_PROGRESS_FILE" not in seen["env"] and shown == []


def test_a_module_process_publishes_its_waits_lines(monkeypatch, tmp_path):
    from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import progress
    from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import wait as waiter

    path = str(tmp_path / "progress")
    monkeypatch.setenv(progress.PROGRESS_ENV, path)
    assert progress.read(path) == []  # nothing published yet
    monkeypatch.setattr(waiter, "ACTIVE", [mock.Mock(status=lambda: "waiting for a: 1s of 5s, last seen: a phase Running")])
    with progress.publish(every=0.01):
        time.sleep(0.1)
        assert progress.read(path) == ["waiting for a: 1s of 5s, last seen: a phase Running"]
        waiter.ACTIVE.clear()
        time.sleep(0.1)
        assert progress.read(path) == []  # the wait is over
    assert sorted(os.listdir(str(tmp_path))) == ["progress"]  # no half-written file left


def test_without_the_variable_a_module_publishes_nothing(monkeypatch, tmp_path):
    from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import progress

    monkeypatch.delenv(progress.PROGRESS_ENV, raising=False)
    with progress.publish(every=0.01):
        time.sleep(0.05)
    assert not [t for t in __import__("threading").enumerate() if t.name == "virtops-progress-file"]


def test_an_action_class_imports_its_module_where_it_is_loaded(monkeypatch):
    """Ansible's controller loads the class before it forks the task's worker: the worker inherits the import."""
    imported = []
    monkeypatch.setattr(in_process.importlib, "import_module", imported.append)
    monkeypatch.setattr(in_process, "missing_libraries", lambda: [])
    namespace = {"__module__": "ansible_collections.virtops.kubevirt.plugins.action.vm_info"}
    type("ActionModule", (InProcessModuleAction,), dict(namespace))
    assert imported == ["ansible_collections.virtops.kubevirt.plugins.modules.vm_info"]

    monkeypatch.setattr(in_process, "missing_libraries", lambda: ["urllib3"])  # the module process runs it
    type("ActionModule", (InProcessModuleAction,), dict(namespace))
    assert len(imported) == 1

    def missing(name):
        raise ImportError(name)
    monkeypatch.setattr(in_process, "missing_libraries", lambda: [])
    monkeypatch.setattr(in_process.importlib, "import_module", missing)
    type("ActionModule", (InProcessModuleAction,), dict(namespace))  # the task reports it, not the class load
