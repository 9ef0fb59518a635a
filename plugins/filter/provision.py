# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the vm_provision and vm_decommission roles: items, summary table, inventory, volumes."""

from __future__ import annotations

from datetime import datetime, timezone

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.virtops.kubevirt.plugins.filter.health import plain, vm_key
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import InputError
# Imported with the plugin, not in the one filter that uses it: Ansible compiles collection code from
# source in every process that imports it, and the vm_provision role names its first check after the
# plan, so this happens once in the controller, and every worker forked after that inherits it (the
# check, the vm task, the summary; ~0.1 s each otherwise).
from ansible_collections.virtops.kubevirt.plugins.module_utils.workflows import vm as vm_utils

# Keys of a vm_provision VM item that belong to the role, not to the vm module.
ROLE_KEYS = ("volumes", "network_attachments", "inventory_network", "inventory_groups", "golden_vm")
# What the vm module still sets on a VM cloned from a golden VM (the clone gives it the rest; a template option
# would replace the cloned spec): its run strategy, labels and annotations, merged in.
CLONED_KEYS = ("name", "namespace", "state", "run_strategy", "running", "labels", "annotations")


def _items(vms, what):
    if vms is None:
        return []
    if not isinstance(vms, list):
        raise AnsibleFilterError("%s: expected a list of VMs, got %r" % (what, type(vms).__name__))
    out = []
    for index, vm in enumerate(vms):
        if isinstance(vm, str):
            vm = {"name": vm}
        if not isinstance(vm, dict) or not vm.get("name"):
            raise AnsibleFilterError("%s: item %d must be a dict with at least a name, got %r" % (what, index, vm))
        out.append(vm)
    return out


MERGED = ("labels", "annotations")


def vm_provision_items(vms, namespace=None, defaults=None):
    """The VM items for the vm module's ``vms``: role-only keys removed, ``defaults`` under each item
    (labels and annotations merged), namespace defaulted."""
    defaults = plain(defaults or {})
    if not isinstance(defaults, dict):
        raise AnsibleFilterError("vm_provision_items: defaults must be a dict of vm options, got %r" % (defaults,))
    out = []
    for vm in _items(vms, "vm_provision_items"):
        item = {k: plain(v) for k, v in defaults.items() if k not in ROLE_KEYS + ("name",)}
        for key, value in vm.items():
            if key in ROLE_KEYS:
                continue
            if key in MERGED and isinstance(value, dict) and isinstance(item.get(key), dict):
                item[key] = dict(item[key], **plain(value))
            else:
                item[key] = plain(value)
        if namespace and not item.get("namespace"):
            item["namespace"] = namespace
        if golden_of(vm, defaults):
            item = {k: v for k, v in item.items() if k in CLONED_KEYS}
            if "run_strategy" not in item and "running" not in item:
                item["run_strategy"] = "Always"    # a clone is made stopped; a new VM of the vm module runs
        out.append(item)
    return out


def golden_of(vm, defaults=None):
    """The golden VM a VM item is cloned from (its golden_vm, else vm_provision_defaults'), or None; an item's
    empty golden_vm opts out of the defaults' one."""
    if "golden_vm" in vm:
        return vm["golden_vm"] or None
    return (defaults or {}).get("golden_vm") or None


def vm_provision_clones(vms, namespace=None, defaults=None):
    """The vm_clone tasks for the VM items made from a golden VM: {name, namespace, vm, target}; the clone
    object is named `<vm>-clone`."""
    out = []
    for vm in _items(vms, "vm_provision_clones"):
        golden = golden_of(vm, plain(defaults or {}))
        if not golden or vm.get("state") == "absent":
            continue
        clone = {"name": "%s-clone" % vm["name"], "vm": golden, "target": vm["name"]}
        if vm.get("namespace") or namespace:
            clone["namespace"] = vm.get("namespace") or namespace
        out.append(clone)
    return out


