"""plugins/filter/monitor.py: selection, Prometheus series, metrics, the report and redaction."""
import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.virtops.kubevirt.plugins.filter import health, monitor

SECRET = "s3cr3t-Passw0rd"
USER_DATA = "#cloud-config\npassword: %s\nchpasswd: {expire: false}\n" % SECRET


@pytest.mark.parametrize("text,seconds", [
    ("90s", 90), ("15m", 900), ("1h", 3600), ("2d", 172800), ("1w", 604800), (" 30 ", 30), (300, 300),
    ("1.5h", 5400), ("500ms", 0),
])
def test_duration_seconds(text, seconds):
    assert monitor.duration_seconds(text) == seconds


@pytest.mark.parametrize("bad", ["", "1y", "h", "-5m", True, None])
def test_duration_seconds_rejects(bad):
    with pytest.raises(AnsibleFilterError, match="expected a duration"):
        monitor.duration_seconds(bad)


def test_redact_secrets_by_key_and_content():
    data = {
        "spec": {"volumes": [{"name": "ci", "cloudInitNoCloud": {"userData": USER_DATA, "networkData": "x"}}]},
        "cloud_init": {"user": "fedora", "password": SECRET, "ssh_authorized_keys": ["ssh-ed25519 AAAA"]},
        "api_key": SECRET, "K8S_AUTH_API_KEY": SECRET,
        "events": [{"message": "user data was: " + USER_DATA}],
        "empty_password": "", "name": "web-1", "count": 3,
    }
    out = monitor.redact_secrets(data)
    assert SECRET not in json.dumps(out)
    assert out["cloud_init"]["user"] == "fedora" and out["name"] == "web-1" and out["count"] == 3
    assert out["spec"]["volumes"][0]["cloudInitNoCloud"]["userData"] == monitor.REDACTED
    assert out["events"][0]["message"] == monitor.REDACTED
    assert out["cloud_init"]["ssh_authorized_keys"] == ["ssh-ed25519 AAAA"]  # public keys are not secrets
    assert data["api_key"] == SECRET  # input untouched


def objs(*keys):
    return [{"metadata": {"namespace": k.split("/")[0], "name": k.split("/")[1]}} for k in keys]


def test_select_and_missing():
    vms = objs("a/web-1", "a/web-2", "b/web-1")
    assert monitor.vm_select(vms, []) == vms
    assert monitor.vm_select(vms, ["web-1"]) == [vms[0], vms[2]]
    assert monitor.vm_select(vms, ["b/web-1", "web-2"]) == [vms[2], vms[1]] or \
        monitor.vm_select(vms, ["b/web-1", "web-2"]) == [vms[1], vms[2]]
    assert monitor.vm_select(vms, ["web-1"], namespace="a") == [vms[0]]
    assert monitor.vm_missing(vms, ["web-1", "b/web-2", "nope"]) == ["b/web-2", "nope"]
    assert monitor.vm_missing(vms, ["web-2"], namespace="b") == ["b/web-2"]


def test_promql_selector():
    assert monitor.promql_selector("demo", ["web-1", "db.1"]) == 'namespace="demo",name=~"db\\\\.1|web\\\\-1"'
    # Several namespaces: one regex matcher over all of them.
    assert monitor.promql_selector(["ns-b", "ns-a", "ns-b"], ["ns-a/good", "ns-b/web1"]) == \
        'namespace=~"ns\\\\-a|ns\\\\-b",name=~"good|web1"'
    assert monitor.promql_selector(["ns-a"], []) == 'namespace="ns-a"'
    assert monitor.promql_selector("", ["ns/x"]) == 'name=~"x"'
    assert monitor.promql_selector(None, None) == ""


def matrix(*entries):
    return {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"namespace": ns, "name": name}, "values": values} for ns, name, values in entries]}}


