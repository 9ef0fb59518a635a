import pytest

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import errors
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.errors import ApiError

REF = "VirtualMachine demo/web1"


@pytest.mark.parametrize("status, body, expected", [
    (404, {"reason": "NotFound", "message": 'namespaces "nope" not found',
           "details": {"name": "nope", "kind": "namespaces"}},
     "Could not create VirtualMachine demo/web1: namespace 'nope' does not exist; create the namespace first, or "
     "check the namespace option."),
    (404, {"reason": "NotFound", "message": "the server could not find the requested resource"},
     "Could not create VirtualMachine demo/web1: the server could not find the requested resource; check that "
     "KubeVirt (and CDI/Multus for those kinds) is installed"),
    (403, {"reason": "Forbidden", "message": 'virtualmachines.kubevirt.io "web1" is forbidden: User "x" cannot '
                                             'create resource "virtualmachines"'},
     'Could not create VirtualMachine demo/web1: virtualmachines.kubevirt.io "web1" is forbidden: User "x" cannot '
     'create resource "virtualmachines"; grant that permission'),
    (401, {"reason": "Unauthorized", "message": "Unauthorized"},
     "Could not create VirtualMachine demo/web1: Unauthorized; check api_key / the kubeconfig user, and that the "
     "token has not expired."),
    (422, {"reason": "Invalid", "message": 'VirtualMachine.kubevirt.io "web1" is invalid',
           "details": {"causes": [{"field": "spec.template.spec.domain.memory.guest",
                                   "message": "quantities must match the regular expression "
                                              "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"}]}},
     "(spec.template.spec.domain.memory.guest: quantities must match"),
    (422, {"reason": "Invalid", "message": "x", "details": {"causes": [{"field": "f", "message": "quantities bad"}]}},
     "write sizes as Kubernetes quantities such as 2Gi"),
    (409, {"reason": "AlreadyExists", "message": "already exists"}, "choose another name"),
    (409, {"reason": "Conflict", "message": "the object has been modified"}, "run the task again"),
    (503, {"reason": "ServiceUnavailable", "message": "busy"}, "retry later (1 attempt made)"),
    (400, {"reason": "BadRequest", "message": 'admission webhook "vm.kubevirt.io" denied the request: '
                                              "Masquerade interface only implemented with pod network"},
     'denied the request: Masquerade interface only implemented with pod network.'),
    (500, "plain text failure", "plain text failure"),
])
def test_describe(status, body, expected):
    err = ApiError(status, "PATCH", "https://h/x", body)
    text = errors.describe(err, "create", REF)
    assert expected in text
    assert text.endswith(".") and "\n" not in text


def test_describe_passes_other_errors_through():
    assert errors.describe(errors.InputError("bad input."), "create", REF) == "bad input."


def test_api_error_str_and_flags():
    err = ApiError(404, "GET", "https://h/x", {"reason": "NotFound", "message": "gone"})
    assert str(err) == "GET https://h/x answered 404 NotFound: gone."
    assert err.not_found and not err.conflict


def test_api_error_str_is_one_sentence_naming_verb_and_resource():
    message = ('virtualmachineinstances.kubevirt.io is forbidden: User "system:serviceaccount:ns:sa" cannot list '
               'resource "virtualmachineinstances" in API group "kubevirt.io" in the namespace "ns"')
    err = ApiError(403, "GET", "https://h/apis/kubevirt.io/v1/namespaces/ns/virtualmachineinstances",
                   {"kind": "Status", "reason": "Forbidden", "message": message, "code": 403})
    text = str(err)
    assert message in text and "see docs/rbac.md" in text
    assert text.endswith(".") and text.count(". ") == 0 and "\n" not in text


def test_one_line():
    assert errors.one_line("a\n  b\tc") == "a b c"
    assert errors.one_line("x" * 500, 10) == "xxxxxxx..."


def test_apply_with_a_field_the_schema_lacks_is_not_blamed_on_the_server():
    body = {"reason": "", "message": "failed to create typed patch object (demo/web1; kubevirt.io/v1, "
                                     "Kind=VirtualMachine): .spec.template.spec.domain.cpuu: field not declared in schema"}
    text = errors.describe(ApiError(500, "PATCH", "https://x/apis", body, attempts=1), "create", REF)
    assert text == ("Could not create VirtualMachine demo/web1: .spec.template.spec.domain.cpuu: field not declared "
                    "in schema; a field is not in the schema of the object: check its name and place in spec or "
                    "definition (kubectl explain shows the schema).")


def test_a_cause_that_repeats_the_message_is_not_repeated():
    text = "spec.volumes[0].cloudInitNoCloud userdata exceeds 2048 byte limit. Should use UserDataSecretRef."
    body = {"reason": "Invalid", "message": 'admission webhook "v.kubevirt.io" denied the request: ' + text[:-1],
            "details": {"causes": [{"message": text}]}}
    assert errors.describe(ApiError(422, "PATCH", "u", body), "create", REF) == (
        'Could not create VirtualMachine demo/web1: admission webhook "v.kubevirt.io" denied the request: ' + text)


def test_a_subresource_500_relays_virt_handler_and_is_not_blamed_on_the_server():
    """virt-api answers a failed guest operation (soft reboot through the agent...) with 500 and the
    guest's or virt-handler's words: they are the reason, not an overloaded API server."""
    url = "https://api:6443/apis/subresources.kubevirt.io/v1/namespaces/ns/virtualmachineinstances/web/softreboot"
    err = ApiError(500, "PUT", url, {"kind": "Status", "code": 500, "reason": "InternalError",
                                     "message": "Internal error occurred: guest agent guest-shutdown: timed out"})
    text = errors.describe(err, "soft reboot", "VirtualMachineInstance ns/web")
    assert text == ("Could not soft reboot VirtualMachineInstance ns/web: Internal error occurred: guest agent "
                    "guest-shutdown: timed out.")
    core = ApiError(500, "GET", "https://api:6443/api/v1/namespaces/ns/pods", {"message": "etcdserver: timeout"})
    assert "overloaded or failing" in errors.describe(core, "read", "pods")
