"""plugins/filter/provision.py: plans, summary table, inventory, decommission plans."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.virtops.kubevirt.plugins.filter import provision as p


def test_vm_fleet():
    assert p.vm_fleet("web", 3) == [{"name": "web-01"}, {"name": "web-02"}, {"name": "web-03"}]
    assert p.vm_fleet("n", 2, start=9, width=3, memory="1Gi") == [{"name": "n-009", "memory": "1Gi"},
                                                                  {"name": "n-010", "memory": "1Gi"}]
    assert p.vm_fleet("x", 0) == []
    with pytest.raises(AnsibleFilterError, match="0 or more"):
        p.vm_fleet("x", -1)
    with pytest.raises(AnsibleFilterError, match="integers"):
        p.vm_fleet("x", "many")


def test_items_merge_defaults_and_strip_role_keys():
    vms = [{"name": "a", "labels": {"tier": "web"}, "volumes": [{"name": "v"}], "inventory_network": "br1",
            "network_attachments": [{"name": "n"}], "inventory_groups": ["g"]},
           {"name": "b", "namespace": "other", "memory": "4Gi", "labels": {"app": "mine"}}]
    defaults = {"memory": "1Gi", "labels": {"app": "fleet"}, "disks": [{"name": "root", "image": "i"}], "name": "x"}
    items = p.vm_provision_items(vms, "ns", defaults)
    assert items[0] == {"name": "a", "namespace": "ns", "memory": "1Gi", "labels": {"app": "fleet", "tier": "web"},
                        "disks": [{"name": "root", "image": "i"}]}
    assert items[1]["namespace"] == "other" and items[1]["memory"] == "4Gi" and items[1]["labels"] == {"app": "mine"}
    assert defaults["labels"] == {"app": "fleet"}  # not mutated
    with pytest.raises(AnsibleFilterError, match="at least a name"):
        p.vm_provision_items([{"memory": "1Gi"}])
    with pytest.raises(AnsibleFilterError, match="expected a list"):
        p.vm_provision_items("web")
    with pytest.raises(AnsibleFilterError, match="defaults must be a dict"):
        p.vm_provision_items([{"name": "a"}], defaults=["x"])


def test_keys_and_namespaces():
    items = [{"name": "a", "namespace": "x"}, {"name": "b"}]
    assert p.vm_provision_keys(items) == ["x/a", "*/b"]
    assert p.vm_provision_keys(items, "d") == ["x/a", "d/b"]
    assert p.vm_provision_namespaces(items) == ["", "x"]
    assert p.vm_provision_namespaces([{"name": "a"}], "d") == ["d"]


def test_volumes_and_networks_are_collected_once():
    vms = [{"name": "a", "volumes": [{"name": "shared", "size": "1Gi"}],
            "network_attachments": [{"name": "br1-net", "bridge": "br1"}]},
           {"name": "b", "namespace": "o", "volumes": [{"name": "b-root", "size": "2Gi"}],
            "network_attachments": [{"name": "br1-net", "bridge": "br1"}]}]
    volumes = p.vm_provision_volumes(vms, [{"name": "shared", "size": "1Gi"}], "ns")
    assert volumes == [{"name": "shared", "size": "1Gi", "namespace": "ns"},
                       {"name": "b-root", "size": "2Gi", "namespace": "o"}]
    networks = p.vm_provision_networks(vms, [], "ns")
    assert [(n["namespace"], n["name"]) for n in networks] == [("ns", "br1-net"), ("o", "br1-net")]
    with pytest.raises(AnsibleFilterError, match="defined twice, differently"):
        p.vm_provision_volumes(vms, [{"name": "shared", "size": "5Gi"}], "ns")


def bulk_result(**over):
    result = {"name": "a", "namespace": "ns", "changed": True, "method": "create", "printable_status": "Running",
              "ready": True, "node": "n1", "ip_addresses": ["10.0.0.1"],
              "summary": {"networks": {"default": {"ip_address": "10.0.0.1"}, "br1": {"ip_address": "192.168.1.5"}}},
              "vm": {"metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"}}}
    result.update(over)
    return result


def test_rows_and_time_to_ready():
    final = {"resources": [{"metadata": {"namespace": "ns", "name": "a"}, "status": {"conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:42Z"}]}}],
        "summaries": [{"namespace": "ns", "name": "c", "status": "Starting", "ready": False, "reason": "Starting: x"}]}
    bulk = {"results": [bulk_result(),
                        bulk_result(name="b", method="none", changed=False),
                        {"name": "x", "namespace": "ns", "failed": True, "msg": "webhook said no"}]}
    rows = p.vm_provision_rows(bulk, final, ["ns/a", "ns/b", "ns/x", "ns/c"])
    assert [r["name"] for r in rows] == ["a", "b", "x", "c"]
    assert rows[0]["ready_in"] == 42.0 and rows[1]["ready_in"] is None
    assert rows[2]["status"] == "Failed" and rows[2]["error"] == "webhook said no"
    assert rows[3]["status"] == "Starting" and rows[3]["reason"] == "Starting: x"
    lines = p.vm_table(rows)
    assert lines[0].split() == ["NAME", "NAMESPACE", "STATUS", "NODE", "IPS", "READY", "IN"]
    assert lines[1].split()[-1] == "42s" and lines[2].split()[-1] == "(existing)"
    problems = p.vm_provision_problems(rows)
    assert problems == ["ns/x: webhook said no", "ns/c: Starting: x"]


def test_time_to_ready_from_the_bulk_result_alone():
    # A bulk task that waited has each VM's summary with ready_since: no read after it is needed.
    bulk = {"results": [bulk_result(summary={"ready_since": "2026-01-01T00:00:07Z"}),
                        bulk_result(name="b", ready=False, summary={"ready_since": None})]}
    rows = p.vm_provision_rows(bulk, None, ["ns/a", "ns/b"])
    assert [r["ready_in"] for r in rows] == [7.0, None]


def test_time_to_ready_from_summaries_alone():
    # return_objects: false (the role's bulk task): no vm in the results; the summary has the creation time.
    bulk = {"results": [bulk_result(vm=None, summary={"creation_time": "2026-01-01T00:00:03Z",
                                                      "ready_since": "2026-01-01T00:00:10Z"})]}
    del bulk["results"][0]["vm"]
    assert [r["ready_in"] for r in p.vm_provision_rows(bulk, None, ["ns/a"])] == [7.0]


def test_rows_when_the_bulk_task_failed_before_writing():
    bulk = {"failed": True, "msg": "vms[1] (b): Unsupported parameters: memroy."}
    rows = p.vm_provision_rows(bulk, {}, ["ns/a", "ns/b"])
    assert [r["error"] for r in rows] == ["not written (the bulk task failed, see below)"] * 2
    assert p.vm_provision_problems(rows)[0] == "ns/a: not written (the bulk task failed, see below)"


def test_table_columns_and_cells():
    rows = [{"name": "a", "ips": [], "node": None, "ready_in": None, "ready": False, "method": "create"}]
    assert p.vm_table(rows, [["name", "N"], ["ips", "I"], ["node", "X"], "ready_in"]) == \
        ["N  I  X  READY_IN", "a  -  -  -"]


def test_inventory_hosts():
    rows = p.vm_provision_rows({"results": [bulk_result(), bulk_result(name="b"),
                                            bulk_result(name="s", ready=False, printable_status="ErrImagePull"),
                                            {"name": "x", "namespace": "ns", "failed": True, "msg": "no"}]})
    vms = [{"name": "a", "inventory_network": "br1", "inventory_groups": ["db"], "cloud_init": {"user": "fedora"}},
           {"name": "b"}]
    hosts = p.vm_inventory_hosts(rows, vms, None, "kubevirt_vms", "ns")
    assert [h["name"] for h in hosts] == ["a", "b"]
    assert hosts[0]["ansible_host"] == "192.168.1.5" and hosts[0]["groups"] == ["kubevirt_vms", "db"]
    assert hosts[0]["ansible_user"] == "fedora" and hosts[0]["kubevirt_vm"]["network"] == "br1"
    assert hosts[1]["ansible_host"] == "10.0.0.1" and "ansible_user" not in hosts[1]
    # a chosen network without an address: no ansible_host rather than a wrong one
    assert "ansible_host" not in p.vm_inventory_hosts(rows, [{"name": "b"}], "storage")[1]
    # the user from the role's defaults
    assert p.vm_inventory_hosts(rows, [{"name": "b"}], defaults={"cloud_init": {"user": "u"}})[1]["ansible_user"] == "u"


def vm(name, ns="ns", pvcs=(), dvs=(), templates=(), nads=()):
    volumes = [{"name": "p%d" % i, "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(pvcs)]
    volumes += [{"name": "d%d" % i, "dataVolume": {"name": d}} for i, d in enumerate(list(dvs) + list(templates))]
    volumes.append({"name": "root", "containerDisk": {"image": "x"}})
    return {"metadata": {"name": name, "namespace": ns}, "spec": {
        "dataVolumeTemplates": [{"metadata": {"name": t}} for t in templates],
        "template": {"spec": {"volumes": volumes, "networks": [{"name": "default", "pod": {}}] + [
            {"name": "n%d" % i, "multus": {"networkName": n}} for i, n in enumerate(nads)]}}}}


def test_claims_and_network_refs():
    machine = vm("a", pvcs=["data"], dvs=["root-dv"], templates=["tpl"], nads=["br1-net", "other/br2"])
    assert p.vm_claims(machine) == {"pvcs": ["data"], "data_volumes": ["root-dv", "tpl"], "templates": ["tpl"]}
    assert p.vm_network_refs(machine) == ["ns/br1-net", "other/br2"]
    assert p.vm_claims({}) == {"pvcs": [], "data_volumes": [], "templates": []}


def test_decommission_plan_keeps_volumes_by_default():
    scope = [vm("a", pvcs=["a-data", "shared"], dvs=["a-root"], nads=["br1-net"]),
             vm("b", pvcs=["shared"], nads=["br2-net"]), vm("c", templates=["c-root"])]
    plan = p.vm_decommission_plan(scope, ["a", "gone"], "ns", False, ["br1-net", "br2-net", "ns/unused"])
    assert plan["targets"] == [{"name": "a", "namespace": "ns"}]
    assert plan["missing"] == ["ns/gone"]
    assert plan["volumes_delete"] == []
    assert [v["name"] for v in plan["volumes_keep"]] == ["a-root", "a-data"]
    assert [v["name"] for v in plan["volumes_shared"]] == ["shared"]
    assert [n["name"] for n in plan["networks_delete"]] == ["br1-net", "unused"]
    assert [n["name"] for n in plan["networks_in_use"]] == ["br2-net"]
    assert plan["owned_data_volumes"] == []


def test_decommission_plan_deletes_volumes_when_asked_never_shared_ones():
    scope = [vm("a", pvcs=["a-data", "shared"], dvs=["a-root"]), vm("b", pvcs=["shared"]),
             vm("c", templates=["c-root"])]
    plan = p.vm_decommission_plan(scope, ["a", "c"], "ns", True)
    assert [(v["kind"], v["name"]) for v in plan["volumes_delete"]] == [
        ("datavolume", "a-root"), ("pvc", "a-data"), ("datavolume", "c-root")]
    assert [v["name"] for v in plan["volumes_shared"]] == ["shared"]
    assert plan["owned_data_volumes"] == ["ns/c-root"]
    assert plan["volumes_delete"][2]["owned_by_vm"] is True


def test_decommission_plan_by_labels():
    scope = [vm("a"), vm("b"), vm("c")]
    plan = p.vm_decommission_plan(scope, [], "ns", labelled=[vm("b"), vm("c")])
    assert [t["name"] for t in plan["targets"]] == ["b", "c"]
    plan = p.vm_decommission_plan(scope, ["a", "b"], "ns", labelled=[vm("b")])
    assert [t["name"] for t in plan["targets"]] == ["b"]


def test_decommission_plan_names_in_two_namespaces_each_in_its_own():
    """Issue 14: names in two namespaces; each is looked for in its own namespace, same-named VMs of the
    other namespace stay, and what a VM there still uses is shared."""
    scope = [vm("x", "ns-a", pvcs=["data"]), vm("y", "ns-a", pvcs=["y-data"]),
             vm("x", "ns-b", pvcs=["data"]), vm("y", "ns-b", pvcs=["y-data"]), vm("z", "ns-b")]
    plan = p.vm_decommission_plan(scope, ["ns-a/x", "ns-b/y", "ns-b/gone"], None, True, ["ns-a/br1"])
    assert plan["targets"] == [{"name": "x", "namespace": "ns-a"}, {"name": "y", "namespace": "ns-b"}]
    assert plan["missing"] == ["ns-b/gone"]
    assert [(v["namespace"], v["name"]) for v in plan["volumes_delete"]] == [("ns-a", "data"), ("ns-b", "y-data")]
    assert plan["networks_delete"] == [{"name": "br1", "namespace": "ns-a"}]


def test_decommission_plan_refuses_a_name_in_several_namespaces():
    scope = [vm("x", "ns-a"), vm("x", "ns-b"), vm("y", "ns-b")]
    with pytest.raises(AnsibleFilterError) as err:
        p.vm_decommission_plan(scope, ["x"], None)
    assert str(err.value) == "names: 'x' is a VM in several namespaces (ns-a, ns-b); give it as namespace/name."
    # with a namespace, or with the name in one namespace only, there is no doubt
    assert p.vm_decommission_plan(scope, ["x"], "ns-b")["targets"] == [{"name": "x", "namespace": "ns-b"}]
    assert p.vm_decommission_plan(scope, ["y"], None)["targets"] == [{"name": "y", "namespace": "ns-b"}]


def test_decommission_plan_network_without_namespace():
    scope = [vm("x", "ns-a", nads=["br1"]), vm("y", "ns-b"), vm("w", "ns-b", nads=["br1"])]
    # the selected VMs share ns-b: br1 is ns-b's (in use by w), not the default namespace's
    plan = p.vm_decommission_plan(scope, ["ns-b/y"], None, networks=["br1"])
    assert plan["networks_in_use"] == [{"name": "br1", "namespace": "ns-b"}] and plan["networks_delete"] == []
    # the second run (the VM is gone) finds the namespace in the names
    plan = p.vm_decommission_plan(scope[:1] + scope[2:], ["ns-b/y"], None, networks=["br1"])
    assert plan["networks_in_use"] == [{"name": "br1", "namespace": "ns-b"}]
    with pytest.raises(AnsibleFilterError, match=r"^networks: 'br1' has no namespace and the VMs are in several"):
        p.vm_decommission_plan(scope, ["ns-a/x", "ns-b/y"], None, networks=["br1"])


@pytest.mark.parametrize("text,labels", [
    ("app=web, tier=db", {"app": "web", "tier": "db"}), ("", {}), ("a=", {"a": ""}), ({"x": "y"}, {"x": "y"}),
    ("a=1\nb=2", {"a": "1", "b": "2"}),
])
def test_labels_from_text(text, labels):
    assert p.labels_from_text(text) == labels


def test_labels_from_text_rejects():
    with pytest.raises(AnsibleFilterError, match="key=value"):
        p.labels_from_text("app")


@pytest.mark.parametrize("text,names", [
    ("a, b c\nns/d", ["a", "b", "c", "ns/d"]), ("", []), (None, []), (["a", " "], ["a"]),
])
def test_names_from_text(text, names):
    assert p.names_from_text(text) == names


def test_power_rows():
    results = [{"item": {"metadata": {"name": "a", "namespace": "ns"}}, "action": "migrate",
                "printable_status": "Running", "node": "n2",
                "migration": {"source_node": "n1", "target_node": "n2"}},
               {"item": {"metadata": {"name": "b", "namespace": "ns"}}, "failed": True, "msg": "VM is not running"}]
    rows = p.vm_power_rows(results)
    assert rows[0]["migration"] == "n1 -> n2" and rows[1]["status"] == "Failed"
    assert rows[1]["error"] == "VM is not running"


def test_human_seconds():
    assert [p.human_seconds(s) for s in (None, 0, 59.6, 65, 3600, 7322)] == ["-", "0s", "1m00s", "1m05s", "1h00m",
                                                                             "2h02m"]


# -- vm_provision_errors: what the vm module would reject, found before the role creates anything -----
def test_provision_errors_none_for_good_items():
    items = p.vm_provision_items([{"name": "a", "memory": "1Gi", "disks": [{"name": "root", "pvc": "a-root"}]},
                                  "b"], "demo", {"memory": "512Mi"})
    assert p.vm_provision_errors(items) == []


@pytest.mark.parametrize("item, message", [
    ({"name": "a", "memory": "2GB"}, "vm_provision_vms[0] (a): memory '2GB' is not a Kubernetes quantity; did you mean '2Gi'?"),
    ({"name": "Bad_Name", "memory": "1Gi"}, "vm_provision_vms[0] (Bad_Name): name 'Bad_Name' is invalid"),
    ({"name": "a", "memory": "1Gi", "run_strategy": "Sometimes"},
     "vm_provision_vms[0] (a): value of run_strategy must be one of: Always, Halted, Manual, RerunOnFailure, Once, "
     "got: Sometimes."),
    ({"name": "a", "memory": "1Gi", "disks": [{"name": "root"}]}, "vm_provision_vms[0] (a): disk 'root' has no source"),
    ({"name": "a", "memory": "1Gi", "cloud_init": {"user_data": "#cloud-config\n" + "#" * 3000}},
     "vm_provision_vms[0] (a): cloud_init user data is 3014 bytes, over KubeVirt's 2048-byte limit"),
])
def test_provision_errors_name_the_item(item, message):
    errors = p.vm_provision_errors(p.vm_provision_items([{"name": "ok", "memory": "1Gi"}, item], "demo"))
    assert len(errors) == 1 and errors[0].startswith(message.replace("[0]", "[1]"))


# -- the public filters the roles use: vm_provision_plan, vm_provision_result --------
def awx_slices(hosts, count):
    """The hosts of each slice as AWX gives them (Inventory.get_sliced_hosts: ordered by name, every count-th)."""
    ordered = sorted(hosts)
    return [ordered[k::count] for k in range(count)]


def test_fleet_share_of_each_awx_slice_covers_the_fleet_once():
    fleet = p.vm_fleet("web", 7, memory="1Gi")
    names = [vm["name"] for vm in fleet]
    shares = [p.vm_fleet_share(fleet, hosts) for hosts in awx_slices(names + ["localhost"], 3)]
    taken = [vm["name"] for share in shares for vm in share["vms"]]
    assert sorted(taken) == names  # no gap, no overlap
    assert all(share["vms"] and not share["strays"] for share in shares)
    assert shares[0]["vms"] == [fleet[2], fleet[5]]  # slice 1: localhost, web-03, web-06
    assert p.vm_fleet_share(["a", {"name": "b", "cpu": 2}], ["b"]) == {"vms": [{"name": "b", "cpu": 2}], "strays": []}


def test_fleet_share_names_the_hosts_that_are_no_vm_of_the_fleet():
    share = p.vm_fleet_share(p.vm_fleet("web", 2), ["web-02", "db-01", "localhost", "bastion"], exclude=["bastion"])
    assert share == {"vms": [{"name": "web-02"}], "strays": ["db-01", "localhost"]}
    assert p.vm_fleet_share(p.vm_fleet("web", 2), []) == {"vms": [], "strays": []}
    with pytest.raises(AnsibleFilterError, match="vm_fleet_share: item 0 must be a dict with at least a name"):
        p.vm_fleet_share([{"memory": "1Gi"}], ["web-01"])


def test_filter_names():
    names = set(p.FilterModule().filters())
    assert names == {"vm_fleet", "vm_fleet_share", "labels_from_text", "names_from_text", "vm_provision_plan",
                     "vm_provision_result", "vm_inventory_hosts", "vm_table", "vm_power_rows", "vm_decommission_plan"}


def test_provision_plan_is_items_keys_namespaces_volumes_networks():
    vms = [{"name": "a", "volumes": [{"name": "a-data", "size": "1Gi"}], "network_attachments": [{"name": "br1"}]},
           {"name": "b", "namespace": "other", "memory": "2Gi"}]
    defaults = {"memory": "1Gi"}
    plan = p.vm_provision_plan(vms, "ns", defaults, [{"name": "shared", "size": "1Gi"}], [{"name": "br2"}])
    assert plan == {"vms": p.vm_provision_items(vms, "ns", defaults),
                    "vm_keys": ["ns/a", "other/b"],
                    "namespaces": ["ns", "other"],
                    "volumes": p.vm_provision_volumes(vms, [{"name": "shared", "size": "1Gi"}], "ns"),
                    "networks": p.vm_provision_networks(vms, [{"name": "br2"}], "ns"),
                    "clones": [], "prerequisites": True}
    assert [v["name"] for v in plan["volumes"]] == ["shared", "a-data"]
    assert p.vm_provision_plan(["a"])["vm_keys"] == ["*/a"]
    assert p.vm_provision_plan(["a"])["prerequisites"] is False
    assert p.vm_provision_plan([], validate=True)["errors"] == [
        "vm_provision_vms is empty; give at least one VM (a dict with a name and the vm module's options)."]
    checked = p.vm_provision_plan([{"name": "a", "memory": "1Gi"}, {"name": "Bad_Name"}], "ns", validate=True)
    assert checked["errors"] == p.vm_provision_errors(checked["vms"]) and len(checked["errors"]) == 1
    assert p.vm_provision_plan([{"name": "a", "memory": "1Gi"}], "ns", validate=True)["errors"] == []
    with pytest.raises(AnsibleFilterError, match="at least a name"):
        p.vm_provision_plan([{"memory": "1Gi"}])


def test_provision_result_summarizes_rows():
    final = {"resources": [{"metadata": {"namespace": "ns", "name": "a"}, "status": {"conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:42Z"}]}}]}
    bulk = {"changed": True, "results": [bulk_result(), bulk_result(name="b", ready=False, printable_status="Starting",
                                                                    method="update")]}
    result = p.vm_provision_result(bulk, final, ["ns/a", "ns/b"], seconds=12.345)
    rows = p.vm_provision_rows(bulk, final, ["ns/a", "ns/b"])
    assert result == {"changed": True, "failed": False, "msg": "", "seconds": 12.3, "vms": rows, "ready": ["a"],
                      "not_ready": ["b"], "problems": p.vm_provision_problems(rows)}
    assert result["problems"] == ["ns/b: Starting"]
    failed = p.vm_provision_result({"failed": True, "msg": "boom"}, {}, ["ns/a"])
    assert failed["failed"] is True and failed["msg"] == "boom" and failed["changed"] is False
    assert failed["seconds"] is None and failed["not_ready"] == ["a"]
    # a msg alone (the bulk task kept its failure with failed_when: false) still says it failed
    assert p.vm_provision_result({"msg": "3 VMs failed"}, {}, [])["failed"] is True


def test_a_stopped_vm_that_kubevirt_cannot_start_is_a_problem():
    """KubeVirt shows a VM whose instancetype is missing as Stopped: its Failure makes it a problem, not 'stopped
    as asked'."""
    failing = {"namespace": "ns", "name": "it3", "status": "Stopped", "ready": False,
               "reason": "FailedFindInstancetype: u1.small not found (Stopped)",
               "conditions_not_ok": [{"type": "Failure", "status": "True", "reason": "FailedFindInstancetype"}]}
    halted = {"namespace": "ns", "name": "off", "status": "Stopped", "ready": False, "reason": "Stopped: run_strategy "
              "is Halted", "conditions_not_ok": []}
    rows = p.vm_provision_rows({"results": [dict(bulk_result(name="it3"), printable_status="Stopped", ready=False,
                                                 summary=failing),
                                            dict(bulk_result(name="off"), printable_status="Stopped", ready=False,
                                                 summary=halted)]}, {}, ["ns/it3", "ns/off"])
    assert p.vm_provision_problems(rows) == ["ns/it3: FailedFindInstancetype: u1.small not found (Stopped)"]


