"""`corridor parse`: events on stdout, rejections on stderr, exit codes 0 / 2 / 1."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from schemas.validate import errors
from stream.cli import main
from stream.feeds.registry import FORMATS, parser_for

DATA = Path(__file__).parents[2] / "stream" / "data"
EVENT = b'{"id": "cifs:1", "source": "cifs", "kind": "closure", "status": "active", "valid_from": null, '
EVENT += b'"valid_until": null, "geometry": {"type": "Point", "coordinates": [2.35, 48.85]}}'


def run(
    *args: str, stdin: bytes | None = None
) -> tuple[int, list[dict[str, object]], list[dict[str, object]]]:
    """Run the CLI; (exit code, stdout JSON lines, stderr JSON lines)."""
    result = CliRunner().invoke(main, ["parse", *args], input=stdin)
    out = [json.loads(line) for line in result.stdout.splitlines()]
    err = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    return result.exit_code, out, err


@pytest.mark.parametrize(
    ("fmt", "name", "events"),
    [
        ("cifs", "cifs-incidents.xml", 7),
        ("datex2", "datex2-regulations.xml", 19),
        ("datex2", "datex2-example.xml", 1),
    ],
)
def test_clean_files_exit_0(fmt: str, name: str, events: int) -> None:
    """Every record parsed: exit 0, one valid event per stdout line, nothing on stderr."""
    code, out, err = run("--format", fmt, str(DATA / name))
    assert code == 0 and len(out) == events and err == []
    assert all(errors("event", row) == [] for row in out)


@pytest.mark.parametrize(
    ("fmt", "name", "events", "rejected"),
    [
        ("perimeters", "zones.geojson", 875, 6),
        ("ais", "nmea_data_sample.txt", 758, 138),
        ("ais", "mixed.txt", 10, 9),
    ],
)
def test_some_rejected_exit_2(fmt: str, name: str, events: int, rejected: int) -> None:
    """Some records rejected: exit 2, good events still printed, one JSON line per rejection."""
    code, out, err = run("--format", fmt, str(DATA / name))
    assert code == 2 and len(out) == events and len(err) == rejected
    assert all(set(row) == {"error", "where", "reason"} for row in err)


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ("cifs", "zones.geojson"),
        ("perimeters", "cifs-incidents.xml"),
        ("ais", "datex2-example.xml"),
        ("portcall", "mixed.txt"),
        ("native", "cifs-incidents.xml"),
        ("cifs", "does-not-exist.xml"),
    ],
)
def test_wrong_format_or_missing_file_exit_1(fmt: str, name: str) -> None:
    """A file that cannot be read as the format at all: exit 1, a message saying what to do."""
    result = CliRunner().invoke(main, ["parse", "--format", fmt, str(DATA / name)])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("corridor parse: ")


def test_stdin_dash() -> None:
    """PATH '-' reads standard input."""
    code, out, _ = run("--format", "cifs", "-", stdin=(DATA / "cifs-incidents.xml").read_bytes())
    assert code == 0 and len(out) == 7


def test_output_reads_back_as_native() -> None:
    """What parse prints (nullable validity included) is valid input for --format native."""
    result = CliRunner().invoke(main, ["parse", "--format", "ais", str(DATA / "mixed.txt")])
    code, out, err = run("--format", "native", "-", stdin=result.stdout_bytes)
    assert code == 0 and len(out) == 10 and err == []
    assert all(row["valid_from"] is None for row in out)


def test_registry_resolves_every_format() -> None:
    """Each registered format name loads a callable parser; unknown names are a KeyError."""
    assert sorted(FORMATS) == ["ais", "cifs", "datex2", "native", "perimeters", "portcall"]
    assert all(callable(parser_for(name)) for name in FORMATS)
    with pytest.raises(KeyError):
        parser_for("gpx")


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_random_bytes_exit_1_with_one_message(fmt: str, tmp_path: Path) -> None:
    """2 MB of random bytes: exit 1, nothing on stdout, one stderr line naming format and expectation."""
    path = tmp_path / "random.bin"
    path.write_bytes(random.Random(21).randbytes(2 * 1024 * 1024))
    result = CliRunner().invoke(main, ["parse", "--format", fmt, str(path)])
    assert result.exit_code == 1 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("corridor parse: ") and f"--format {fmt}" in line and "Expected" in line


@pytest.mark.parametrize(
    ("fmt", "body", "events", "rejected"),
    [
        ("native", b"\n".join([EVENT, b"{broken", EVENT.replace(b"cifs:", b"cifs:2-"), b"[]"]), 2, 2),
        ("cifs", (DATA / "cifs-incidents.xml").read_bytes().replace(b"<polyline>", b"<polyline>x ", 1), 6, 1),
        ("ais", b"$GPGGA,1*00\n" * 3 + (DATA / "mixed.txt").read_bytes(), 10, 12),
    ],
)
def test_a_few_bad_records_among_good_ones_exit_2(fmt: str, body: bytes, events: int, rejected: int) -> None:
    """Bad records among good ones: exit 2, the good ones printed, one JSON line per bad one."""
    code, out, err = run("--format", fmt, "-", stdin=body)
    assert (code, len(out), len(err)) == (2, events, rejected)


def test_document_cut_after_good_records_exits_2_naming_where() -> None:
    """XML cut part-way (past the first read): incidents read are printed, one rejection says where."""
    incident = (
        '<incident id="i{n}"><type>ROAD_CLOSED</type><polyline>48.85 2.35 48.86 2.36</polyline>'
        "<starttime>2024-05-01T08:00:00+02:00</starttime></incident>"
    )
    body = "".join(incident.format(n=n) for n in range(1000)).encode()
    code, out, err = run("--format", "cifs", "-", stdin=b"<incidents>" + body + b"<incident id='x'><ty")
    assert code == 2 and len(out) == 1000
    assert err[-1]["where"] == "document" and err[-1]["reason"] == "unreadable"
    assert "malformed after byte" in err[-1]["error"]
