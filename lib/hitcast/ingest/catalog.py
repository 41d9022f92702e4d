"""Catalog rows: contract conversion, validation, and collision resolution on ``track_id``.

Collision rule (documented in the README): among rows with the same ``track_id``, the latest
``updated_at`` wins (null is oldest); on a tie the row from the file whose name sorts last wins, then
the later row in that file. A losing row with an OLDER ``updated_at`` is an update (counted, not
quarantined); a losing row with the SAME ``updated_at`` and other data is quarantined as
``duplicate_track_id``; an identical copy is dropped and counted.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Sequence

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from hitcast.config import Config
from hitcast.ingest import reasons as R
from hitcast.ingest.readers import apply_mapping, as_long, blank, list_files, read_any
from hitcast.schemas import AUDIO_FEATURES, CATALOG, CATALOG_ID_COLUMNS, TRACK_STRUCTURE

log = logging.getLogger(__name__)

DOUBLE_COLUMNS = [*AUDIO_FEATURES, *TRACK_STRUCTURE]
STRING_COLUMNS = ["track_id", "title", "artist_id", "artist_name", "album_id", "genre", "audio_path"]
CONTRACT_SOURCE = STRING_COLUMNS + ["release_date", "duration_ms", "explicit", "updated_at", "known_label",
                                    *DOUBLE_COLUMNS, *CATALOG_ID_COLUMNS]


#: The catalog columns a row's content hash (``record_hash``) covers: its data, not its lineage.
HASHED_COLUMNS = [f.name for f in CATALOG.fields
                  if f.name not in ("source_file", "ingested_at", "record_hash", "derived_from_logs")]


def _epoch() -> Column:
    """The timestamp a null ``updated_at`` counts as (oldest)."""
    return F.lit("0001-01-01 00:00:00").cast("timestamp")


def _parse_bool(c: Column) -> Column:
    low = F.lower(F.trim(c))
    return (F.when(low.isin("true", "1", "yes", "y", "t"), F.lit(True))
            .when(low.isin("false", "0", "no", "n", "f"), F.lit(False)))


def read_catalog_files(spark: SparkSession, cfg: Config,
                       keep: Callable[[Sequence[Path]], list[Path]] | None = None) -> tuple[list[DataFrame], list[Path]]:
    """Every catalog file (``keep`` selects them, when given) as a raw frame (see :mod:`hitcast.ingest.readers`),
    mapped to contract names; and the files read."""
    ing = cfg.ingest
    frames = []
    files = list_files(cfg.path(ing.catalog_path), ing.catalog_format)
    if keep is not None:
        chosen = set(keep([p for p, _ in files]))
        files = [(p, f) for p, f in files if p in chosen]
    for path, fmt in files:
        df = read_any(spark, path, fmt=fmt, csv_options=ing.csv_options)
        frames.append(apply_mapping(df, ing.column_mapping, ing.derived_columns))
    log.info("catalog: %d files under %s", len(files), cfg.path(ing.catalog_path))
    return frames, [p for p, _ in files]


def classify_catalog(df: DataFrame, required: list[str]) -> DataFrame:
    """Typed contract columns plus ``reason`` / ``detail`` (null for a good row), before collisions.

    Parameters
    ----------
    df : DataFrame
        One raw, mapped frame (:data:`hitcast.ingest.readers.META` + source columns as strings).
    required : list of str
        Contract columns that must be present and non-empty.

    Returns
    -------
    DataFrame with the :data:`hitcast.schemas.CATALOG` columns (minus ``ingested_at``), ``row_pos``,
    ``raw_record``, ``reason``, ``detail`` and the identifiers ``isrc`` (upper case), ``spotify_uri`` and
    ``mbid`` (lower case), NULL when empty.
    """
    missing_cols = [c for c in required if c not in df.columns]
    for c in CONTRACT_SOURCE:
        if c not in df.columns:
            df = df.withColumn(c, F.lit(None).cast("string"))
    d = df.withColumn("_d", F.col("release_date"))
    typed = {
        **{c: F.nullif(F.trim(F.col(c)), F.lit("")) for c in STRING_COLUMNS},
        "release_date": F.expr("to_date(try_to_timestamp(substr(trim(_d), 1, 10), 'yyyy-MM-dd'))"),
        "duration_ms": as_long("duration_ms"),
        "explicit": _parse_bool(F.col("explicit")),
        "updated_at": F.expr("try_to_timestamp(trim(updated_at))"),
        "known_label": F.expr("try_cast(try_cast(trim(known_label) as double) as int)"),
        **{c: F.expr(f"try_cast(trim(`{c}`) as double)") for c in DOUBLE_COLUMNS},
    }
    checks: list[tuple[Column, str, Column]] = [(F.col("malformed"), R.MALFORMED_JSON, F.lit(None))]
    if missing_cols:
        checks.append((F.lit(True), R.MISSING_REQUIRED_COLUMN, F.lit(",".join(missing_cols))))
    checks.append((blank(F.col("track_id")), R.MISSING_TRACK_ID, F.lit(None)))
    for c in required:
        if c not in ("track_id", "release_date"):
            checks.append((blank(F.col(c)), R.MISSING_REQUIRED_VALUE, F.lit(c)))
    checks.append(((~blank(F.col("release_date")) | F.lit("release_date" in required))
                   & typed["release_date"].isNull(), R.BAD_RELEASE_DATE, F.lit(None)))
    bad_typed = ["duration_ms", "explicit", "updated_at", "known_label", *DOUBLE_COLUMNS]
    for c in bad_typed:
        checks.append((~blank(F.col(c)) & typed[c].isNull(), R.BAD_VALUE, F.lit(c)))
    reason, detail = F.lit(None).cast("string"), F.lit(None).cast("string")
    for cond, why, what in reversed(checks):
        reason = F.when(cond, F.lit(why)).otherwise(reason)
        detail = F.when(cond, what.cast("string")).otherwise(detail)
    out_cols = [typed[f.name].cast(f.dataType).alias(f.name) if f.name in typed else None for f in CATALOG.fields]
    ids = [F.upper(F.nullif(F.trim("isrc"), F.lit(""))).alias("isrc"),
           F.nullif(F.trim("spotify_uri"), F.lit("")).alias("spotify_uri"),
           F.lower(F.nullif(F.trim("mbid"), F.lit(""))).alias("mbid")]
    return d.select(*[c for c in out_cols if c is not None], "source_file", "row_pos", "raw_record",
                    reason.alias("reason"), detail.alias("detail"), *ids)


def resolve_collisions(df: DataFrame) -> DataFrame:
    """Mark collision losers on ``track_id`` among good rows (see the module docstring).

    Adds ``outcome``: ``winner`` | ``update`` (superseded by a later ``updated_at``) | ``identical``
    (same data as the winner) | ``duplicate`` (same ``updated_at``, other data; quarantined), and
    ``content_hash`` (sha256 of the contract columns), ``n_rows`` (rows sharing the ``track_id``).
    """
    hashed = df.withColumn("content_hash", F.sha2(F.to_json(F.struct(*HASHED_COLUMNS)), 256))
    w = Window.partitionBy("track_id").orderBy(F.coalesce("updated_at", _epoch()).desc(), F.col("source_file").desc(),
                                               F.col("row_pos").desc())
    wall = Window.partitionBy("track_id")
    ranked = (hashed.withColumn("_rn", F.row_number().over(w))
              .withColumn("_win_ts", F.first(F.coalesce("updated_at", _epoch())).over(w))
              .withColumn("_win_hash", F.first("content_hash").over(w))
              .withColumn("n_rows", F.count(F.lit(1)).over(wall)))
    ts = F.coalesce("updated_at", _epoch())
    outcome = (F.when(F.col("_rn") == 1, "winner")
               .when(F.col("content_hash") == F.col("_win_hash"), "identical")
               .when(ts < F.col("_win_ts"), "update")
               .otherwise("duplicate"))
    return ranked.withColumn("outcome", outcome).drop("_rn", "_win_ts", "_win_hash")


#: MERGE condition for the catalog table: the incoming row wins by the collision rule and differs, or the
#: stored row was derived from the logs (:mod:`hitcast.ingest.derive_catalog`): a catalog file always wins.
CATALOG_UPDATE_WHEN = (
    "coalesce(t.derived_from_logs, false) OR (s.record_hash <> t.record_hash AND ("
    "coalesce(s.updated_at, timestamp'0001-01-01') > coalesce(t.updated_at, timestamp'0001-01-01') OR "
    "(coalesce(s.updated_at, timestamp'0001-01-01') = coalesce(t.updated_at, timestamp'0001-01-01') "
    "AND s.source_file >= t.source_file)))"
)


def catalog_rows(resolved: DataFrame, now: Column) -> DataFrame:
    """The winners in the :data:`hitcast.schemas.CATALOG` layout (``record_hash`` = content hash)."""
    win = resolved.where(F.col("outcome") == "winner")
    cols = {"ingested_at": now, "record_hash": F.col("content_hash"), "derived_from_logs": F.lit(False)}
    return win.select(*[(cols[f.name] if f.name in cols else F.col(f.name)).cast(f.dataType).alias(f.name)
                        for f in CATALOG.fields])

