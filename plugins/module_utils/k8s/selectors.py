# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes label selectors, parsed and matched as the API server does (k8s.io/apimachinery labels.Parse).

For labels the collection matches itself (objects read by name, not listed with a labelSelector). Terms
are separated by commas outside parentheses: ``key=value``, ``key==value``, ``key!=value``,
``key in (a,b)``, ``key notin (a,b)``, ``key`` (exists), ``!key`` (does not exist), ``key>1``, ``key<1``.
"""

from __future__ import annotations

import re

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import InputError

# The lexer's special characters; everything else up to white space or one of these is an identifier.
_SPECIAL = "=!(),<>"
_OPERATORS = ("==", "!=", "=", "!", "(", ")", ",", "<", ">")  # longest first, as the lexer reads them
_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_INT = re.compile(r"^[+-]?[0-9]+$")
END = ("end", "end of string")


def _tokens(text):
    """(kind, literal) pairs: ("op", "=") ..., ("id", "web"), then END. ``in``/``notin`` are ids here; the
    parser tells them apart by position, as Kubernetes does."""
    out, pos = [], 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if pos >= len(text):
            out.append(END)
            return out
        if text[pos] in _SPECIAL:
            op = next(o for o in _OPERATORS if text.startswith(o, pos))
            out.append(("op", op))
            pos += len(op)
            continue
        start = pos
        while pos < len(text) and text[pos] not in _SPECIAL and text[pos] not in " \t\r\n":
            pos += 1
        out.append(("id", text[start:pos]))


def _check_key(key):
    prefix, _sep, name = key.rpartition("/") if "/" in key else ("", "", key)
    if key.count("/") > 1 or (_sep and not prefix) or (prefix and (len(prefix) > 253 or not _PREFIX.match(prefix))) \
            or len(name) > 63 or not _NAME.match(name):
        raise ValueError("%r is not a valid label key" % key)


def _check_value(value):
    if len(value) > 63 or not _VALUE.match(value):
        raise ValueError("%r is not a valid label value" % value)


class _Parser(object):
    def __init__(self, text):
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self):
        return self.tokens[self.pos]

    def take(self):
        self.pos += 1
        return self.tokens[self.pos - 1]

    def expect_failed(self, token, expected):
        raise ValueError("found '%s', expected: %s" % (token[1], expected))

    def parse(self):
        requirements = []
        while True:
            token = self.peek()
            if token == END:
                return requirements
            if token[0] != "id" and token != ("op", "!"):
                self.expect_failed(token, "!, identifier, or 'end of string'")
            requirements.append(self.requirement())
            token = self.take()
            if token == END:
                return requirements
            if token != ("op", ","):
                self.expect_failed(token, "',' or 'end of string'")
            if self.peek()[0] != "id" and self.peek() != ("op", "!"):
                self.expect_failed(self.peek(), "identifier after ','")

    def requirement(self):
        negated = self.peek() == ("op", "!")
        if negated:
            self.take()
        token = self.take()
        if token[0] != "id":
            self.expect_failed(token, "identifier")
        key = token[1]
        _check_key(key)
        if negated:
            return (key, "!", ())
        if self.peek() in (END, ("op", ",")):
            return (key, "exists", ())
        token = self.take()
        if token in (("id", "in"), ("id", "notin")):
            values = self.values()
            operator = token[1]
        elif token[0] == "op" and token[1] in ("=", "==", "!=", "<", ">"):
            values = self.exact_value()
            operator = "=" if token[1] == "==" else token[1]
        else:
            self.expect_failed(token, "=, ==, !=, in, notin, <, >")
        for value in values:
            _check_value(value)
        if operator in ("<", ">") and not _INT.match(values[0]):
            raise ValueError("for '<' and '>' the value must be an integer, got %r" % values[0])
        return (key, operator, tuple(values))

    def exact_value(self):
        if self.peek() in (END, ("op", ",")):
            return [""]
        token = self.take()
        if token[0] != "id":
            self.expect_failed(token, "identifier")
        return [token[1]]

    def values(self):
        token = self.take()
        if token != ("op", "("):
            self.expect_failed(token, "'('")
        values = []
        expect_value = True  # "(", "(a,", "(,,": an empty value where a value is left out
        while True:
            token = self.take()
            if token == ("op", ")"):
                if expect_value:
                    values.append("")
                return values
            if token == ("op", ",") and expect_value:
                values.append("")
            elif token == ("op", ","):
                expect_value = True
            elif token[0] == "id" and expect_value:
                values.append(token[1])
                expect_value = False
            else:
                self.expect_failed(token, "',', ')' or identifier")


def parse_label_selector(text, option="label_selector"):
    """The requirements of a label selector: [(key, operator, values)] with operator one of =, !=, in,
    notin, exists, !, <, >. ``option`` is what the error names: one sentence, the API server's reason."""
    try:
        return _Parser(str(text or "")).parse()
    except ValueError as exc:
        raise InputError("%s %r is not a valid label selector: %s." % (option, str(text), exc))


