"""runner.py: run_module is the one exit/fail path of every module."""
import pytest

from ansible_collections.virtops.kubevirt.plugins.module_utils import runner
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import InputError, KubevirtError, WaitTimeout


class Exited(Exception):
    pass


class FakeModule:
    def __init__(self, params=None):
        self.params = params or {}
        self.check_mode = False
        self._diff = False
        self.warned = []
        self.result = None

    def warn(self, text):
        self.warned.append(text)

    def exit_json(self, **result):
        self.result = dict(result, failed=False)
        raise Exited()

    def fail_json(self, **result):
        self.result = dict(result, failed=True)
        raise Exited()


class FakeClient:
    namespace = "default"
    warnings = ["client warning"]

    def __init__(self):
        self.requests = 7


@pytest.fixture
def connected(monkeypatch):
    calls = []

    def connect(params, environ=None):
        calls.append(params)
        return FakeClient()

    monkeypatch.setattr(runner, "connect", connect)
    return calls


def run(runner_class, params=None):
    module = FakeModule(params)
    with pytest.raises(Exited):
        runner.run_module(module, runner_class)
    return module


def test_exit_with_the_result_warnings_and_this_runs_request_count(connected):
    class Ok(runner.Runner):
        def run(self):
            self.warnings.append("runner warning")
            self.client.requests += 2
            return {"changed": True}, None

    module = run(Ok)
    assert module.result == {"changed": True, "api_requests": 2, "failed": False}
    assert module.warned == ["client warning", "runner warning"]


def test_before_connect_fails_without_connecting(connected):
    class Checks(runner.Runner):
        @classmethod
        def before_connect(cls, module):
            cls.check_target(module.params)

    module = run(Checks, {"name": "Not_A_Name"})
    assert module.result["failed"] and "is invalid" in module.result["msg"] and connected == []


def test_an_error_from_run_is_one_sentence_with_progress(connected):
    class Fails(runner.Runner):
        def run(self):
            self.progress.append({"waited_for": "x"})
            raise InputError("name is required.")

    class FailsQuietly(Fails):
        reports_progress = False

    assert run(Fails).result == {"msg": "name is required.", "changed": False, "api_requests": 0,
                                 "progress": [{"waited_for": "x"}], "failed": True}
    assert "progress" not in run(FailsQuietly).result


def test_a_failed_wait_keeps_the_result_and_adds_its_own_progress_record(connected):
    class Waits(runner.Runner):
        def run(self):
            self.progress.append({"waited_for": "first"})
            return {"changed": True, "progress": self.progress}, WaitTimeout("Timed out.", progress={"waited_for": "second"})

    result = run(Waits).result
    assert result["failed"] and result["msg"] == "Timed out." and result["changed"] is True
    assert [p["waited_for"] for p in result["progress"]] == ["first", "second"]


def test_a_failed_wait_record_the_workflow_kept_is_not_added_twice(connected):
    # vm_power and volume keep the failed wait's record themselves: it must appear once.
    class KeepsIt(runner.Runner):
        def run(self):
            error = WaitTimeout("Timed out.", progress={"waited_for": "only"})
            self.progress.append(error.details["progress"])
            return {"changed": True, "progress": self.progress}, error

    class OwnList(runner.Runner):
        def run(self):
            return {"progress": [{"waited_for": "first"}]}, WaitTimeout("Timed out.", progress={"waited_for": "second"})

    assert [p["waited_for"] for p in run(KeepsIt).result["progress"]] == ["only"]
    assert [p["waited_for"] for p in run(OwnList).result["progress"]] == ["first", "second"]


def test_target_defaults_the_namespace_to_the_clients(connected):
    class Target(runner.Runner):
        def run(self):
            return {"target": self.target("vm")}, None

    assert run(Target, {"vm": "web1"}).result["target"] == ("web1", "default")
    assert run(Target, {"vm": "web1", "namespace": "ns1"}).result["target"] == ("web1", "ns1")
    with pytest.raises(KubevirtError):
        runner.Runner.check_target({"name": "ok", "namespace": "Bad_NS"})
