"""Another writer changes a VM while our task updates it (docs/reliability.md, "conflicts").

* Labels: our ``vm`` task sets its labels while another writer (a different field manager: a merge
  patch from the kubernetes client, or server-side apply as manager ``other``) sets its own, one of
  them exactly between our read and our write. Both writers' labels are there at the end.
* Read-modify-write: ``vm_volume`` updates the VM guarded by its resourceVersion; a write that
  lands between our read and our PUT makes the PUT answer 409, and the module re-reads and
  re-applies its change, keeping the other writer's.

The race is made exact by running the module in this process against the lab and hooking the
client's request function: just before our write is sent, the other writer writes.
"""
import json
import threading
import time

import pytest
from kubernetes import client as kclient

from faulthelp import ansible_env, import_collection, run_playbook

import_collection()

from ansible.module_utils import _internal  # noqa: E402  pylint: disable=wrong-import-position
from ansible.module_utils.testing import patch_module_args  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import client as vclient
from ansible_collections.virtops.kubevirt.plugins.modules import vm as vm_module  # noqa: E402
from ansible_collections.virtops.kubevirt.plugins.modules import vm_volume as vm_volume_module  # noqa: E402

GROUP, VERSION, PLURAL = "kubevirt.io", "v1", "virtualmachines"
IMAGE = "quay.io/containerdisks/fedora:41"


def run_module(module, args, capsys, monkeypatch):
    monkeypatch.setattr(_internal, "is_controller", False)
    capsys.readouterr()
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


class Race:
    """Hooks Client.request: ``writer()`` runs just before the first matching request is sent."""

    def __init__(self, monkeypatch, method, path_suffix, writer, times=1):
        self.method, self.suffix, self.writer, self.left = method, path_suffix, writer, times
        self.sent = []      # (method, path, status or exception name)
        original = vclient.Client.request
        race = self

        def request(client_self, method, path, *args, **kwargs):
            if method == race.method and path.endswith(race.suffix) and race.left > 0:
                race.left -= 1
                race.writer()
            try:
                answer = original(client_self, method, path, *args, **kwargs)
            except vclient.ApiError as exc:
                race.sent.append((method, path, exc.status))
                raise
            race.sent.append((method, path, 200))
            return answer

        monkeypatch.setattr(vclient.Client, "request", request)

    def statuses(self, method):
        return [s for m, p, s in self.sent if m == method and p.endswith(self.suffix)]


def _labels(custom, namespace, name):
    return custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)["metadata"].get("labels") or {}


def _merge_labels(custom, namespace, name, labels, manager="other"):
    """The other writer: a JSON merge patch with its own field manager (an Update operation)."""
    custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, {"metadata": {"labels": labels}},
                                          field_manager=manager, _content_type="application/merge-patch+json")


def _apply_labels(custom, namespace, name, labels, manager="other"):
    """The other writer with server-side apply (manager ``other``): it owns just these labels."""
    body = {"apiVersion": "%s/%s" % (GROUP, VERSION), "kind": "VirtualMachine",
            "metadata": {"name": name, "namespace": namespace, "labels": labels}}
    custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, body,
                                          field_manager=manager, _content_type="application/apply-patch+yaml")


@pytest.fixture
def base_args(kubeconfig, namespace):
    return {"kubeconfig": kubeconfig, "namespace": namespace}


def _create(base_args, capsys, monkeypatch, name="c1", labels=None):
    result = run_module(vm_module, dict(base_args, name=name, memory="128Mi", run_strategy="Halted",
                                        disks=[{"name": "root", "image": IMAGE}], labels=labels or {"ours-a": "1"}),
                        capsys, monkeypatch)
    assert result["changed"] and not result.get("failed"), result
    return result


def test_labels_only_update_keeps_a_racing_writers_labels(base_args, custom, namespace, capsys, monkeypatch):
    """Our task names only labels (a merge patch of our keys); the other writer races it."""
    _create(base_args, capsys, monkeypatch)
    _merge_labels(custom, namespace, "c1", {"other-1": "a"})
    race = Race(monkeypatch, "PATCH", "/virtualmachines/c1",
                lambda: _merge_labels(custom, namespace, "c1", {"other-1": "b", "other-2": "race"}))
    result = run_module(vm_module, dict(base_args, name="c1", labels={"ours-a": "2", "ours-b": "1"}), capsys,
                        monkeypatch)
    assert result["changed"] and not result.get("failed"), result
    assert race.left == 0 and race.statuses("PATCH") == [200], race.sent
    labels = _labels(custom, namespace, "c1")
    assert {k: labels.get(k) for k in ("ours-a", "ours-b", "other-1", "other-2")} == {
        "ours-a": "2", "ours-b": "1", "other-1": "b", "other-2": "race"}, labels
    again = run_module(vm_module, dict(base_args, name="c1", labels={"ours-a": "2", "ours-b": "1"}), capsys,
                       monkeypatch)
    assert again["changed"] is False, again


