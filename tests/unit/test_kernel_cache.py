"""The compiled kernels' disk cache follows the core's sources as a whole."""

from __future__ import annotations

from pathlib import Path

import numba

import stream.core
from stream.core import sources_digest


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
    """Run where the checkout is writable and ``NUMBA_CACHE_DIR`` was not set beforehand, as the
    tests are: the cache is the one directory named after the current sources."""
    core = Path(stream.core.__file__).resolve().parent
    expected = core / "__pycache__" / f"numba-{sources_digest(core)}"
    assert stream.core.KERNEL_CACHE == expected
    assert Path(numba.config.CACHE_DIR) == expected
    assert expected.is_dir()
    assert [p.name for p in (core / "__pycache__").glob("numba-*")] == [expected.name]
