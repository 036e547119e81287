"""The compiled kernels' disk cache follows the core's sources as a whole, chosen at start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numba

import stream.core.kernel_cache
from stream.core.kernel_cache import sources_digest, use_kernel_cache


def test_the_digest_changes_with_any_source_of_the_directory(tmp_path: Path) -> None:
    (tmp_path / "kernels.py").write_text("X = 1\n")
    (tmp_path / "eventscan.py").write_text("from kernels import X\n")
    first = sources_digest(tmp_path)
    (tmp_path / "kernels.py").write_text("X = 2\n")
    assert sources_digest(tmp_path) != first
    (tmp_path / "kernels.py").write_text("X = 1\n")
    assert sources_digest(tmp_path) == first
    (tmp_path / "notes.txt").write_text("not a source")
    assert sources_digest(tmp_path) == first


def test_the_kernels_are_cached_under_the_digest_of_the_current_sources() -> None:
    """Run where the checkout is writable and ``NUMBA_CACHE_DIR`` was not set before the session
    (tests/conftest.py chose it, as ``corridor`` does): the cache is the one directory named after
    the current sources."""
    core = Path(stream.core.kernel_cache.__file__).resolve().parent
    expected = core / "__pycache__" / f"numba-{sources_digest(core)}"
    assert use_kernel_cache() == expected
    assert Path(numba.config.CACHE_DIR) == expected
    assert os.environ["NUMBA_CACHE_DIR"] == str(expected)
    assert expected.is_dir()
    assert [p.name for p in (core / "__pycache__").glob("numba-*")] == [expected.name]


def test_importing_the_engine_chooses_nothing() -> None:
    """Importing the core (the engine and its kernels included) sets no environment variable and
    chooses no cache: that is the program's start-up's to do."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    script = (
        "import os, stream.core, stream.core.engine, stream.core.kernel_cache as k;"
        "assert 'NUMBA_CACHE_DIR' not in os.environ, os.environ['NUMBA_CACHE_DIR'];"
        "assert k.KERNEL_CACHE is None;"
        "print('clean')"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "clean"
