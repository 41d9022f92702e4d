"""Evaluate on the time-split test set (ablations, GBT baseline, ground-truth limit) and write the report."""
from __future__ import annotations

import sys

from hitcast.cli import job_parser, run_stage


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(
        "evaluate.py",
        "Honest evaluation on the test split of training_examples (thresholds chosen on validation):\n"
        "F1, precision, recall, ROC-AUC, PR-AUC and Brier overall, per genre, per release quarter and for\n"
        "cold-start tracks; for the configured variant, the ablations in evaluate.ablations (trained the\n"
        "same way, reused when their version exists), a Spark MLlib GBT baseline, and the demo generator's\n"
        "ground-truth limit. Writes paths.reports/evaluation/report.md with PNG plots.\n"
        "With --hit-predictor (and --conf conf/spotify-hit-predictor.yaml, after jobs/ingest.py with the same\n"
        "configuration): the structured branch alone on the ingested Spotify hit-predictor catalog (train\n"
        "1960s-2000s, test 2010s) against the reference F1 0.81 / AUC 0.87, in paths.reports/hit-predictor/.")
    parser.add_argument("--hit-predictor", action="store_true",
                        help="evaluate on the ingested hit-predictor catalog instead of training_examples")
    args = parser.parse_args(argv)
    if args.hit_predictor:
        from hitcast.evaluation.hitpredictor import run_hit_predictor

        return run_stage(args, "hitcast-evaluate", run_hit_predictor)
    from hitcast.evaluation.suite import evaluate_catalog

    return run_stage(args, "hitcast-evaluate", evaluate_catalog)


if __name__ == "__main__":
    sys.exit(main())
