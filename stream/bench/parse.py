"""``corridor bench parse``: records per second for each feed parser on scaled-up sample data."""

from __future__ import annotations

import gc
import io
import json
import statistics
import time
from collections.abc import Callable
from importlib import resources
from typing import Any

import click
import orjson
from rich.table import Table

from schemas.codec import to_plain
from schemas.event import Event
from stream.commands.output import console
from stream.feeds.registry import iter_parse, parser_for

RUNS = 5
TARGETS = {
    "ais": 50_000,
    "cifs": 20_000,
    "datex2": 20_000,
    "perimeters": 20_000,
    "portcall": 20_000,
    "native": 50_000,
}


def _sample(name: str) -> bytes:
    return resources.files("stream").joinpath("data", name).read_bytes()


def _cifs(records: int) -> bytes:
    """The 7 DiaLog incidents repeated with unique ids."""
    head, _, rest = _sample("cifs-incidents.xml").partition(b"<incident ")
    parts = (b"<incident " + rest.rsplit(b"</incidents>", 1)[0]).split(b'<incident id="')[1:]
    body = [b'<incident id="%d-' % n + parts[n % len(parts)] for n in range(records)]
    return head + b"".join(body) + b"</incidents>"


def _datex2(records: int) -> bytes:
    """The DiaLog regulation export with its orders repeated (each order gives ~3 events)."""
    doc = _sample("datex2-regulations.xml")
    start = doc.index(b"<trafficRegulationOrder")
    end = doc.rindex(b"</trafficRegulationOrder>") + len(b"</trafficRegulationOrder>")
    return doc[:start] + doc[start:end] * max(1, records // 19) + doc[end:]


def _perimeters(records: int) -> bytes:
    features = json.loads(_sample("zones.geojson"))
    items = features["features"]
    features["features"] = [items[n % len(items)] for n in range(records)]
    return orjson.dumps(features)


def _ais(records: int) -> bytes:
    lines = _sample("nmea_data_sample.txt").rstrip(b"\n").split(b"\n")
    return b"\n".join(lines[n % len(lines)] for n in range(records)) + b"\n"


def _portcall(records: int) -> bytes:
    call = {
        "UNLocationCode": "NLRTM",
        "vesselIMONumber": "9134270",
        "portCallServiceTypeCode": "BERTH",
        "portCallServiceEventTypeCode": "ARRI",
        "classifierCode": "EST",
        "dateTime": "2024-08-15T14:00:00+02:00",
        "terminal": {"terminalID": "ECTDE", "gatePosition": [4.0412, 51.9536]},
    }
    return orjson.dumps([{**call, "portCallID": f"PC{n}"} for n in range(records)])


def _native(records: int) -> bytes:
    events = parser_for("cifs")(_sample("cifs-incidents.xml"))
    rows = [orjson.dumps(to_plain(e)) for e in events if isinstance(e, Event)]
    return b"\n".join(rows[n % len(rows)] for n in range(records)) + b"\n"


# format -> (input builder, default record count)
INPUTS: dict[str, tuple[Callable[[int], bytes], int]] = {
    "ais": (_ais, 50_000),
    "cifs": (_cifs, 50_000),
    "datex2": (_datex2, 5_000),
    "perimeters": (_perimeters, 5_000),
    "portcall": (_portcall, 10_000),
    "native": (_native, 10_000),
}


def measure(fmt: str, scale: float = 1.0, runs: int = RUNS) -> dict[str, Any]:
    """Median records/s (and spread) of ``runs`` parses of the scaled sample, on one core.

    Each run goes through the path feeds take (``iter_parse``: the streaming reader and the
    admission of every event against the geometry bounds), one record at a time, nothing kept. A
    first run, not counted, pays what is paid once per process (imports, caches)."""
    build, default = INPUTS[fmt]
    data = build(max(1, int(default * scale)))
    rates: list[float] = []
    records = 0
    for run in range(runs + 1):
        gc.collect()
        started = time.perf_counter()
        items = sum(1 for _ in iter_parse(fmt, io.BytesIO(data)))
        elapsed = time.perf_counter() - started
        # AIS is measured in input sentences (static data and fragments yield no item)
        records = data.count(b"\n") if fmt == "ais" else items
        if run:
            rates.append(records / elapsed)
    result: dict[str, Any] = {
        "records": records,
        "bytes": len(data),
        "median_per_s": round(statistics.median(rates)),
        "min_per_s": round(min(rates)),
        "max_per_s": round(max(rates)),
        "runs": runs,
    }
    if fmt in TARGETS:
        result["target_per_s"] = TARGETS[fmt]
        result["meets_target"] = result["median_per_s"] >= TARGETS[fmt]
    return result


@click.command("parse")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option("--scale", default=1.0, show_default=True, help="Multiply the record counts.")
@click.option("--runs", default=RUNS, show_default=True, help="Runs per format (median kept).")
@click.option("--format", "formats", multiple=True, type=click.Choice(sorted(INPUTS)))
def parse(as_json: bool, scale: float, runs: int, formats: tuple[str, ...]) -> None:
    """Records/s of each feed parser: median of repeated runs on the sample data scaled up."""
    results = {fmt: measure(fmt, scale, runs) for fmt in (formats or INPUTS)}
    if as_json:
        click.echo(json.dumps({"bench": "parse", "results": results}))
        return
    table = Table(title=f"corridor bench parse (median of {runs} runs, one core)")
    for column in ("format", "records", "median rec/s", "min–max rec/s", "target", "verdict"):
        table.add_column(column, justify="right")
    for fmt, r in results.items():
        target = r.get("target_per_s")
        verdict = "" if target is None else ("ok" if r["meets_target"] else "UNDER")
        table.add_row(
            fmt,
            f"{r['records']:,}",
            f"{r['median_per_s']:,}",
            f"{r['min_per_s']:,}–{r['max_per_s']:,}",
            f"{target:,}" if target else "",
            verdict,
        )
    console().print(table)
