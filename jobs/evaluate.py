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
        "With --labelled (after jobs/ingest.py with the same --conf): a catalog with a known label and release\n"
        "dates, e.g. --conf conf/spotify-hit-predictor.yaml. Split by release year (labelled.test_from), the\n"
        "train.variant model and the GBT, with the artist's history from earlier release periods as features\n"
        "(labelled.artist_history), in paths.reports/labelled/.")
    parser.add_argument("--labelled", "--hit-predictor", dest="labelled", action="store_true",
                        help="evaluate on the ingested labelled catalog (known_label) instead of training_examples")
    args = parser.parse_args(argv)
    if args.labelled:
        from hitcast.evaluation.labelled import run_labelled

        return run_stage(args, "hitcast-evaluate", run_labelled)
    from hitcast.evaluation.suite import evaluate_catalog

    return run_stage(args, "hitcast-evaluate", evaluate_catalog)


if __name__ == "__main__":
    sys.exit(main())
