"""Issue 2 acceptance: the lab's control plane is real Kubernetes and behaves like it."""
import json
import re
import ssl
import time
import urllib.request
from pathlib import Path

import pytest
from kubernetes import client

REPO = Path(__file__).resolve().parents[2]


def _k8s_version_from_go_mod():
    text = (REPO / "lab" / "controlplane" / "go.mod").read_text()
    return re.search(r"^\tk8s.io/kubernetes (v[0-9.]+)$", text, re.M).group(1)


def test_readyz_is_ok(get_json):
    assert get_json("/readyz") == "ok"


def test_version_is_the_real_kubernetes_version(api):
    info = client.VersionApi(api).get_code()
    expected = _k8s_version_from_go_mod()
    assert info.git_version == expected
    assert (info.major, info.minor) == ("1", expected.split(".")[1])
    assert info.git_tree_state == "clean"


def test_anonymous_readyz_over_tls_with_the_lab_ca(lab_state, lab_info):
    ctx = ssl.create_default_context(cafile=str(lab_state / "pki" / "ca.crt"))
    with urllib.request.urlopen(lab_info["apiserver"]["url"] + "/readyz", context=ctx, timeout=5) as r:
        assert r.status == 200


@pytest.mark.parametrize("group_version,plural", [
    ("kubevirt.io/v1", "virtualmachines"),
    ("kubevirt.io/v1", "virtualmachineinstances"),
    ("kubevirt.io/v1", "virtualmachineinstancemigrations"),
    ("cdi.kubevirt.io/v1beta1", "datavolumes"),
    ("k8s.cni.cncf.io/v1", "network-attachment-definitions"),
    ("instancetype.kubevirt.io/v1beta1", "virtualmachineclusterinstancetypes"),
    ("snapshot.kubevirt.io/v1beta1", "virtualmachinesnapshots"),
    # the rest of what KubeVirt v1.8 and CDI v1.64 serve (issue 15)
    ("kubevirt.io/v1", "virtualmachineinstancereplicasets"),
    ("kubevirt.io/v1", "virtualmachineinstancepresets"),
    ("kubevirt.io/v1", "kubevirts"),
    ("kubevirt.io/v1alpha3", "virtualmachines"),
    ("pool.kubevirt.io/v1beta1", "virtualmachinepools"),
    ("pool.kubevirt.io/v1alpha1", "virtualmachinepools"),
    ("migrations.kubevirt.io/v1alpha1", "migrationpolicies"),
    ("clone.kubevirt.io/v1beta1", "virtualmachineclones"),
    ("export.kubevirt.io/v1beta1", "virtualmachineexports"),
    ("backup.kubevirt.io/v1alpha1", "virtualmachinebackups"),
    ("backup.kubevirt.io/v1alpha1", "virtualmachinebackuptrackers"),
    ("snapshot.kubevirt.io/v1beta1", "virtualmachinesnapshotcontents"),
    ("cdi.kubevirt.io/v1beta1", "dataimportcrons"),
    ("cdi.kubevirt.io/v1beta1", "storageprofiles"),
    ("cdi.kubevirt.io/v1beta1", "datasources"),
])
def test_discovery_lists_resource(get_json, group_version, plural):
    resp = get_json(f"/apis/{group_version}")
    names = {r["name"] for r in resp["resources"]}
    assert plural in names


def _vm(name, run_strategy):
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": name},
            "spec": {"runStrategy": run_strategy, "template": {"spec": {
                "domain": {"devices": {}, "memory": {"guest": "128Mi"}}}}}}


def test_run_strategy_sometimes_is_rejected_by_the_webhook_as_kubevirt_does(custom, namespace):
    """KubeVirt's schema has no enum for runStrategy; vms-admitter.go validateRunStrategy refuses it."""
    with pytest.raises(client.ApiException) as exc:
        custom.create_namespaced_custom_object("kubevirt.io", "v1", namespace, "virtualmachines",
                                               _vm("bad", "Sometimes"))
    assert exc.value.status == 422
    status = json.loads(exc.value.body)
    assert status["reason"] == "Invalid"
    assert status["details"]["causes"][0]["field"] == "spec.runStrategy"
    assert status["message"] == ('admission webhook "virtualmachine-validator.kubevirt.io" denied the request: '
                                 "Invalid RunStrategy (Sometimes)")


def _wait_gone(read, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            read()
        except client.ApiException as exc:
            if exc.status == 404:
                return True
            raise
        time.sleep(0.2)
    return False


def test_namespace_with_objects_is_deleted(core, custom):
    name = f"t-nsdel-{int(time.time() * 1000) % 100000}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    core.create_namespaced_config_map(name, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm"), data={"a": "b"}))
    custom.create_namespaced_custom_object("k8s.cni.cncf.io", "v1", name, "network-attachment-definitions",
                                           {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
                                            "metadata": {"name": "br1"}, "spec": {"config": "{}"}})
    core.delete_namespace(name)
    assert _wait_gone(lambda: core.read_namespace(name)), "namespace stayed Terminating"


def test_dependent_is_garbage_collected(core, namespace):
    owner = core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner")))
    ref = client.V1OwnerReference(api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid)
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="dependent", owner_references=[ref])))
    core.delete_namespaced_config_map("owner", namespace)
    assert _wait_gone(lambda: core.read_namespaced_config_map("dependent", namespace)), "dependent not collected"


def test_service_account_with_only_get_cannot_create(api, core, namespace, lab_state, lab_info):
    rbac = client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="reader")))
    rbac.create_namespaced_role(namespace, client.V1Role(
        metadata=client.V1ObjectMeta(name="vm-get"),
        rules=[client.V1PolicyRule(api_groups=["kubevirt.io"], resources=["virtualmachines"], verbs=["get"])]))
    rbac.create_namespaced_role_binding(namespace, client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="vm-get"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="vm-get"),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=namespace)]))
    token = core.create_namespaced_service_account_token(
        "reader", namespace, client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(
            audiences=[], expiration_seconds=600))).status.token
    cfg = client.Configuration(host=lab_info["apiserver"]["url"], api_key={"authorization": token},
                               api_key_prefix={"authorization": "Bearer"})
    cfg.ssl_ca_cert = str(lab_state / "pki" / "ca.crt")
    sa_custom = client.CustomObjectsApi(client.ApiClient(cfg))
    with pytest.raises(client.ApiException) as denied:
        sa_custom.create_namespaced_custom_object("kubevirt.io", "v1", namespace, "virtualmachines", _vm("x", "Halted"))
    assert denied.value.status == 403
    message = json.loads(denied.value.body)["message"]
    assert message.startswith(f'virtualmachines.kubevirt.io is forbidden: User "system:serviceaccount:{namespace}:reader" '
                              'cannot create resource "virtualmachines" in API group "kubevirt.io"')
    # get is allowed: the object is missing (404), not forbidden
    with pytest.raises(client.ApiException) as missing:
        sa_custom.get_namespaced_custom_object("kubevirt.io", "v1", namespace, "virtualmachines", "x")
    assert missing.value.status == 404


def test_default_storage_class(api):
    classes = {sc.metadata.name: sc for sc in client.StorageV1Api(api).list_storage_class().items}
    assert classes["lab-local"].metadata.annotations["storageclass.kubernetes.io/is-default-class"] == "true"
    assert classes["lab-wffc"].volume_binding_mode == "WaitForFirstConsumer"
