"""Submitted by bench/bench_cluster.py: every stage of the pipeline in one application on the standalone
cluster, each timed on the driver, the rates written as JSON (``--result``).

Not meant to be run by hand; see bench/bench_cluster.py.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from hitcast.cli import config_from_args, job_parser
from hitcast.features.stage import run_features
from hitcast.ingest.pipeline import run_ingest
from hitcast.lifecycle.promote import run_promote
from hitcast.lifecycle.training import run_training
from hitcast.scoring.stage import run_scoring
from hitcast.spark import build_session
from hitcast.spectrograms.stage import run_spectrograms

log = logging.getLogger("hitcast.bench.cluster_stages")


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("cluster_stages.py", "Time ingest, features, spectrograms, training and scoring in one "
                        "application (for bench/bench_cluster.py).")
    parser.add_argument("--result", required=True, help="JSON file for the timings")
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    spark = build_session(cfg, "hitcast-bench-cluster")
    cores = int(spark.conf.get("spark.cores.max", "0"))
    out: dict[str, dict] = {"cores": cores}

    def timed(name: str, fn, units: str, count) -> None:
        t0 = time.perf_counter()
        summary = fn()
        seconds = time.perf_counter() - t0
        n = count(summary)
        out[name] = {"seconds": seconds, "units": units, "count": n, "rate": n / seconds}
        log.info("%s: %d %s in %.1f s (%.1f %s/s)", name, n, units, seconds, n / seconds, units)

    timed("ingest", lambda: run_ingest(spark, cfg), "events", lambda s: s.events.rows_read)
    timed("features", lambda: run_features(spark, cfg), "examples", lambda s: s.rows)
    timed("spectrograms", lambda: run_spectrograms(spark, cfg), "tracks", lambda s: s.recomputed)
    t0 = time.perf_counter()
    trained = run_training(spark, cfg)
    train_s = time.perf_counter() - t0
    rate = trained.metrics["examples_per_s"]
    out["training"] = {"seconds": train_s, "units": "examples", "count": None, "rate": rate,
                       "workers": trained.workers}
    log.info("training: %.0f examples/s on %d workers (%.1f s in all)", rate, trained.workers, train_s)
    run_promote(spark, cfg)
    timed("scoring", lambda: run_scoring(spark, cfg, full=True), "tracks", lambda s: s.rescored)
    Path(args.result).write_text(json.dumps(out, indent=1))
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
