"""Score the whole catalog with a model version and MERGE into the Delta table `predictions`."""
from __future__ import annotations

import datetime as dt
import logging

from hitcast.cli import config_from_args, job_parser, step
from hitcast.scoring import run_scoring
from hitcast.spark import build_session

log = logging.getLogger("hitcast.jobs.score")


def main() -> None:
    parser = job_parser(
        "score",
        "Catalog-wide rescoring: features as of a date for every catalog track (cold-start tracks included),\n"
        "spectrograms joined, the model run on executors, and a Delta MERGE into `predictions` on\n"
        "(track_id, model_version). Re-running updates rows in place; it never adds duplicates.")
    parser.add_argument("--model-version", default=None,
                        help="model version to score with (default: score.model_version, 'latest')")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=None,
                        help="features use events before this date, YYYY-MM-DD "
                             "(default: features.score_as_of, else the day after the last event)")
    args = parser.parse_args()
    cfg = config_from_args(args)
    spark = build_session(cfg, "hitcast-score")
    with step("scoring the catalog"):
        s = run_scoring(spark, cfg, args.model_version, args.as_of)
    log.info("summary: model %s, as of %s: %d tracks scored (%d cold start); audio status %s",
             s.model_version, s.as_of, s.scored, s.cold_start,
             ", ".join(f"{k}={v}" for k, v in sorted(s.audio_status.items())))
    log.info("predictions table: %s (%d rows)", s.location, s.table_rows)
    spark.stop()


if __name__ == "__main__":
    main()