def test_full_spec_update_keeps_a_racing_writers_labels(base_args, custom, namespace, capsys, monkeypatch):
    """Our task gives the whole VM (server-side apply, force); the other writer uses SSA and merge patches."""
    _create(base_args, capsys, monkeypatch)
    _apply_labels(custom, namespace, "c1", {"other-ssa": "x"})
    race = Race(monkeypatch, "PATCH", "/virtualmachines/c1",
                lambda: _merge_labels(custom, namespace, "c1", {"other-race": "y"}))
    args = dict(base_args, name="c1", memory="192Mi", run_strategy="Halted", disks=[{"name": "root", "image": IMAGE}],
                labels={"ours-a": "2", "ours-c": "3"})
    result = run_module(vm_module, args, capsys, monkeypatch)
    assert result["changed"] and not result.get("failed"), result
    assert race.left == 0, race.sent
    vm = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "c1")
    labels = vm["metadata"]["labels"]
    assert {k: labels.get(k) for k in ("ours-a", "ours-c", "other-ssa", "other-race")} == {
        "ours-a": "2", "ours-c": "3", "other-ssa": "x", "other-race": "y"}, labels
    assert vm["spec"]["template"]["spec"]["domain"]["memory"]["guest"] == "192Mi"
    managers = {m["manager"] for m in vm["metadata"]["managedFields"]}
    assert {"virtops.kubevirt", "other"} <= managers, managers
    # Our next apply drops a label we no longer set, never one the other writer owns.
    args["labels"] = {"ours-a": "2"}
    run_module(vm_module, args, capsys, monkeypatch)
    labels = _labels(custom, namespace, "c1")
    assert "ours-c" not in labels and labels.get("other-ssa") == "x" and labels.get("other-race") == "y", labels


def test_resource_version_conflict_is_reread_and_reapplied(base_args, custom, namespace, capsys, monkeypatch):
    """vm_volume's read-modify-write: the other writer lands between our GET and PUT -> 409 -> re-read."""
    _create(base_args, capsys, monkeypatch)
    race = Race(monkeypatch, "PUT", "/virtualmachines/c1",
                lambda: _merge_labels(custom, namespace, "c1", {"other-rmw": "z"}))
    result = run_module(vm_volume_module, dict(base_args, vm="c1", name="scratch", image=IMAGE), capsys,
                        monkeypatch)
    assert result["changed"] and not result.get("failed"), result
    assert race.statuses("PUT") == [409, 200], race.sent
    vm = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "c1")
    volumes = [v["name"] for v in vm["spec"]["template"]["spec"]["volumes"]]
    assert volumes == ["root", "scratch"], volumes
    assert vm["metadata"]["labels"].get("other-rmw") == "z"


@pytest.mark.slow
def test_a_busy_concurrent_writer_during_a_playbook(base_args, custom, namespace, tmp_path, capsys, monkeypatch):
    """Not timed: a thread keeps changing its labels while a playbook updates ours five times."""
    _create(base_args, capsys, monkeypatch, name="c2")
    stop = threading.Event()
    written = {}

    def writer():
        n = 0
        while not stop.is_set():
            n += 1
            labels = {"other-%d" % (n % 4): str(n)}
            try:
                _merge_labels(custom, namespace, "c2", labels)
                written.update(labels)
            except kclient.ApiException:
                pass
            time.sleep(0.05)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        play = [{"hosts": "localhost", "gather_facts": False,
                 "module_defaults": {"group/virtops.kubevirt.kubevirt": base_args},
                 "tasks": [{"name": "ours %d" % i, "virtops.kubevirt.vm": {
                     "name": "c2", "labels": {"ours-%d" % i: "v", "ours-last": str(i)}}} for i in range(5)]}]
        result = run_playbook(tmp_path, play, env=ansible_env())
    finally:
        stop.set()
        thread.join(10)
    assert result.rc == 0, result.explain()
    labels = _labels(custom, namespace, "c2")
    assert all(labels.get("ours-%d" % i) == "v" for i in range(5)) and labels.get("ours-last") == "4", labels
    assert len(written) == 4 and {k: labels.get(k) for k in written} == written, (labels, written)
