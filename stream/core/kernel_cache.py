"""Where the compiled kernels are cached: a directory named after a digest of the core's sources.

The kernels are cached on disk (numba, ``cache=True``). Numba checks only the source file of each
cached function: a kernel inlined from another module (``kernels.nearest_primitive`` into
``eventscan``, say) would stay compiled from the old source after an edit of ``kernels.py`` alone.
Naming the directory after all the sources makes any edit start a new cache.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

_CACHE_PREFIX = "numba-"
KERNEL_CACHE: Path | None = None
"""Where this process caches the compiled kernels, once ``use_kernel_cache`` chose it."""


def sources_digest(directory: Path) -> str:
    """A short digest of the Python sources directly in ``directory`` (names and contents)."""
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def use_kernel_cache() -> Path | None:
    """Point numba's cache at the directory of the current sources, and delete the directories of
    sources that are gone; returns it (None when the operator chose one with ``NUMBA_CACHE_DIR``
    or the package's directory cannot be written: numba keeps its own then).

    Call it before importing a module that compiles kernels (numba picks a function's cache when it
    is decorated). It sets ``NUMBA_CACHE_DIR``, so that processes started from this one use the
    same directory. Idempotent.
    """
    global KERNEL_CACHE  # noqa: PLW0603 - the choice of the process, made once
    if KERNEL_CACHE is not None:
        return KERNEL_CACHE
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None
    here = Path(__file__).resolve().parent
    cache = here / "__pycache__"
    target = cache / f"{_CACHE_PREFIX}{sources_digest(here)}"
    try:
        target.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=target).close()
    except OSError:
        return None
    for old in cache.glob(f"{_CACHE_PREFIX}*"):  # compiled from sources that are gone
        if old != target:
            shutil.rmtree(old, ignore_errors=True)
    os.environ["NUMBA_CACHE_DIR"] = str(target)
    if "numba" in sys.modules:  # imported already: its configuration was read
        sys.modules["numba"].config.CACHE_DIR = str(target)
    KERNEL_CACHE = target
    return target
