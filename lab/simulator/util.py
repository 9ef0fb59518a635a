"""Small pure helpers: time stamps, quantities, conditions, names."""
import copy
import datetime as dt
import hashlib
import json
import re
import time
import uuid

_UNITS = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60,
          "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
          "P": 1e15, "E": 1e18}
_QTY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")


def parse_quantity(value):
    """'1Gi' -> 1073741824.0, '500m' -> 0.5, 2 -> 2.0; None/'' -> 0."""
    if value is None or value == "":
        return 0.0
    if isinstance(value, (int, float)):
        return float(value)
    m = _QTY.match(str(value).strip())
    if not m:
        raise ValueError(f"bad quantity {value!r}")
    number, suffix = m.groups()
    if suffix not in _UNITS:
        raise ValueError(f"bad quantity suffix {value!r}")
    return float(number) * _UNITS[suffix]


def format_bytes(n):
    """Bytes -> a Kubernetes quantity string ('1Gi', '300Mi', '123456')."""
    n = int(n)
    for suffix, size in (("Ti", 2 ** 40), ("Gi", 2 ** 30), ("Mi", 2 ** 20), ("Ki", 2 ** 10)):
        if n and n % size == 0:
            return f"{n // size}{suffix}"
    return str(n)


def format_millicpu(cores):
    m = int(round(cores * 1000))
    return f"{m // 1000}" if m % 1000 == 0 else f"{m}m"


def now():
    return dt.datetime.now(dt.timezone.utc)


def ts(when=None):
    """RFC 3339 seconds, as metav1.Time serialises."""
    return (when or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_ts(when=None):
    return (when or now()).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(value):
    if not value:
        return None
    value = value.replace("Z", "+00:00")
    return dt.datetime.fromisoformat(value)


def age(value, reference=None):
    """Seconds since a metav1.Time string (0 if missing)."""
    t = parse_ts(value)
    if t is None:
        return 0.0
    return ((reference or now()) - t).total_seconds()


def since(marks, key, stamp=None):
    """Seconds since `key` was first seen (monotonic clock, remembered in `marks`). The first time, the
    clock starts at the metav1.Time `stamp` when there is one (at most an hour back): after a restart
    the API remembers when something began, the process does not."""
    if key not in marks:
        t = parse_ts(stamp) if stamp else None
        lag = max(0.0, time.time() - t.timestamp()) if t else 0.0
        marks[key] = time.monotonic() - min(lag, 3600)
    return time.monotonic() - marks[key]


def get_condition(obj, ctype):
    for c in (obj or {}).get("status", {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def has_condition(obj, ctype, status=None, reason=None):
    c = get_condition(obj, ctype)
    if c is None:
        return False
    if status is not None and c.get("status") != status:
        return False
    if reason is not None and c.get("reason") != reason:
        return False
    return True


def set_condition(conditions, ctype, status, reason="", message="", probe=False, when=None):
    """Add or update a condition in a list; keep lastTransitionTime when the status is unchanged."""
    stamp = ts(when)
    for c in conditions:
        if c["type"] == ctype:
            if c.get("status") != status:
                c["lastTransitionTime"] = stamp
            c["status"] = status
            c["reason"] = reason
            c["message"] = message
            if probe:
                c["lastProbeTime"] = None
            _drop_empty(c)
            return conditions
    c = {"type": ctype, "status": status, "reason": reason, "message": message,
         "lastProbeTime": None, "lastTransitionTime": stamp}
    _drop_empty(c)
    conditions.append(c)
    return conditions


def _drop_empty(c):
    for k in ("reason", "message"):
        if not c.get(k):
            c.pop(k, None)


def remove_condition(conditions, ctype):
    conditions[:] = [c for c in conditions if c["type"] != ctype]
    return conditions


def deep(obj):
    return copy.deepcopy(obj)


def dig(obj, *path, default=None):
    for p in path:
        if isinstance(obj, dict):
            obj = obj.get(p)
        elif isinstance(obj, list) and isinstance(p, int) and -len(obj) <= p < len(obj):
            obj = obj[p]
        else:
            return default
        if obj is None:
            return default
    return obj


def stable_uuid(name, namespace="firmware"):
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{namespace}.{name}.kubevirt.io"))


def short_hash(text, n=5):
    return hashlib.sha1(text.encode()).hexdigest()[:n]


def seeded(text):
    """A stable pseudo-random float in [0, 1) from a string."""
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16) / 0x100000000


def owner_ref(obj, controller=True, block=True):
    meta = obj["metadata"]
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": meta["name"], "uid": meta["uid"],
            "controller": controller, "blockOwnerDeletion": block}


def controller_of(obj):
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


API_VERSION_ANNOTATIONS = {"kubevirt.io/latest-observed-api-version": "v1",
                           "kubevirt.io/storage-observed-api-version": "v1"}


def set_latest_api_version(meta):
    """pkg/controller SetLatestApiVersionAnnotation, which KubeVirt's VM, VMI, migration and replica set
    controllers apply on their first sync. Mutates meta; True when it changed."""
    ann = meta.setdefault("annotations", {})
    if all(ann.get(k) == v for k, v in API_VERSION_ANNOTATIONS.items()):
        return False
    ann.update(API_VERSION_ANNOTATIONS)
    return True


def apply_json_patch(obj, patches):
    """RFC 6902 operations (each a JSON string or dict) applied to a copy of obj, as KubeVirt's restore applies
    spec.patches: a replace of a missing member adds it, a remove of a missing member is skipped."""
    out = deep(obj)
    for op in patches or []:
        op = json.loads(op) if isinstance(op, str) else op
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].lstrip("/").split("/")]
        parent = out
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent.setdefault(part, {})
        last = parts[-1]
        if op["op"] == "remove":
            if isinstance(parent, list):
                del parent[int(last)]
            else:
                parent.pop(last, None)
        elif op["op"] in ("add", "replace"):
            if isinstance(parent, list):
                if last == "-":
                    parent.append(op["value"])
                elif op["op"] == "add":
                    parent.insert(int(last), op["value"])
                else:
                    parent[int(last)] = op["value"]
            else:
                parent[last] = op["value"]
        elif op["op"] == "test":
            continue
    return out
