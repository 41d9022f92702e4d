"""Benchmark of the analysts' views: each view queried whole through the SQL endpoint, against the same view
in an in-process Spark session over the same Delta tables (what a user with pyspark could do instead).

    bench/bench_sql.py --conf conf/local.yaml [--repeat 3]        (after make demo: its warehouse)

The endpoint runs on a free loopback port with its own metastore folder, and is stopped at the end. Each query
is run ``--repeat`` times after one untimed run; the best time is printed, with the rows it returned, and the
ratio endpoint / in-process (the endpoint pays for the Thrift round trips and the row-by-row transfer).
"""
from __future__ import annotations

import dataclasses
import logging
import socket
import time

from hitcast.cli import config_from_args, job_parser
from hitcast.sql import server
from hitcast.sql.client import connect, fetch
from hitcast.sql.register import warehouse_tables
from hitcast.sql.views import create_statement, load_views, view_parameters
from hitcast.spark import build_session

log = logging.getLogger("hitcast.bench.sql")


def best_of(repeat: int, run) -> tuple[float, int]:
    """(best seconds, rows) of ``repeat`` timed calls of ``run`` (which returns its row count), after one untimed."""
    rows = run()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        rows = run()
        best = min(best, time.perf_counter() - t0)
    return best, rows


def in_process(cfg, repeat: int) -> dict[str, tuple[float, int]]:
    """Each view's best time and rows in a local Spark session, the tables registered by location."""
    spark = build_session(cfg, "hitcast-bench-sql")
    db = cfg.sql.tables_database
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {db}")
    for name, location in warehouse_tables(cfg).items():
        if name not in cfg.sql.private_tables:
            spark.sql(f"CREATE TABLE IF NOT EXISTS {db}.{name} USING delta LOCATION '{location}'")
    params, out = view_parameters(cfg), {}
    for view in load_views():
        spark.sql(create_statement(view, params))
        out[view.name] = best_of(repeat, lambda v=view.name: len(spark.sql(f"SELECT * FROM global_temp.{v}").collect()))
    spark.stop()
    return out


def through_endpoint(cfg, views: list[str], repeat: int) -> dict[str, tuple[float, int]]:
    """Each view's best time and rows through the endpoint's client."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = dataclasses.replace(cfg, sql=dataclasses.replace(cfg.sql, port=port, metastore_dir="metastore-bench"))
    info = server.start_server(cfg)
    log.info("endpoint up in %.1f s", info.start_s)
    try:
        with connect(info.host, info.port, user="bench") as conn:
            return {v: best_of(repeat, lambda v=v: len(fetch(conn, f"SELECT * FROM {cfg.sql.views_database}.{v}")[1]))
                    for v in views}
    finally:
        server.stop_server(cfg)


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("bench_sql.py", "The analysts' views through the SQL endpoint vs in-process Spark.")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    local = in_process(cfg, args.repeat)
    remote = through_endpoint(cfg, list(local), args.repeat)
    lines = [f"{'view':<22} {'rows':>7} {'endpoint s':>11} {'in-process s':>13} {'ratio':>6}"]
    for view, (seconds, rows) in local.items():
        r_seconds, r_rows = remote[view]
        if r_rows != rows:
            raise SystemExit(f"{view}: {r_rows} rows through the endpoint, {rows} in-process")
        lines.append(f"{view:<22} {rows:>7,} {r_seconds:>11.2f} {seconds:>13.2f} {r_seconds / seconds:>6.1f}x")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
