"""Write small seed corpora for `make fuzz` from the bundled samples, one directory per format."""

from __future__ import annotations

import sys
from pathlib import Path

from schemas.codec import dumps, to_plain
from schemas.event import Event
from stream.feeds.cifs import parse_cifs

ROOT = Path(__file__).parents[2]
DATA, TEST_DATA = ROOT / "stream" / "data", ROOT / "tests" / "unit" / "data"
SEEDS = {
    "cifs": [DATA / "cifs-incidents.xml"],
    "datex2": [
        DATA / "datex2-example.xml",
        DATA / "datex2-regulations.xml",
        TEST_DATA / "datex2-situation.xml",
    ],
    "ais": [DATA / "mixed.txt", DATA / "nmea_data_sample.txt"],
    "native": [DATA / "cifs-incidents.xml"],
    "perimeters": [DATA / "port-infrastructure.geojson"],
    "portcall": [],
}
MAX_SEED = 16 * 1024
"""Seeds are cut to this size: small inputs keep the fuzzer fast, the samples' heads are enough."""


def write(fmt: str, into: Path) -> None:
    """Seed ``into`` for ``fmt`` (files already there, the fuzzer's finds, are kept)."""
    into.mkdir(parents=True, exist_ok=True)
    for path in SEEDS[fmt]:
        data = path.read_bytes()
        if fmt == "native":  # the CIFS sample as corridor parse prints it
            data = b"".join(dumps(to_plain(e)) + b"\n" for e in parse_cifs(data) if isinstance(e, Event))
        (into / f"seed-{path.name}").write_bytes(data[:MAX_SEED])
        if fmt in ("ais", "native"):  # line formats: a few lines alone too, for mutations to reach records
            (into / f"seed-head-{path.name}").write_bytes(b"\n".join(data.splitlines()[:12]) + b"\n")


if __name__ == "__main__":
    write(sys.argv[1], Path(sys.argv[2]))
