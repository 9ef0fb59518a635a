"""Create or delete a namespace for a molecule scenario (the collection has no namespace module).

Usage: namespace.py create|delete NAME. Connection as the collection's modules: K8S_AUTH_HOST and
K8S_AUTH_API_KEY (with K8S_AUTH_SSL_CA_CERT), else KUBECONFIG / ~/.kube/config. delete waits until the
namespace is gone (at most 120 s). Prints "changed" when it changed something.
"""
import os
import sys
import time

from kubernetes import client, config
from kubernetes.client.rest import ApiException


def api():
    host = os.environ.get("K8S_AUTH_HOST")
    if host:
        conf = client.Configuration()
        conf.host = host
        conf.api_key = {"authorization": "Bearer " + os.environ.get("K8S_AUTH_API_KEY", "")}
        conf.ssl_ca_cert = os.environ.get("K8S_AUTH_SSL_CA_CERT") or None
        conf.verify_ssl = os.environ.get("K8S_AUTH_VERIFY_SSL", "true").lower() not in ("false", "no", "0")
        return client.CoreV1Api(client.ApiClient(conf))
    config.load_kube_config(context=os.environ.get("K8S_AUTH_CONTEXT"))
    return client.CoreV1Api()


def main(action, name):
    core = api()
    if action == "create":
        try:
            core.create_namespace({"metadata": {"name": name, "labels": {"virtops.kubevirt/test": "molecule"}}})
            print("changed")
        except ApiException as exc:
            if exc.status != 409:
                raise SystemExit("cannot create namespace %s: %s" % (name, exc.reason))
        return
    try:
        core.delete_namespace(name)
        print("changed")
    except ApiException as exc:
        if exc.status == 404:
            return
        raise SystemExit("cannot delete namespace %s: %s" % (name, exc.reason))
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            core.read_namespace(name)
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        time.sleep(1)
    raise SystemExit("namespace %s is still terminating after 120 s" % name)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("create", "delete"):
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