def vm_provision_errors(items):
    """One message per VM item the vm module would reject before writing anything (option types and
    choices, names, quantities, disks, networks, cloud-init), checked here without the API so that the
    role fails before it creates volumes or networks. Empty when every item is fine."""
    validator = ArgumentSpecValidator(vm_utils.VM_ITEM_SPEC, mutually_exclusive=vm_utils.VM_MUTUALLY_EXCLUSIVE,
                                      required_one_of=[("name", "definition")])
    out = []
    for index, item in enumerate(_items(items, "vm_provision_errors")):
        label = "vm_provision_vms[%d] (%s)" % (index, item.get("name"))
        result = validator.validate(plain(item))
        if result.error_messages:
            out.append("%s: %s." % (label, "; ".join(result.error_messages)))
            continue
        plan = vm_utils.Plan(index, result.validated_parameters)
        try:
            vm_utils.prepare(plan, item.get("namespace") or "default")
        except InputError as exc:
            out.append("%s: %s" % (label, exc))
    return out


def vm_provision_keys(items, namespace=None):
    """'namespace/name' of each VM item ('*/name' when no namespace is known)."""
    return ["%s/%s" % (i.get("namespace") or namespace or "*", i["name"]) for i in _items(items, "vm_provision_keys")]


def vm_provision_namespaces(items, namespace=None):
    """The namespaces of the VM items, None among them when an item has none (the API's default)."""
    return sorted({i.get("namespace") or namespace or "" for i in _items(items, "vm_provision_namespaces")})


def vm_fleet(prefix, count, start=1, width=2, **options):
    """['web', 3] -> [{'name': 'web-01'}, {'name': 'web-02'}, {'name': 'web-03'}] (plus ``options`` in each)."""
    try:
        count, start, width = int(count), int(start), int(width)
    except (TypeError, ValueError):
        raise AnsibleFilterError("vm_fleet: count, start and width must be integers, got %r, %r, %r"
                                 % (count, start, width))
    if count < 0:
        raise AnsibleFilterError("vm_fleet: count must be 0 or more, got %d" % count)
    return [dict(plain(options), name="%s-%0*d" % (prefix, width, n)) for n in range(start, start + count)]


def vm_fleet_share(vms, hosts, exclude=None):
    """The share of a fleet that one AWX job slice provisions: {vms, strays}.

    AWX slices a job template's inventory by host: slice k of n gets the hosts ordered by name at
    positions k-1, k-1+n, ... (awx/main/models/inventory.py, Inventory.get_sliced_hosts), so the
    slices' host lists never overlap and together hold every host. With one inventory host per VM of
    the fleet, each slice takes the fleet's items named by its hosts (``vms``, in the fleet's order);
    ``strays`` are the hosts that name no VM of the fleet (not provisioned by anyone: the caller
    fails on them). ``exclude``: hosts that are never VMs (localhost, where the playbook runs).
    """
    items = _items(vms, "vm_fleet_share")
    exclude = ["localhost"] if exclude is None else [str(h) for h in exclude]
    hosts = [str(h) for h in (hosts or []) if str(h) not in exclude]
    wanted = set(hosts)
    share = [item for item in items if item["name"] in wanted]
    named = {item["name"] for item in share}
    return {"vms": share, "strays": [h for h in hosts if h not in named]}


def labels_from_text(text):
    """'app=web, tier=db' (a survey's text) -> {'app': 'web', 'tier': 'db'}; a dict passes through."""
    if isinstance(text, dict):
        return plain(text)
    out = {}
    for part in str(text or "").replace("\n", ",").split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise AnsibleFilterError("labels_from_text: expected key=value pairs separated by commas, got %r" % part)
        out[key.strip()] = value.strip()
    return out


def names_from_text(text):
    """'web-1, web-2 db/x' (a survey's text, commas, spaces or new lines) -> ['web-1', 'web-2', 'db/x']."""
    if isinstance(text, (list, tuple)):
        return [str(t) for t in text if str(t).strip()]
    return [t for t in str(text or "").replace(",", " ").split() if t]


