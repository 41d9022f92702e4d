"""Labels from the window after the cutoff: ``future_plays``, ``popularity``, ``is_hit``.

- The cohort at T: tracks released before ``T + cold_start_days`` (so tracks released just after T
  are kept as cold-start examples).
- ``future_plays``: ``play`` events with ``T <= event_time < T + horizon_days`` (0 when none), from the
  daily aggregates (the days ``[T, T + horizon_days)``).
- ``popularity = 100 * percent_rank()`` of ``future_plays`` within the cohort (ties share the lowest
  rank; 0 for a cohort of one).
- ``is_hit = 1`` when ``percent_rank >= 1 - hit_share`` (the top ``hit_share`` of the cohort), else 0.
"""
from __future__ import annotations

import datetime as dt
from typing import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from hitcast.features.engagement import cutoff_frame


def in_cohort(release_date: Column, cutoff: Column, cold_start_days: int) -> Column:
    """True for tracks eligible at ``cutoff``: released before ``cutoff + cold_start_days``."""
    return release_date < F.date_add(cutoff, cold_start_days)


def future_plays(daily: DataFrame, cutoffs: Sequence[dt.date], horizon_days: int) -> DataFrame:
    """``DataFrame[track_id, cutoff, future_plays long]``: plays in ``[T, T + horizon_days)``.

    ``daily`` is ``engagement_daily`` (:data:`hitcast.schemas.ENGAGEMENT_DAILY`).
    """
    cuts = F.broadcast(cutoff_frame(daily.sparkSession, cutoffs).select("cutoff"))
    d = F.col("event_date")
    near = (d >= F.lit(min(cutoffs))) & (d < F.lit(max(cutoffs) + dt.timedelta(days=horizon_days)))
    days = daily.where(near & (F.col("plays") > 0)).select("track_id", "event_date", "plays")
    return (days.join(cuts, (d >= F.col("cutoff")) & (d < F.date_add(F.col("cutoff"), horizon_days)))
            .groupBy("track_id", "cutoff").agg(F.sum("plays").cast("long").alias("future_plays")))


def add_labels(cohort: DataFrame, future: DataFrame, hit_share: float) -> DataFrame:
    """Append :data:`hitcast.schemas.LABEL_COLUMNS` to a cohort (one cutoff or several).

    Parameters
    ----------
    cohort : DataFrame[track_id, cutoff, ...]
        The eligible tracks.
    future : DataFrame[track_id, cutoff, future_plays]

    Returns
    -------
    ``cohort`` + future_plays long, popularity double (0-100), is_hit int.
    """
    j = cohort.join(future, ["track_id", "cutoff"], "left")
    fp = F.coalesce(F.col("future_plays"), F.lit(0)).cast("long")
    pr = F.percent_rank().over(Window.partitionBy("cutoff").orderBy(fp))
    return (j.withColumn("future_plays", fp).withColumn("_pr", pr)
            .withColumn("popularity", (F.col("_pr") * 100.0).cast("double"))
            .withColumn("is_hit", (F.col("_pr") >= F.lit(1.0 - hit_share - 1e-9)).cast("int"))
            .drop("_pr"))
