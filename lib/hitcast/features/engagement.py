"""Per-track engagement aggregates before each cutoff T, from the daily aggregates (``engagement_daily``).

A cutoff T is 00:00 UTC of its date, so "events with ``event_time < T``" are exactly the days before it, and
"``T - w days <= event_time < T``" the days ``[T - w, T)``. All cutoffs are computed at once, in two parts that
never pair a day with more cutoffs than it can matter to:

- **Totals** (``plays_total``, ``first_event``): one aggregation per track, a conditional sum and minimum per
  cutoff.
- **Windows**: each day is paired only with the cutoffs whose longest window holds it (with monthly cutoffs
  and a 90-day window, about three).

For each window ``w`` in ``features.windows_days``:

=========================  ===================================================================
column                     definition (NULL for a cold-start track, i.e. no event before T)
=========================  ===================================================================
``plays_{w}d``             number of ``play`` events
``listeners_{w}d``         distinct ``user_id`` with any event (the union of the days' HyperLogLog
                           sketches: exact for small counts, about 1.04 / sqrt(2 ** lg_k) relative
                           error for large ones)
``skip_rate_{w}d``         skips / (plays + skips); NULL when both are 0
``save_rate_{w}d``         saves / plays; NULL when plays = 0
``playlist_adds_{w}d``     number of ``playlist_add`` events
``shares_{w}d``            number of ``share`` events
``completion_{w}d``        sum(ms_played of plays) / (plays * duration_ms); NULL when plays = 0 or
                           the duration is unknown
``trend_7d``               ln(1 + plays in [T-7d, T)) - ln(1 + plays in [T-14d, T-7d))
``plays_total``            plays before T
``days_since_first_event`` whole days from the first event's date to T
=========================  ===================================================================
"""
from __future__ import annotations

import datetime as dt
from typing import Sequence

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

#: Window (days) of the trend's two halves.
TREND_DAYS = 7


def cutoff_frame(spark: SparkSession, cutoffs: Sequence[dt.date]) -> DataFrame:
    """``DataFrame[cutoff date, j int]``: each cutoff and its rank (0 = earliest)."""
    rows = [(c, j) for j, c in enumerate(sorted(set(cutoffs)))]
    return spark.createDataFrame(rows, "cutoff date, j int")


def _days_before(days: int) -> Column:
    return F.date_sub(F.col("cutoff"), days)


def totals(daily: DataFrame, cutoffs: Sequence[dt.date]) -> DataFrame:
    """``DataFrame[track_id, cutoff, first_event timestamp, plays_total long]``: one row per track and cutoff
    with at least one event before it.

    One aggregation per track over its days, with a conditional sum and minimum per cutoff (no join, one
    shuffle of one row per track and task), then one row per cutoff.
    """
    cuts = sorted(set(cutoffs))
    d = F.col("event_date")
    aggs = []
    for j, c in enumerate(cuts):
        before = d < F.lit(c)
        aggs += [F.sum(F.when(before, F.col("plays"))).alias(f"p{j}"),
                 F.min(F.when(before, F.col("first_event"))).alias(f"f{j}")]
    wide = daily.where(d < F.lit(cuts[-1])).groupBy("track_id").agg(*aggs)
    per_cutoff = F.explode(F.array(*[F.struct(F.lit(c).alias("cutoff"), F.col(f"f{j}").alias("first_event"),
                                              F.col(f"p{j}").cast("long").alias("plays_total"))
                                     for j, c in enumerate(cuts)]))
    return (wide.select("track_id", per_cutoff.alias("r")).select("track_id", "r.*")
            .where(F.col("first_event").isNotNull()))


def _shortest_window(windows: list[int]) -> Column:
    """Index into the sorted ``windows`` of the shortest window ``[T - w, T)`` that holds the day."""
    d, k = F.col("event_date"), F.lit(len(windows) - 1)
    for j in reversed(range(len(windows) - 1)):
        k = F.when(d >= _days_before(windows[j]), F.lit(j)).otherwise(k)
    return k


