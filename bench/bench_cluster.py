"""Benchmark: per-stage rates on the standalone cluster with one executor and with two (one core each).

    bench/bench_cluster.py --conf conf/standalone.yaml [--tracks 600] [--events-per-track 150]

Generates one demo catalog (in-process, local[2]), starts the cluster of the configuration unless it runs,
then submits ``bench/cluster_stages.py`` once per executor count (``spark.cores.max`` = 1, then 2) on its own
copy of the raw data: ingest, features, spectrograms, training (one barrier worker per executor) and full
scoring in one application, each stage timed on the driver. Prints each stage's rate and the 2-vs-1 scaling.
Shipping the environment is paid once per application, before the first stage, and is not in the rates.
Data under data/bench-cluster/ (git-ignored).
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

from hitcast.cli import config_from_args, job_parser
from hitcast.cluster import standalone
from hitcast.cluster.package import build_packages
from hitcast.cluster.submit import submit
from hitcast.config import PROJECT_ROOT, load_config
from hitcast.demo.generate import generate_demo
from hitcast.spark import build_session

log = logging.getLogger("hitcast.bench.cluster")
STAGES = ("ingest", "features", "spectrograms", "training", "scoring")


def data_settings(root: Path, args) -> list[str]:
    return [f"paths.root={root}", "paths.raw=raw", "paths.warehouse=warehouse", "paths.models=models",
            "paths.reports=reports", "paths.audio_roots=[raw/audio]", "ingest.catalog_path=raw/catalog",
            "ingest.events_path=raw/events", f"demo.tracks={args.tracks}",
            f"demo.events_per_track={args.events_per_track}", "demo.mc_draws=20", f"train.epochs={args.epochs}"]


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("bench_cluster.py", "Per-stage rates on the standalone cluster, 1 vs 2 executors.")
    parser.add_argument("--tracks", type=int, default=600)
    parser.add_argument("--events-per-track", type=float, default=150.0)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", default="data/bench-cluster", help="folder for raw data, tables and logs")
    args = parser.parse_args(argv)
    out = (PROJECT_ROOT / args.out).resolve()
    base = out / "generated"
    cfg = config_from_args(args)
    gen_cfg = load_config(args.conf, [*args.overrides, *data_settings(base, args), "spark.master=local[2]"])
    if not (base / "raw").exists():
        spark = build_session(gen_cfg, "hitcast-bench-cluster-generate")
        res = generate_demo(spark, gen_cfg)
        spark.stop()
        log.info("generated %d tracks, %d events under %s", res.tracks, res.events, base)
    log.info("packages: %s", build_packages(cfg))
    started = standalone.running_cluster(cfg) is None
    if started:
        standalone.start_cluster(cfg)
    results: dict[int, dict] = {}
    try:
        for executors in (1, 2):
            root = out / f"executors-{executors}"
            shutil.rmtree(root, ignore_errors=True)
            shutil.copytree(base / "raw", root / "raw")
            result = root / "rates.json"
            job_args = [*(["--conf", args.conf] if args.conf else []), "--result", str(result)]
            for s in (*args.overrides, *data_settings(root, args), f"train.workers={executors}"):
                job_args += ["--set", s]
            t0 = time.perf_counter()
            submit(cfg, PROJECT_ROOT / "bench" / "cluster_stages.py", job_args, log_path=root / "submit.log",
                   spark_conf={"spark.cores.max": str(executors)}, timeout_s=7200)
            log.info("%d executor(s): application %.0f s", executors, time.perf_counter() - t0)
            results[executors] = json.loads(result.read_text())
    finally:
        if started:
            standalone.stop_cluster(cfg)
    lines = [f"{'stage':<13}{'units':>10}{'1 executor /s':>16}{'2 executors /s':>17}{'2 vs 1':>9}"]
    for stage in STAGES:
        one, two = results[1][stage], results[2][stage]
        lines.append(f"{stage:<13}{one['units']:>10}{one['rate']:>16.1f}{two['rate']:>17.1f}"
                     f"{two['rate'] / one['rate']:>8.2f}x")
    log.info("rates on the standalone cluster (%d tracks):\n%s", args.tracks, "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
