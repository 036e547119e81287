"""``corridor bench match``: the matching engine on the reference city, against plain shapely.

Routes are inserted and re-planned as the engine receives them (lon/lat Route records, in batches
of ``ROUTE_BATCH`` as the routes agent takes them), events are applied in batches; events/s is the
median over batches of the engine's work (index query, exact distances, rules, alert book), with
the alert transitions kept as columns. The cost of encoding them in their wire form, as a worker
publishes them (``Engine.wire``), is reported separately. The shapely baselines run in a child
process on a sample of the same events, so their memory is not counted, and their pairs are
compared with the engine's. The loaded state is frozen
out of the garbage collector's scans (``gc.freeze``), as a long-running worker does after loading.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import click
import numpy as np
import orjson
import shapely

from stream.bench.city import (
    CHUNK,
    City,
    event_geometries_xy,
    events,
    make_route,
    route_chunk_xy,
    route_chunks,
)
from stream.core import lifecycle as lc
from stream.core.config import EngineConfig
from stream.core.engine import Engine, warm_up

AT = datetime(2026, 1, 6, 5, 0, tzinfo=UTC)
DEFAULT_SIZES = ((1_000, 10_000), (10_000, 20_000), (100_000, 50_000))
ROUTE_BATCH = 500  # route messages the routes agent takes at once


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _baseline(city: City, sample: int, corridor_m: float) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        result: dict[str, Any] = pool.apply(baseline_run, (city, sample, corridor_m))
    return result


# -- shapely baselines (run in a child process) ----------------------------------------------
def _route_xy(city: City) -> list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]:
    """Metric vertices of every route, rebuilt from the city's seeds (as the engine sees them)."""
    return [route_chunk_xy(city, c) for c in range(-(-city.routes // CHUNK))]


def baseline_run(city: City, sample: int, corridor_m: float) -> dict[str, Any]:
    """Pairs and events/s of both baselines on the first ``sample`` events."""
    chunks = _route_xy(city)
    x = np.concatenate([c[0] for c in chunks])
    y = np.concatenate([c[1] for c in chunks])
    del chunks
    n, v = x.shape
    geoms = event_geometries_xy(city)[:sample]
    events = [
        shapely.points(xy[0])
        if kind == "Point"
        else shapely.linestrings(xy)
        if kind == "LineString"
        else shapely.polygons(xy)
        for kind, xy in geoms
    ]
    out: dict[str, Any] = {"sample": len(events)}

    coords = np.stack((x, y), axis=-1)
    lines = shapely.linestrings(coords.reshape(-1, 2), indices=np.repeat(np.arange(n), v))
    tree = shapely.STRtree(lines)
    t0 = time.perf_counter()
    ei, ri = tree.query(events, predicate="dwithin", distance=corridor_m)
    out["routes_events_per_s"] = len(events) / (time.perf_counter() - t0)
    whole = set(zip(ei.tolist(), ri.tolist(), strict=True))
    del tree, lines

    seg = np.stack((coords[:, :-1], coords[:, 1:]), axis=2).reshape(-1, 2, 2)
    del coords, x, y
    segments = shapely.linestrings(seg.reshape(-1, 2), indices=np.repeat(np.arange(len(seg)), 2))
    del seg
    tree = shapely.STRtree(segments)
    t0 = time.perf_counter()
    ei, si = tree.query(events, predicate="dwithin", distance=corridor_m)
    out["segments_events_per_s"] = len(events) / (time.perf_counter() - t0)
    by_segment = set(zip(ei.tolist(), (si // (v - 1)).tolist(), strict=True))
    out["agree"] = whole == by_segment
    out["pairs"] = sorted(whole)
    out["events_per_s"] = max(out["routes_events_per_s"], out["segments_events_per_s"])
    return out


def _index(name: str) -> int:
    return int(name.rsplit("e", 1)[-1]) if name.startswith("city:") else int(name[1:])


def measure(routes: int, n_events: int, batch: int, sample: int, seed: int, updates: int) -> dict[str, Any]:
    """One run of the benchmark; returns the JSON-ready result."""
    warm_up()  # as a worker does before its first batch: compiled code loaded, not timed
    city = City(routes=routes, events=n_events, seed=seed)
    engine = Engine(EngineConfig(corridor_m=30.0))
    insert_s = 0.0  # the engine's work only, not building the city's route records
    for first, lon, lat in route_chunks(city):
        chunk = [make_route(first + i, lon[i], lat[i]) for i in range(len(lon))]
        for k in range(0, len(chunk), ROUTE_BATCH):
            t0 = time.perf_counter()
            engine.upsert_routes_delta(chunk[k : k + ROUTE_BATCH], AT)
            insert_s += time.perf_counter() - t0
    evs = events(city)
    engine.compact()  # as a worker does once its partitions are loaded (not timed)
    gc.freeze()  # as a long-running worker does once its state is loaded: no rescans of it
    times: list[float] = []
    materialize: list[float] = []
    pairs = 0
    found: set[tuple[int, int]] = set()
    for start in range(0, len(evs), batch):
        part = evs[start : start + batch]
        t1 = time.perf_counter()
        delta = engine.apply_events_delta(part, AT)
        times.append(time.perf_counter() - t1)
        pairs += delta.count(lc.RAISED)
        if start < sample:
            ev, r = delta.pairs(lc.RAISED)
            stored, rs = engine.index.objects.event, engine.route_state
            for e, x in zip(ev.tolist(), r.tolist(), strict=True):
                i = _index(stored[e].id)
                if i < sample:
                    found.add((i, _index(rs(x).route.route_id)))
        if len(materialize) < 3:
            t2 = time.perf_counter()
            engine.wire(delta)
            materialize.append((time.perf_counter() - t2) / max(1, delta.count(lc.RAISED)))
    rates = sorted(len(evs[i : i + batch]) / t for i, t in zip(range(0, len(evs), batch), times, strict=True))
    per_pair = statistics.median(materialize) if materialize else 0.0
    events_per_s = statistics.median(rates)
    pairs_per_event = pairs / max(1, len(evs))
    moved = City(routes=min(updates, routes), events=0, seed=seed + 1000)
    replanned = [
        make_route(first + i, lon[i], lat[i])
        for first, lon, lat in route_chunks(moved)
        for i in range(len(lon))
    ]
    count = len(replanned)
    t3 = time.perf_counter()
    for k in range(0, count, ROUTE_BATCH):  # every active event stays: each update is matched
        engine.upsert_routes_delta(replanned[k : k + ROUTE_BATCH], AT)
    update_s = time.perf_counter() - t3
    rss = _rss_mb()
    gc.unfreeze()  # the engine is dropped after this size: let the collector see what it leaves
    base = _baseline(city, min(sample, len(evs)), 30.0)
    expected = {(int(a), int(b)) for a, b in base["pairs"]}
    p99 = sorted(times)[min(len(times) - 1, int(round(0.99 * (len(times) - 1))))]
    return {
        "routes": routes,
        "events": len(evs),
        "batch": batch,
        "events_per_s": round(events_per_s),
        "events_per_s_total": round(len(evs) / sum(times)),
        "events_per_s_with_encoded_alerts": round(1 / (1 / events_per_s + pairs_per_event * per_pair)),
        "encode_us_per_alert": round(per_pair * 1e6, 2),
        "pairs": pairs,
        "pairs_per_event": round(pairs_per_event, 2),
        "pairs_per_s": round(events_per_s * pairs_per_event),
        "baseline_events_per_s": round(base["events_per_s"]),
        "baseline_routes_strtree_events_per_s": round(base["routes_events_per_s"]),
        "baseline_segments_strtree_events_per_s": round(base["segments_events_per_s"]),
        "baseline_sample": base["sample"],
        "ratio": round(events_per_s / base["events_per_s"], 1),
        "same_pairs": found == expected and base["agree"],
        "pairs_checked": len(expected),
        "p99_batch_ms": round(p99 * 1000, 1),
        "route_inserts_per_s": round(routes / insert_s),
        "route_updates_per_s": round(count / update_s),
        "route_batch": ROUTE_BATCH,
        "active_events_during_updates": engine.event_count,
        "rss_mb": round(rss),
        "pid": os.getpid(),
    }


def _table(results: list[dict[str, Any]]) -> None:
    from rich.table import Table

    from stream.commands.output import console

    table = Table(title="corridor bench match (reference city, corridor 30 m, one core)")
    cols = [
        ("routes", "routes"),
        ("events", "events"),
        ("events/s", "events_per_s"),
        ("with alerts encoded", "events_per_s_with_encoded_alerts"),
        ("baseline ev/s", "baseline_events_per_s"),
        ("ratio", "ratio"),
        ("pairs/event", "pairs_per_event"),
        ("pairs/s", "pairs_per_s"),
        ("p99 batch ms", "p99_batch_ms"),
        ("route inserts/s", "route_inserts_per_s"),
        ("route updates/s", "route_updates_per_s"),
        ("RSS MB", "rss_mb"),
        ("same pairs", "same_pairs"),
    ]
    for title, _ in cols:
        table.add_column(title, justify="right")
    for res in results:
        table.add_row(*(str(res[key]) for _, key in cols))
    console().print(table)


@click.command("match")
@click.option("--routes", "n_routes", type=int, default=None, help="Active routes (default: 1k, 10k, 100k).")
@click.option("--events", "n_events", type=int, default=None, help="Events applied.")
@click.option("--batch", type=int, default=1_000, show_default=True, help="Events per batch.")
@click.option("--sample", type=int, default=2_000, show_default=True, help="Events the baselines run on.")
@click.option("--updates", type=int, default=5_000, show_default=True, help="Route updates timed.")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per size instead of a table.")
def match(
    n_routes: int | None,
    n_events: int | None,
    batch: int,
    sample: int,
    updates: int,
    seed: int,
    as_json: bool,
) -> None:
    """Matching throughput on the reference city, with shapely baselines measured in the same run."""
    if n_routes is None:
        sizes = [(r, n_events or e) for r, e in DEFAULT_SIZES]
    else:
        sizes = [(n_routes, n_events or 10_000)]
    results = []
    for routes, count in sizes:
        res = measure(routes, count, batch, sample, seed, updates)
        results.append(res)
        if as_json:
            click.echo(orjson.dumps(res).decode())
    if not as_json:
        _table(results)
