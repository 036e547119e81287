"""What a process loads: a gateway holds 10,000 sockets and needs neither numpy nor the engine."""

from __future__ import annotations

import subprocess
import sys


def test_the_gateway_loads_neither_numpy_nor_the_engine() -> None:
    """The gateway reads alerts as bytes (``schemas.alert``); the engine's modules and numpy (12 MB
    of resident memory, 70 ms of start-up) are loaded only for a dispatcher's first request."""
    heavy = ("numpy", "numba", "stream.core.engine", "stream.core.wire")
    script = f"import sys, stream.commands.gateway; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
