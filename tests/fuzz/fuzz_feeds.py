"""Coverage-guided fuzzing of the feed parsers (atheris): `make fuzz`, not part of `make test`.

Usage: python tests/fuzz/fuzz_feeds.py FORMAT [atheris/libFuzzer options] [CORPUS_DIR ...]

Each input is parsed as FORMAT through the streaming reader. A parser may yield events and
rejections or raise FeedFormatError; any other exception (or a crash) is a finding, which
libFuzzer saves as crash-* for a unit test to reproduce.
"""

from __future__ import annotations

import io
import sys

import atheris

with atheris.instrument_imports():
    from schemas.codec import dumps, to_plain
    from schemas.event import Event
    from schemas.rejected import Rejection
    from stream.feeds.base import FeedFormatError
    from stream.feeds.registry import FORMATS, iter_parse

FORMAT = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] in FORMATS else ""


def one_input(data: bytes) -> None:
    """Parse ``data``: only events, rejections or FeedFormatError may come out."""
    try:
        for item in iter_parse(FORMAT, io.BytesIO(data)):
            if isinstance(item, Event):
                dumps(to_plain(item))  # what corridor parse prints must encode
            elif not isinstance(item, Rejection) or not (item.error and item.where and item.reason):
                raise AssertionError(f"not an event or a complete rejection: {item!r}")
    except FeedFormatError:
        pass


def main() -> None:
    """Fuzz the format named by the first argument."""
    if not FORMAT:
        sys.exit(f"usage: fuzz_feeds.py {{{','.join(sorted(FORMATS))}}} [libFuzzer options] [corpus]")
    atheris.Setup([sys.argv[0], *sys.argv[2:]], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
