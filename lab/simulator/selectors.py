"""metav1.LabelSelector as apimachinery evaluates it (LabelSelectorAsSelector): matching and String(),
the form the scale subresource's status.labelSelector carries."""

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


class SelectorError(ValueError):
    """A selector LabelSelectorAsSelector refuses (unknown operator, values where none belong, ...)."""


def requirements(selector):
    """[(key, operator, sorted values)] sorted by key, as labels.internalSelector keeps them.
    None (a nil selector) is None: it selects nothing; {} selects everything."""
    if selector is None:
        return None
    reqs = [(k, "=", [str(v)]) for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        op, values = expr.get("operator"), [str(v) for v in expr.get("values") or []]
        if op not in OPERATORS:
            raise SelectorError(f'"{op}" is not a valid label selector operator')
        if op in ("In", "NotIn") and not values:
            raise SelectorError("for 'in', 'notin' operators, values set can't be empty")
        if op in ("Exists", "DoesNotExist") and values:
            raise SelectorError("values set must be empty for exists and does not exist")
        reqs.append((expr.get("key", ""), op, sorted(values)))
    return sorted(reqs, key=lambda r: r[0])


def matches(selector, labels):
    reqs = requirements(selector)
    if reqs is None:
        return False
    labels = labels or {}
    for key, op, values in reqs:
        present = key in labels
        if op in ("=", "In") and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def to_string(selector):
    """labels.Selector.String(): `a=b,c in (x,y),d,!e`; "" for a nil or empty selector."""
    out = []
    for key, op, values in requirements(selector) or []:
        if op == "=":
            out.append(f"{key}={values[0]}")
        elif op in ("In", "NotIn"):
            out.append(f"{key} {op.lower()} ({','.join(values)})")
        elif op == "Exists":
            out.append(key)
        else:
            out.append(f"!{key}")
    return ",".join(out)
