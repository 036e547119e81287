"""The pure core: geometry, matching and alert lifecycle. No broker, Redis or socket here.

The compiled kernels are cached on disk (numba, ``cache=True``) in a directory named after a digest
of this package's sources. Numba checks only the source file of each cached function: a kernel
inlined from another module (``kernels.nearest_primitive`` into ``eventscan``, say) would stay
compiled from the old source after an edit of ``kernels.py`` alone. ``NUMBA_CACHE_DIR`` overrides
the choice; where the package's directory cannot be written (an installed package), numba keeps
its own.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

_CACHE_PREFIX = "numba-"


def sources_digest(directory: Path) -> str:
    """A short digest of the Python sources directly in ``directory`` (names and contents)."""
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _cache_by_sources() -> Path | None:
    """Point numba's cache at the directory of the current sources (through the environment,
    before numba is imported: modules that do not compile anything need not load it); None when
    the operator chose one or the package's directory cannot be written."""
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
    return target


KERNEL_CACHE = _cache_by_sources()  # where the compiled kernels go (None: numba's own choice)
