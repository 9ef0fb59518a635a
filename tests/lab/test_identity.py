"""Who a task runs as (issue 14): an explicit ServiceAccount token given as api_key - option or
K8S_AUTH_API_KEY - with the lab's admin kubeconfig present and no host runs as that ServiceAccount.
Before, the kubeconfig's admin client certificate went along with the token and the API server
authenticated the certificate: the task ran as admin. The ServiceAccount may read VMs and VMIs in
one namespace only, so in the other namespace it is Forbidden where the admin succeeds."""
import uuid

import pytest
from kubernetes import client

from faulthelp import ansible_env, run_playbook


@pytest.fixture(scope="module")
def reader(api, core):
    """(allowed namespace, other namespace, token of a ServiceAccount that may read VMs/VMIs in the first)."""
    allowed, other = ("id-%s" % uuid.uuid4().hex[:8] for _ in range(2))
    rbac = client.RbacAuthorizationV1Api(api)
    for ns in (allowed, other):
        core.create_namespace({"metadata": {"name": ns, "labels": {"virtops.io/test": "true"}}})
    try:
        core.create_namespaced_service_account(allowed, {"metadata": {"name": "reader"}})
        rbac.create_namespaced_role(allowed, {"metadata": {"name": "reader"}, "rules": [
            {"apiGroups": ["kubevirt.io"], "resources": ["virtualmachines", "virtualmachineinstances"],
             "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["pods", "events"], "verbs": ["get", "list"]}]})
        rbac.create_namespaced_role_binding(allowed, {
            "metadata": {"name": "reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": allowed}]})
        token = core.create_namespaced_service_account_token(
            "reader", allowed, {"spec": {"expirationSeconds": 600}}).status.token
        yield allowed, other, token
    finally:
        for ns in (allowed, other):
            core.delete_namespace(ns)


def test_api_key_without_host_runs_as_that_identity(reader, kubeconfig, tmp_path):
    allowed, other, token = reader
    sa = "system:serviceaccount:%s:reader" % allowed
    tasks = [
        {"name": "admin", "virtops.kubevirt.vm_info": {"namespace": other}},
        {"name": "token option, allowed", "virtops.kubevirt.vm_info": {"namespace": allowed, "api_key": token}},
        {"name": "token option", "virtops.kubevirt.vm_info": {"namespace": other, "api_key": token},
         "ignore_errors": True},
        {"name": "token env", "virtops.kubevirt.vm_info": {"namespace": other}, "ignore_errors": True,
         "environment": {"K8S_AUTH_API_KEY": token}},
        {"name": "guest agent", "virtops.kubevirt.guest_info": {"name": "x", "namespace": other, "api_key": token},
         "ignore_errors": True},
        {"name": "console", "virtops.kubevirt.console": {"name": "x", "namespace": other, "type": "vnc",
                                                          "api_key": token}, "ignore_errors": True},
        {"name": "lookup", "ansible.builtin.debug": {
            "msg": "{{ query('virtops.kubevirt.vm', namespace='%s', api_key='%s') }}" % (other, token)},
         "ignore_errors": True},
    ]
    result = run_playbook(tmp_path, [{"hosts": "localhost", "gather_facts": False, "tasks": tasks}],
                          env=ansible_env(KUBECONFIG=kubeconfig))
    def failed(task):
        return task.get("failed") or task.get("_status") == "failed"

    assert not failed(result.task("admin")), result.explain()
    assert not failed(result.task("token option, allowed")), result.explain()
    for name in ("token option", "token env", "guest agent", "console", "lookup"):
        task = result.task(name)
        assert failed(task), (name, result.explain())
        assert 'User "%s" cannot' % sa in task["msg"], (name, task["msg"])
        assert token not in task["msg"]
    assert token not in result.stdout + result.stderr
