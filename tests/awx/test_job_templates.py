"""The playbooks as AWX job templates run them: ansible-runner, survey answers as extra vars, and for the
cluster only what AWX's "OpenShift or Kubernetes API Bearer Token" credential injects: K8S_AUTH_HOST,
K8S_AUTH_API_KEY (a ServiceAccount token from a TokenRequest), K8S_AUTH_VERIFY_SSL, K8S_AUTH_SSL_CA_CERT.

Needs the lab (lab/labctl up; LAB_STATE_DIR selects another). The ServiceAccount is bound, in the test's
namespace only, to a Role with what the four playbooks need - no kubeconfig, no cluster-wide rights.
"""
import json
import os
import re
import sys
import uuid

import ansible_runner
import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from awxhelp import REPO, collection_path
from surveys import TEMPLATES, answers, load

STATE = os.environ.get("LAB_STATE_DIR") or os.path.join(REPO, "lab", ".state")
PASSWORD = "Awx-Survey-P4ss-%s" % uuid.uuid4().hex[:8]

RULES = [
    {"apiGroups": ["kubevirt.io"], "resources": ["virtualmachines", "virtualmachineinstances"],
     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
    {"apiGroups": ["kubevirt.io"], "resources": ["virtualmachineinstancemigrations"],
     "verbs": ["get", "list", "watch", "create"]},
    {"apiGroups": ["subresources.kubevirt.io"],
     "resources": ["virtualmachines/start", "virtualmachines/stop", "virtualmachines/restart",
                   "virtualmachines/migrate", "virtualmachineinstances/pause", "virtualmachineinstances/unpause",
                   "virtualmachineinstances/softreboot"],
     "verbs": ["update"]},
    {"apiGroups": ["subresources.kubevirt.io"], "resources": ["virtualmachineinstances/guestosinfo"],
     "verbs": ["get"]},
    {"apiGroups": ["cdi.kubevirt.io"], "resources": ["datavolumes"],
     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
    {"apiGroups": ["k8s.cni.cncf.io"], "resources": ["network-attachment-definitions"],
     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
    {"apiGroups": [""], "resources": ["persistentvolumeclaims"],
     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
    {"apiGroups": [""], "resources": ["pods", "events"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["get", "list", "watch"]},
]


def lab():
    path = os.path.join(STATE, "lab.json")
    if not os.path.exists(path):
        pytest.fail("the lab is not up (%s missing): lab/labctl up" % path)
    with open(path) as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def cluster():
    info = lab()
    config.load_kube_config(config_file=info["kubeconfig"])
    core, rbac = client.CoreV1Api(), client.RbacAuthorizationV1Api()
    ns = "awx-jt-%s" % uuid.uuid4().hex[:6]
    core.create_namespace({"metadata": {"name": ns, "labels": {"virtops-test": "awx"}}})
    core.create_namespaced_service_account(ns, {"metadata": {"name": "awx"}})
    rbac.create_namespaced_role(ns, {"metadata": {"name": "virtops-job-templates"}, "rules": RULES})
    rbac.create_namespaced_role_binding(ns, {
        "metadata": {"name": "awx-virtops-job-templates"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "virtops-job-templates"},
        "subjects": [{"kind": "ServiceAccount", "name": "awx", "namespace": ns}]})
    token = core.create_namespaced_service_account_token("awx", ns, {"spec": {"expirationSeconds": 3600}})
    credential = {"K8S_AUTH_HOST": info["apiserver"]["url"], "K8S_AUTH_API_KEY": token.status.token,
                  "K8S_AUTH_VERIFY_SSL": "True", "K8S_AUTH_SSL_CA_CERT": os.path.join(STATE, "pki", "ca.crt")}
    prometheus = (info.get("prometheus") or {}).get("url", "")
    yield {"ns": ns, "env": credential, "prometheus": prometheus, "core": core,
           "custom": client.CustomObjectsApi()}
    try:
        core.delete_namespace(ns)
    except ApiException:
        pass


@pytest.fixture()
def job(cluster, tmp_path, monkeypatch):
    """Run a job template: job('provision', provision_count=2) -> (runner, stdout)."""
    # Nothing from this shell reaches the job but what the credential injects.
    for key in list(os.environ):
        if key.startswith(("K8S_AUTH_", "KUBECONFIG", "ANSIBLE_")):
            monkeypatch.delenv(key, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # no ~/.kube/config either
    # ansible-playbook on the PATH, as in the execution environment; AWX_ANSIBLE_BIN picks another
    # ansible-core's (tests/run-compat.sh runs the job templates on each release of the matrix).
    ansible_bin = os.environ.get("AWX_ANSIBLE_BIN") or os.path.join(REPO, ".venv", "bin")
    monkeypatch.setenv("PATH", ansible_bin + os.pathsep + os.environ.get("PATH", ""))

    def run(template, verbosity=0, extra_vars=None, inventory=None, background=False, **overrides):
        """A job of the template: its survey's answers (``overrides``) and the template's own extra vars;
        ``inventory``: the script data of the job's inventory (none: implicit localhost). ``background``:
        start it and return a function that waits for it and gives (runner, stdout)."""
        private = tmp_path / ("job-%s-%s" % (template, uuid.uuid4().hex[:4]))
        private.mkdir()
        if inventory is not None:  # as AWX writes it: an executable script that prints the JSON
            (private / "inventory").mkdir()
            script = private / "inventory" / "hosts"
            script.write_text("#!%s\nprint(%r)\n" % (sys.executable, json.dumps(inventory)))
            script.chmod(0o700)
        envvars = dict(cluster["env"], ANSIBLE_COLLECTIONS_PATH=collection_path(), ANSIBLE_NOCOLOR="1",
                       ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
                       # the module processes' temp folder in the job's HOME: the local connection
                       # would expand remote_tmp's "~" to the real user's home
                       ANSIBLE_REMOTE_TMP=str(home / ".ansible" / "tmp"))
        how = ansible_runner.run_async if background else ansible_runner.run
        started = how(private_data_dir=str(private), project_dir=REPO, playbook=TEMPLATES[template],
                      extravars=dict(answers(load(template), **overrides), **(extra_vars or {})),
                      envvars=envvars, verbosity=verbosity, quiet=True, settings={"suppress_ansible_output": True})

        def finished():
            thread, runner = started if background else (None, started)
            if thread is not None:
                thread.join()
            return runner, runner.stdout.read()

        return finished if background else finished()

    return run


def vm_names(cluster):
    items = cluster["custom"].list_namespaced_custom_object(
        "kubevirt.io", "v1", cluster["ns"], "virtualmachines")["items"]
    return sorted(vm["metadata"]["name"] for vm in items)


def test_job_templates_end_to_end(cluster, job, tmp_path):
    ns = cluster["ns"]

    # 1. Provision: two VMs from the survey, a password that must not show up anywhere; a progress
    #    line every second (the template's extra vars), in the output and in the events AWX stores.
    runner, out = job("provision", verbosity=4, extra_vars={"vm_provision_progress_interval": 1},
                      provision_namespace=ns, provision_name_prefix="jt", provision_count=2,
                      provision_password=PASSWORD, provision_wait_timeout=180)
    assert runner.status == "successful", out[-3000:]
    assert "Summary, VMs ready 2/2" in out
    line = re.compile(r"^\[localhost\] virtops\.kubevirt\.vm: waiting for 2 VirtualMachines in %s to be ready: "
                      r"\d+s of \d+s, [0-2]/2 done.*, last seen: " % ns, re.M)
    assert line.search(out), "no progress lines in the job output"
    assert any(line.search(e.get("stdout") or "") for e in runner.events), \
        "the progress is not in the job events AWX stores"
    actions = {(e.get("event_data") or {}).get("task_action") for e in runner.events}
    assert "virtops.kubevirt.vm" in actions and not [a for a in actions if a and a.endswith("async_status")]
    assert vm_names(cluster) == ["jt-01", "jt-02"]
    assert PASSWORD not in out and PASSWORD not in json.dumps(list(runner.events)), \
        "the cloud-init password leaked into the job output or events (-vvvv)"

    # 2. Rerun: nothing changes.
    runner, out = job("provision", provision_namespace=ns, provision_name_prefix="jt", provision_count=2,
                      provision_password=PASSWORD)
    assert runner.status == "successful" and re.search(r"changed=0\s", out), out[-2000:]

    # 3. Health report, with the lab's Prometheus when it runs; set_stats reaches the job's artifacts.
    report_dir = tmp_path / "report"
    runner, out = job("monitor", monitor_namespace=ns, monitor_prometheus_url=cluster["prometheus"],
                      monitor_window="15m", monitor_report_dir=str(report_dir), monitor_fail_on_unhealthy="yes")
    assert runner.status == "successful", out[-3000:]
    report = json.loads((report_dir / "vm-health.json").read_text())
    assert report["totals"]["vms"] == 2 and report["healthy"] is True
    assert (report_dir / "vm-health.html").stat().st_size > 2000
    stats = [e for e in runner.events if e["event"] == "playbook_on_stats"][0]
    assert stats["event_data"]["artifact_data"]["vm_monitor_healthy"] is True
    assert PASSWORD not in (report_dir / "vm-health.json").read_text()

    # 4. Power: stop one VM.
    runner, out = job("lifecycle", lifecycle_action="stopped", lifecycle_namespace=ns, lifecycle_names="jt-02",
                      lifecycle_grace_period=0)
    assert runner.status == "successful", out[-3000:]
    vm = cluster["custom"].get_namespaced_custom_object("kubevirt.io", "v1", ns, "virtualmachines", "jt-02")
    assert vm["spec"]["runStrategy"] == "Halted"

    # 5. A bad answer fails at the start, with the argument spec's message, before touching anything.
    runner, out = job("lifecycle", lifecycle_action="explode", lifecycle_namespace=ns, lifecycle_names="jt-01")
    assert runner.status == "failed"
    assert "value of lifecycle_action must be one of" in out

    # 6. Decommission both; their volumes (none here) would be kept.
    runner, out = job("decommission", decommission_namespace=ns, decommission_names="jt-01 jt-02")
    assert runner.status == "successful", out[-3000:]
    assert "VMs deleted: %s/jt-01, %s/jt-02" % (ns, ns) in out
    assert vm_names(cluster) == []


def test_a_token_without_rights_fails_clearly(cluster, job):
    """Outside the namespace the Role covers, the job fails with the API's refusal, not a traceback."""
    runner, out = job("monitor", monitor_namespace="default")
    assert runner.status == "failed"
    assert "forbidden" in out.lower() or "403" in out
    assert "Traceback" not in out


def awx_slice_inventory(hosts, variables, slice_number, slice_count):
    """The inventory AWX gives slice ``slice_number`` of ``slice_count`` (awx/main/models/inventory.py,
    Inventory.get_script_data and get_sliced_hosts): the enabled hosts ordered by name, every
    slice_count-th from position slice_number - 1; the inventory's variables; AWX's host variables."""
    ordered = sorted(hosts)
    mine = ordered[slice_number - 1::slice_count]
    hostvars = {}
    for host in mine:
        hostvars[host] = {}
        for prefix in ("host", "tower"):
            hostvars[host].update({"remote_%s_enabled" % prefix: "true", "remote_%s_id" % prefix: ordered.index(host) + 1})
    return {"all": {"hosts": mine, "vars": variables}, "_meta": {"hostvars": hostvars}}


def created_vms(runner):
    """The VMs the job's vm task created (method create), from the job events AWX stores."""
    names = []
    for event in runner.events:
        data = event.get("event_data") or {}
        if event["event"] == "runner_on_ok" and data.get("task_action") == "virtops.kubevirt.vm":
            names += [r["name"] for r in data["res"].get("results") or [] if r.get("method") == "create"]
    return names


def test_a_sliced_provision_job_template_provisions_the_fleet_once(cluster, job):
    """job_slice_count 3 over an inventory with one host per VM (as docs/awx.md says): three jobs at once,
    each with its slice of the hosts, provision the whole fleet, each VM by exactly one slice."""
    ns = cluster["ns"]
    fleet = ["sl-%02d" % n for n in range(1, 8)]
    survey = {"provision_namespace": ns, "provision_name_prefix": "sl", "provision_count": len(fleet),
              "provision_wait_timeout": 180}
    template_vars = {"provision_slice_by_inventory": True}
    inventory_vars = {"ansible_connection": "local"}
    hosts = list(reversed(fleet))  # AWX orders them by name
    started = [job("provision", inventory=awx_slice_inventory(hosts, inventory_vars, k, 3), background=True,
                   extra_vars=template_vars, **survey) for k in (1, 2, 3)]
    slices = [finished() for finished in started]
    for runner, out in slices:
        assert runner.status == "successful", out[-3000:]
    created = [created_vms(runner) for runner, _out in slices]
    # Each slice created the VMs of its hosts ...
    assert created == [["sl-01", "sl-04", "sl-07"], ["sl-02", "sl-05"], ["sl-03", "sl-06"]]
    for (_runner, out), names in zip(slices, created):
        assert "Summary, VMs ready %d/%d" % (len(names), len(names)) in out
    # ... so together the whole fleet, no VM twice, no gap.
    every = [name for names in created for name in names]
    assert sorted(every) == fleet and len(every) == len(set(every))
    assert vm_names(cluster) == fleet

    # A host that is no VM of the fleet fails its slice before anything is written.
    runner, out = job("provision", inventory=awx_slice_inventory(["db-01", "sl-01"], inventory_vars, 1, 1),
                      extra_vars=template_vars, **survey)
    assert runner.status == "failed"
    assert "hosts of this job's inventory that name no VM of the fleet, which no slice would provision: db-01; " \
           "nothing was created." in out
    assert "Create or update all VMs" not in out

    for name in fleet:  # for the tests after this one
        cluster["custom"].delete_namespaced_custom_object("kubevirt.io", "v1", ns, "virtualmachines", name)
