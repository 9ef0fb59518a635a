"""kubevirt/redact.py: the one redaction (module results, diffs, lookups, inventory, the monitor report)."""
import pytest

from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import redact


SECRET = "S3cr3t-unit-7731"


def applied_vm(user_data="#cloud-config\npassword: %s\n" % SECRET):
    """A VM as a client-side `kubectl apply` leaves it: its whole spec again in an annotation."""
    import json
    obj = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
           "metadata": {"name": "web1", "namespace": "demo", "annotations": {"team": "a"}},
           "spec": {"template": {"spec": {"volumes": [{"name": "ci", "cloudInitNoCloud": {"userData": user_data}}]}}}}
    obj["metadata"]["annotations"][redact.LAST_APPLIED] = json.dumps(obj)
    return obj


@pytest.mark.parametrize("user_data", [
    "#cloud-config\npassword: %s\n" % SECRET,
    "Content-Type: multipart/mixed\n\n%s\n" % SECRET,  # no cloud-config marker: found by where it is
])
def test_redact_hides_cloud_init_also_in_the_last_applied_annotation(user_data):
    import json
    obj = applied_vm(user_data)
    out = redact.redact(obj)
    assert SECRET not in json.dumps(out)
    applied = json.loads(out["metadata"]["annotations"][redact.LAST_APPLIED])
    assert applied["spec"]["template"]["spec"]["volumes"][0]["cloudInitNoCloud"]["userData"] == redact.REDACTED
    assert out["metadata"]["annotations"]["team"] == "a"
    assert SECRET in json.dumps(obj)  # the input is untouched


def test_redact_by_key_and_by_content_with_a_marker():
    data = {"api_key": SECRET, "K8S_AUTH_API_KEY": SECRET, "cloud_init": {"user": "fedora", "password": SECRET},
            "events": [{"message": "chpasswd: {list: [root:%s]}" % SECRET}], "ssh_authorized_keys": ["ssh-ed25519 A"],
            "empty_password": "", "token": None, "count": 3, "bad_json": {redact.LAST_APPLIED: "{not json " + SECRET}}
    out = redact.redact(data, marker="<x>")
    assert SECRET not in repr(out)
    assert out["api_key"] == out["cloud_init"]["password"] == out["events"][0]["message"] == "<x>"
    assert out["bad_json"][redact.LAST_APPLIED] == "<x>"
    assert out["cloud_init"]["user"] == "fedora" and out["ssh_authorized_keys"] == ["ssh-ed25519 A"]
    assert out["empty_password"] == "" and out["token"] is None and out["count"] == 3


def test_redact_pair_marks_changed_secrets_and_hides_last_applied():
    before, after = applied_vm(), applied_vm("#cloud-config\npassword: other-%s\n" % SECRET)
    b, a = redact.redact_pair(before, after)
    assert SECRET not in repr(b) + repr(a)
    assert a["spec"]["template"]["spec"]["volumes"][0]["cloudInitNoCloud"]["userData"] == redact.REDACTED_CHANGED
    assert b["spec"]["template"]["spec"]["volumes"][0]["cloudInitNoCloud"]["userData"] == redact.REDACTED
    same_b, same_a = redact.redact_pair(before, before)
    assert same_b == same_a


def test_secret_values_are_what_redact_hides():
    values = redact.secret_values(applied_vm())
    assert values == {"#cloud-config\npassword: %s\n" % SECRET}
    assert redact.secret_values({"spec": {"domain": {}}}) == set()


def test_every_consumer_uses_the_one_redaction():
    """Lookups, inventory, module results and the monitor report all hide the last-applied copy."""
    import json
    from ansible_collections.virtops.kubevirt.plugins.filter import monitor
    from ansible_collections.virtops.kubevirt.plugins.module_utils.readers import lookups
    from ansible_collections.virtops.kubevirt.plugins.module_utils.kubevirt import redact
    obj = applied_vm("plain user data %s" % SECRET)
    for out in (lookups.clean_object(obj), redact.redacted(obj), monitor.redact_secrets({"vm": obj}),
                redact.diff_of(obj, applied_vm("other %s" % SECRET))):
        assert SECRET not in json.dumps(out)


def test_mask_longest_first_and_ignores_empty():
    """A secret inside a text (a console transcript), masked as ansible-core masks no_log values."""
    assert redact.mask("pw=abcdef and abc", ["abc", "abcdef", None, ""]) == "pw=******** and ********"
