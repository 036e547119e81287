"""The keyring that signs driver tokens: from CORRIDOR_SIGNING_KEY, or a local key file."""

from __future__ import annotations

import os
import secrets

from stream.gateway.tokens import Keyring
from stream.runtime.settings import Settings


def load_keyring(settings: Settings) -> Keyring:
    """CORRIDOR_SIGNING_KEY (``kid:secret,…``), else ``<state>/signing.key`` made on first use."""
    if settings.signing_key:
        return Keyring.parse(settings.signing_key)
    path = settings.state_dir / "signing.key"
    if not path.exists():
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"local:{secrets.token_urlsafe(32)}\n")
    return Keyring.parse(path.read_text().strip())
