"""Benchmark: generate a large catalog (default 100,000 tracks, >= 10 million events), ingest it, build its
daily aggregates (``engagement_daily``), and time the features job (every cutoff, from the aggregates),
sampling the peak memory (RSS from /proc) of the driver, the JVM and the Python workers.

    bench/bench_features.py --conf conf/local.yaml [--tracks 100000] [--events-per-track 110] [--pool 200]

Data lands under data/bench/ (git-ignored). In local mode the JVM is the driver and the executors at once.
"""
from __future__ import annotations

import logging
import time

from hitcast.cli import config_from_args, job_parser
from hitcast.demo.generate import generate_demo
from hitcast.features.dailytable import update_engagement_daily
from hitcast.features.examples import build_training_examples
from hitcast.features.stage import write_training_examples
from hitcast.ingest.pipeline import run_ingest
from hitcast.spark import build_session
from hitcast.tables import read_table
from rss import RssSampler

log = logging.getLogger("hitcast.bench.features")


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("bench_features.py", "Generate a large catalog, ingest it and time the features job "
                        "(wall time, events/s, peak RSS of driver, JVM and Python workers).")
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--events-per-track", type=float, default=110.0)
    parser.add_argument("--pool", type=int, default=200, help="distinct audio files (tracks reuse them)")
    parser.add_argument("--out", default="data/bench", help="folder for raw data and tables")
    parser.add_argument("--skip-generate", action="store_true", help="reuse data already generated in --out")
    args = parser.parse_args(argv)
    args.overrides = [*args.overrides, f"paths.raw={args.out}/raw", f"paths.warehouse={args.out}/warehouse",
                      f"paths.audio_roots=[{args.out}/raw/audio]", f"ingest.catalog_path={args.out}/raw/catalog",
                      f"ingest.events_path={args.out}/raw/events", f"demo.audio_pool={args.pool}",
                      f"demo.events_per_track={args.events_per_track}", "demo.mc_draws=20",
                      "ingest.now=2026-06-01"]
    cfg = config_from_args(args)
    sampler = RssSampler(period=0.5)
    sampler.start()
    spark = build_session(cfg, "hitcast-bench-features")
    times = {}
    if not args.skip_generate:
        t0 = time.perf_counter()
        res = generate_demo(spark, cfg, tracks=args.tracks)
        times["generate"] = time.perf_counter() - t0
        log.info("generated %d tracks, %d events in %.0f s", res.tracks, res.events, times["generate"])
        t0 = time.perf_counter()
        summary = run_ingest(spark, cfg)
        times["ingest"] = time.perf_counter() - t0
        log.info("ingested %d events in %.0f s (%.0f events/s)", summary.events.rows_inserted, times["ingest"],
                 summary.events.rows_read / times["ingest"])
    t0 = time.perf_counter()
    log.info("%s", update_engagement_daily(spark, cfg))
    times["aggregates"] = time.perf_counter() - t0
    mem_before = dict(sampler.peak)
    sampler.peak = dict.fromkeys(sampler.peak, 0.0)
    events = read_table(spark, cfg, "engagement_events")
    n_events = events.count()
    t0 = time.perf_counter()
    catalog = read_table(spark, cfg, "catalog")
    daily = read_table(spark, cfg, "engagement_daily")
    n_rows = spark.read.format("delta").load(write_training_examples(build_training_examples(catalog, daily, cfg),
                                                                     cfg)).count()
    times["features"] = time.perf_counter() - t0
    sampler.stop_flag.set()
    sampler.sample()
    print(f"catalog tracks: {catalog.count()}, engagement events: {n_events}, training examples: {n_rows}")
    for k, v in times.items():
        print(f"{k:>9}: {v:8.1f} s")
    print(f"features: {n_events / times['features']:,.0f} events/s over {len(cfg.features.cutoffs)} cutoffs")
    print("peak RSS (MiB) during generate+ingest+aggregates:", {k: round(v) for k, v in mem_before.items()})
    print("peak RSS (MiB) during features:       ", {k: round(v) for k, v in sampler.peak.items()})
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