def _with_namespace(entries, namespace, what):
    out = []
    for index, entry in enumerate(entries or []):
        if not isinstance(entry, dict) or not entry.get("name"):
            raise AnsibleFilterError("%s: item %d must be a dict with at least a name, got %r" % (what, index, entry))
        entry = plain(entry)
        if namespace and not entry.get("namespace"):
            entry["namespace"] = namespace
        out.append(entry)
    return out


def _unique(entries, what):
    seen = {}
    out = []
    for entry in entries:
        key = (entry.get("namespace"), entry["name"])
        if key in seen:
            if seen[key] != entry:
                raise AnsibleFilterError("%s: %s/%s is defined twice, differently" % (what, key[0], key[1]))
            continue
        seen[key] = entry
        out.append(entry)
    return out


def vm_provision_volumes(vms, volumes=None, namespace=None):
    """Role-level ``volumes`` plus each VM's ``volumes``, namespace defaulted (VM's, then the role's), deduplicated."""
    out = _with_namespace(volumes, namespace, "vm_provision_volumes")
    for vm in _items(vms, "vm_provision_volumes"):
        out.extend(_with_namespace(vm.get("volumes"), vm.get("namespace") or namespace, "volumes of %s" % vm["name"]))
    return _unique(out, "volumes")


def vm_provision_networks(vms, networks=None, namespace=None):
    """Role-level ``networks`` plus each VM's ``network_attachments`` (NetworkAttachmentDefinitions to create)."""
    out = _with_namespace(networks, namespace, "vm_provision_networks")
    for vm in _items(vms, "vm_provision_networks"):
        out.extend(_with_namespace(vm.get("network_attachments"), vm.get("namespace") or namespace,
                                   "network_attachments of %s" % vm["name"]))
    return _unique(out, "networks")


def vm_provision_plan(vms, namespace=None, defaults=None, volumes=None, networks=None, validate=False):
    """Everything the vm_provision role works from, in one dict:

    ``vms`` (the items for the vm module's ``vms``), ``clones`` (vm_clone tasks for the VMs made from a golden VM,
    run before the vm module), ``vm_keys`` ('namespace/name' of each, '*/name' when no
    namespace is known), ``namespaces``, ``volumes`` and ``networks`` (to create first, deduplicated),
    ``prerequisites`` (whether there are volumes, networks or clones to make first) and, with
    ``validate=true``, ``errors`` (what the vm module would reject, checked without the API; no VM at all too).
    """
    items = vm_provision_items(vms, namespace, defaults)
    plan = {
        "vms": items,
        "vm_keys": vm_provision_keys(items, namespace),
        "namespaces": vm_provision_namespaces(items, namespace),
        "volumes": vm_provision_volumes(vms, volumes, namespace),
        "networks": vm_provision_networks(vms, networks, namespace),
        "clones": vm_provision_clones(vms, namespace, defaults),
    }
    plan["prerequisites"] = bool(plan["volumes"] or plan["networks"] or plan["clones"])
    if validate:
        plan["errors"] = vm_provision_errors(items) if items else [
            "vm_provision_vms is empty; give at least one VM (a dict with a name and the vm module's options)."]
    return plan


def _ts(text):
    if not text:
        return None
    try:
        return datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        try:
            return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None


def human_seconds(seconds):
    """65.2 -> '1m05s', 7.4 -> '7s', None -> '-'."""
    if seconds is None:
        return "-"
    seconds = int(round(float(seconds)))
    if seconds < 60:
        return "%ds" % seconds
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return "%dm%02ds" % (minutes, sec)
    hours, minutes = divmod(minutes, 60)
    return "%dh%02dm" % (hours, minutes)


def _wanted(names, namespace):
    keys = []
    for name in names or []:
        if isinstance(name, dict):
            keys.append("%s/%s" % (name.get("namespace") or namespace or "*", name.get("name")))
        elif "/" in str(name):
            keys.append(str(name))
        else:
            keys.append("%s/%s" % (namespace or "*", name))
    return keys


