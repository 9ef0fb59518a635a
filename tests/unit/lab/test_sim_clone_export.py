"""The lab's clone and export rules (lab/simulator/clone.py, export.py, webhooks.py) as KubeVirt v1.8.4 has them."""
import json
import re

from simulator import clone, export, webhooks
from simulator.util import apply_json_patch


def test_export_names_as_naming_get_name():
    assert export.get_name("virt-export", "e1") == "virt-export-e1"
    assert re.match(r"^virt-export-[0-9a-f]{8}$", export.get_name("virt-export", "x" * 60))
    assert export.get_name("export-token", "y" * 45) == "export-token-" + "y" * 45
    shortened = export.get_name("a" * 30, "b" * 40)
    assert len(shortened) == 63 and re.match(r"^a{13}-[0-9a-f]{8}-b{40}$", shortened)
    assert export.token_secret_name({"metadata": {"name": "e1"}}) == "export-token-e1"
    assert export.service_name({"metadata": {"name": "a.b"}}) == "virt-export-a-b"


def test_export_ttl_default_and_given():
    meta = {"name": "e1", "creationTimestamp": "2026-01-01T00:00:00Z"}
    assert export.ttl_seconds({"metadata": meta, "spec": {}}) == 7200
    assert export.ttl_seconds({"metadata": meta, "spec": {"ttlDuration": "1h30m"}}) == 5400
    assert export.stamp(export.expiration({"metadata": meta, "spec": {"ttlDuration": "30m"}})) == "2026-01-01T00:30:00Z"


def test_export_admitter_source_rules():
    assert webhooks.validate_export_source({"kind": "VirtualMachine", "name": "a", "apiGroup": "kubevirt.io"}) == []
    assert webhooks.validate_export_source({"kind": "PersistentVolumeClaim", "name": "a"}) == []
    msgs = lambda src: [c["message"] for c in webhooks.validate_export_source(src)]  # noqa: E731
    assert msgs({"kind": "Pod", "name": "a"}) == ["invalid kind"]
    assert msgs({"kind": "PersistentVolumeClaim", "name": "", "apiGroup": "x"}) == [
        "PVC name must not be empty", "PVC API group must be missing or blank"]
    assert msgs({"kind": "VirtualMachineSnapshot", "name": "s"}) == [
        "VMSnapshot API group must be snapshot.kubevirt.io"]
    assert msgs({"kind": "VirtualMachine", "name": "v", "apiGroup": "x"}) == [
        "Virtual Machine API group must be kubevirt.io"]


VM = {"metadata": {"name": "gold", "labels": {"app": "web", "team": "a", "golden": "true"},
                   "annotations": {"note": "x", "restore.kubevirt.io/lastRestoreUID": "r-1"}},
      "spec": {"template": {"metadata": {"labels": {"app": "web", "kubevirt.io/size": "small"}},
                            "spec": {"domain": {"firmware": {"serial": "s", "uuid": "u"},
                                                "devices": {"interfaces": [{"name": "default", "macAddress": "m1"},
                                                                           {"name": "br1"}]}}}}}}


def test_clone_filters_keep_what_they_match_and_drop_negations():
    labels = VM["metadata"]["labels"]
    assert clone.removals(labels, None, "/metadata/labels") == []
    assert clone.removals(labels, ["*", "!golden"], "/metadata/labels") == [
        {"op": "remove", "path": "/metadata/labels/golden"}]
    # Go regexp.MatchString: a match anywhere in the key
    assert sorted(op["path"] for op in clone.removals(labels, ["ap"], "/l")) == ["/l/golden", "/l/team"]
    assert clone.removals({"kubevirt.io/size": "s"}, [], "/l") == [{"op": "remove", "path": "/l/kubevirt.io~1size"}]


