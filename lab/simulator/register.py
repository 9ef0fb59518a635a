"""Register the simulator with the control plane (server-side apply, idempotent): namespace
kubevirt, Service virt-api (ExternalName localhost), APIService v1.subresources.kubevirt.io,
the validating webhooks, and KubeVirt's aggregated ClusterRoles."""
import base64
import logging

from .kube import APISERVICE, CLUSTERROLE, MWC, NAMESPACE, SERVICE, VWC
from .webhooks import MUTATING_WEBHOOKS, WEBHOOKS

log = logging.getLogger("simulator.register")

SUBRESOURCES_VM = ["virtualmachines/start", "virtualmachines/stop", "virtualmachines/restart",
                   "virtualmachines/migrate", "virtualmachines/addvolume", "virtualmachines/removevolume",
                   "virtualmachines/memorydump", "virtualmachines/removememorydump", "virtualmachines/portforward",
                   "virtualmachines/expand-spec"]
SUBRESOURCES_VMI = ["virtualmachineinstances/console", "virtualmachineinstances/vnc",
                    "virtualmachineinstances/vnc/screenshot", "virtualmachineinstances/portforward",
                    "virtualmachineinstances/guestosinfo", "virtualmachineinstances/filesystemlist",
                    "virtualmachineinstances/userlist", "virtualmachineinstances/pause",
                    "virtualmachineinstances/unpause", "virtualmachineinstances/addvolume",
                    "virtualmachineinstances/removevolume", "virtualmachineinstances/freeze",
                    "virtualmachineinstances/unfreeze", "virtualmachineinstances/softreboot",
                    "virtualmachineinstances/reset"]
KUBEVIRT_RESOURCES = ["virtualmachines", "virtualmachineinstances", "virtualmachineinstancepresets",
                      "virtualmachineinstancereplicasets", "virtualmachineinstancemigrations"]

SNAPSHOT_RESOURCES = ["virtualmachinesnapshots", "virtualmachinesnapshotcontents", "virtualmachinerestores"]


