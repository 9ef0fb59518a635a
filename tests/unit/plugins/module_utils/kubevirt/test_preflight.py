"""kubevirt/preflight.py: what a VM, VMI or volume names, read before the first write."""
import pytest
from kvfakes import FakeClient

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import resources as res
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import ApiError, InputError, KubevirtError
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import preflight
from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import spec as vmspec

SC = res.BY_KIND["StorageClass"]
OWNER = "VirtualMachine demo/web1"


def vm(**params):
    return vmspec.build_vm(dict({"memory": "1Gi"}, **params), "web1", "demo")


def kinds(refs):
    return [(r.resource if r.resource is preflight.BINDING else r.resource.kind, r.namespace, r.name, r.where)
            for r in refs]


def test_references_of_a_vm():
    obj = vm(disks=[{"name": "root", "pvc": "root-pvc"}, {"name": "data", "data_volume": "dv1"},
                    {"name": "new", "data_volume_template": {"size": "1Gi", "storage_class": "fast"}}],
             networks=[{"name": "default"}, {"name": "br", "network_name": "other/br1-net", "binding": "passt"}])
    obj["spec"]["instancetype"] = {"name": "u1.small"}
    obj["spec"]["preference"] = {"name": "fedora", "kind": "VirtualMachinePreference"}
    assert kinds(preflight.references(obj)) == [
        ("VirtualMachineClusterInstancetype", None, "u1.small", "instancetype"),
        ("VirtualMachinePreference", "demo", "fedora", "preference"),
        ("PersistentVolumeClaim", "demo", "root-pvc", "volume 'root'"),
        ("DataVolume", "demo", "dv1", "volume 'data'"),
        ("StorageClass", None, "fast", "storage class of volume 'new'"),
        ("NetworkAttachmentDefinition", "other", "br1-net", "network 'br'"),
        (preflight.BINDING, None, "passt", "network 'br'"),
    ]


@pytest.mark.parametrize("matcher", [
    {"inferFromVolume": "root"}, {"name": "u1.small", "inferFromVolume": "root"},
    {"name": "u1.small", "revisionName": "web1-u1.small-1"},
])
def test_instancetypes_that_name_no_object_are_not_checked(matcher):
    obj = vm()
    obj["spec"]["instancetype"] = matcher
    assert preflight.references(obj) == []


def test_references_of_volumes():
    dv = {"kind": "DataVolume", "metadata": {"namespace": "demo"}, "spec": {"storage": {"storageClassName": "x"}}}
    pvc = {"kind": "PersistentVolumeClaim", "metadata": {"namespace": "demo"}, "spec": {"storageClassName": "y"}}
    assert kinds(preflight.references(dv)) == [("StorageClass", None, "x", "storage_class")]
    assert kinds(preflight.references(pvc)) == [("StorageClass", None, "y", "storage_class")]
    assert preflight.references({"kind": "DataVolume", "spec": {"pvc": {}}}) == []


def put_sc(client, name):
    client.put({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name}})


def put_kubevirt(client, bindings):
    client.put({"apiVersion": "kubevirt.io/v1", "kind": "KubeVirt", "metadata": {"name": "kubevirt",
                "namespace": "kubevirt"}, "spec": {"configuration": {"network": {"binding": bindings}}}})


def test_missing_storage_class_names_the_option_and_the_ones_there_are():
    client = FakeClient()
    put_sc(client, "lab-local")
    put_sc(client, "lab-wffc")
    template = {"size": "1Gi", "storage_class": "nosuch"}
    refs = preflight.references(vm(disks=[{"name": "data", "data_volume_template": template}]))
    warnings = []
    assert preflight.check(client, {refs[0]: [OWNER]}, False, warnings) == {OWNER: (
        "StorageClass 'nosuch' (storage class of volume 'data' of VirtualMachine demo/web1) does not exist; use one "
        "of lab-local, lab-wffc, or leave the disk's data_volume_template.storage_class out for the cluster's "
        "default storage class.")}
    assert warnings == []
    assert preflight.check(client, {refs[0]: [OWNER]}, True, warnings) == {}
    assert warnings and warnings[0].startswith("StorageClass 'nosuch'")


def test_storage_class_that_exists_passes():
    client = FakeClient()
    put_sc(client, "fast")
    ref = preflight.Ref(SC, None, "fast", "storage_class")
    assert preflight.check(client, {ref: [OWNER]}, False, []) == {}


def forbid(client, monkeypatch, resource, method="get_or_none"):
    real = getattr(client, method)

    def fake(res_, *args, **kw):
        if res_ is resource:
            raise ApiError(403, "GET", "/x", {"reason": "Forbidden", "message": "forbidden here"})
        return real(res_, *args, **kw)
    monkeypatch.setattr(client, method, fake)


def test_cluster_wide_reads_that_are_forbidden_are_skipped_quietly(monkeypatch):
    client = FakeClient()
    forbid(client, monkeypatch, SC)
    forbid(client, monkeypatch, preflight.KUBEVIRT, "list")
    wanted = {preflight.Ref(SC, None, "fast", "storage_class"): [OWNER],
              preflight.Ref(preflight.BINDING, None, "brdge", "network 'br'"): [OWNER]}
    warnings = []
    assert preflight.check(client, wanted, False, warnings) == {} and warnings == []


def test_a_forbidden_namespaced_read_is_a_warning(monkeypatch):
    client = FakeClient()
    forbid(client, monkeypatch, res.PVC)
    warnings = []
    ref = preflight.Ref(res.PVC, "demo", "root", "volume 'root'")
    assert preflight.check(client, {ref: [OWNER]}, False, warnings) == {}
    assert warnings == ["Could not check that PersistentVolumeClaim demo/root exists (forbidden here)."]


