"""The parsing and matching core imports no broker, Redis or socket library."""

from __future__ import annotations

import subprocess
import sys

PURE_PACKAGES = ("schemas", "stream.core", "stream.feeds")
IO_LIBRARIES = ("faust", "aiokafka", "redis", "websockets", "mode")


def test_core_imports_no_io_library() -> None:
    """Importing every module of the pure packages loads none of the I/O libraries."""
    code = (
        "import importlib, pkgutil, sys\n"
        f"for name in {PURE_PACKAGES!r}:\n"
        "    pkg = importlib.import_module(name)\n"
        "    for info in pkgutil.walk_packages(getattr(pkg, '__path__', []), name + '.'):\n"
        "        importlib.import_module(info.name)\n"
        f"loaded = sorted(m for m in {IO_LIBRARIES!r} if m in sys.modules)\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
