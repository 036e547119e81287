"""Signed, expiring tokens: ``<role>.<subject b64>.<expiry>.<kid>.<hmac>``.

A token binds a subject to an expiry and is signed with HMAC-SHA256. Its role is the first field,
inside the signature: ``v1`` tokens name a driver (they read that driver's alerts), ``d1`` tokens
name a dispatcher (they read every driver's alerts and the dispatch map). A token of one role is
refused where the other is expected. Several keys can be active at once (``kid`` names which one
signed), so a key is rotated by adding the new one, issuing with it, and dropping the old one once
its tokens have expired.

Verification never raises anything but TokenError, whatever the bytes: a token longer than
``MAX_TOKEN_CHARS``, with a non-ASCII character, the wrong number of fields, bad base64 or a
subject that is not UTF-8 is ``malformed``; one whose signature does not match is
``bad_signature``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass

DRIVER = "v1"
DISPATCHER = "d1"
_ROLE_NAMES = {DRIVER: "driver", DISPATCHER: "dispatcher"}
MAX_TOKEN_CHARS = 1024  # ours are ~100 characters; anything far longer is not one of them
_EXPIRY = re.compile(r"[0-9]{1,12}", re.ASCII)


class TokenError(ValueError):
    """A token was refused; ``reason`` is a short slug for metrics and close reasons."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Keyring:
    """Signing keys by id; ``current`` signs new tokens, all of them verify."""

    keys: dict[str, bytes]
    current: str

    @classmethod
    def parse(cls, spec: str) -> Keyring:
        """From ``kid:secret[,kid:secret…]`` (the first signs) or a bare secret (kid ``k1``)."""
        keys: dict[str, bytes] = {}
        order: list[str] = []
        for part in filter(None, (p.strip() for p in spec.split(","))):
            kid, sep, secret = part.partition(":")
            if not sep:
                kid, secret = "k1", part
            if len(secret) < 16:
                raise ValueError(f"signing key {kid!r} is shorter than 16 characters")
            keys[kid] = secret.encode()
            order.append(kid)
        if not order:
            raise ValueError("no signing key given")
        return cls(keys, order[0])

    def _sign(self, kid: str, payload: str) -> str:
        return _b64(hmac.new(self.keys[kid], payload.encode(), hashlib.sha256).digest())

    def issue(self, driver_id: str, now: float, ttl_s: float) -> str:
        """A token for ``driver_id`` valid until ``now + ttl_s`` (epoch seconds)."""
        return self._issue(DRIVER, driver_id, now, ttl_s)

    def issue_dispatcher(self, name: str, now: float, ttl_s: float) -> str:
        """A dispatcher token (every driver's alerts, the dispatch map) for ``name``."""
        return self._issue(DISPATCHER, name, now, ttl_s)

    def verify(self, token: str, now: float) -> str:
        """The driver id of a valid driver token; raises TokenError(reason) otherwise."""
        return self._verify(DRIVER, token, now)

    def verify_dispatcher(self, token: str, now: float) -> str:
        """The name in a valid dispatcher token; raises TokenError(reason) otherwise."""
        return self._verify(DISPATCHER, token, now)

    def _issue(self, role: str, subject: str, now: float, ttl_s: float) -> str:
        payload = f"{role}.{_b64(subject.encode())}.{int(now + ttl_s)}.{self.current}"
        return f"{payload}.{self._sign(self.current, payload)}"

    def _verify(self, role: str, token: str, now: float) -> str:
        # Shape first, on ASCII only: compare_digest raises TypeError on non-ASCII str, and int()
        # reads non-ASCII digits and spaces, so nothing odd may reach them.
        if len(token) > MAX_TOKEN_CHARS:
            text = f"token is longer than {MAX_TOKEN_CHARS} characters: send the token as issued"
            raise TokenError("malformed", text)
        if not token.isascii():
            raise TokenError("malformed", "token has non-ASCII characters: send the token as issued")
        parts = token.split(".")
        if len(parts) != 5 or parts[0] not in _ROLE_NAMES:
            raise TokenError("malformed", f"token is not a Corridor {_ROLE_NAMES[role]} token")
        _, subject_b64, expiry, kid, signature = parts
        if kid not in self.keys:
            raise TokenError("unknown_key", "token was signed with a key this server does not have")
        expected = self._sign(kid, ".".join(parts[:4]))
        if not hmac.compare_digest(expected, signature):
            raise TokenError("bad_signature", "token signature does not match")
        if parts[0] != role:
            raise TokenError("wrong_role", f"a {_ROLE_NAMES[parts[0]]} token cannot be used here")
        if not _EXPIRY.fullmatch(expiry):
            raise TokenError("malformed", "token expiry is not a number of seconds")
        try:
            subject = _unb64(subject_b64).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise TokenError("malformed", "token subject cannot be read") from None
        if int(expiry) <= now:
            raise TokenError("expired", "token has expired: ask for a new one")
        return subject
