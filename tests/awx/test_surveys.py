"""awx/*.json: valid for AWX's API, every variable used by its playbook, defaults that pass the argument specs."""
import json
import os
import subprocess

import pytest
import yaml

from awxhelp import REPO, collection_path
from surveys import TEMPLATES, answers, load, validate


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_survey_is_valid_for_awx(name):
    assert validate(load(name)) == []


def test_every_survey_file_has_a_template():
    files = {f[:-5] for f in os.listdir(os.path.join(REPO, "awx")) if f.endswith(".json")}
    assert files == set(TEMPLATES)


def test_the_validator_catches_mistakes():
    bad = {"name": "x", "description": "", "spec": [
        {"question_name": "a", "variable": "a", "type": "integer", "required": True, "default": "5"},
        {"question_name": "b", "variable": "a", "type": "multiplechoice", "required": True, "default": "z",
         "choices": "x\ny"},
        {"question_name": "c", "variable": "c", "type": "bogus", "required": "yes"},
    ]}
    errors = " | ".join(validate(bad))
    for text in ("default '5' is not a integer", "variable duplicated", "default not among the choices",
                 "type 'bogus' not allowed", "'required' must be a boolean"):
        assert text in errors


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_survey_variable_is_a_playbook_variable(name):
    with open(os.path.join(REPO, TEMPLATES[name])) as handle:
        plays = yaml.safe_load(handle)
    play_vars = set()
    for play in plays:
        play_vars.update((play.get("vars") or {}).keys())
    variables = {item["variable"] for item in load(name)["spec"]}
    assert variables <= play_vars, "survey variables the playbook ignores: %s" % (variables - play_vars)


def run_validation_only(playbook, extra_vars, tmp_path):
    """ansible-playbook with only the tasks tagged always: the argument-spec validations, nothing that calls a cluster."""
    vars_file = tmp_path / "extra_vars.json"
    vars_file.write_text(json.dumps(extra_vars))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collection_path(), ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="false", ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="default",
               KUBECONFIG=str(tmp_path / "no-cluster"))
    return subprocess.run([os.path.join(REPO, ".venv", "bin", "ansible-playbook"), os.path.join(REPO, playbook),
                           "--tags", "survey-validation-only", "-e", "@%s" % vars_file],
                          env=env, capture_output=True, text=True, check=False, timeout=300)


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_survey_defaults_pass_the_argument_specs(name, tmp_path):
    result = run_validation_only(TEMPLATES[name], answers(load(name)), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validat" in result.stdout  # the validation task ran


@pytest.mark.parametrize("name,overrides,message", [
    ("lifecycle", {"lifecycle_action": "explode"},
     "value of lifecycle_action must be one of: started, stopped, restarted, paused, unpaused, soft_rebooted, "
     "migrated, got: explode"),
    ("lifecycle", {"lifecycle_wait_timeout": "soon"}, "lifecycle_wait_timeout"),
    ("monitor", {"monitor_fail_on_unhealthy": "perhaps"}, "vm_monitor_fail_on_unhealthy"),
    ("provision", {"provision_vms_yaml": "- just-a-name\n"}, "vm_provision_vms"),
    ("provision", {"provision_vms_yaml": "- {name: a, memroy: 1Gi}\n"}, "memroy"),
    ("decommission", {"decommission_wait_timeout": "later"}, "vm_decommission_wait_timeout"),
])
def test_bad_answers_fail_at_the_start_with_the_spec_message(name, overrides, message, tmp_path):
    extra = answers(load(name))
    extra.update(overrides)  # as a launch with edited extra vars (or a CLI -e) would send them
    result = run_validation_only(TEMPLATES[name], extra, tmp_path)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "alidation of arguments failed" in out or "Validation of arguments failed" in out, out
    assert message in out, out
