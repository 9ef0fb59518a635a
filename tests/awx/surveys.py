"""AWX survey specs as the AWX API checks them, and the extra vars a launch with them sends.

Mirrors awx/api/views JobTemplateSurveySpec._validate_spec_data (types, defaults, choices, min/max)
and the launch-time answer handling (integers as int, multiselect as a list, text as str).
"""
import json
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AWX_DIR = os.path.join(REPO, "awx")
ALLOWED_TYPES = {"text": str, "textarea": str, "password": str, "multiplechoice": str, "multiselect": str,
                 "integer": int, "float": float}
# Survey file -> the playbook a job template of it runs.
TEMPLATES = {"provision": "playbooks/provision.yml", "monitor": "playbooks/monitor.yml",
             "decommission": "playbooks/decommission.yml", "lifecycle": "playbooks/lifecycle.yml"}


def load(name):
    with open(os.path.join(AWX_DIR, name + ".json")) as handle:
        return json.load(handle)


def validate(survey):
    """The errors AWX's API would answer with (an empty list when it takes the survey)."""
    errors = []
    for field, kind in (("name", str), ("description", str), ("spec", list)):
        if not isinstance(survey.get(field), kind):
            errors.append("field %r missing or not a %s" % (field, kind.__name__))
    if errors:
        return errors
    if not survey["spec"]:
        errors.append("'spec' doesn't contain any items")
    seen = set()
    for idx, item in enumerate(survey["spec"]):
        where = "question %d (%s)" % (idx, item.get("variable"))
        for key in ("type", "question_name", "variable", "required"):
            if key not in item:
                errors.append("%s: %r missing" % (where, key))
        if not isinstance(item.get("required"), bool):
            errors.append("%s: 'required' must be a boolean" % where)
        for key in ("question_name", "question_description", "variable"):
            if key in item and not isinstance(item[key], str):
                errors.append("%s: %r must be a string" % (where, key))
        if item.get("variable") in seen:
            errors.append("%s: variable duplicated" % where)
        seen.add(item.get("variable"))
        qtype = item.get("type")
        if qtype not in ALLOWED_TYPES:
            errors.append("%s: type %r not allowed" % (where, qtype))
            continue
        default = item.get("default")
        if default not in (None, "") and not isinstance(default, ALLOWED_TYPES[qtype]) or isinstance(default, bool):
            errors.append("%s: default %r is not a %s" % (where, default, qtype))
        for key in ("min", "max"):
            if item.get(key) is not None and not isinstance(item[key], int):
                errors.append("%s: %s must be an integer" % (where, key))
        if qtype in ("multiplechoice", "multiselect"):
            choices = item.get("choices")
            if not choices:
                errors.append("%s: must specify choices" % where)
                continue
            choice_list = choices.splitlines() if isinstance(choices, str) else list(choices)
            defaults = (default.splitlines() if isinstance(default, str) else list(default or [])) if default else []
            if qtype == "multiplechoice" and len(defaults) > 1:
                errors.append("%s: multiple choice can only have one default" % where)
            if any(d not in choice_list for d in defaults):
                errors.append("%s: default not among the choices" % where)
        if qtype in ("text", "textarea", "password") and isinstance(default, str) and default:
            if item.get("min") is not None and len(default) < item["min"]:
                errors.append("%s: default shorter than min" % where)
            if item.get("max") is not None and len(default) > item["max"]:
                errors.append("%s: default longer than max" % where)
        if qtype == "integer" and isinstance(default, int):
            if item.get("min") is not None and default < item["min"] or \
                    item.get("max") is not None and default > item["max"]:
                errors.append("%s: default outside min/max" % where)
    return errors


def answers(survey, **overrides):
    """The extra vars of a launch that takes every default, plus ``overrides`` (answers typed as AWX types them)."""
    out = {}
    for item in survey["spec"]:
        var = item["variable"]
        value = overrides.pop(var, item.get("default"))
        if value in (None, "") and not item["required"]:
            # AWX leaves an unanswered optional question out of the extra vars.
            continue
        if item["type"] == "integer":
            value = int(value)
        elif item["type"] == "float":
            value = float(value)
        elif item["type"] == "multiselect":
            value = value.splitlines() if isinstance(value, str) else list(value)
        else:
            value = str(value)
        out[var] = value
    if overrides:
        raise KeyError("not survey variables: %s" % ", ".join(sorted(overrides)))
    return out
