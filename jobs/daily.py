"""The daily run in one Spark application: ingest, spectrograms, aggregates, features, incremental scoring."""
from __future__ import annotations

import datetime as dt
import sys

from hitcast.cli import job_parser, run_stage


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(
        "daily.py",
        "The day's work in ONE Spark application, each stage doing only what changed:\n"
        "  ingest        event files not ingested before, and the catalog (MERGE: nothing added twice)\n"
        "  spectrograms  new or changed audio only\n"
        "  aggregates    the new events into engagement_daily (only the days they fall on)\n"
        "  features      every catalog track as of --as-of, from engagement_daily (scoring_features)\n"
        "  scoring       the champion rescores the tracks whose inputs changed; the run goes to scoring_runs\n"
        "It ends with one summary: per stage, what changed and how long it took. Re-running the same day\n"
        "changes no table. Schedule it once a day (README, 'The daily run').")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=None,
                        help="features use events before this date, YYYY-MM-DD (default: today, UTC)")
    parser.add_argument("--model-version", default=None,
                        help="model version to score with (default: score.model_version, 'champion')")
    parser.add_argument("--skip", action="append", default=[], metavar="STAGE",
                        choices=["ingest", "spectrograms", "aggregates", "features", "scoring"],
                        help="a stage not to run this time (repeatable), e.g. scoring while a model is retrained")
    args = parser.parse_args(argv)
    from hitcast.dailyrun import run_daily

    return run_stage(args, "hitcast-daily",
                     lambda spark, cfg: run_daily(spark, cfg, as_of=args.as_of, model_version=args.model_version,
                                                  skip=args.skip))


if __name__ == "__main__":
    sys.exit(main())
