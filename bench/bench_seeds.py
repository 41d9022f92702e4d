"""Benchmark: how much the demo evaluation moves with the training seed.

One seed's F1 on 165 test hits is a noisy figure. This trains the configured variant and its ablations once
per seed (the evaluation's own code path; existing model versions are reused), assesses each on the
time-split test set like ``jobs/evaluate.py`` (threshold chosen on validation) and prints, per seed and over
the seeds: F1, F1 at the label's top share, ROC-AUC, whether the primary variant beats every ablation on both
F1 and ROC-AUC, and its F1 gap to the generator's ground-truth limit. Needs the demo tables (``make demo``).

    python bench/bench_seeds.py --conf conf/local.yaml [--seeds 7,8,9,10,11]
"""
from __future__ import annotations

from dataclasses import replace
import logging
import time

import numpy as np

from hitcast.cli import config_from_args, job_parser
from hitcast.evaluation.ablations import eval_rows, keras_result
from hitcast.demo.truth import load_truth_or_reason
from hitcast.evaluation.limit import truth_result
from hitcast.metrics import f1_top_share
from hitcast.model.training import table_inputs
from hitcast.spark import build_session

log = logging.getLogger("hitcast.bench.seeds")


def main() -> None:
    parser = job_parser("bench_seeds", __doc__)
    parser.add_argument("--seeds", default="7,8,9,10,11", help="comma-separated training seeds")
    args = parser.parse_args()
    cfg = config_from_args(args)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    spark = build_session(cfg, "hitcast-bench-seeds")
    examples, spectrograms, inputs = table_inputs(spark, cfg)
    rows = eval_rows(examples, spectrograms)
    truth, reason = load_truth_or_reason(cfg)
    limit = truth_result(truth, rows, min_group_rows=cfg.evaluate.min_group_rows,
                         threshold_rule=cfg.train.threshold) if truth is not None else None
    if limit is None:
        log.warning("no ground-truth limit: %s", reason)
    variants = [cfg.train.variant] + [v for v in cfg.evaluate.ablations if v != cfg.train.variant]
    table: dict[int, dict[str, dict[str, float]]] = {}
    for seed in seeds:
        run = replace(cfg, train=replace(cfg.train, seed=seed))
        t0 = time.perf_counter()
        table[seed] = {}
        for v in variants:
            r, _ = keras_result(spark, run, examples, spectrograms=spectrograms, inputs=inputs, variant=v, rows=rows)
            share = f1_top_share(r.test["is_hit"].to_numpy(), r.test["p"].to_numpy(), r.test["cutoff"].to_numpy(),
                                 share=cfg.features.hit_share)
            table[seed][v] = {"f1": r.metrics["f1"], "f1_top": share, "auc": r.metrics["roc_auc"]}
        log.info("seed %d done in %.0f s", seed, time.perf_counter() - t0)
    primary = variants[0]
    lim = limit.metrics["f1"] if limit is not None else float("nan")
    print(f"train: ensemble {cfg.train.ensemble}, {cfg.train.epochs} epochs, lr {cfg.train.learning_rate} "
          f"({cfg.train.lr_schedule}); test rows {int((rows['split'] == 'test').sum())}; limit F1 {lim:.3f}")
    print("seed  " + "  ".join(f"{v + ' F1 / top / AUC':>26s}" for v in variants) + "  wins  gap")
    wins, gaps = 0, []
    for seed in seeds:
        m = table[seed]
        win = all(m[primary]["f1"] > m[v]["f1"] and m[primary]["auc"] > m[v]["auc"] for v in variants[1:])
        wins += win
        gaps.append(100 * (lim - m[primary]["f1"]))
        print(f"{seed:<5d} " + "  ".join(f"{m[v]['f1']:8.3f} / {m[v]['f1_top']:.3f} / {m[v]['auc']:.3f}"
                                          for v in variants) + f"  {'yes' if win else 'NO':>4s}  {gaps[-1]:4.1f}")
    for name, fn in (("mean", np.mean), ("min", np.min), ("max", np.max)):
        print(f"{name:5s} " + "  ".join(
            f"{fn([table[s][v]['f1'] for s in seeds]):8.3f} / {fn([table[s][v]['f1_top'] for s in seeds]):.3f} / "
            f"{fn([table[s][v]['auc'] for s in seeds]):.3f}" for v in variants))
    print(f"{primary} beats {', '.join(variants[1:])} on F1 and ROC-AUC with {wins} of {len(seeds)} seeds; "
          f"F1 gap to the limit {np.mean(gaps):.1f} points on average (max {np.max(gaps):.1f}; target <= 5)")
    spark.stop()


if __name__ == "__main__":
    main()
