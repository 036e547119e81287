"""PostGIS as a matching peer: a private PostgreSQL cluster, routes with a GiST index, ``ST_DWithin``.

``ensure_installed()`` installs Debian's postgresql + postgis when they are missing (as root, with
apt-get). ``Cluster`` runs ``initdb`` in a temporary directory owned by the ``postgres`` user,
starts the server on a free loopback port with durability off (a benchmark scratch database), and
always stops it and removes the directory. ``PostgisMatcher`` loads routes already projected to
Lambert-93 (EPSG:2154) and matches a batch of events in one statement: the batch is sent as arrays
(``unnest``) and joined against the routes with ``ST_DWithin(route, event, corridor)``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import shapely

from stream.local.services import free_port

SRID = 2154
APT_PACKAGES = ("postgresql", "postgis", "postgresql-15-postgis-3")
_PG_ROOT = Path("/usr/lib/postgresql")
_EXTENSIONS = Path("/usr/share/postgresql")


class PostgisUnavailable(RuntimeError):
    """PostgreSQL or PostGIS is missing and cannot be installed here; the message says what to do."""


def pg_bindir() -> Path | None:
    """The ``bin`` directory of the newest installed PostgreSQL server, if any."""
    found = sorted(_PG_ROOT.glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


def installed() -> bool:
    """True when a PostgreSQL server and the PostGIS extension of the same version are installed."""
    bindir = pg_bindir()
    return (
        bindir is not None and (_EXTENSIONS / bindir.parent.name / "extension" / "postgis.control").exists()
    )


def ensure_installed() -> None:
    """Install postgresql + postgis with apt-get when missing (needs root); raise when impossible."""
    if installed():
        return
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise PostgisUnavailable(
            "PostgreSQL with PostGIS is needed: run `apt-get install -y postgresql postgis` as root "
            "(Debian bookworm: postgresql-15-postgis-3)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([apt, "update"], check=False, env=env, stdout=subprocess.DEVNULL)
    subprocess.run([apt, "install", "-y", "--no-install-recommends", *APT_PACKAGES], check=True, env=env)
    if not installed():
        raise PostgisUnavailable("apt-get finished but PostGIS is still missing")


def versions(dsn: str) -> dict[str, str]:
    """Server and PostGIS versions of a running cluster."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        row = conn.execute("SELECT current_setting('server_version'), postgis_lib_version()").fetchone()
    assert row is not None  # noqa: S101 - one row always
    return {"postgresql": str(row[0]), "postgis": str(row[1])}


class Cluster:
    """A throw-away PostgreSQL cluster on a free loopback port, run as the ``postgres`` user."""

    def __init__(self) -> None:
        bindir = pg_bindir()
        if bindir is None:
            raise PostgisUnavailable("no PostgreSQL server installed (apt-get install postgresql postgis)")
        self.bindir = bindir
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="corridor-pg-"))
        self.started = False

    @property
    def dsn(self) -> str:
        """Connection string of the superuser."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def _run(self, *argv: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*prefix, *argv], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(argv[0]).name} failed ({done.returncode}): {done.stderr[-2000:]}")

    def start(self) -> Cluster:
        """initdb, start, and wait until the server accepts connections."""
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        data = self.dir / "data"
        self._run(str(self.bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.dir}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c shared_buffers=1GB",
                "-c work_mem=64MB",
                "-c maintenance_work_mem=1GB",
                "-c max_wal_size=8GB",
            ]
        )
        self.started = True
        log = str(self.dir / "server.log")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(data), "-l", log, "-o", options, "-w", "start")
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its directory."""
        try:
            if self.started:
                with contextlib.suppress(RuntimeError):
                    self._run(str(self.bindir / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "stop")
        finally:
            self.started = False
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Cluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


_MATCH = """
SELECT e.i, r.id
FROM unnest(%(ids)s::int[], %(wkb)s::bytea[]) AS e(i, wkb)
JOIN routes r ON ST_DWithin(r.geom, ST_GeomFromWKB(e.wkb, 2154), %(distance)s)
"""


class PostgisMatcher:
    """Routes in a table with a GiST index; batches of events matched with one ST_DWithin join."""

    def __init__(self, dsn: str, corridor_m: float) -> None:
        import psycopg

        self.conn: Any = psycopg.connect(dsn, autocommit=True)
        self.corridor_m = corridor_m
        self.conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        self.conn.execute("DROP TABLE IF EXISTS routes")
        self.conn.execute(f"CREATE TABLE routes (id integer PRIMARY KEY, geom geometry(LineString, {SRID}))")

    def load_routes(self, chunks: Iterator[tuple[int, np.ndarray[Any, Any], np.ndarray[Any, Any]]]) -> int:
        """COPY routes from (first id, x (k, n), y (k, n)) metric chunks; build the index; return count."""
        count = 0
        with self.conn.cursor() as cur, cur.copy("COPY routes (id, geom) FROM STDIN") as copy:
            for first, x, y in chunks:
                k, n = x.shape
                lines = shapely.linestrings(
                    np.stack((x, y), -1).reshape(-1, 2), indices=np.repeat(np.arange(k), n)
                )
                wkb = shapely.to_wkb(shapely.set_srid(lines, SRID), hex=True, include_srid=True)
                rows = [f"{first + i}\t{h}\n" for i, h in enumerate(wkb.tolist())]
                copy.write("".join(rows).encode("ascii"))
                count += k
        self.conn.execute("CREATE INDEX routes_geom ON routes USING gist (geom)")
        self.conn.execute("ANALYZE routes")
        return count

    def match(self, ids: Sequence[int], geometries: Sequence[Any]) -> list[tuple[int, int]]:
        """(event id, route id) pairs within the corridor, for one batch of metric shapely geometries."""
        wkb = [bytes(b) for b in shapely.to_wkb(np.asarray(geometries, dtype=object)).tolist()]
        rows = self.conn.execute(
            _MATCH, {"ids": list(ids), "wkb": wkb, "distance": self.corridor_m}, binary=True
        ).fetchall()
        return [(int(e), int(r)) for e, r in rows]

    def plan(self, geometries: Sequence[Any]) -> str:
        """EXPLAIN of the batch query (to check the GiST index is used)."""
        wkb = [bytes(b) for b in shapely.to_wkb(np.asarray(geometries, dtype=object)).tolist()]
        args = {"ids": list(range(len(wkb))), "wkb": wkb, "distance": self.corridor_m}
        rows = self.conn.execute("EXPLAIN " + _MATCH, args).fetchall()
        return "\n".join(str(r[0]) for r in rows)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


def timed_match(matcher: PostgisMatcher, ids: Sequence[int], geoms: Sequence[Any]) -> tuple[float, list[Any]]:
    """Seconds and pairs of one batch."""
    started = time.perf_counter()
    pairs = matcher.match(ids, geoms)
    return time.perf_counter() - started, pairs
