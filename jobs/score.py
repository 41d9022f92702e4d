"""Score the whole catalog with a model version and MERGE into the Delta table `predictions`."""
from __future__ import annotations

import datetime as dt
import sys

from hitcast.cli import job_parser, run_stage


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(
        "score.py",
        "Catalog-wide rescoring: features as of a date for every catalog track (cold-start tracks included),\n"
        "spectrograms joined, the model run on executors, and a Delta MERGE into `predictions` on\n"
        "(track_id, model_version). Re-running updates rows in place; it never adds duplicates.")
    parser.add_argument("--model-version", default=None,
                        help="model version to score with (default: score.model_version, 'latest')")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=None,
                        help="features use events before this date, YYYY-MM-DD "
                             "(default: score.as_of, else the day after the last event)")
    args = parser.parse_args(argv)
    from hitcast.scoring.stage import run_scoring

    return run_stage(args, "hitcast-score",
                     lambda spark, cfg: run_scoring(spark, cfg, version=args.model_version, as_of=args.as_of))


if __name__ == "__main__":
    sys.exit(main())