def cluster_roles():
    edit_rules = [
        {"apiGroups": ["subresources.kubevirt.io"], "resources": SUBRESOURCES_VM + SUBRESOURCES_VMI,
         "verbs": ["get", "update"]},
        {"apiGroups": ["kubevirt.io"], "resources": KUBEVIRT_RESOURCES,
         "verbs": ["get", "delete", "create", "update", "patch", "list", "watch", "deletecollection"]},
        {"apiGroups": ["cdi.kubevirt.io"], "resources": ["datavolumes", "datasources"],
         "verbs": ["get", "delete", "create", "update", "patch", "list", "watch", "deletecollection"]},
        {"apiGroups": ["instancetype.kubevirt.io"], "resources": [
            "virtualmachineinstancetypes", "virtualmachinepreferences"], "verbs": ["get", "delete", "create",
                                                                                   "update", "patch", "list", "watch"]},
        {"apiGroups": ["instancetype.kubevirt.io"], "resources": [
            "virtualmachineclusterinstancetypes", "virtualmachineclusterpreferences"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["k8s.cni.cncf.io"], "resources": ["network-attachment-definitions"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["pool.kubevirt.io"], "resources": ["virtualmachinepools"],
         "verbs": ["get", "delete", "create", "update", "patch", "list", "watch", "deletecollection"]},
        {"apiGroups": ["migrations.kubevirt.io"], "resources": ["migrationpolicies"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["snapshot.kubevirt.io"], "resources": SNAPSHOT_RESOURCES,
         "verbs": ["get", "delete", "create", "update", "patch", "list", "watch", "deletecollection"]},
    ]
    view_rules = [
        {"apiGroups": ["subresources.kubevirt.io"], "resources": [
            "virtualmachineinstances/guestosinfo", "virtualmachineinstances/filesystemlist",
            "virtualmachineinstances/userlist", "virtualmachines/expand-spec"], "verbs": ["get"]},
        {"apiGroups": ["kubevirt.io"], "resources": KUBEVIRT_RESOURCES, "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["cdi.kubevirt.io"], "resources": ["datavolumes", "datasources"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["instancetype.kubevirt.io"], "resources": [
            "virtualmachineinstancetypes", "virtualmachinepreferences", "virtualmachineclusterinstancetypes",
            "virtualmachineclusterpreferences"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["pool.kubevirt.io"], "resources": ["virtualmachinepools"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["migrations.kubevirt.io"], "resources": ["migrationpolicies"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["snapshot.kubevirt.io"], "resources": SNAPSHOT_RESOURCES, "verbs": ["get", "list", "watch"]},
    ]

    def role(name, rules, aggregate):
        return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": name, "labels": {f"rbac.authorization.k8s.io/aggregate-to-{a}": "true"
                                                      for a in aggregate} | {"kubevirt.io": ""}},
                "rules": rules}
    return [role("kubevirt.io:admin", edit_rules, ["admin"]), role("kubevirt.io:edit", edit_rules, ["edit"]),
            role("kubevirt.io:view", view_rules, ["view"])]


def objects(sim):
    args = sim.args
    port = sim.port
    with open(args.ca_bundle, "rb") as fh:
        ca = base64.b64encode(fh.read()).decode()
    host = args.listen.rsplit(":", 1)[0]
    objs = [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": "kubevirt", "labels": {"kubevirt.io": "", "app.kubernetes.io/managed-by": "virtops-lab"}}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "virt-api", "namespace": "kubevirt", "labels": {"kubevirt.io": "virt-api"}},
         "spec": {"type": "ExternalName", "externalName": "localhost",
                  "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}},
        {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
         "metadata": {"name": "v1.subresources.kubevirt.io", "labels": {"kubevirt.io": "virt-api"}},
         "spec": {"group": "subresources.kubevirt.io", "version": "v1", "caBundle": ca,
                  "service": {"namespace": "kubevirt", "name": "virt-api", "port": port},
                  "groupPriorityMinimum": 1000, "versionPriority": 15}},
    ]
    hooks = []
    for path, name, rules, expression in WEBHOOKS + MUTATING_WEBHOOKS:
        hook = {"name": name, "admissionReviewVersions": ["v1"], "sideEffects": "None", "failurePolicy": "Fail",
                "timeoutSeconds": 10, "matchPolicy": "Equivalent", "rules": [dict(r, scope="*") for r in rules],
                "clientConfig": {"url": f"https://{host}:{port}{path}", "caBundle": ca}}
        if expression:
            # as KubeVirt exempts its own service accounts from the immutability rules
            hook["matchConditions"] = [{"name": "not-the-simulator",
                                        "expression": f"request.userInfo.username != '{sim.user}'"},
                                       {"name": "spec-changed", "expression": expression}]
        hooks.append(hook)
    mutating = {name for _path, name, _rules, _expr in MUTATING_WEBHOOKS}
    objs.append({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
                 "metadata": {"name": "virt-api-mutator", "labels": {"kubevirt.io": "virt-api"}},
                 "webhooks": [dict(h, reinvocationPolicy="Never") for h in hooks if h["name"] in mutating]})
    hooks = [h for h in hooks if h["name"] not in mutating]
    kubevirt_hooks = [h for h in hooks if h["name"].endswith(".kubevirt.io") and "cdi" not in h["name"]]
    cdi_hooks = [h for h in hooks if "cdi" in h["name"]]
    objs.append({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                 "metadata": {"name": "virt-api-validator", "labels": {"kubevirt.io": "virt-api"}},
                 "webhooks": kubevirt_hooks})
    objs.append({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                 "metadata": {"name": "cdi-api-datavolume-validate", "labels": {"cdi.kubevirt.io": ""}},
                 "webhooks": cdi_hooks})
    objs += cluster_roles()
    return objs


async def register(sim):
    kinds = {"Namespace": NAMESPACE, "Service": SERVICE, "APIService": APISERVICE,
             "ValidatingWebhookConfiguration": VWC, "MutatingWebhookConfiguration": MWC, "ClusterRole": CLUSTERROLE}
    for obj in objects(sim):
        await sim.kube.apply(kinds[obj["kind"]], obj)
    log.info("registered APIService v1.subresources.kubevirt.io and webhooks on port %d", sim.port)
