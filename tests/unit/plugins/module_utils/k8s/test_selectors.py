"""k8s/selectors.py: label selectors parsed and matched as Kubernetes does (labels.Parse, Requirement.Matches)."""
import pytest

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import InputError
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.selectors import labels_match, parse_label_selector

LABELS = {"app": "web", "tier": "a", "env": "", "replicas": "3", "example.com/team": "blue"}


@pytest.mark.parametrize("selector,expected", [
    ("", True), ("   ", True),
    ("app=web", True), ("app==web", True), ("app = web", True), ("app=db", False), ("missing=x", False),
    ("app!=web", False), ("app!=db", True), ("missing!=x", True),
    # set-based terms: the commas inside the parentheses are not term separators
    ("tier in (a,b)", True), ("tier in (b,c)", False), ("missing in (a,b)", False),
    ("tier notin (a,b)", False), ("tier notin (b, c)", True), ("missing notin (a,b)", True),
    ("tier in (a,b),app=web", True), ("tier in (a,b), app=db", False), ("app=web,tier notin (a,b)", False),
    ("tier in (a,b),tier notin (b,c),app", True),
    # exists / does not exist
    ("app", True), ("missing", False), ("!missing", True), ("!app", False), ("! app", False),
    # empty values
    ("env=", True), ("env=,app=web", True), ("app=", False), ("env in ()", True), ("env in (x,)", True),
    # prefixed keys; in/notin are keys and values where a key or value stands
    ("example.com/team=blue", True), ("example.com/team in (red)", False),
    ("in", False), ("notin notin (in)", True),
    # numeric comparisons, as Kubernetes' Gt/Lt
    ("replicas>2", True), ("replicas<3", False), ("replicas>3", False), ("app>1", False), ("missing<9", False),
])
def test_matches_like_kubernetes(selector, expected):
    assert labels_match(LABELS, selector) is expected


def test_parsed_requirements():
    assert parse_label_selector("a=1,b!=2, c in (x, y),d notin (z),e,!f,g>1") == [
        ("a", "=", ("1",)), ("b", "!=", ("2",)), ("c", "in", ("x", "y")), ("d", "notin", ("z",)),
        ("e", "exists", ()), ("f", "!", ()), ("g", ">", ("1",))]
    # parsed once, matched many times
    requirements = parse_label_selector("tier in (a,b)")
    assert labels_match({"tier": "b"}, requirements) and not labels_match({"tier": "c"}, requirements)
    assert labels_match(None, "!x") is True


@pytest.mark.parametrize("selector,reason", [
    ("tier in (a,b", "found 'end of string', expected: ',', ')' or identifier"),
    ("tier in a,b", "found 'a', expected: '('"),
    ("tier in (a b)", "found 'b', expected: ',', ')' or identifier"),
    ("app=web,", "found 'end of string', expected: identifier after ','"),
    (",app", "found ',', expected: !, identifier, or 'end of string'"),
    ("app=web tier=db", "found 'tier', expected: ',' or 'end of string'"),
    ("app~web", "'app~web' is not a valid label key"),
    ("app=we b", "found 'b', expected: ',' or 'end of string'"),
    ("app=-web", "'-web' is not a valid label value"),
    ("a/b/c=x", "'a/b/c' is not a valid label key"),
    ("/x=1", "'/x' is not a valid label key"),
    ("!app=web", "found '=', expected: ',' or 'end of string'"),
    ("app>x", "for '<' and '>' the value must be an integer, got 'x'"),
    ("app=(x)", "found '(', expected: identifier"),
])
def test_unparsable_selector_is_one_sentence_naming_the_option(selector, reason):
    with pytest.raises(InputError) as err:
        parse_label_selector(selector, "label_selectors")
    assert str(err.value) == "label_selectors %r is not a valid label selector: %s." % (selector, reason)
    with pytest.raises(InputError, match="^label_selector "):
        labels_match({}, selector)


# -- metav1.LabelSelector (a VirtualMachinePool's spec.selector) ----------------------------------
def test_structured_selector_matches_and_prints_as_text():
    from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.selectors import (
        requirements_text,
        structured_requirements,
    )
    selector = {"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["a", "b"]}, {"key": "env", "operator": "Exists"},
        {"key": "gone", "operator": "DoesNotExist"}, {"key": "example.com/team", "operator": "NotIn",
                                                      "values": ["red"]}]}
    requirements = structured_requirements(selector)
    assert labels_match(LABELS, requirements)
    assert not labels_match(dict(LABELS, tier="c"), requirements)
    text = requirements_text(requirements)
    assert text == "app=web,tier in (a,b),env,!gone,example.com/team notin (red)"
    assert parse_label_selector(text) == requirements


@pytest.mark.parametrize("selector, reason", [
    ({"matchLabels": {"bad key!": "x"}}, "'bad key!' is not a valid label key"),
    ({"matchLabels": {"app": "-x"}}, "'-x' is not a valid label value"),
    ({"matchExpressions": [{"key": "app", "operator": "In"}]}, "matchExpressions[0] (app In) needs values"),
    ({"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["a"]}]}, "takes no values"),
    ({"matchExpressions": [{"key": "app", "operator": "Gt", "values": ["1"]}]}, "operator 'Gt' is not one of"),
])
def test_bad_structured_selector_is_one_sentence_naming_the_option(selector, reason):
    from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.selectors import structured_requirements
    with pytest.raises(InputError) as exc:
        structured_requirements(selector, "selector")
    assert str(exc.value).startswith("selector is not a valid label selector: ") and reason in str(exc.value)
