"""The VM controller's pure decisions (lab/simulator/vm.py): run strategy and whether the VM should run."""
import pytest

from simulator import vm as V


def _vm(running=None, strategy=None, requests=None):
    spec = {}
    if running is not None:
        spec["running"] = running
    if strategy is not None:
        spec["runStrategy"] = strategy
    return {"spec": spec, "status": {"stateChangeRequests": requests or []}}


def _vmi(phase="Running", uid="u1"):
    return {"metadata": {"uid": uid}, "status": {"phase": phase}}


@pytest.mark.parametrize("running,strategy,expected", [
    (None, None, "Halted"), (True, None, "Always"), (False, None, "Halted"),
    (None, "Manual", "Manual"), (True, "Always", None),     # both set: invalid (the webhook says so)
])
def test_run_strategy(running, strategy, expected):
    assert V.run_strategy(_vm(running, strategy)) == expected


START, STOP = {"action": "Start"}, {"action": "Stop", "uid": "u1"}


@pytest.mark.parametrize("strategy,requests,vmi,expected", [
    ("Always", [], None, True),
    ("Halted", [START], None, False),
    ("Manual", [], None, False),
    ("Manual", [START], None, True),
    ("Manual", [], _vmi(), True),
    ("Manual", [STOP], _vmi(), False),
    ("Manual", [STOP], _vmi(uid="u2"), True),       # a stop for an earlier VMI
    ("RerunOnFailure", [], None, True),
    ("RerunOnFailure", [], _vmi("Failed"), True),
    ("RerunOnFailure", [], _vmi("Succeeded"), False),
    ("Once", [], None, True),
    ("Once", [], _vmi("Failed"), False),
])
def test_is_set_to_start(strategy, requests, vmi, expected):
    assert V.is_set_to_start(_vm(strategy=strategy, requests=requests), vmi) is expected


def test_start_paused_request():
    assert V.has_start_paused(_vm(requests=[{"action": "Start", "data": {"paused": "true"}}]))
    assert not V.has_start_paused(_vm(requests=[START]))
