"""The matching peers of ``corridor bench matchers`` (PostGIS, shapely) agree with the engine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import shapely

from stream.bench import matchers as bm
from stream.bench import postgis as pg
from stream.bench.city import CHUNK, City, route_chunk_xy


@pytest.fixture(scope="module")
def cluster() -> Iterator[pg.Cluster]:
    """A private PostgreSQL + PostGIS cluster (installed first when missing)."""
    pg.ensure_installed()
    with pg.Cluster() as running:
        yield running
    assert not running.dir.exists()


def test_postgis_shapely_and_engine_find_the_same_pairs(cluster: pg.Cluster) -> None:
    """On a tiny city, PostGIS ST_DWithin, a shapely dwithin STRtree and the engine give equal pairs."""
    city = City(routes=300, events=400, seed=3)
    geoms = bm.metric_events(city)
    matcher = pg.PostgisMatcher(cluster.dsn, bm.CORRIDOR_M)
    try:
        chunks = ((c * CHUNK, *route_chunk_xy(city, c)) for c in range(-(-city.routes // CHUNK)))
        assert matcher.load_routes(chunks) == 300
        assert "routes_geom" in matcher.plan(geoms)
        postgis = set(matcher.match(range(len(geoms)), geoms))
    finally:
        matcher.close()
    ei, ri = shapely.STRtree(bm.route_lines(city)).query(geoms, predicate="dwithin", distance=bm.CORRIDOR_M)
    plain = set(zip(ei.tolist(), ri.tolist(), strict=True))
    _, found, _ = bm.run_engine(city, batch=400)
    assert postgis
    assert postgis == plain == found[0]


def test_measure_checks_agreement_and_reports_ratios() -> None:
    """A small measure() checks the matchers agree and reports rates and pair-by-pair ratios."""
    res = bm.measure(routes=200, n_events=600, batches=2, seed=5, batch=200)
    assert res["agree"] is True
    assert res["pairs_checked"] > 0
    assert res["peer_batches"] == 2
    for key in ("engine", "shapely_buffered", "shapely_dwithin", "shapely_segments", "postgis"):
        assert res[f"{key}_events_per_s"]["median"] > 0
    assert res["ratio_vs_postgis"]["runs"] == 2
    assert res["postgis"]["uses_gist"] is True
    assert res["best_shapely"] in ("shapely_buffered", "shapely_dwithin", "shapely_segments")


def test_cluster_directory_is_removed_after_an_error() -> None:
    """The cluster is stopped and its directory removed even when the block fails."""
    pg.ensure_installed()
    with pytest.raises(RuntimeError, match="boom"), pg.Cluster() as failing:
        directory = failing.dir
        raise RuntimeError("boom")
    assert not directory.exists()