def test_missing_instancetype_and_preference():
    client = FakeClient()
    obj = vm()
    obj["spec"]["instancetype"] = {"name": "u1.nosuch"}
    obj["spec"]["preference"] = {"name": "mine", "kind": "VirtualMachinePreference"}
    refs = preflight.references(obj)
    with pytest.raises(KubevirtError) as err:
        preflight.require(client, refs[:1], OWNER, False, [])
    assert str(err.value) == (
        "VirtualMachineClusterInstancetype 'u1.nosuch' (instancetype of VirtualMachine demo/web1) does not exist; "
        "check the name (kubectl get virtualmachineclusterinstancetypes), or set kind: VirtualMachineInstancetype for "
        "one of the VM's namespace.")
    with pytest.raises(KubevirtError, match=r"^VirtualMachinePreference demo/mine \(preference of VirtualMachine "
                                            r"demo/web1\) does not exist; create it in the VM's namespace first"):
        preflight.require(client, refs[1:], OWNER, False, [])
    client.put({"apiVersion": "instancetype.kubevirt.io/v1beta1", "kind": "VirtualMachineClusterInstancetype",
                "metadata": {"name": "u1.nosuch"}})
    client.put({"apiVersion": "instancetype.kubevirt.io/v1beta1", "kind": "VirtualMachinePreference",
                "metadata": {"name": "mine", "namespace": "demo"}})
    preflight.require(client, refs, OWNER, False, [])


def test_binding_plugins_are_checked_against_the_kubevirt_cr():
    client = FakeClient()
    ref = preflight.Ref(preflight.BINDING, None, "brdge", "network 'br'")
    # No KubeVirt CR readable: nothing to check against.
    assert preflight.check(client, {ref: [OWNER]}, False, []) == {}
    put_kubevirt(client, {"passt": {"sidecarImage": "x"}})
    assert preflight.check(client, {ref: [OWNER]}, False, []) == {OWNER: (
        "binding plugin 'brdge' (network 'br' of VirtualMachine demo/web1) is not registered in the cluster's KubeVirt "
        "CR (spec.configuration.network.binding has passt); did you mean bridge? use one of bridge, masquerade, passt, "
        "sriov as the network's binding, or register the plugin first.")}
    passt = preflight.Ref(preflight.BINDING, None, "passt", "network 'br'")
    assert preflight.check(client, {passt: [OWNER]}, False, []) == {}


def test_every_object_is_read_once_for_many_owners():
    client = FakeClient()
    refs = {preflight.Ref(res.PVC, "demo", "shared", "volume 'a'"): ["VirtualMachine demo/a"],
            preflight.Ref(res.PVC, "demo", "shared", "volume 'b'"): ["VirtualMachine demo/b"]}
    problems = preflight.check(client, refs, False, [])
    assert sorted(problems) == ["VirtualMachine demo/a", "VirtualMachine demo/b"]
    assert [c[:2] for c in client.calls] == [("GET", "PersistentVolumeClaim")]


@pytest.mark.parametrize("conditions, networks, problem", [
    (["ready", "ip"], None, None),
    (["ip:default"], None, None),
    (["ip:br1"], [{"name": "default"}, {"name": "br1", "network_name": "br1-net"}], None),
    (["ip:br7"], [{"name": "default"}, {"name": "br1", "network_name": "br1-net"}],
     "wait_for 'ip:br7' names no network of VirtualMachine demo/web1 (its networks: default, br1); use ip:default "
     "or plain ip (the first network)."),
    (["ip:br7"], None, "wait_for 'ip:br7' names no network of VirtualMachine demo/web1 (its networks: default); "
                       "use ip:default or plain ip (the first network)."),
])
def test_wait_for_ip_names_a_network_of_the_vm(conditions, networks, problem):
    assert preflight.wait_network_problem(conditions, vm(networks=networks), OWNER) == problem


def test_kubevirt_attaches_the_pod_network_when_a_spec_names_none():
    bare = {"kind": "VirtualMachine", "spec": {"template": {"spec": {"domain": {"devices": {}}}}}}
    assert preflight.network_names(bare) == ["default"]
    bare["spec"]["template"]["spec"]["domain"]["devices"]["autoattachPodInterface"] = False
    assert preflight.network_names(bare) == []
    with pytest.raises(InputError, match="its networks: none"):
        preflight.require_wait_networks(["ip:default"], bare, OWNER)


def test_access_credential_secrets_must_exist_before_the_write():
    obj = vm(access_credentials=[{"ssh_public_key": {"secret": "keys", "users": ["fedora"]}},
                                 {"user_password": {"secret": "passwords"}}])
    refs = preflight.references(obj)
    assert kinds(refs) == [("Secret", "demo", "keys", "access_credentials[0].ssh_public_key"),
                           ("Secret", "demo", "passwords", "access_credentials[1].user_password")]
    client = FakeClient()
    client.put({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "passwords", "namespace": "demo"}})
    problems = preflight.check(client, {r: ["VirtualMachine demo/web1"] for r in refs}, False, [])
    assert problems == {"VirtualMachine demo/web1": (
        "Secret demo/keys (access_credentials[0].ssh_public_key of VirtualMachine demo/web1) does not exist; create "
        "it in the VM's namespace first (KubeVirt reads it when the VM starts), or check the name.")}


def test_cloud_init_secrets_must_exist_before_the_write():
    obj = vm(cloud_init={"secret": "ci-user", "network_data_secret": "ci-net"})
    assert kinds(preflight.references(obj)) == [("Secret", "demo", "ci-user", "volume 'cloudinit'"),
                                                ("Secret", "demo", "ci-net", "volume 'cloudinit'")]