def windowed(daily: DataFrame, cutoffs: Sequence[dt.date], windows: list[int]) -> DataFrame:
    """Sums over the days ``[T - w, T)`` per (track, cutoff) with any event in the longest window.

    The windows nest, so each day's listener sketch is unioned once, into the sketch of the shortest window
    that holds it; a window's listeners are the union of its own and the shorter windows' sketches. (Deserialising
    a sketch is the costly step; unioning it into every window that holds it cost three times as much.)

    Returns
    -------
    DataFrame[track_id, cutoff, and per window w: plays_w, skips_w, saves_w, adds_w, shares_w, ms_w,
    listeners_w long, plus plays_last7, plays_prev7 long]
    """
    windows = sorted(windows)
    longest = max([*windows, 2 * TREND_DAYS])
    d = F.col("event_date")
    cuts = F.broadcast(cutoff_frame(daily.sparkSession, cutoffs).select("cutoff"))
    # the literal bounds let Delta skip the files of other days (their min/max event_date)
    near = daily.where((d >= F.lit(min(cutoffs) - dt.timedelta(days=longest))) & (d < F.lit(max(cutoffs))))
    pairs = (near.join(cuts, (d < F.col("cutoff")) & (d >= _days_before(longest)))
             .withColumn("_shortest", _shortest_window(windows)))

    def total(cond: Column, col: str) -> Column:
        return F.coalesce(F.sum(F.when(cond, F.col(col))), F.lit(0)).cast("long")

    aggs = []
    for j, w in enumerate(windows):
        inw = d >= _days_before(w)
        aggs += [total(inw, "plays").alias(f"plays_{w}"), total(inw, "skips").alias(f"skips_{w}"),
                 total(inw, "saves").alias(f"saves_{w}"), total(inw, "playlist_adds").alias(f"adds_{w}"),
                 total(inw, "shares").alias(f"shares_{w}"), total(inw, "ms_played").alias(f"ms_{w}"),
                 F.hll_union_agg(F.when(F.col("_shortest") == j, F.col("listeners_sketch")), True).alias(f"_s{j}")]
    last = d >= _days_before(TREND_DAYS)
    aggs += [total(last, "plays").alias("plays_last7"),
             total(~last & (d >= _days_before(2 * TREND_DAYS)), "plays").alias("plays_prev7")]
    out = pairs.groupBy("track_id", "cutoff").agg(*aggs)
    union = None
    for j, w in enumerate(windows):
        own = F.col(f"_s{j}")
        union = own if union is None else F.coalesce(F.hll_union(F.col(f"_u{j - 1}"), own, True),
                                                     F.col(f"_u{j - 1}"), own)
        out = out.withColumn(f"_u{j}", union)
    return out.select(
        "track_id", "cutoff",
        *[c for c in out.columns if c not in ("track_id", "cutoff") and not c.startswith("_")],
        *[F.coalesce(F.hll_sketch_estimate(F.col(f"_u{j}")), F.lit(0)).alias(f"listeners_{w}")
          for j, w in enumerate(windows)])


def track_aggregates(daily: DataFrame, cutoffs: Sequence[dt.date], windows: list[int]) -> DataFrame:
    """Raw counts per (track, cutoff) for every track with an event before the cutoff, no rates yet.

    Parameters
    ----------
    daily : DataFrame
        ``engagement_daily`` (:data:`hitcast.schemas.ENGAGEMENT_DAILY`).
    cutoffs : sequence of date

    Returns
    -------
    DataFrame[track_id, cutoff, first_event timestamp, plays_total long, and per window w: plays_w, skips_w,
    saves_w, adds_w, shares_w, ms_w, listeners_w (long, 0 when the window is empty), plus plays_last7,
    plays_prev7 long]
    """
    win = windowed(daily, cutoffs, windows)
    counts = [c for c in win.columns if c not in ("track_id", "cutoff")]
    return (totals(daily, cutoffs).join(win, ["track_id", "cutoff"], "left")
            .select("track_id", "cutoff", "first_event", "plays_total",
                    *[F.coalesce(F.col(c), F.lit(0)).cast("long").alias(c) for c in counts]))


def engagement_columns(windows: list[int]) -> list[str]:
    """Names of the engagement feature columns, in output order."""
    cols = []
    for w in windows:
        cols += [f"plays_{w}d", f"listeners_{w}d", f"skip_rate_{w}d", f"save_rate_{w}d", f"playlist_adds_{w}d",
                 f"shares_{w}d", f"completion_{w}d"]
    return cols + ["trend_7d", "plays_total", "days_since_first_event"]


def _ratio(num: Column, den: Column) -> Column:
    return F.when(den > 0, num.cast("double") / den.cast("double"))


def engagement_features(tracks: DataFrame, aggs: DataFrame, *, windows: list[int], max_age_days: int) -> DataFrame:
    """Join the raw aggregates onto ``tracks`` and turn them into features.

    Parameters
    ----------
    tracks : DataFrame[track_id, cutoff, duration_ms, ...]
        One row per (track, cutoff), kept whole.
    aggs : DataFrame
        :func:`track_aggregates` of the same cutoffs.

    Returns
    -------
    ``tracks`` + ``cold_start`` boolean + :func:`engagement_columns` (double, NULL when cold start).
    ``days_since_first_event`` is capped at ``max_age_days``, so a long-idle track's inputs stop changing.
    """
    j = tracks.join(aggs, ["track_id", "cutoff"], "left")
    cold = F.col("first_event").isNull()
    feats: dict[str, Column] = {}
    dur = F.col("duration_ms")
    for w in windows:
        plays, skips = F.col(f"plays_{w}"), F.col(f"skips_{w}")
        feats[f"plays_{w}d"] = plays
        feats[f"listeners_{w}d"] = F.col(f"listeners_{w}")
        feats[f"skip_rate_{w}d"] = _ratio(skips, plays + skips)
        feats[f"save_rate_{w}d"] = _ratio(F.col(f"saves_{w}"), plays)
        feats[f"playlist_adds_{w}d"] = F.col(f"adds_{w}")
        feats[f"shares_{w}d"] = F.col(f"shares_{w}")
        feats[f"completion_{w}d"] = F.when((plays > 0) & (dur > 0), F.col(f"ms_{w}") / (plays * dur))
    feats["trend_7d"] = F.log1p(F.col("plays_last7")) - F.log1p(F.col("plays_prev7"))
    feats["plays_total"] = F.col("plays_total")
    feats["days_since_first_event"] = F.least(F.datediff(F.col("cutoff"), F.to_date("first_event")),
                                              F.lit(max_age_days))
    return j.select(*tracks.columns, cold.alias("cold_start"),
                    *[F.when(~cold, c.cast("double")).alias(name) for name, c in feats.items()])
