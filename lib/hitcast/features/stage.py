"""The features stage: ``catalog`` x ``engagement_daily`` -> the Delta table ``training_examples``."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hitcast.config import Config
from hitcast.features.dailytable import DailyUpdate, update_engagement_daily
from hitcast.features.examples import build_training_examples
from hitcast.tables import read_table

log = logging.getLogger(__name__)


@dataclass
class CutoffCounts:
    """Rows of one cutoff in ``training_examples``."""

    cutoff: str
    split: str
    rows: int
    hits: int
    cold_start: int


@dataclass
class FeaturesSummary:
    """What :func:`run_features` wrote."""

    location: str
    rows: int
    cutoffs: list[CutoffCounts] = field(default_factory=list)
    daily: DailyUpdate = field(default_factory=DailyUpdate)

    def __str__(self) -> str:
        lines = [str(self.daily), f"{self.rows} training examples over {len(self.cutoffs)} cutoffs in {self.location}"]
        lines += [f"  cutoff {c.cutoff} ({c.split}): {c.rows} rows, {c.hits} hits, {c.cold_start} cold start"
                  for c in self.cutoffs]
        return "\n".join(lines)


def write_training_examples(examples: DataFrame, cfg: Config) -> str:
    """Overwrite ``training_examples`` with ``examples``, one file group per cutoff sorted by track; returns
    the table's location. The same inputs give the same content."""
    location = cfg.table("training_examples")
    (examples.repartition(max(1, len(cfg.features.cutoffs)), "cutoff").sortWithinPartitions("cutoff", "track_id")
     .write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(location))
    return location


def run_features(spark: SparkSession, cfg: Config) -> FeaturesSummary:
    """Overwrite ``training_examples`` with the examples of every ``features.cutoffs`` (same inputs, same
    content), then count it once by cutoff.

    Returns
    -------
    FeaturesSummary
        Rows, hits and cold-start rows per cutoff, as read back from the written table.
    """
    daily_update = update_engagement_daily(spark, cfg)
    catalog = read_table(spark, cfg, "catalog").persist(StorageLevel.MEMORY_AND_DISK)
    daily = read_table(spark, cfg, "engagement_daily").persist(StorageLevel.MEMORY_AND_DISK)
    location = write_training_examples(build_training_examples(catalog, daily, cfg), cfg)
    catalog.unpersist()
    daily.unpersist()
    stats = (read_table(spark, cfg, "training_examples").groupBy("cutoff", "split")
             .agg(F.count(F.lit(1)).alias("rows"), F.sum("is_hit").alias("hits"),
                  F.sum(F.col("cold_start").cast("int")).alias("cold_start")).collect())
    cutoffs = sorted((CutoffCounts(str(r["cutoff"]), r["split"], int(r["rows"]), int(r["hits"] or 0),
                                   int(r["cold_start"] or 0)) for r in stats), key=lambda c: c.cutoff)
    return FeaturesSummary(location=location, rows=sum(c.rows for c in cutoffs), cutoffs=cutoffs, daily=daily_update)
