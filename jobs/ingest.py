"""Load raw catalog and engagement files into Delta tables; bad records go to quarantine with a reason."""
from __future__ import annotations

import sys

from hitcast.cli import job_parser, run_stage


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(
        "ingest.py",
        "Ingest the catalog (CSV / JSON lines / Parquet, ingest.catalog_path) and engagement events (JSON lines "
        "/ Parquet, ingest.events_path) into the Delta tables catalog, engagement_events and quarantine. "
        "Explicit schemas, column mapping from configuration, MERGE on keys: a re-run over the same files "
        "adds nothing. Reasons for quarantine: see hitcast.ingest.reasons. Then the new events go into the "
        "daily per-track aggregates (engagement_daily) that every feature reads: only the days they touch.\n"
        "Listening-history exports load as they come with an event profile: --set ingest.events_profile=NAME "
        "(spotify-extended, spotify-account, lastfm: conf/events/NAME.yaml, or the path of your own) --set "
        "ingest.events_path=DIR; add --set ingest.derive_catalog=true to derive catalog rows (no audio) for "
        "tracks the catalog lacks.")
    args = parser.parse_args(argv)
    from hitcast.dailyrun import ingest_and_aggregate

    return run_stage(args, "hitcast-ingest", ingest_and_aggregate)


if __name__ == "__main__":
    sys.exit(main())
