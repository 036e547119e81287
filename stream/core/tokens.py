"""Signed, expiring driver tokens: ``v1.<driver_id b64>.<expiry>.<kid>.<hmac>``.

A token binds a driver id to an expiry and is signed with HMAC-SHA256. Several keys can be active
at once (``kid`` names which one signed), so a key is rotated by adding the new one, issuing with
it, and dropping the old one once its tokens have expired.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass


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
        payload = f"v1.{_b64(driver_id.encode())}.{int(now + ttl_s)}.{self.current}"
        return f"{payload}.{self._sign(self.current, payload)}"

    def verify(self, token: str, now: float) -> str:
        """The driver id of a valid token; raises TokenError(reason) otherwise."""
        parts = token.split(".")
        if len(parts) != 5 or parts[0] != "v1":
            raise TokenError("malformed", "token is not a Corridor driver token")
        _, driver_b64, expiry, kid, signature = parts
        if kid not in self.keys:
            raise TokenError("unknown_key", "token was signed with a key this server does not have")
        expected = self._sign(kid, ".".join(parts[:4]))
        if not hmac.compare_digest(expected, signature):
            raise TokenError("bad_signature", "token signature does not match")
        try:
            expires_at = int(expiry)
            driver_id = _unb64(driver_b64).decode()
        except (ValueError, UnicodeDecodeError):
            raise TokenError("malformed", "token fields cannot be read") from None
        if expires_at <= now:
            raise TokenError("expired", "token has expired: ask for a new one")
        return driver_id
