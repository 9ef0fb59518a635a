"""Fixtures of the inventory integration target, made with the lab's admin kubeconfig ($KUBECONFIG).

    fixtures.py setup NS DENY     in NS: a ServiceAccount inv-reader with a Role that may list VMs, VMIs
                                  and Services there only, a NodePort Service for SSH (app=inv-web) and a
                                  LoadBalancer for WinRM (app=inv-win, no ingress in the lab); namespace DENY
                                  with a VM the ServiceAccount may not see. Prints JSON: token, node ports,
                                  node addresses.
    fixtures.py cleanup DENY      delete namespace DENY
"""
import json
import sys

from kubernetes import client, config
from kubernetes.client.rest import ApiException


def ignore_conflict(fn, *args):
    try:
        return fn(*args)
    except ApiException as exc:
        if exc.status != 409:
            raise
        return None


def service(core, ns, name, stype, app, port):
    body = {"metadata": {"name": name}, "spec": {"type": stype, "selector": {"app": app},
                                                 "ports": [{"name": name, "port": port, "targetPort": port}]}}
    ignore_conflict(core.create_namespaced_service, ns, body)
    return core.read_namespaced_service(name, ns).spec.ports[0].node_port


def setup(ns, deny):
    core, rbac, custom = client.CoreV1Api(), client.RbacAuthorizationV1Api(), client.CustomObjectsApi()
    ignore_conflict(core.create_namespace, {"metadata": {"name": deny, "labels": {"virtops-test": "integration"}}})
    hidden = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": "hidden"},
              "spec": {"runStrategy": "Halted", "template": {"spec": {
                  "domain": {"memory": {"guest": "128Mi"}, "devices": {}}}}}}
    ignore_conflict(custom.create_namespaced_custom_object, "kubevirt.io", "v1", deny, "virtualmachines", hidden)
    ignore_conflict(core.create_namespaced_service_account, ns, {"metadata": {"name": "inv-reader"}})
    role = {"metadata": {"name": "inv-reader"}, "rules": [
        {"apiGroups": ["kubevirt.io"], "resources": ["virtualmachines", "virtualmachineinstances"],
         "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["services"], "verbs": ["list"]}]}
    ignore_conflict(rbac.create_namespaced_role, ns, role)
    binding = {"metadata": {"name": "inv-reader"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "inv-reader"},
               "subjects": [{"kind": "ServiceAccount", "name": "inv-reader", "namespace": ns}]}
    ignore_conflict(rbac.create_namespaced_role_binding, ns, binding)
    token = core.create_namespaced_service_account_token("inv-reader", ns, {"spec": {"expirationSeconds": 3600}})
    nodes = {}
    for node in core.list_node().items:
        for address in node.status.addresses or []:
            if address.type == "InternalIP":
                nodes[node.metadata.name] = address.address
    print(json.dumps({
        "token": token.status.token,
        "ssh_node_port": service(core, ns, "inv-web-ssh", "NodePort", "inv-web", 22),
        "winrm_node_port": service(core, ns, "inv-win-winrm", "LoadBalancer", "inv-win", 5986),
        "node_ips": nodes,
    }))


def cleanup(deny):
    try:
        client.CoreV1Api().delete_namespace(deny)
    except ApiException as exc:
        if exc.status != 404:
            raise


def main(argv):
    config.load_kube_config()
    if argv[1:2] == ["setup"] and len(argv) == 4:
        setup(argv[2], argv[3])
    elif argv[1:2] == ["cleanup"] and len(argv) == 3:
        cleanup(argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