def test_vms_from_a_golden_vm_are_cloned_first_and_then_only_labelled_and_started():
    vms = [{"name": "web-1", "golden_vm": "gold", "labels": {"tier": "web"}},
           {"name": "web-2", "namespace": "other", "run_strategy": "Halted"},
           {"name": "db", "golden_vm": None, "memory": "2Gi"},
           {"name": "old", "state": "absent"}]
    defaults = {"golden_vm": "base", "memory": "1Gi", "labels": {"fleet": "a"}}
    plan = p.vm_provision_plan(vms, "ns", defaults, validate=True)
    assert plan["clones"] == [{"name": "web-1-clone", "vm": "gold", "target": "web-1", "namespace": "ns"},
                              {"name": "web-2-clone", "vm": "base", "target": "web-2", "namespace": "other"}]
    # a cloned VM keeps no template option (it would replace the cloned spec) and runs, as a new VM would
    assert plan["vms"][0] == {"name": "web-1", "namespace": "ns", "labels": {"fleet": "a", "tier": "web"},
                              "run_strategy": "Always"}
    assert plan["vms"][1] == {"name": "web-2", "namespace": "other", "labels": {"fleet": "a"},
                              "run_strategy": "Halted"}
    assert plan["vms"][2]["memory"] == "2Gi" and "golden_vm" not in plan["vms"][2]   # an empty golden_vm opts out
    assert plan["errors"] == []
    assert p.vm_provision_plan([{"name": "solo", "memory": "1Gi"}])["clones"] == []
