"""Tokens: JSON Web Tokens bound to a subject and a role, expiring, signed, rotatable."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import jwt
import pytest

from stream.gateway.tokens import Keyring, TokenError

NOW = 1_800_000_000.0
SECOND = "second-secret-0123456789abcdefghij"
RING = Keyring.parse(f"k2:{SECOND},k1:first-secret-0123456789abcdefghijk")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(**changes: object) -> dict[str, object]:
    return {"sub": "d", "role": "driver", "aud": "corridor", "exp": int(NOW) + 60, **changes}


def _signed(claims: dict[str, object], kid: str = "k2", alg: str = "HS256") -> str:
    """A token signed with k2 (what only a key holder can make)."""
    return jwt.encode(claims, SECOND.encode(), alg, headers={"kid": kid})


def _raw(header: dict[str, object], claims: dict[str, object]) -> str:
    """A token over any header, signed with k2 by hand (what a library would not write)."""
    signing = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    digest = hmac.new(SECOND.encode(), signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{_b64(digest)}"


def test_token_round_trip() -> None:
    """A fresh token verifies and names its driver; it is a standard JWT."""
    token = RING.issue("driver-7", NOW, 3600)
    assert RING.verify(token, NOW + 10) == "driver-7"
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "kid": "k2", "typ": "JWT"}
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims == {
        "sub": "driver-7",
        "role": "driver",
        "aud": "corridor",
        "iat": int(NOW),
        "exp": int(NOW) + 3600,
    }


@pytest.mark.parametrize(
    ("case", "token", "reason"),
    [
        ("expired", RING.issue("d", NOW, 60), "expired"),
        ("forged signature", RING.issue("d", NOW, 60)[:-4] + "AAAA", "bad_signature"),
        ("not a token", "hello", "malformed"),
        (
            "unknown key",
            Keyring.parse("k9:another-secret-0123456789abcdefgh").issue("d", NOW, 60),
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


def test_the_claims_cannot_be_swapped() -> None:
    """Another token's claims under this token's signature break it."""
    mine = RING.issue("alice", NOW, 60).split(".")
    other = RING.issue("bob", NOW, 60).split(".")
    with pytest.raises(TokenError, match="signature"):
        RING.verify(".".join([mine[0], other[1], mine[2]]), NOW)


def test_rotation_keeps_old_tokens_valid() -> None:
    """After a new key is added in front, tokens of the old key still verify; new ones use it."""
    old = Keyring.parse("k1:first-secret-0123456789abcdefghijk")
    assert RING.verify(old.issue("d", NOW, 60), NOW) == "d"
    assert jwt.get_unverified_header(RING.issue("d", NOW, 60))["kid"] == "k2"


def test_short_keys_are_refused() -> None:
    """A signing key under 32 characters (256 bits for HS256) is a configuration error."""
    with pytest.raises(ValueError, match="shorter than 32"):
        Keyring.parse("k1:only-twenty-characters")


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


def test_the_role_cannot_be_rewritten() -> None:
    """A driver token's claims rewritten to the dispatcher role break its signature."""
    head, _, sig = RING.issue("driver-7", NOW, 60).split(".")
    body = _b64(json.dumps(_claims(sub="driver-7", role="dispatcher")).encode())
    with pytest.raises(TokenError, match="signature"):
        RING.verify_dispatcher(f"{head}.{body}.{sig}", NOW)


GOOD = RING.issue("d", NOW, 60)
NONE_ALG = _b64(b'{"alg":"none","kid":"k2"}') + "." + _b64(json.dumps(_claims()).encode()) + "."


@pytest.mark.parametrize(
    ("case", "token", "reason"),
    [
        ("non-ASCII signature", GOOD[:-1] + "\u00e9", "malformed"),
        ("Arabic-Indic signature", GOOD[:-1] + "\u0661", "malformed"),
        ("surrogate from a raw header byte", GOOD[:-1] + "\udcff", "malformed"),
        ("NUL byte", GOOD[:-1] + "\x00", "malformed"),
        ("oversized", GOOD + "A" * 2048, "malformed"),
        ("four segments", GOOD + ".x", "malformed"),
        ("two segments", GOOD.rsplit(".", 1)[0], "malformed"),
        ("empty", "", "malformed"),
        ("only dots", "..", "malformed"),
        ("header not JSON", _b64(b"{not json") + "." + GOOD.split(".", 1)[1], "malformed"),
        ("alg none", NONE_ALG, "malformed"),
        ("HS512", jwt.encode(_claims(), SECOND.encode() * 2, "HS512", headers={"kid": "k2"}), "malformed"),
        ("no kid", jwt.encode(_claims(), SECOND.encode(), "HS256"), "unknown_key"),
        ("kid not a string", _raw({"alg": "HS256", "kid": ["k2"]}, _claims()), "malformed"),
    ],
)
def test_hostile_tokens_are_refused_with_a_token_error(case: str, token: str, reason: str) -> None:
    """Odd bytes anywhere in a token give TokenError with a reason, never another exception; no
    algorithm but HS256 is accepted (no ``none``, no other hash)."""
    for verify in (RING.verify, RING.verify_dispatcher):
        with pytest.raises(TokenError) as caught:
            verify(token, NOW)
        assert caught.value.reason == reason, case


@pytest.mark.parametrize(
    ("case", "claims"),
    [
        ("no subject", {k: v for k, v in _claims().items() if k != "sub"}),
        ("subject not a string", _claims(sub=7)),
        ("empty subject", _claims(sub="")),
        ("subject too long", _claims(sub="x" * 257)),
        ("no role", {k: v for k, v in _claims().items() if k != "role"}),
        ("unknown role", _claims(role="admin")),
        ("another audience", _claims(aud="elsewhere")),
        ("no expiry", {k: v for k, v in _claims().items() if k != "exp"}),
        ("expiry a string", _claims(exp="soon")),
        ("expiry a boolean", _claims(exp=True)),
    ],
)
def test_signed_but_unusable_tokens_are_malformed(case: str, claims: dict[str, object]) -> None:
    """A correctly signed token whose claims cannot be used is refused as malformed, not crashed on."""
    with pytest.raises(TokenError) as caught:
        RING.verify(_signed(claims), NOW)
    assert caught.value.reason == "malformed", case
