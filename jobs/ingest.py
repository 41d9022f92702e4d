"""Load raw catalog and engagement files into Delta tables; bad records go to quarantine with a reason."""
from __future__ import annotations

import logging

from hitcast.cli import config_from_args, job_parser, step
from hitcast.ingest.pipeline import run_ingest
from hitcast.spark import build_session

log = logging.getLogger("hitcast.jobs.ingest")


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(
        "ingest.py",
        "Ingest the catalog (CSV / JSON lines / Parquet, ingest.catalog_path) and engagement events (JSON lines "
        "/ Parquet, ingest.events_path) into the Delta tables catalog, engagement_events and quarantine. "
        "Explicit schemas, column mapping from configuration, MERGE on keys: a re-run over the same files "
        "adds nothing. Reasons for quarantine: see hitcast.ingest.reasons.")
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    spark = build_session(cfg, "hitcast-ingest")
    with step("ingest"):
        summary = run_ingest(spark, cfg)
    log.info("tables in %s: catalog +%d/~%d rows, engagement_events +%d rows, quarantine +%d rows",
             cfg.path(cfg.paths.warehouse), summary.catalog.rows_inserted, summary.catalog.rows_updated,
             summary.events.rows_inserted, summary.catalog.quarantine_inserted + summary.events.quarantine_inserted)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
