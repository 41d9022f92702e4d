"""Labels from the window after the cutoff: ``future_plays``, ``popularity``, ``is_hit``.

- The cohort at T: tracks released before ``T + cold_start_days`` (so tracks released just after T
  are kept as cold-start examples).
- ``future_plays``: ``play`` events with ``T <= event_time < T + horizon_days`` (0 when none).
- ``popularity = 100 * percent_rank()`` of ``future_plays`` within the cohort (ties share the lowest
  rank; 0 for a cohort of one).
- ``is_hit = 1`` when ``percent_rank >= 1 - hit_share`` (the top ``hit_share`` of the cohort), else 0.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F


def in_cohort(release_date: Column, cutoff: Column, cold_start_days: int) -> Column:
    """True for tracks eligible at ``cutoff``: released before ``cutoff + cold_start_days``."""
    return release_date < F.date_add(cutoff, cold_start_days)


def future_plays(events: DataFrame, cutoffs: DataFrame, horizon_days: int) -> DataFrame:
    """``DataFrame[track_id, cutoff, future_plays long]``: plays in ``[t, t + horizon_days)``.

    ``cutoffs`` is :func:`hitcast.features.engagement.cutoff_frame`.
    """
    ev = events.where(F.col("event_type") == "play").select("track_id", "event_time")
    cond = (ev["event_time"] >= cutoffs["t"]) & (ev["event_time"] < cutoffs["t"] + F.make_dt_interval(
        F.lit(horizon_days)))
    return (ev.join(F.broadcast(cutoffs), cond, "inner")
            .groupBy("track_id", "cutoff").agg(F.count(F.lit(1)).alias("future_plays")))


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
