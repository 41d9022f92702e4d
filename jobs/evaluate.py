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
        "ground-truth limit. Writes paths.reports/evaluation/report.md with PNG plots. Every model version\n"
        "it trained or reused is registered (MLflow run and registered version, the `models` table) with its\n"
        "test figures, and the report is logged to each run.\n"
        "With --labelled (after jobs/ingest.py with the same --conf): a catalog with a known label and release\n"
        "dates, e.g. --conf conf/spotify-hit-predictor.yaml. Split by release year (labelled.test_from), the\n"
        "train.variant model and the GBT, with the artist's history from earlier release periods as features\n"
        "(labelled.artist_history), in paths.reports/labelled/.")
    parser.add_argument("--labelled", "--hit-predictor", dest="labelled", action="store_true",
                        help="evaluate on the ingested labelled catalog (known_label) instead of training_examples")
    args = parser.parse_args(argv)
    if args.labelled:
        from hitcast.lifecycle.evaluation import labelled_and_record

        return run_stage(args, "hitcast-evaluate", labelled_and_record)
    from hitcast.demo.truth import load_truth_or_reason
    from hitcast.lifecycle.evaluation import evaluate_and_record

    def evaluate(spark, cfg):
        truth, reason = load_truth_or_reason(cfg)
        return evaluate_and_record(spark, cfg, truth=truth, truth_reason=reason)

    return run_stage(args, "hitcast-evaluate", evaluate)


if __name__ == "__main__":
    sys.exit(main())
