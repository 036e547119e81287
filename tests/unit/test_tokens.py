"""Driver tokens: bound to a driver, expiring, signed, rotatable."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from stream.gateway.tokens import Keyring, TokenError

NOW = 1_800_000_000.0
RING = Keyring.parse("k2:second-secret-0123456789,k1:first-secret-0123456789")


def test_token_round_trip() -> None:
    """A fresh token verifies and names its driver."""
    assert RING.verify(RING.issue("driver-7", NOW, 3600), NOW + 10) == "driver-7"


@pytest.mark.parametrize(
    ("case", "token", "reason"),
    [
        ("expired", RING.issue("d", NOW, 60), "expired"),
        ("forged signature", RING.issue("d", NOW, 60)[:-4] + "AAAA", "bad_signature"),
        ("not a token", "hello", "malformed"),
        (
            "unknown key",
            Keyring.parse("k9:another-secret-012345").issue("d", NOW, 60),
            "unknown_key",
        ),
    ],
)
def test_refused_tokens(case: str, token: str, reason: str) -> None:
    """Expired, forged, malformed and foreign-key tokens are refused with their reason."""
    at = NOW + 120 if case == "expired" else NOW
    with pytest.raises(TokenError) as caught:
        RING.verify(token, at)
    assert caught.value.reason == reason


def test_driver_id_cannot_be_swapped() -> None:
    """Replacing the driver part of a valid token breaks its signature."""
    mine = RING.issue("alice", NOW, 60).split(".")
    other = RING.issue("bob", NOW, 60).split(".")
    forged = ".".join([mine[0], other[1], *mine[2:]])
    with pytest.raises(TokenError, match="signature"):
        RING.verify(forged, NOW)


def test_rotation_keeps_old_tokens_valid() -> None:
    """After a new key is added in front, tokens of the old key still verify; new ones use it."""
    old = Keyring.parse("k1:first-secret-0123456789")
    token = old.issue("d", NOW, 60)
    assert RING.verify(token, NOW) == "d"
    assert RING.issue("d", NOW, 60).split(".")[3] == "k2"


def test_short_keys_are_refused() -> None:
    """A signing key under 16 characters is a configuration error."""
    with pytest.raises(ValueError, match="shorter"):
        Keyring.parse("tiny")


def test_dispatcher_token_round_trip() -> None:
    """A dispatcher token verifies as a dispatcher and names the dispatcher."""
    assert RING.verify_dispatcher(RING.issue_dispatcher("ops-rouen", NOW, 3600), NOW) == "ops-rouen"


def test_roles_are_not_interchangeable() -> None:
    """A driver token cannot open the dispatch feed, and a dispatcher token is no driver token."""
    with pytest.raises(TokenError) as as_dispatcher:
        RING.verify_dispatcher(RING.issue("driver-7", NOW, 60), NOW)
    with pytest.raises(TokenError) as as_driver:
        RING.verify(RING.issue_dispatcher("ops", NOW, 60), NOW)
    assert as_dispatcher.value.reason == as_driver.value.reason == "wrong_role"


def test_role_cannot_be_swapped() -> None:
    """Rewriting a driver token's role field breaks its signature."""
    forged = "d1." + RING.issue("driver-7", NOW, 60).split(".", 1)[1]
    with pytest.raises(TokenError, match="signature"):
        RING.verify_dispatcher(forged, NOW)


def _signed(payload: str) -> str:
    """A token over ``payload`` with a valid signature of k2 (what only a key holder can make)."""
    digest = hmac.new(b"second-secret-0123456789", payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"


GOOD = RING.issue("d", NOW, 60)
NON_UTF8 = base64.urlsafe_b64encode(b"\xff\xfe").rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("case", "token", "reason"),
    [
        ("non-ASCII signature", GOOD[:-1] + "\u00e9", "malformed"),
        ("Arabic-Indic signature", GOOD[:-1] + "\u0661", "malformed"),
        ("non-ASCII subject", "v1.\u00e9t\u00e9." + GOOD.split(".", 2)[2], "malformed"),
        ("surrogate from a raw header byte", GOOD[:-1] + "\udcff", "malformed"),
        ("NUL byte", GOOD[:-1] + "\x00", "bad_signature"),
        ("oversized", GOOD + "A" * 2048, "malformed"),
        ("six fields", GOOD + ".x", "malformed"),
        ("four fields", GOOD.rsplit(".", 1)[0], "malformed"),
        ("empty", "", "malformed"),
        ("only dots", "....", "malformed"),
        ("Arabic-Indic expiry", "v1.ZA.\u0661\u0662.k2." + GOOD.rsplit(".", 1)[1], "malformed"),
    ],
)
def test_hostile_tokens_are_refused_with_a_token_error(case: str, token: str, reason: str) -> None:
    """Odd bytes anywhere in a token give TokenError with a reason, never another exception."""
    for verify in (RING.verify, RING.verify_dispatcher):
        with pytest.raises(TokenError) as caught:
            verify(token, NOW)
        assert caught.value.reason == reason, case


@pytest.mark.parametrize(
    ("case", "payload"),
    [
        ("non-UTF-8 subject", f"v1.{NON_UTF8}.{int(NOW) + 60}.k2"),
        ("bad base64 subject", f"v1.a.{int(NOW) + 60}.k2"),
        ("expiry with spaces", f"v1.ZA. {int(NOW) + 60}.k2"),
        ("expiry with underscores", f"v1.ZA.1_{int(NOW) + 60}.k2"),
    ],
)
def test_signed_but_malformed_tokens_are_malformed(case: str, payload: str) -> None:
    """A correctly signed token whose fields cannot be read is refused as malformed, not crashed on."""
    with pytest.raises(TokenError) as caught:
        RING.verify(_signed(payload), NOW)
    assert caught.value.reason == "malformed", case
