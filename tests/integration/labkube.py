"""Test fixtures in the lab for the integration playbooks: namespaces, a NAD, a ServiceAccount token.

    labkube.py ns-create NAME            namespace + Multus NAD br1-net (bridge, host-local IPAM)
    labkube.py ns-delete NAME            delete the namespace (does not wait)
    labkube.py sa-token NAME NS [ROLE]   ServiceAccount NAME in NS bound to cluster-admin (or, given a ClusterRole
                                         ROLE, to ROLE in NS only); prints a TokenRequest token (1 h)
    labkube.py sa-delete NAME NS         delete the ServiceAccount's ClusterRoleBinding
Uses $KUBECONFIG (the lab's admin kubeconfig).
"""
import json
import sys

from kubernetes import client, config
from kubernetes.client.rest import ApiException

NAD_CONFIG = {"cniVersion": "0.3.1", "name": "br1-net", "type": "bridge", "bridge": "br1",
              "ipam": {"type": "host-local", "subnet": "192.168.50.0/24"}}


def main(argv):
    config.load_kube_config()
    core = client.CoreV1Api()
    custom = client.CustomObjectsApi()
    rbac = client.RbacAuthorizationV1Api()
    cmd = argv[1]
    if cmd == "ns-create":
        name = argv[2]
        try:
            core.create_namespace({"metadata": {"name": name, "labels": {"virtops-test": "integration"}}})
        except ApiException as exc:
            if exc.status != 409:
                raise
        nad = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
               "metadata": {"name": "br1-net", "namespace": name,
                            "annotations": {"k8s.v1.cni.cncf.io/resourceName": "bridge.network.kubevirt.io/br1"}},
               "spec": {"config": json.dumps(NAD_CONFIG)}}
        try:
            custom.create_namespaced_custom_object("k8s.cni.cncf.io", "v1", name, "network-attachment-definitions", nad)
        except ApiException as exc:
            if exc.status != 409:
                raise
    elif cmd == "ns-delete":
        try:
            core.delete_namespace(argv[2])
        except ApiException as exc:
            if exc.status != 404:
                raise
    elif cmd == "sa-token":
        name, ns = argv[2], argv[3]
        try:
            core.create_namespaced_service_account(ns, {"metadata": {"name": name}})
        except ApiException as exc:
            if exc.status != 409:
                raise
        role = argv[4] if len(argv) > 4 else "cluster-admin"
        binding = {"metadata": {"name": "virtops-it-%s-%s" % (ns, name)},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                   "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]}
        try:
            if len(argv) > 4:
                rbac.create_namespaced_role_binding(ns, binding)
            else:
                rbac.create_cluster_role_binding(binding)
        except ApiException as exc:
            if exc.status != 409:
                raise
        token = core.create_namespaced_service_account_token(name, ns, {"spec": {"expirationSeconds": 3600}})
        print(token.status.token)
    elif cmd == "sa-delete":
        try:
            rbac.delete_cluster_role_binding("virtops-it-%s-%s" % (argv[3], argv[2]))
        except ApiException as exc:
            if exc.status != 404:
                raise
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