def test_prom_series():
    response = matrix(("a", "web-1", [[1, "0.5"], [2, "NaN"], [3, "1.5"]]), ("a", "web-2", []))
    assert monitor.prom_series(response) == {"a/web-1": [[1.0, 0.5], [3.0, 1.5]], "a/web-2": []}
    assert monitor.prom_series(None) == {}
    vector = {"status": "success", "data": {"result": [{"metric": {"namespace": "a", "name": "x"}, "value": [5, "2"]}]}}
    assert monitor.prom_series(vector) == {"a/x": [[5.0, 2.0]]}
    with pytest.raises(AnsibleFilterError, match="bad_data: parse error"):
        monitor.prom_series({"status": "error", "errorType": "bad_data", "error": "parse error"})


def test_series_stats():
    assert monitor.series_stats([[0, 1], [1, 3], [2, 2]]) == {"min": 1, "max": 3, "avg": 2, "last": 2, "samples": 3}
    assert monitor.series_stats([])["avg"] is None


@pytest.mark.parametrize("domain,spec_extra,vcpus", [
    ({"cpu": {"cores": 2, "sockets": 2}}, {}, 4),
    ({"resources": {"requests": {"cpu": "500m"}}}, {}, 1.0),
    ({"resources": {"limits": {"cpu": "3"}}}, {}, 3.0),
    ({}, {"instancetype": {"name": "u1.medium"}}, None),
    ({}, {}, 1),
])
def test_vm_vcpus(domain, spec_extra, vcpus):
    vm = {"spec": dict({"template": {"spec": {"domain": domain}}}, **spec_extra)}
    assert monitor.vm_vcpus(vm) == vcpus


def uri_result(name, response, status=200, unit=""):
    return {"item": {"key": name, "value": {"query": "q", "unit": unit}}, "json": response, "status": status,
            "failed": False}


def test_vm_metrics_and_cpu_percent():
    vm = {"metadata": {"namespace": "a", "name": "web-1"}, "spec": {"template": {"spec": {"domain": {"cpu": {"cores": 2}}}}}}
    results = [
        uri_result("cpu_cores", matrix(("a", "web-1", [[1, "0.5"], [2, "1.5"]])), unit="cores"),
        uri_result("memory_percent", matrix(("a", "web-1", [[1, "40"], [2, "60"]])), unit="%"),
        uri_result("network_receive_bps", {"status": "error", "errorType": "bad_data", "error": "parse error"}, 400),
        {"item": {"key": "storage_read_bps", "value": {}}, "status": -1, "failed": False,
         "msg": "Status code was -1: Request failed: <urlopen error [Errno 111] Connection refused>"},
        {"item": {"key": "skipped_one", "value": {}}, "skipped": True},
    ]
    out = monitor.vm_metrics(results, [vm])
    web = out["a/web-1"]
    assert web["cpu_cores"]["avg"] == 1.0 and web["cpu_cores"]["unit"] == "cores"
    assert web["cpu_percent"]["values"] == [[1.0, 25.0], [2.0, 75.0]] and web["cpu_percent"]["vcpus"] == 2
    assert web["memory_percent"]["max"] == 60.0
    errors = {e["metric"]: e["msg"] for e in out["_errors"]}
    assert errors["network_receive_bps"] == "HTTP 400: parse error"
    assert "Connection refused" in errors["storage_read_bps"]
    assert "skipped_one" not in errors


def fleet():
    """A fleet with one ErrImagePull VM, one paused VM, one healthy VM (vm_info summaries and objects)."""
    def s(name, status, ready, reason, **extra):
        base = {"name": name, "namespace": "fleet", "status": status, "ready": ready, "reason": reason,
                "run_strategy": "Always", "created": True, "agent_connected": ready, "node": "node-1",
                "ip_addresses": ["10.0.0.%d" % len(name)], "networks": {}, "conditions_not_ok": [],
                "warning_events": [], "guest_os": None, "launcher_pod": None, "paused": status == "Paused",
                "phase": "Running", "ip_address": None, "restart_required": False}
        base.update(extra)
        return base
    summaries = [
        s("web-1", "Running", True, None),
        s("broken", "ErrImagePull", False,
          "ErrImagePull: cannot pull the container disk image 'quay.io/example/does-not-exist:1' (not found)",
          warning_events=[{"reason": "Failed", "message": "Failed to pull image", "object": "Pod/virt-launcher-broken",
                           "count": 3, "last_seen": "2026-01-01T00:00:00Z"}]),
        s("paused-1", "Paused", True, "Paused: VMI was paused by user"),
    ]
    resources = [{"metadata": {"namespace": "fleet", "name": x["name"], "labels": {"app": "fleet"}},
                  "spec": {"template": {"spec": {"domain": {"memory": {"guest": "1Gi"}},
                                                 "volumes": [{"name": "ci", "cloudInitNoCloud": {"userData": USER_DATA}}]}}}}
                 for x in summaries]
    return summaries, resources


