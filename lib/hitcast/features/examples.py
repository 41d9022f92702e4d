"""Rows of ``training_examples`` and of catalog scoring, built by ONE function so they cannot drift.

Column contract (both tables)::

    ID_COLUMNS       track_id string, cutoff date, [split string], artist_id, artist_name, genre string,
                     release_date date, cold_start boolean
    features         every column of :func:`feature_columns` (double, nullable)
    LABEL_COLUMNS    [future_plays long, popularity double, is_hit int]   (training_examples only)

Metadata features: ``duration_s``, ``explicit`` (0/1), the Spotify-style audio features and
``days_since_release`` (T - release_date, capped at ``features.max_age_days`` so that an old track's
inputs do not change from day to day; negative for a track not yet released). ``known_label`` from
the catalog is NOT a feature (it is a label some sources carry).
"""
from __future__ import annotations

import datetime as dt
import logging

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from hitcast.config import Config
from hitcast.features.artist import artist_columns, artist_features
from hitcast.features.engagement import engagement_columns, engagement_features, track_aggregates
from hitcast.features.labels import add_labels, future_plays, in_cohort
from hitcast.features.splits import add_split
from hitcast.schemas import AUDIO_FEATURES, ID_COLUMNS, LABEL_COLUMNS

log = logging.getLogger(__name__)

METADATA_COLUMNS = ["duration_s", "explicit", *AUDIO_FEATURES, "days_since_release"]
SCORING_ID_COLUMNS = [c for c in ID_COLUMNS if c != "split"]


def feature_columns(windows: list[int]) -> list[str]:
    """Every numeric feature column, in output order."""
    return METADATA_COLUMNS + engagement_columns(windows) + artist_columns(windows)


def _date(value: str | dt.date) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def features_for_cutoffs(catalog: DataFrame, daily: DataFrame, *, cutoffs: list[str | dt.date],
                         cfg: Config) -> DataFrame:
    """Features of EVERY catalog track at each cutoff, from the days strictly before it (one pass).

    ``daily`` is ``engagement_daily`` (:data:`hitcast.schemas.ENGAGEMENT_DAILY`; for a frame of events,
    :func:`hitcast.features.daily.daily_aggregates`).

    Returns
    -------
    DataFrame, one row per (catalog track, cutoff): ``SCORING_ID_COLUMNS`` + :func:`feature_columns`.
    """
    spark = catalog.sparkSession
    windows = sorted(cfg.features.windows_days)
    cuts = sorted({_date(c) for c in cutoffs})
    tracks = (catalog.select("track_id", "artist_id", "artist_name", "genre", "release_date", "duration_ms",
                             "explicit", *AUDIO_FEATURES)
              .crossJoin(F.broadcast(spark.createDataFrame([(c,) for c in cuts], "cutoff date"))))
    aggs = track_aggregates(daily, cuts, windows)
    eng = engagement_features(tracks, aggs, windows=windows, max_age_days=cfg.features.max_age_days)
    art = artist_features(tracks, aggs, windows)
    meta = {
        "duration_s": F.col("duration_ms") / 1000.0,
        "explicit": F.col("explicit").cast("double"),
        **{c: F.col(c) for c in AUDIO_FEATURES},
        "days_since_release": F.least(F.datediff(F.col("cutoff"), F.col("release_date")),
                                      F.lit(cfg.features.max_age_days)),
    }
    out = eng.join(art, ["track_id", "cutoff"], "left")
    feats = [meta[c].cast("double").alias(c) if c in meta else F.col(c).cast("double")
             for c in feature_columns(windows)]
    return out.select(*[F.col(c) for c in SCORING_ID_COLUMNS], *feats)


def features_as_of(catalog: DataFrame, daily: DataFrame, *, as_of: str | dt.date, cfg: Config) -> DataFrame:
    """Features of EVERY catalog track as of ``as_of`` (for catalog scoring).

    Parameters
    ----------
    catalog : DataFrame
        The ``catalog`` table (:data:`hitcast.schemas.CATALOG`), unique on ``track_id``.
    daily : DataFrame
        ``engagement_daily`` (:data:`hitcast.schemas.ENGAGEMENT_DAILY`).
    as_of : date or ISO string
        The cutoff T (00:00 UTC); only the days before T (events with ``event_time < T``) are used.

    Returns
    -------
    DataFrame, one row per catalog track whatever its release date: ``SCORING_ID_COLUMNS``
    (``cutoff`` = ``as_of``) + :func:`feature_columns`, exactly as in ``training_examples``.
    """
    return features_for_cutoffs(catalog, daily, cutoffs=[as_of], cfg=cfg)


def build_training_examples(catalog: DataFrame, daily: DataFrame, cfg: Config) -> DataFrame:
    """``training_examples``: :func:`features_for_cutoffs` over every cutoff, each cutoff's cohort only,
    plus labels and split.

    Returns
    -------
    DataFrame, one row per (track_id, cutoff) with ``ID_COLUMNS`` + :func:`feature_columns` +
    ``LABEL_COLUMNS`` (see :mod:`hitcast.features.labels` and :mod:`hitcast.features.splits`).
    """
    fs = cfg.features
    rows = features_for_cutoffs(catalog, daily, cutoffs=list(fs.cutoffs), cfg=cfg)
    cohort = rows.where(in_cohort(F.col("release_date"), F.col("cutoff"), fs.cold_start_days))
    future = future_plays(daily, [_date(c) for c in fs.cutoffs], fs.horizon_days)
    labelled = add_split(add_labels(cohort, future, fs.hit_share), fs)
    return labelled.select(*ID_COLUMNS, *feature_columns(sorted(fs.windows_days)), *LABEL_COLUMNS)