def _requirement_matches(labels, key, operator, values):
    if operator == "exists":
        return key in labels
    if operator == "!":
        return key not in labels
    if operator in ("=", "in"):
        return key in labels and labels[key] in values
    if operator in ("!=", "notin"):
        return key not in labels or labels[key] not in values
    # < and >: the label's value must be an integer too
    if key not in labels or not _INT.match(str(labels[key])):
        return False
    have, want = int(labels[key]), int(values[0])
    return have > want if operator == ">" else have < want


def labels_match(labels, selector, option="label_selector"):
    """Whether ``labels`` (a dict) match ``selector`` (text, or what parse_label_selector returned); an empty
    selector matches everything."""
    requirements = parse_label_selector(selector, option) if not isinstance(selector, list) else selector
    labels = {str(k): str(v) for k, v in (labels or {}).items()}
    return all(_requirement_matches(labels, *requirement) for requirement in requirements)


# metav1.LabelSelector's matchExpressions operators -> this module's requirement operators.
_EXPRESSION_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def structured_requirements(selector, option="selector"):
    """A metav1.LabelSelector ({matchLabels, matchExpressions}) -> the requirements labels_match takes,
    checked as metav1.LabelSelectorAsSelector checks them (one sentence naming ``option`` on error)."""
    selector = selector or {}
    out = []
    try:
        for key, value in sorted((selector.get("matchLabels") or {}).items()):
            _check_key(key)
            _check_value(value)
            out.append((key, "=", (value,)))
        for n, expr in enumerate(selector.get("matchExpressions") or []):
            key, operator, values = expr.get("key") or "", expr.get("operator"), list(expr.get("values") or [])
            _check_key(key)
            if operator not in _EXPRESSION_OPERATORS:
                raise ValueError("matchExpressions[%d] operator %r is not one of %s"
                                 % (n, operator, ", ".join(_EXPRESSION_OPERATORS)))
            if operator in ("In", "NotIn") and not values:
                raise ValueError("matchExpressions[%d] (%s %s) needs values" % (n, key, operator))
            if operator in ("Exists", "DoesNotExist") and values:
                raise ValueError("matchExpressions[%d] (%s %s) takes no values" % (n, key, operator))
            for value in values:
                _check_value(value)
            out.append((key, _EXPRESSION_OPERATORS[operator], tuple(values)))
    except ValueError as exc:
        raise InputError("%s is not a valid label selector: %s." % (option, exc))
    return out


def requirements_text(requirements):
    """Requirements -> the text form (a labelSelector query parameter)."""
    parts = []
    for key, operator, values in requirements:
        if operator == "exists":
            parts.append(key)
        elif operator == "!":
            parts.append("!" + key)
        elif operator in ("in", "notin"):
            parts.append("%s %s (%s)" % (key, operator, ",".join(values)))
        else:
            parts.append("%s%s%s" % (key, operator, values[0]))
    return ",".join(parts)