def test_report_names_errimagepull_and_paused_with_reason():
    summaries, resources = fleet()
    verdicts = health.vm_health(summaries, resources=resources)
    report = monitor.vm_monitor_report(summaries, verdicts, {}, resources,
                                       {"title": "t", "rules": {"cpu": {"max_percent": 80}}}, ["fleet/gone"])
    by_name = {vm["name"]: vm for vm in report["vms"]}
    assert report["healthy"] is False
    assert report["totals"]["unhealthy_vms"] == ["fleet/broken", "fleet/gone", "fleet/paused-1"]
    assert "does-not-exist" in by_name["broken"]["findings"][0]["message"]
    assert by_name["paused-1"]["findings"][0]["message"] == "Paused: VMI was paused by user"
    assert by_name["gone"]["status"] == "NotFound"
    assert [vm["severity"] for vm in report["vms"]] == ["critical", "critical", "critical", "ok"]
    assert report["context"]["rules"]["cpu"]["max_percent"] == 80  # merged with the defaults
    assert report["context"]["rules"]["memory"]["max_percent"] == 90.0
    assert by_name["web-1"]["memory"] == "1Gi" and by_name["web-1"]["labels"] == {"app": "fleet"}
    assert SECRET not in json.dumps(report)
    lines = monitor.vm_report_lines(report)
    assert lines[0].startswith("4 VMs: 1 healthy, 3 unhealthy")
    assert any("fleet/broken" in line and "ErrImagePull" in line for line in lines)
    assert any("fleet/paused-1" in line and "paused by user" in line for line in lines)


def test_report_lines_cut_long_lines():
    summaries, resources = fleet()
    report = monitor.vm_monitor_report(summaries, health.vm_health(summaries))
    assert all(len(line) <= 60 for line in monitor.vm_report_lines(report, width=60)[1:])


def test_filter_names():
    names = set(monitor.FilterModule().filters())
    assert names == {"duration_seconds", "redact_secrets", "vm_select", "vm_missing", "vm_monitor_queries",
                     "vm_metrics", "vm_monitor_report", "vm_report_lines", "namespaces_to_read",
                     "vm_monitor_read"}
    # The Prometheus helpers behind vm_metrics and vm_monitor_queries are not filters of their own.
    assert not names & {"prom_series", "series_stats", "vm_vcpus", "promql_selector"}


def test_monitor_queries_fill_in_selector_and_rate():
    queries = {"cpu_cores": {"query": "rate(x{__SELECTOR__}[__RATE__])", "unit": "cores"},
               "up": {"query": "up{__SELECTOR__}"}}
    out = monitor.vm_monitor_queries(queries, "fleet", ["web-1", "fleet/db.2"], "2m")
    selector = monitor.promql_selector("fleet", ["web-1", "fleet/db.2"])
    assert selector.startswith('namespace="fleet",name=~"db')
    assert out == [{"key": "cpu_cores", "value": {"query": "rate(x{%s}[2m])" % selector, "unit": "cores"}},
                   {"key": "up", "value": {"query": "up{%s}" % selector}}]
    # no namespace, no names: no matchers
    assert monitor.vm_monitor_queries({"up": {"query": "up{__SELECTOR__}"}}) == [
        {"key": "up", "value": {"query": "up{}"}}]
    assert queries["up"]["query"] == "up{__SELECTOR__}"  # not mutated
    assert monitor.vm_monitor_queries(None) == []
    with pytest.raises(AnsibleFilterError, match="needs a dict with a query"):
        monitor.vm_monitor_queries({"cpu": "rate(x[5m])"})
    with pytest.raises(AnsibleFilterError, match="expected a dict"):
        monitor.vm_monitor_queries(["x"])


