"""Signed, expiring tokens: JSON Web Tokens (RFC 7519) signed with Corridor's keys.

A token's claims bind a subject (``sub``) to a role (``role``: ``driver`` tokens read that
driver's alerts, ``dispatcher`` tokens read every driver's alerts and the dispatch map) and an
expiry (``exp``), for Corridor (``aud``: ``corridor``). Its header names the key that signed it
(``kid``), so a key is rotated by adding the new one, issuing with it, and dropping the old one
once its tokens have expired. A token of one role is refused where the other is expected.

Verification accepts only ``HS256`` with one of the keyring's keys: a token with ``alg: none``,
another algorithm, or no ``kid`` is refused before any signature is checked. It never raises
anything but TokenError, whatever the bytes: a token longer than ``MAX_TOKEN_CHARS``, with a
non-ASCII character, not three base64url segments, or with claims missing or of the wrong type
is ``malformed``; one whose signature does not match is ``bad_signature``; one signed with a key
this server does not have is ``unknown_key``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt

DRIVER = "driver"
DISPATCHER = "dispatcher"
ROLES = (DRIVER, DISPATCHER)
AUDIENCE = "corridor"
ALGORITHM = "HS256"
MAX_TOKEN_CHARS = 1024  # ours are ~200 characters; anything far longer is not one of them
MAX_SUBJECT_CHARS = 256


class TokenError(ValueError):
    """A token was refused; ``reason`` is a short slug for metrics and close reasons."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


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
            if len(secret) < 32:
                # RFC 7518 §3.2: an HS256 key must be at least as long as the hash (256 bits).
                raise ValueError(f"signing key {kid!r} is shorter than 32 characters")
            keys[kid] = secret.encode()
            order.append(kid)
        if not order:
            raise ValueError("no signing key given")
        return cls(keys, order[0])

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
        claims = {"sub": subject, "role": role, "aud": AUDIENCE, "iat": int(now), "exp": int(now + ttl_s)}
        return jwt.encode(claims, self.keys[self.current], ALGORITHM, headers={"kid": self.current})

    def _verify(self, role: str, token: str, now: float) -> str:
        claims = self._claims(token, now)
        if claims["role"] != role:
            raise TokenError("wrong_role", f"a {claims['role']} token cannot be used here")
        subject: str = claims["sub"]
        return subject

    def _claims(self, token: str, now: float) -> dict[str, Any]:
        # Shape first, on ASCII only: nothing odd reaches the decoder.
        if len(token) > MAX_TOKEN_CHARS:
            text = f"token is longer than {MAX_TOKEN_CHARS} characters: send the token as issued"
            raise TokenError("malformed", text)
        if not token.isascii() or token.count(".") != 2:
            raise TokenError("malformed", "token is not a Corridor token: send the token as issued")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("malformed", "token header cannot be read") from None
        if header.get("alg") != ALGORITHM:
            raise TokenError("malformed", f"token algorithm must be {ALGORITHM}")
        kid = header.get("kid")
        key = self.keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise TokenError("unknown_key", "token was signed with a key this server does not have")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                options={"require": ["sub", "role", "exp", "aud"], "verify_exp": False, "verify_iat": False},
            )
        except jwt.InvalidSignatureError:
            raise TokenError("bad_signature", "token signature does not match") from None
        except jwt.PyJWTError as exc:
            raise TokenError("malformed", f"token claims cannot be used: {exc}") from None
        subject, role, expiry = claims["sub"], claims["role"], claims["exp"]
        if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_CHARS:
            raise TokenError("malformed", "token subject must be a string of 1 to 256 characters")
        if role not in ROLES:
            raise TokenError("malformed", f"token role must be one of {', '.join(ROLES)}")
        if isinstance(expiry, bool) or not isinstance(expiry, int | float):
            raise TokenError("malformed", "token expiry is not a number of seconds")
        if expiry <= now:
            raise TokenError("expired", "token has expired: ask for a new one")
        return claims
