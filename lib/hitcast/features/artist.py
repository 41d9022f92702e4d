"""Artist features: engagement before T of the artist's OTHER, EARLIER tracks.

For a track ``r`` at cutoff T, its artist's earlier tracks are the catalog tracks ``o != r`` with the
same artist key (``artist_id``, else ``artist_name``), ``o.release_date < r.release_date`` and
``o.release_date < T``. Their engagement counts only events before T.

========================  ==========================================================================
column                    definition
========================  ==========================================================================
``artist_tracks_before``  number of earlier tracks (0 when none; NULL without a release date)
``artist_plays_{w}d``     sum of the earlier tracks' plays in the window (NULL when there is none)
``artist_plays_total``    sum of their plays before T (NULL when there is none)
``artist_save_rate_{W}d`` their saves / plays over the longest window W (NULL when no plays)
========================  ==========================================================================
"""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def artist_columns(windows: list[int]) -> list[str]:
    """Names of the artist feature columns, in output order."""
    return ["artist_tracks_before", *[f"artist_plays_{w}d" for w in windows], "artist_plays_total",
            f"artist_save_rate_{max(windows)}d"]


def artist_features(tracks: DataFrame, aggs: DataFrame, windows: list[int]) -> DataFrame:
    """Artist features per (track, cutoff).

    Parameters
    ----------
    tracks : DataFrame[track_id, cutoff, artist_id, artist_name, release_date]
    aggs : DataFrame
        From :func:`hitcast.features.engagement.track_aggregates` (same cutoffs).

    Returns
    -------
    DataFrame[track_id, cutoff, :func:`artist_columns` (double)], one row per row of ``tracks``.
    """
    longest = max(windows)
    base = tracks.select("track_id", "cutoff", F.coalesce("artist_id", "artist_name").alias("artist_key"),
                         "release_date")
    other = (base.where(F.col("release_date") < F.col("cutoff"))
             .join(aggs, ["track_id", "cutoff"], "left")
             .select(F.col("track_id").alias("o_id"), F.col("cutoff").alias("o_cutoff"),
                     F.col("artist_key").alias("o_key"), F.col("release_date").alias("o_release"),
                     *[F.coalesce(F.col(f"plays_{w}"), F.lit(0)).alias(f"o_plays_{w}") for w in windows],
                     F.coalesce("plays_total", F.lit(0)).alias("o_plays_total"),
                     F.coalesce(F.col(f"saves_{longest}"), F.lit(0)).alias("o_saves")))
    cond = ((base["artist_key"] == other["o_key"]) & (base["cutoff"] == other["o_cutoff"])
            & (other["o_id"] != base["track_id"]) & (other["o_release"] < base["release_date"]))
    agg = base.join(other, cond, "inner").groupBy("track_id", "cutoff").agg(
        F.count(F.lit(1)).alias("n"),
        *[F.sum(f"o_plays_{w}").alias(f"p_{w}") for w in windows],
        F.sum("o_plays_total").alias("p_total"), F.sum("o_saves").alias("s"))
    j = base.join(agg, ["track_id", "cutoff"], "left")
    has = F.col("n").isNotNull()
    return j.select(
        "track_id", "cutoff",
        F.when(F.col("release_date").isNotNull(), F.coalesce(F.col("n"), F.lit(0))).cast("double")
        .alias("artist_tracks_before"),
        *[F.when(has, F.col(f"p_{w}")).cast("double").alias(f"artist_plays_{w}d") for w in windows],
        F.when(has, F.col("p_total")).cast("double").alias("artist_plays_total"),
        F.when(has & (F.col(f"p_{longest}") > 0), F.col("s") / F.col(f"p_{longest}")).cast("double")
        .alias(f"artist_save_rate_{longest}d"))