@pytest.mark.parametrize("names,namespace,expected", [
    # The case: every namespace named is read (before: only the first one).
    (["ns-a/good", "ns-b/web1"], "", ["ns-a", "ns-b"]),
    (["ns-b/x", "ns-a/y", "ns-b/z"], None, ["ns-b", "ns-a"]),
    (["ns-a/good"], "", ["ns-a"]),
    # vm_monitor_namespace is the namespace of the names without one
    (["good", "ns-b/web1"], "ns-a", ["ns-a", "ns-b"]),
    (["good"], "ns-a", ["ns-a"]),
    # a name without a namespace and no vm_monitor_namespace: it may be anywhere
    (["good", "ns-b/web1"], "", []),
    (["ns-b/web1", "good"], None, []),
    ([], "ns-a", ["ns-a"]),
    ([], "", []),
    (None, None, []),
])
def test_namespaces_to_read(names, namespace, expected):
    assert monitor.namespaces_to_read(names, namespace) == expected
    assert monitor.namespaces_to_read(names, namespace, "vm_decommission_names") == expected


@pytest.mark.parametrize("args,message", [
    ((["ns-a/"], "", "vm_monitor_names"), "vm_monitor_names: 'ns-a/' is not a VM name or namespace/name."),
    ((["Bad_NS/x"], "", "vm_monitor_names"), "vm_monitor_names: 'Bad_NS/x' is not a VM name or namespace/name."),
    ((["a/b/c"], "", "lifecycle_names"), "lifecycle_names: 'a/b/c' is not a VM name or namespace/name."),
    # every entry is checked, also after a name without a namespace
    ((["good", "ns-b/Web_1"], "", "vm_decommission_names"),
     "vm_decommission_names: 'ns-b/Web_1' is not a VM name or namespace/name."),
    (([], "Demo", "vm_monitor_names"), "vm_monitor_namespace 'Demo' is not a valid namespace name."),
    (([], "Demo", "vm_decommission_names"), "vm_decommission_namespace 'Demo' is not a valid namespace name."),
    (([], "Demo", "targets", "target_ns"), "target_ns 'Demo' is not a valid namespace name."),
    (([], "Demo"), "namespace 'Demo' is not a valid namespace name."),
    (("ns-a/good", None, "vm_decommission_names"),
     "vm_decommission_names must be a list of VM names (name or namespace/name), got 'ns-a/good'."),
])
def test_namespaces_to_read_rejects_bad_names_naming_the_option(args, message):
    with pytest.raises(AnsibleFilterError) as err:
        monitor.namespaces_to_read(*args)
    assert str(err.value) == message


def vmi_summary(ns, name, owner=None, status="Running"):
    return {"kind": "VirtualMachineInstance", "namespace": ns, "name": name, "owner_vm": owner, "status": status,
            "ready": status == "Running", "reason": None if status == "Running" else status,
            "agent_connected": True, "warning_events": []}


def vmi_obj(ns, name, cores=2):
    return {"metadata": {"namespace": ns, "name": name},
            "spec": {"domain": {"cpu": {"cores": cores}, "memory": {"guest": "512Mi"}}}}