def test_clone_patches_in_kubevirts_order():
    spec = {"newMacAddresses": {"br1": "02:00:00:00:00:09"}, "newSMBiosSerial": "new", "labelFilters": ["!team"],
            "annotationFilters": ["*"], "template": {"labelFilters": ["app"]}, "patches": ['{"op":"add"}']}
    ops = [json.loads(p) for p in clone.generate_patches(VM, spec)]
    assert ops[:3] == [
        {"op": "replace", "path": "/spec/template/spec/domain/devices/interfaces/0/macAddress", "value": ""},
        {"op": "replace", "path": "/spec/template/spec/domain/devices/interfaces/1/macAddress",
         "value": "02:00:00:00:00:09"},
        {"op": "replace", "path": "/spec/template/spec/domain/firmware/serial", "value": "new"}]
    removed = [op["path"] for op in ops if op["op"] == "remove"]
    # a filter list of only negations keeps nothing (nothing matched a regular filter)
    assert sorted(removed) == ["/metadata/labels/app", "/metadata/labels/golden", "/metadata/labels/team",
                               "/spec/template/metadata/labels/kubevirt.io~1size"]
    assert ops[-2] == {"op": "replace", "path": "/spec/template/spec/domain/firmware/uuid", "value": ""}
    assert ops[-1] == {"op": "add"}


def test_json_patch_as_restore_applies_it():
    vm = {"metadata": {"labels": {"a": "1", "b/c": "2"}}, "spec": {"list": [1, 2]}}
    out = apply_json_patch(vm, ['{"op":"remove","path":"/metadata/labels/b~1c"}',
                                {"op": "replace", "path": "/spec/new", "value": "x"},
                                {"op": "remove", "path": "/metadata/annotations/none"},
                                {"op": "add", "path": "/spec/list/-", "value": 3}])
    assert out == {"metadata": {"labels": {"a": "1"}, "annotations": {}}, "spec": {"list": [1, 2, 3], "new": "x"}}
    assert vm["metadata"]["labels"] == {"a": "1", "b/c": "2"}


def test_clone_admitter_rules():
    src = {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": "gold"}
    ok = {"source": src, "target": {"kind": "VirtualMachine", "name": "copy"}}
    assert webhooks.validate_clone(ok) == []
    msgs = lambda spec: [c["message"] for c in webhooks.validate_clone(spec)]  # noqa: E731
    assert msgs(dict(ok, target={"kind": "VirtualMachine", "name": "gold"})) == [
        "Target name cannot be equal to source name when both are VirtualMachines"]
    assert msgs(dict(ok, labelFilters=["a*b", "!", "x!"])) == [
        "spec.labels filter a*b is invalid: cannot contain a wildcard character (*); FilterRules: WildcardChar can be "
        "only at the end of the filter",
        "a negation character is not a valid filter",
        "spec.labels filter x! is invalid: cannot contain a negation character (!); FilterRules: NegationChar can be "
        "only used at the beginning of the filter"]
    assert msgs(dict(ok, newMacAddresses={"default": "nope"})) == [
        "interface default has malformed MAC address (nope)."]
    assert msgs(dict(ok, patches=["{bad"])) == ["patch is not valid JSON ({bad)"]
    assert msgs({"source": dict(src, kind="Pod")}) == ["Source kind is not supported"]


def test_a_clones_mac_with_colons_would_be_refused_by_the_restore_webhook():
    """Why vm_clone writes new_macs with dashes: KubeVirt's validatePatches splits each pair on colons."""
    with_colons = clone.generate_patches(VM, {"newMacAddresses": {"default": "02:00:00:00:00:09"}})[0]
    with_dashes = clone.generate_patches(VM, {"newMacAddresses": {"default": "02-00-00-00-00-09"}})[0]
    assert [c["message"] for c in webhooks._patch_causes(with_colons)] == [
        'patch format is not valid - one ":" expected in a single key-value json patch: "value":"02:00:00:00:00:09"']
    assert webhooks._patch_causes(with_dashes) == []