def _find(index, key):
    """index: {'ns/name': x}; key 'ns/name' or '*/name' (any namespace)."""
    if not key.startswith("*/"):
        return index.get(key)
    short = key[2:]
    for other, value in index.items():
        if other.split("/", 1)[1] == short:
            return value
    return None


def _ready_time(vm):
    for cond in ((vm or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready" and str(cond.get("status")) == "True":
            return _ts(cond.get("lastTransitionTime"))
    return None


def vm_provision_rows(bulk, info=None, names=None, namespace=None):
    """One row per VM from the bulk vm result (and a vm_info read after it, where the bulk task failed).

    Row keys: name, namespace, status, ready, node, ips, changed, method, ready_in (seconds from
    creation to Ready, for VMs this run created), reason, error.
    """
    results = (bulk or {}).get("results") or []
    polled = {vm_key(o): o for o in (info or {}).get("resources") or []}
    polled_summaries = {vm_key(s): s for s in (info or {}).get("summaries") or []}
    rows = []
    seen = set()
    for result in results:
        key = "%s/%s" % (result.get("namespace"), result.get("name"))
        seen.add(key)
        summary = result.get("summary") or polled_summaries.get(key) or {}
        row = {
            "name": result.get("name"),
            "namespace": result.get("namespace"),
            "status": result.get("printable_status") or summary.get("status") or ("Failed" if result.get("failed")
                                                                                  else "-"),
            "ready": bool(result.get("ready") if "ready" in result else summary.get("ready")),
            "node": result.get("node") or summary.get("node"),
            "ips": list(result.get("ip_addresses") or summary.get("ip_addresses") or []),
            "networks": plain(summary.get("networks") or {}),
            "changed": bool(result.get("changed")),
            "method": result.get("method"),
            "reason": summary.get("reason"),
            "error": result.get("msg") if result.get("failed") else None,
            "failure": _failure(summary),
            "ready_in": None,
        }
        if row["method"] == "create":
            created = _ts(summary.get("creation_time") or
                          ((result.get("vm") or {}).get("metadata") or {}).get("creationTimestamp"))
            ready_at = _ts(summary.get("ready_since")) or _ready_time(polled.get(key))
            if created is not None and ready_at is not None and row["ready"]:
                row["ready_in"] = max(0.0, ready_at - created)
        rows.append(row)
    seen_short = {k.split("/", 1)[1] for k in seen}
    for key in _wanted(names, namespace):
        if key in seen or (key.startswith("*/") and key[2:] in seen_short):
            continue
        summary = _find(polled_summaries, key) or {}
        ns, name = key.split("/", 1)
        ns = summary.get("namespace") or (None if ns == "*" else ns)
        rows.append({"name": name, "namespace": ns, "status": summary.get("status") or "-",
                     "ready": bool(summary.get("ready")), "node": summary.get("node"),
                     "ips": list(summary.get("ip_addresses") or []), "networks": summary.get("networks") or {},
                     "changed": False, "method": None, "reason": summary.get("reason"),
                     "error": None if summary else "not written (the bulk task failed, see below)",
                     "ready_in": None})
    return rows


def _failure(summary):
    """Does the summary carry KubeVirt's Failure condition (the VM cannot be reconciled, e.g. no such instancetype)?"""
    return any(c.get("type") == "Failure" and str(c.get("status")) == "True"
               for c in summary.get("conditions_not_ok") or [])


def vm_provision_problems(rows):
    """'namespace/name: why' for each row that failed or is not ready (stopped VMs asked to stop excluded)."""
    out = []
    for row in rows or []:
        if row.get("ready") and not row.get("error"):
            continue
        if not row.get("error") and row.get("status") == "Stopped" and not row.get("failure"):
            continue  # stopped as asked; KubeVirt shows a VM it cannot start as Stopped too, with a Failure
        why = row.get("reason") or row.get("error") or row.get("status") or "not ready"
        out.append("%s/%s: %s" % (row.get("namespace"), row.get("name"), why))
    return out


def vm_provision_result(bulk, info=None, names=None, namespace=None, seconds=None):
    """The vm_provision role's result from the bulk vm task's result and the last vm_info read:
    {changed, failed, msg, seconds, vms (vm_provision_rows), ready, not_ready, problems}."""
    bulk = bulk or {}
    rows = vm_provision_rows(bulk, info, names, namespace)
    msg = bulk.get("msg")
    msg = "" if msg is None else str(msg)
    return {
        "changed": bool(bulk.get("changed")),
        # The bulk task's failure is kept (failed_when: false) to summarize first: its msg says it failed.
        "failed": bool(bulk.get("failed")) or len(msg) > 0,
        "msg": msg,
        "seconds": None if seconds is None else round(float(seconds), 1),
        "vms": rows,
        "ready": [r["name"] for r in rows if r.get("ready")],
        "not_ready": [r["name"] for r in rows if not r.get("ready")],
        "problems": vm_provision_problems(rows),
    }


def vm_power_rows(results):
    """Rows for vm_table from a looped vm_power task's results: name, namespace, action, status, node, error."""
    rows = []
    for result in results or []:
        item = result.get("item") or {}
        meta = item.get("metadata") or item
        migration = result.get("migration") or {}
        rows.append({
            "name": meta.get("name"), "namespace": meta.get("namespace"),
            "action": result.get("action") or ("failed" if result.get("failed") else "skipped"),
            "status": result.get("printable_status") or ("-" if not result.get("failed") else "Failed"),
            "node": result.get("node"),
            "migration": ("%s -> %s" % (migration.get("source_node"), migration.get("target_node"))
                          if migration else None),
            "error": result.get("msg") if result.get("failed") else None,
        })
    return rows


DEFAULT_COLUMNS = [["name", "NAME"], ["namespace", "NAMESPACE"], ["status", "STATUS"], ["node", "NODE"],
                   ["ips", "IPS"], ["ready_in", "READY IN"]]


def _cell(row, key):
    value = row.get(key)
    if key == "ready_in":
        if value is None:
            return "-" if row.get("method") == "create" or not row.get("ready") else "(existing)"
        return human_seconds(value)
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) or "-"
    if value is None or value == "":
        return "-"
    return str(value)


def vm_table(rows, columns=None, max_width=60):
    """Rows (dicts) -> fixed-width text lines, a header first (print them with debug: msg=...)."""
    columns = columns or DEFAULT_COLUMNS
    cols = [(c[0], c[1]) if isinstance(c, (list, tuple)) else (c, str(c).upper()) for c in columns]
    keys = [col[0] for col in cols]
    heads = [col[1] for col in cols]
    cells = [[_cell(row, key)[:max_width] for key in keys] for row in rows or []]
    widths = [max([len(head)] + [len(r[i]) for r in cells]) for i, head in enumerate(heads)]
    lines = ["  ".join(head.ljust(widths[i]) for i, head in enumerate(heads)).rstrip()]
    for row in cells:
        lines.append("  ".join(v.ljust(widths[i]) for i, v in enumerate(row)).rstrip())
    return lines


def vm_inventory_hosts(rows, vms=None, network=None, groups=None, namespace=None, defaults=None):
    """Hosts to add with add_host for the ready VMs: name, groups, ansible_host (the IP on the chosen network, else the first IP),
    ansible_user (the cloud-init user), and kubevirt_vm (name, namespace, node, ip_addresses, status, network)."""
    items = {}
    for vm in _items(vms, "vm_inventory_hosts") if vms else []:
        items["%s/%s" % (vm.get("namespace") or namespace or "*", vm["name"])] = vm
    base_groups = [groups] if isinstance(groups, str) else list(groups or [])
    hosts = []
    for row in rows or []:
        if row.get("error") or not row.get("ready"):
            continue  # only VMs that run and are ready join the inventory
        key = "%s/%s" % (row["namespace"], row["name"])
        item = items.get(key) or items.get("*/%s" % row["name"]) or {}
        net = item.get("inventory_network") or network
        address = None
        if net:
            address = ((row.get("networks") or {}).get(net) or {}).get("ip_address")
        elif row.get("ips"):
            address = row["ips"][0]
        extra = item.get("inventory_groups") or []
        host = {
            "name": row["name"],
            "groups": base_groups + ([extra] if isinstance(extra, str) else list(extra)),
            "kubevirt_vm": {"name": row["name"], "namespace": row["namespace"], "node": row.get("node"),
                            "ip_addresses": row.get("ips") or [], "status": row.get("status"), "network": net},
        }
        if address:
            host["ansible_host"] = address
        user = (item.get("cloud_init") or ((defaults or {}).get("cloud_init")) or {}).get("user")
        if user:
            host["ansible_user"] = user
        hosts.append(host)
    return hosts


def vm_claims(vm):
    """Storage a VM object uses: {'pvcs': [...], 'data_volumes': [...], 'templates': [...]} (sorted names).

    ``templates`` are the DataVolumes from spec.dataVolumeTemplates (owned by the VM);
    ``data_volumes`` all DataVolume volumes, ``pvcs`` the persistentVolumeClaim volumes.
    """
    spec = (vm or {}).get("spec") or {}
    tspec = (spec.get("template") or {}).get("spec") or {}
    pvcs, dvs = set(), set()
    for volume in tspec.get("volumes") or []:
        if isinstance(volume.get("persistentVolumeClaim"), dict):
            pvcs.add(volume["persistentVolumeClaim"].get("claimName"))
        if isinstance(volume.get("dataVolume"), dict):
            dvs.add(volume["dataVolume"].get("name"))
    templates = {((t or {}).get("metadata") or {}).get("name") for t in spec.get("dataVolumeTemplates") or []}
    return {"pvcs": sorted(n for n in pvcs if n), "data_volumes": sorted(n for n in dvs if n),
            "templates": sorted(n for n in templates if n)}


def vm_network_refs(vm):
    """'namespace/name' of every NetworkAttachmentDefinition a VM object uses (Multus networks)."""
    meta = (vm or {}).get("metadata") or {}
    tspec = (((vm or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
    out = set()
    for net in tspec.get("networks") or []:
        multus = net.get("multus")
        if isinstance(multus, dict) and multus.get("networkName"):
            ref = multus["networkName"]
            out.add(ref if "/" in ref else "%s/%s" % (meta.get("namespace"), ref))
    return sorted(out)


def _ref(name, namespace):
    text = str(name)
    return text if "/" in text else "%s/%s" % (namespace, text)


def _only(values):
    """The one value of a set, else None."""
    return next(iter(values)) if len(values) == 1 else None


def _scope_namespaces(names):
    return {str(n).split("/", 1)[0] for n in names or [] if "/" in str(n)}


def _refuse_ambiguous_names(resources, names, namespace):
    """A name without a namespace (and no default namespace) that VMs of several namespaces have: deleting
    all of them would take down VMs nobody named, so it is an error."""
    if namespace:
        return
    for name in names or []:
        if "/" in str(name):
            continue
        found = sorted({vm_key(vm).split("/", 1)[0] for vm in resources if vm_key(vm).split("/", 1)[1] == str(name)})
        if len(found) > 1:
            raise AnsibleFilterError("names: %r is a VM in several namespaces (%s); give it as namespace/name."
                                     % (str(name), ", ".join(found)))


def vm_decommission_plan(resources, names=None, namespace=None, delete_volumes=False, networks=None, labelled=None):
    """What vm_decommission does, from the VMs listed in the scope (vm_info ``resources``).

    ``labelled`` (the VMs matching the label selectors, when there are some) narrows the selection.
    Returns {vms: [{name, namespace, claims}], targets: [{name, namespace}], missing, volumes_delete, volumes_keep, volumes_shared,
    owned_data_volumes, networks_delete, networks_in_use}. Volumes: DataVolumes and PVCs the selected VMs
    use; a volume another VM of the scope still uses is never deleted (volumes_shared); DataVolumes
    from a VM's dataVolumeTemplates are owned by it (owned_data_volumes): Kubernetes deletes them with
    the VM. Networks: the NetworkAttachmentDefinitions asked for that no remaining VM uses.
    """
    from ansible_collections.virtops.kubevirt.plugins.filter.monitor import vm_missing, vm_select

    resources = [r for r in resources or [] if isinstance(r, dict)]
    _refuse_ambiguous_names(resources, names, namespace)
    # Without names, every VM of the scope (the role narrowed it by namespace), then by labels.
    selected = vm_select(resources, names, namespace) if names else resources
    if labelled is not None:
        keep = {vm_key(vm) for vm in labelled if isinstance(vm, dict)}
        selected = [vm for vm in selected if vm_key(vm) in keep]
    chosen = {vm_key(vm) for vm in selected}
    remaining = [vm for vm in resources if vm_key(vm) not in chosen]
    in_use_claims, in_use_nets = set(), set()
    for vm in remaining:
        ns = ((vm.get("metadata") or {}).get("namespace"))
        claims = vm_claims(vm)
        in_use_claims.update("%s/%s" % (ns, c) for c in claims["pvcs"] + claims["data_volumes"])
        in_use_nets.update(vm_network_refs(vm))
    plan = {"vms": [], "targets": [], "missing": vm_missing(resources, names, namespace) if names else [],
            "volumes_delete": [], "volumes_keep": [], "volumes_shared": [], "owned_data_volumes": [],
            "networks_delete": [], "networks_in_use": []}
    seen = set()
    for vm in selected:
        meta = vm.get("metadata") or {}
        ns = meta.get("namespace")
        claims = vm_claims(vm)
        plan["vms"].append({"name": meta.get("name"), "namespace": ns, "claims": claims})
        plan["targets"].append({"name": meta.get("name"), "namespace": ns})
        plan["owned_data_volumes"].extend("%s/%s" % (ns, t) for t in claims["templates"])
        dvs = set(claims["data_volumes"]) | set(claims["templates"])
        volumes = [("datavolume", n) for n in sorted(dvs)] + [("pvc", n) for n in claims["pvcs"] if n not in dvs]
        for kind, name in volumes:
            key = "%s/%s" % (ns, name)
            if key in seen:
                continue
            seen.add(key)
            entry = {"name": name, "namespace": ns, "kind": kind, "owned_by_vm": name in claims["templates"]}
            if key in in_use_claims:
                plan["volumes_shared"].append(entry)
            elif delete_volumes:
                plan["volumes_delete"].append(entry)
            else:
                plan["volumes_keep"].append(entry)
    # A network without a namespace is in the namespace of the VMs (when they share one), never a guess.
    net_namespace = namespace or _only({t["namespace"] for t in plan["targets"]} or set(_scope_namespaces(names)))
    for net in networks or []:
        if "/" not in str(net) and not net_namespace:
            raise AnsibleFilterError(
                "networks: %r has no namespace and the VMs are in several namespaces (or none was found); give it "
                "as namespace/name." % str(net))
        ref = _ref(net, net_namespace)
        ns, name = ref.split("/", 1)
        entry = {"name": name, "namespace": ns if ns not in ("None", "") else None}
        if ref in in_use_nets:
            plan["networks_in_use"].append(entry)
        else:
            plan["networks_delete"].append(entry)
    return plan


class FilterModule(object):
    """The public filters (one documentation file each: plugins/filter/<name>.yml). The other functions
    of this file are the machinery behind them (and the unit tests' entry points), not filters."""

    def filters(self):
        return {
            "vm_fleet": vm_fleet,
            "vm_fleet_share": vm_fleet_share,
            "labels_from_text": labels_from_text,
            "names_from_text": names_from_text,
            "vm_provision_plan": vm_provision_plan,
            "vm_provision_result": vm_provision_result,
            "vm_inventory_hosts": vm_inventory_hosts,
            "vm_table": vm_table,
            "vm_power_rows": vm_power_rows,
            "vm_decommission_plan": vm_decommission_plan,
        }
