"""``corridor bench matchers``: Corridor's engine against plain shapely and PostGIS on the same city.

For each size, the reference city's events are cut into batches of 1,000. The engine applies every
batch (lon/lat records, as it receives them); the peers run the first few batches of the same
events, already projected (their projection is not timed): a shapely STRtree over the routes
buffered by the corridor (``intersects``), a shapely STRtree over the route lines (``dwithin``),
one over the routes' individual segments (``dwithin``), and PostGIS (GiST index, one
``ST_DWithin`` join per batch). Before any figure is kept, the (event, route) pairs of the engine,
both ``dwithin`` trees and PostGIS must be identical on those batches (the buffered tree differs
only where a polygonal buffer cuts an arc; those pairs are counted). The best shapely peer is the
fastest of the three trees. Ratios are taken batch by batch (engine rate / peer rate on the same
batch).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click
import numpy as np
import orjson
import shapely

from stream.bench import postgis as pg
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

AT = datetime(2026, 1, 6, 5, 0, tzinfo=UTC)  # before departure: every route entirely ahead
CORRIDOR_M = 30.0
BATCH = 1_000
# routes -> (events the engine applies, batches the peers run)
DEFAULT_SIZES: dict[int, tuple[int, int]] = {10_000: (10_000, 5), 100_000: (10_000, 3)}
TARGETS = {"postgis": 100.0, "shapely": 10.0}
Pairs = set[tuple[int, int]]


def summary(values: Sequence[float], digits: int = 0) -> dict[str, Any]:
    """Median, min and max of repeated measurements (and how many)."""
    if not values:
        return {"median": None, "min": None, "max": None, "runs": 0}
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "runs": len(values),
    }


def metric_events(city: City) -> list[Any]:
    """The city's events as metric shapely geometries (EPSG:2154), in order."""
    out = []
    for kind, xy in event_geometries_xy(city):
        if kind == "Point":
            out.append(shapely.points(xy[0]))
        elif kind == "LineString":
            out.append(shapely.linestrings(xy))
        else:
            out.append(shapely.polygons(xy))
    return out