def test_read_merges_namespaces_and_standalone_vmis():
    """The looped vm_info results: VMs of each namespace, then the VMIs no VM owns (once)."""
    vm_a, vm_b = objs("ns-a/good", "ns-b/web1")
    results = {"results": [
        {"summaries": [{"kind": "VirtualMachine", "namespace": "ns-a", "name": "good"}], "resources": [vm_a],
         "vmi_summaries": [vmi_summary("ns-a", "solo"), vmi_summary("ns-a", "good", owner="good")],
         "vmis": [vmi_obj("ns-a", "solo"), vmi_obj("ns-a", "good")]},
        {"summaries": [{"kind": "VirtualMachine", "namespace": "ns-b", "name": "web1"}], "resources": [vm_b],
         # a VMI of a VM's name that no VM owns yet (being adopted) is reported with the VM
         "vmi_summaries": [vmi_summary("ns-b", "web1")], "vmis": [vmi_obj("ns-b", "web1")]},
    ]}
    read = monitor.vm_monitor_read(results)
    assert [health.vm_key(s) for s in read["summaries"]] == ["ns-a/good", "ns-b/web1", "ns-a/solo"]
    assert [health.vm_key(o) for o in read["resources"]] == ["ns-a/good", "ns-b/web1", "ns-a/solo"]
    # With label selectors the role reads the stand-alone VMIs with vmi_info (skipped otherwise).
    by_label = monitor.vm_monitor_read(results["results"][:1], {"results": [
        {"summaries": [vmi_summary("ns-a", "lab")], "resources": [vmi_obj("ns-a", "lab")]}, {"skipped": True}]})
    assert [health.vm_key(s) for s in by_label["summaries"]] == ["ns-a/good", "ns-a/solo", "ns-a/lab"]
    assert monitor.vm_monitor_read(None) == {"summaries": [], "resources": []}


def test_report_standalone_vmi_and_restart_required():
    summaries = [
        {"kind": "VirtualMachine", "name": "web1", "namespace": "ns-b", "status": "Running", "ready": True,
         "run_strategy": "Always", "created": True, "agent_connected": True, "restart_required": True,
         "warning_events": [], "reason": None,
         "conditions_not_ok": [{"type": "RestartRequired", "status": "True", "reason": None,
                                "message": "a non-live-updatable field was changed in the template spec"}]},
        vmi_summary("ns-a", "solo"),
        vmi_summary("ns-a", "crashed", status="Failed"),
    ]
    resources = [{"metadata": {"namespace": "ns-b", "name": "web1"},
                  "spec": {"template": {"spec": {"domain": {"cpu": {"cores": 1}}}}}},
                 vmi_obj("ns-a", "solo", cores=4), vmi_obj("ns-a", "crashed")]
    report = monitor.vm_monitor_report(summaries, health.vm_health(summaries, resources=resources), {}, resources,
                                       {"title": "t"}, ["ns-b/gone"])
    by_name = {vm["name"]: vm for vm in report["vms"]}
    assert by_name["solo"]["standalone"] is True and by_name["solo"]["kind"] == "VirtualMachineInstance"
    assert by_name["solo"]["healthy"] and by_name["solo"]["vcpus"] == 4 and by_name["solo"]["memory"] == "512Mi"
    assert by_name["crashed"]["findings"][0]["rule"] == "not_running"
    assert by_name["web1"]["standalone"] is False and by_name["web1"]["restart_required"] is True
    assert [(f["rule"], f["severity"]) for f in by_name["web1"]["findings"]] == [("restart_required", "warning")]
    assert "a non-live-updatable field was changed" in by_name["web1"]["findings"][0]["message"]
    assert report["totals"]["restart_required_vms"] == ["ns-b/web1"]
    assert report["totals"]["standalone_vmis"] == 2
    assert by_name["gone"]["findings"][0]["message"] == (
        "no VirtualMachine or stand-alone VirtualMachineInstance ns-b/gone exists")
    bare = monitor.vm_monitor_report([], [], missing=["gone"])["vms"][0]
    assert bare["findings"][0]["message"] == (
        "no VirtualMachine or stand-alone VirtualMachineInstance named gone exists in the namespaces read")
    lines = monitor.vm_report_lines(report)
    assert lines[0] == ("4 VMs: 1 healthy, 3 unhealthy (Failed 1, NotFound 1, Running 2); 2 of them stand-alone "
                        "VMIs; restart required: ns-b/web1")
    assert any(line.startswith("WARNING  ns-b/web1 [restart_required] restart required (a non-live-updatable")
               for line in lines)
    assert any(line.startswith("CRITICAL ns-a/crashed (stand-alone VMI) [not_running] Failed") for line in lines)
