"""kube-scheduler's filters for the simulated nodes: node selector, node affinity, taints and
tolerations, CPU/memory/pod count; and its 'FailedScheduling' message when nothing fits."""
from collections import Counter

from .util import dig, parse_quantity


def pod_requests(pod):
    cpu = mem = 0.0
    for c in dig(pod, "spec", "containers", default=[]):
        req = dig(c, "resources", "requests", default={})
        cpu += parse_quantity(req.get("cpu"))
        mem += parse_quantity(req.get("memory"))
    return cpu, mem


def _match_expr(labels, expr):
    key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
    if op == "In":
        return labels.get(key) in values
    if op == "NotIn":
        return labels.get(key) not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("Gt", "Lt"):
        try:
            v, ref = int(labels.get(key)), int(values[0])
        except (TypeError, ValueError, IndexError):
            return False
        return v > ref if op == "Gt" else v < ref
    return False


def matches_affinity(node, pod):
    labels = dig(node, "metadata", "labels", default={})
    for k, v in (dig(pod, "spec", "nodeSelector", default={}) or {}).items():
        if labels.get(k) != v:
            return False
    terms = dig(pod, "spec", "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution",
                "nodeSelectorTerms", default=[])
    return not terms or any(term_matches(node, term) for term in terms)


def _tolerated(taint, tolerations):
    for t in tolerations or []:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        op = t.get("operator", "Equal")
        if op == "Exists" and (not t.get("key") or t["key"] == taint.get("key")):
            return True
        if op == "Equal" and t.get("key") == taint.get("key") and t.get("value", "") == taint.get("value", ""):
            return True
    return False


def untolerated_taint(node, pod):
    tols = dig(pod, "spec", "tolerations", default=[])
    for taint in dig(node, "spec", "taints", default=[]) or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerated(taint, tols):
            return taint
    return None


def node_ready(node):
    for c in dig(node, "status", "conditions", default=[]):
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def term_matches(node, term):
    """A nodeSelectorTerm (matchExpressions on labels, matchFields on metadata.name) matches the node."""
    labels = dig(node, "metadata", "labels", default={})
    field_labels = {"metadata.name": node["metadata"]["name"]}
    return all(_match_expr(labels, e) for e in term.get("matchExpressions") or []) and \
        all(_match_expr(field_labels, e) for e in term.get("matchFields") or [])


def schedule(pod, nodes, usage, volume_nodes=None):
    """Pick a node for a pod. usage: {node: (cpu, mem, pods)} already requested there; volume_nodes: the
    nodes its volumes allow (None: any), kube-scheduler's VolumeBinding filter.

    Returns (node_name, None) or (None, kube-scheduler's message)."""
    cpu, mem = pod_requests(pod)
    reasons = Counter()
    preemption_helps = 0
    candidates = []
    for node in nodes:
        name = node["metadata"]["name"]
        if dig(node, "spec", "unschedulable"):
            reasons["node(s) were unschedulable"] += 1
            continue
        if not node_ready(node):
            reasons["node(s) had untolerated taint {node.kubernetes.io/not-ready: }"] += 1
            continue
        if not matches_affinity(node, pod):
            reasons["node(s) didn't match Pod's node affinity/selector"] += 1
            continue
        if volume_nodes is not None and name not in volume_nodes:
            reasons["node(s) had volume node affinity conflict"] += 1
            continue
        taint = untolerated_taint(node, pod)
        if taint:
            reasons[f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value', '')}}}"] += 1
            continue
        alloc = dig(node, "status", "allocatable", default={})
        used_cpu, used_mem, used_pods = usage.get(name, (0.0, 0.0, 0))
        short = False
        if used_pods + 1 > parse_quantity(alloc.get("pods", "110")):
            reasons["Too many pods"] += 1
            short = True
        if used_cpu + cpu > parse_quantity(alloc.get("cpu")) + 1e-9:
            reasons["Insufficient cpu"] += 1
            short = True
        if used_mem + mem > parse_quantity(alloc.get("memory")):
            reasons["Insufficient memory"] += 1
            short = True
        if short:
            # preemption could only help if evicting pods frees enough
            if cpu <= parse_quantity(alloc.get("cpu")) and mem <= parse_quantity(alloc.get("memory")):
                preemption_helps += 1
            continue
        free = (parse_quantity(alloc.get("cpu")) - used_cpu - cpu) / max(parse_quantity(alloc.get("cpu")), 1) + \
               (parse_quantity(alloc.get("memory")) - used_mem - mem) / max(parse_quantity(alloc.get("memory")), 1)
        candidates.append((free, name))
    if candidates:
        candidates.sort(key=lambda c: (-c[0], c[1]))   # least allocated, like NodeResourcesFit
        return candidates[0][1], None
    total = len(nodes)
    if total == 0:
        return None, "no nodes available to schedule pods"
    detail = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items(), key=lambda x: x[0]))
    if preemption_helps:
        pre = f"0/{total} nodes are available: {total} No preemption victims found for incoming pod."
    else:
        pre = f"0/{total} nodes are available: {total} Preemption is not helpful for scheduling."
    return None, f"0/{total} nodes are available: {detail}. preemption: {pre}"
