"""k8s/retry.py: the one policy table (send again / verify then send / give up) and the backoff."""
import pytest

from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s import retry
from ansible_collections.virtops.kubevirt.plugins.module_utils.k8s.retry import Decision


def verify():
    return False


@pytest.mark.parametrize("kw, expected", [
    (dict(attempt=6, sent=False, idempotent=True, verify=verify), Decision.GIVE_UP),          # no attempts left
    (dict(sent=True, idempotent=False, verify=None, status=429), Decision.SEND_AGAIN),
    (dict(sent=True, idempotent=True, verify=None, status=409), Decision.GIVE_UP),
    (dict(sent=True, idempotent=True, verify=None, status=404), Decision.GIVE_UP),
    (dict(sent=True, idempotent=True, verify=None, status=500, refused=True), Decision.GIVE_UP),
    (dict(sent=True, idempotent=True, verify=None, status=503), Decision.SEND_AGAIN),
    (dict(sent=False, idempotent=False, verify=None), Decision.SEND_AGAIN),                  # refused: not sent
    (dict(sent=True, idempotent=True, verify=None), Decision.SEND_AGAIN),                    # reset, GET
    (dict(sent=True, idempotent=False, verify=verify), Decision.VERIFY_THEN_SEND),           # reset, start
    (dict(sent=True, idempotent=False, verify=verify, status=502), Decision.VERIFY_THEN_SEND),
    (dict(sent=True, idempotent=False, verify=None), Decision.GIVE_UP),                      # reset, blind write
])
def test_policy_table(kw, expected):
    kw = dict(kw)
    attempt = kw.pop("attempt", 1)
    assert retry.decide(attempt, retry.RETRY_ATTEMPTS, **kw) is expected


def test_decisions_are_named_not_strings():
    assert {d.name for d in Decision} == {"SEND_AGAIN", "VERIFY_THEN_SEND", "GIVE_UP"}


def test_backoff_doubles_to_the_cap_with_jitter_and_honours_retry_after():
    assert retry.backoff_delay(1, rand=lambda: 0.5) == retry.RETRY_BASE
    assert retry.backoff_delay(2, rand=lambda: 0.5) == 2 * retry.RETRY_BASE
    assert retry.backoff_delay(20, rand=lambda: 0.5) == retry.RETRY_CAP
    assert retry.backoff_delay(1, rand=lambda: 0.0) == pytest.approx(0.8 * retry.RETRY_BASE)
    assert retry.backoff_delay(1, "3") == 3.0
    assert retry.backoff_delay(1, "3600") == retry.RETRY_AFTER_CAP
    assert retry.backoff_delay(1, "soon", rand=lambda: 0.5) == retry.RETRY_BASE
