"""Score the whole catalog with a model version and MERGE into the Delta table `predictions`."""
from __future__ import annotations

import datetime as dt
import sys

from hitcast.cli import job_parser, run_stage


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(
        "score.py",
        "Catalog-wide rescoring with the champion model (or --model-version): features as of a date for every\n"
        "catalog track (cold-start tracks included, reused when catalog and events are unchanged),\n"
        "spectrograms joined, the model and its reasons run on executors, and a Delta MERGE into\n"
        "`predictions` on (track_id, model_version). Incremental: only tracks whose model inputs changed\n"
        "since the stored row are scored again (--full scores all). Each run appends a row to\n"
        "`scoring_runs` (counts by mode, score quantiles, drift against the previous run).")
    parser.add_argument("--model-version", default=None,
                        help="model version to score with (default: score.model_version, 'champion')")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=None,
                        help="features use events before this date, YYYY-MM-DD "
                             "(default: score.as_of, else the day after the last event)")
    parser.add_argument("--full", action="store_true", help="rescore every track, not only changed ones")
    parser.add_argument("--reasons", type=int, default=None, metavar="N",
                        help="top inputs explained per track (default: score.reasons; 0 = none)")
    args = parser.parse_args(argv)
    from hitcast.scoring.stage import run_scoring

    return run_stage(args, "hitcast-score",
                     lambda spark, cfg: run_scoring(spark, cfg, version=args.model_version, as_of=args.as_of,
                                                    full=args.full, reasons=args.reasons))


if __name__ == "__main__":
    sys.exit(main())