def route_lines(city: City) -> Any:
    """Every route as a metric shapely LineString, in route order."""
    parts = []
    for chunk in range(-(-city.routes // CHUNK)):
        x, y = route_chunk_xy(city, chunk)
        k, n = x.shape
        parts.append(
            shapely.linestrings(np.stack((x, y), -1).reshape(-1, 2), indices=np.repeat(np.arange(k), n))
        )
    return np.concatenate(parts) if parts else np.array([], dtype=object)


def route_segments(lines: Any) -> tuple[Any, int]:
    """Every segment of the routes as its own metric LineString (route ``i`` owns segments
    ``i * k .. (i + 1) * k - 1``), and ``k``, segments per route (the city's routes all have as many
    vertices)."""
    counts = shapely.get_num_coordinates(lines)
    if len(counts) and (counts != counts[0]).any():
        raise ValueError("route_segments expects routes with as many vertices each (the reference city's)")
    coords = shapely.get_coordinates(lines).reshape(len(lines), -1, 2)
    seg = np.stack((coords[:, :-1], coords[:, 1:]), axis=2).reshape(-1, 2)
    k = coords.shape[1] - 1
    return shapely.linestrings(seg, indices=np.repeat(np.arange(len(seg) // 2), 2)), k


def run_engine(city: City, batch: int) -> tuple[list[float], list[Pairs], float]:
    """Per-batch seconds and (event, route) pairs of Corridor's engine; and the route insert time."""
    warm_up()  # as a worker does before its first batch: compiled code loaded, not timed
    engine = Engine(EngineConfig(corridor_m=CORRIDOR_M))
    started = time.perf_counter()
    for first, lon, lat in route_chunks(city):
        engine.upsert_routes_delta([make_route(first + i, lon[i], lat[i]) for i in range(len(lon))], AT)
    load_s = time.perf_counter() - started
    evs = events(city)
    engine.compact()  # as a worker does once its partitions are loaded (not timed)
    gc.freeze()  # as a worker does once its index is loaded (and bench match): no rescans of it
    times: list[float] = []
    found: list[Pairs] = []
    for start in range(0, len(evs), batch):
        part = evs[start : start + batch]
        t0 = time.perf_counter()
        delta = engine.apply_events_delta(part, AT)
        times.append(time.perf_counter() - t0)
        ev, r = delta.pairs(lc.RAISED)
        stored = engine.index.objects.event
        found.append(
            {
                (int(stored[e].id.rsplit("e", 1)[1]), int(engine.route_state(x).route.route_id[1:]))
                for e, x in zip(ev.tolist(), r.tolist(), strict=True)
            }
        )
    gc.unfreeze()  # the engine is dropped: let the collector see what it leaves
    return times, found, load_s


def run_tree(
    tree: Any, geoms: list[Any], batches: int, batch: int, per_route: int = 1, **query: Any
) -> tuple[list[float], list[Pairs]]:
    """Per-batch seconds and pairs of one STRtree query mode (batch 0 is an untimed warm-up);
    the tree holds ``per_route`` consecutive geometries per route."""
    tree.query(geoms[:batch], **query)
    times: list[float] = [float("nan")]
    found: list[Pairs] = [set()]
    for b in range(1, batches + 1):
        part = geoms[b * batch : (b + 1) * batch]
        t0 = time.perf_counter()
        ei, ri = tree.query(part, **query)
        times.append(time.perf_counter() - t0)
        found.append(set(zip((ei + b * batch).tolist(), (ri // per_route).tolist(), strict=True)))
    return times, found


def run_postgis(
    city: City, geoms: list[Any], batches: int, batch: int
) -> tuple[list[float], list[Pairs], dict[str, Any]]:
    """Per-batch seconds and pairs of PostGIS on a private cluster; load time and versions."""
    pg.ensure_installed()
    with pg.Cluster() as cluster:
        matcher = pg.PostgisMatcher(cluster.dsn, CORRIDOR_M)
        try:
            started = time.perf_counter()
            chunks = ((c * CHUNK, *route_chunk_xy(city, c)) for c in range(-(-city.routes // CHUNK)))
            matcher.load_routes(chunks)
            info: dict[str, Any] = {"load_s": round(time.perf_counter() - started, 1)}
            info.update(pg.versions(cluster.dsn))
            info["uses_gist"] = "routes_geom" in matcher.plan(geoms[:batch])
            matcher.match(range(batch), geoms[:batch])  # batch 0: warm-up
            times: list[float] = [float("nan")]
            found: list[Pairs] = [set()]
            for b in range(1, batches + 1):
                ids = range(b * batch, (b + 1) * batch)
                seconds, pairs = pg.timed_match(matcher, ids, geoms[b * batch : (b + 1) * batch])
                times.append(seconds)
                found.append(set(pairs))
        finally:
            matcher.close()
    return times, found, info


def _rates(times: list[float], batch: int) -> list[float]:
    return [batch / t for t in times]


def measure(routes: int, n_events: int, batches: int, seed: int = 7, batch: int = BATCH) -> dict[str, Any]:
    """One size: every matcher on the same city; pairs checked; events/s and batch-by-batch ratios."""
    city = City(routes=routes, events=n_events, seed=seed)
    batches = max(1, min(batches, n_events // batch - 1))
    eng_times, eng_pairs, eng_load = run_engine(city, batch)
    gc.collect()
    geoms = metric_events(city)
    lines = route_lines(city)
    dw_times, dw_pairs = run_tree(
        shapely.STRtree(lines), geoms, batches, batch, predicate="dwithin", distance=CORRIDOR_M
    )
    segments, per_route = route_segments(lines)
    seg_times, seg_pairs = run_tree(
        shapely.STRtree(segments), geoms, batches, batch, per_route, predicate="dwithin", distance=CORRIDOR_M
    )
    del segments
    gc.collect()
    started = time.perf_counter()
    buffered = shapely.buffer(lines, CORRIDOR_M)
    buffer_s = time.perf_counter() - started
    del lines
    buf_times, buf_pairs = run_tree(shapely.STRtree(buffered), geoms, batches, batch, predicate="intersects")
    del buffered
    gc.collect()
    pg_times, pg_pairs, pg_info = run_postgis(city, geoms, batches, batch)

    checked = range(1, batches + 1)  # batch 0 warms every matcher up
    agree = all(eng_pairs[b] == dw_pairs[b] == seg_pairs[b] == pg_pairs[b] for b in checked)
    boundary = sum(len(buf_pairs[b] ^ dw_pairs[b]) for b in checked)
    if not agree:
        diff = {
            b: (len(eng_pairs[b]), len(dw_pairs[b]), len(seg_pairs[b]), len(pg_pairs[b])) for b in checked
        }
        raise click.ClickException(
            f"matchers disagree at {routes:,} routes "
            f"(engine, shapely lines, shapely segments, postgis): {diff}"
        )
    engine_rates = _rates(eng_times, batch)
    peers = {
        "shapely_buffered": _rates(buf_times, batch),
        "shapely_dwithin": _rates(dw_times, batch),
        "shapely_segments": _rates(seg_times, batch),
        "postgis": _rates(pg_times, batch),
    }
    peers = {name: [rates[b] for b in checked] for name, rates in peers.items()}
    trees = ("shapely_buffered", "shapely_dwithin", "shapely_segments")
    best_shapely = max(trees, key=lambda k: statistics.median(peers[k]))
    ratios = {
        name: [engine_rates[b] / rate for b, rate in zip(checked, rates, strict=True)]
        for name, rates in peers.items()
    }
    return {
        "routes": routes,
        "events": n_events,
        "batch": batch,
        "peer_batches": batches,
        "pairs_checked": sum(len(eng_pairs[b]) for b in checked),
        "agree": agree,
        "buffered_boundary_differences": boundary,
        "engine_events_per_s": summary(engine_rates[1:]),
        "engine_events_per_s_on_peer_batches": summary([engine_rates[b] for b in checked]),
        **{f"{name}_events_per_s": summary(rates) for name, rates in peers.items()},
        **{f"ratio_vs_{name}": summary(r, 1) for name, r in ratios.items()},
        "best_shapely": best_shapely,
        "ratio_vs_best_shapely": summary(ratios[best_shapely], 1),
        "engine_route_load_s": round(eng_load, 1),
        "shapely_buffer_s": round(buffer_s, 1),
        "postgis": pg_info,
    }


@click.command("matchers")
@click.option("--routes", "sizes", type=int, multiple=True, help="Active routes (default: 10k and 100k).")
@click.option("--events", "n_events", type=int, default=None, help="Events the engine applies.")
@click.option("--batches", type=int, default=None, help="Batches of 1,000 events the peers run.")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per size instead of a table.")
def matchers(
    sizes: tuple[int, ...], n_events: int | None, batches: int | None, seed: int, as_json: bool
) -> None:
    """Engine vs shapely STRtrees vs PostGIS on the reference city: same pairs, events/s, ratios."""
    from rich.table import Table

    from stream.commands.output import console

    table = Table(title="corridor bench matchers (reference city, corridor 30 m, events/s median [min–max])")
    for column in (
        "routes",
        "engine",
        "shapely buffered",
        "shapely dwithin",
        "shapely segments",
        "PostGIS",
        "× PostGIS",
        "× shapely",
    ):
        table.add_column(column, justify="right")
    for routes in sizes or tuple(DEFAULT_SIZES):
        default_events, default_batches = DEFAULT_SIZES.get(routes, (10_000, 3))
        res = measure(routes, n_events or default_events, batches or default_batches, seed)
        if as_json:
            click.echo(orjson.dumps({"bench": "matchers", **res}).decode())
            continue

        def fmt(s: dict[str, Any]) -> str:
            return f"{s['median']:,} [{s['min']:,}–{s['max']:,}]"

        table.add_row(
            f"{routes:,}",
            fmt(res["engine_events_per_s"]),
            fmt(res["shapely_buffered_events_per_s"]),
            fmt(res["shapely_dwithin_events_per_s"]),
            fmt(res["shapely_segments_events_per_s"]),
            fmt(res["postgis_events_per_s"]),
            fmt(res["ratio_vs_postgis"]),
            fmt(res["ratio_vs_best_shapely"]),
        )
    if not as_json:
        console().print(table)
