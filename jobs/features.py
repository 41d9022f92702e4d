"""Point-in-time features and labels for every configured cutoff into Delta training_examples."""
from __future__ import annotations

import logging

from pyspark import StorageLevel
from pyspark.sql import functions as F

from hitcast.cli import config_from_args, job_parser, step
from hitcast.features.examples import build_training_examples, write_training_examples
from hitcast.spark import build_session
from hitcast.tables import read_table

log = logging.getLogger("hitcast.jobs.features")


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(
        "features.py",
        "Build training_examples: one row per (track_id, cutoff) over features.cutoffs, with features from "
        "engagement strictly before each cutoff, catalog metadata and artist history, labels from "
        "[cutoff, cutoff + horizon_days) and a train/validation/test split. Overwrites the table.")
    parser.add_argument("--cutoffs", nargs="+", metavar="DATE", help="override features.cutoffs (ISO dates)")
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    if args.cutoffs:
        cfg.features.cutoffs = list(args.cutoffs)
    spark = build_session(cfg, "hitcast-features")
    catalog = read_table(spark, cfg, "catalog").persist(StorageLevel.MEMORY_AND_DISK)
    events = (read_table(spark, cfg, "engagement_events")
              .select("track_id", "user_id", "event_type", "event_time", "ms_played")
              .persist(StorageLevel.MEMORY_AND_DISK))
    with step("features"):
        examples = build_training_examples(catalog, events, cfg)
        n = write_training_examples(spark, examples, cfg)
    stats = (spark.read.format("delta").load(cfg.table("training_examples")).groupBy("cutoff", "split")
             .agg(F.count(F.lit(1)).alias("rows"), F.sum("is_hit").alias("hits"),
                  F.sum(F.col("cold_start").cast("int")).alias("cold_start")).orderBy("cutoff").collect())
    for r in stats:
        log.info("cutoff %s (%s): %d rows, %d hits, %d cold start", r["cutoff"], r["split"], r["rows"], r["hits"],
                 r["cold_start"])
    log.info("summary: %d training examples in %s", n, cfg.table("training_examples"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
