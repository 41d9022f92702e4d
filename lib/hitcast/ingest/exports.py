"""Listening-history exports through an event profile (:mod:`hitcast.ingest.profiles`) -> raw contract events.

:func:`read_export_files` reads the files a profile selects (:func:`read_export_paths`, given files);
:func:`map_profile` turns their records into the raw frame :func:`hitcast.ingest.events.classify_events` takes
(the contract columns as strings), plus ``artist_name``, ``title`` (kept for the catalog derived from the
logs), the other ids of the track (``spotify_uri``, ``isrc``, ``mbid``), ``not_a_track`` (the name of the
profile's rule a record matches: it is counted and skipped) and ``pre_reason`` / ``pre_detail`` (a
quarantine reason the profile already knows, e.g. ``missing_required_value`` and the field).

A derived ``event_id`` is the sha256 (hex) of the JSON object
``{"user_id": ..., "event_time_us": ..., "track_id": ..., "ms_played": ...}`` (keys in that order, NULLs
left out), where ``event_time_us`` is the parsed event time in microseconds since the epoch (UTC) and
``ms_played`` the parsed integer: the same listen gives the same id in any file, in any spelling of its
time, so re-ingesting an export, or a later export that overlaps it, adds nothing twice.
"""
from __future__ import annotations

import fnmatch
import logging
from dataclasses import replace
from functools import reduce
from pathlib import Path
from typing import Callable, Sequence

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.utils import AnalysisException

from hitcast.errors import ConfigError
from hitcast.ingest import reasons as R
from hitcast.ingest.profiles import ID_FIELDS, EventProfile, alternatives
from hitcast.ingest.readers import as_long, blank, list_files, read_csv, read_json_arrays, read_json_lines
from hitcast.ingest.trackkey import track_key_column

log = logging.getLogger(__name__)

EVENT_SOURCE = ["event_id", "user_id", "track_id", "event_type", "event_time", "ms_played"]
#: Columns :func:`map_profile` returns besides ``source_file, row_pos, raw_record, malformed`` and
#: :data:`EVENT_SOURCE`.
EXTRA = ["artist_name", "title", *ID_FIELDS, "not_a_track", "pre_reason", "pre_detail"]


def export_files(location: Path, profile: EventProfile) -> list[Path]:
    """The files under ``location`` (a folder, a file or a glob) whose name matches one of ``profile.files``."""
    paths = [p for p, _ in list_files(location, "json")]
    if profile.files:
        paths = [p for p in paths if any(fnmatch.fnmatchcase(p.name, g) for g in profile.files)]
    return paths


def read_export_files(spark: SparkSession, location: Path, profile: EventProfile,
                      keep: Callable[[Sequence[Path]], list[Path]] | None = None) -> tuple[DataFrame | None, list[Path]]:
    """Raw records of the export files (every source field a string; :mod:`hitcast.ingest.readers`); only
    those ``keep`` keeps, when given.

    Returns
    -------
    (DataFrame or None, int)
        ``source_file, source_path, row_pos, raw_record, malformed, read_detail`` and
        ``profile.source_fields``; ``None`` when no file matches. The files read.
    """
    paths = export_files(location, profile)
    log.info("events: %d %s files under %s", len(paths), profile.profile, location)
    if keep is not None:
        paths = keep(paths)
    if not paths:
        return None, []
    return read_export_paths(spark, list(paths), profile), list(paths)


def _json_kind(path: Path) -> str:
    """``json_array`` for a file whose first non-blank character is ``[``, else ``json_lines``."""
    with path.open("r", encoding="utf-8-sig", errors="replace") as fh:
        return "json_array" if fh.read(4096).lstrip()[:1] == "[" else "json_lines"


def read_export_paths(spark: SparkSession, paths: list[Path], profile: EventProfile) -> DataFrame:
    """The raw records of ``paths`` (not empty) through ``profile``'s reader (see :func:`read_export_files`).

    A ``json`` reader reads each file as an array or as lines by its first character; a CSV profile with
    ``columns`` reads files without a header, naming their columns so.
    """
    cols = list(profile.source_fields)
    if profile.reader == "json":
        kinds = {p: _json_kind(p) for p in paths}
        frames = [read_export_paths(spark, [p for p in paths if kinds[p] == k], replace(profile, reader=k))
                  for k in ("json_array", "json_lines") if k in kinds.values()]
        return reduce(DataFrame.unionByName, frames)
    if profile.reader == "json_array":
        return read_json_arrays(spark, paths, cols)
    if profile.reader == "json_lines":
        return read_json_lines(spark, paths, cols).withColumn(
            "read_detail", F.when(F.col("malformed"), F.lit("line is not a JSON object")))
    frames = []
    for p in paths:
        one = read_csv(spark, p, {**profile.csv_options}, names=profile.columns or None)
        for c in cols:
            if c not in one.columns:
                one = one.withColumn(c, F.lit(None).cast("string"))
        frames.append(one.select("source_file", F.lit(str(p.resolve())).alias("source_path"), "row_pos",
                                 "raw_record", "malformed", F.lit(None).cast("string").alias("read_detail"),
                                 *[F.col(f"`{c}`") for c in cols]))
    return reduce(DataFrame.unionByName, frames)


def with_source_names(df: DataFrame, root: Path) -> DataFrame:
    """``source_file`` = the path below ``root``; ``_file`` = the file name; ``_folder`` = the first folder
    below ``root`` (``root``'s own name for a file directly in it)."""
    prefix = str(root.resolve()).rstrip("/") + "/"
    path = F.col("source_path")
    rel = F.when(path.startswith(prefix), F.substring(path, len(prefix) + 1, 1 << 30)).otherwise(F.col("source_file"))
    folder = F.when(F.instr(rel, "/") > 0, F.substring_index(rel, "/", 1)).otherwise(F.lit(root.resolve().name))
    return (df.withColumn("source_file", rel).withColumn("_file", F.substring_index(rel, "/", -1))
            .withColumn("_folder", folder))


def _expr(profile: EventProfile, key: str, sql: str) -> Column:
    try:
        return F.expr(sql)
    except Exception as exc:  # noqa: BLE001 - any parse error names the profile key
        raise ConfigError(f"{profile.path}: {key}: {sql!r} is not a Spark SQL expression: {exc}") from exc


def source_to_fields(df: DataFrame, profile: EventProfile) -> DataFrame:
    """Evaluate the profile's expressions over the source fields (one ``select``, so a source field may
    share a contract column's name). Adds ``_skip`` (boolean) and ``_missing`` (the first empty required
    field); the contract columns are strings, NULL where the profile has no expression."""
    not_track = F.lit(None).cast("string")
    for name in reversed(list(profile.not_a_track)):
        cond = _expr(profile, f"not_a_track.{name}", profile.not_a_track[name])
        not_track = F.when(cond, F.lit(name)).otherwise(not_track)
    missing = F.lit(None).cast("string")
    for entry in reversed(profile.required):
        empty = reduce(lambda a, b: a & b, [blank(F.col(f"`{n}`")) for n in alternatives(entry)])
        missing = F.when(empty, F.lit(entry)).otherwise(missing)
    cols = [(_expr(profile, f"fields.{k}", sql).cast("string") if sql.strip() else F.lit(None).cast("string")).alias(k)
            for k, sql in profile.fields.items()]
    cols += [F.lit(None).cast("string").alias(k) for k in ID_FIELDS if k not in profile.fields]
    skip = _expr(profile, "skip_when", profile.skip_when).cast("boolean") if profile.skip_when.strip() else F.lit(None)
    try:
        return df.select("source_file", "row_pos", "raw_record", "malformed", "read_detail", *cols,
                         F.when(~F.col("malformed"), not_track).cast("string").alias("not_a_track"),
                         skip.cast("boolean").alias("_skip"), missing.alias("_missing"))
    except AnalysisException as exc:
        raise ConfigError(f"{profile.path}: an expression uses a field that is not in source_fields "
                          f"(or is not valid SQL): {exc}") from exc


def derive_contract(df: DataFrame, profile: EventProfile) -> DataFrame:
    """Fill what the source lacks: ``track_id`` (the artist + title key), ``event_type`` (the skip rule),
    ``event_id`` (the hash in the module docstring), and ``pre_reason`` / ``pre_detail``."""
    uri = F.nullif(F.trim("track_id"), F.lit(""))
    track = F.coalesce(uri, track_key_column(F.col("artist_name"), F.col("title")))
    ms = as_long("ms_played")
    by_time = (F.when(ms < F.lit(profile.skip_below_ms), F.lit("skip")) if profile.skip_below_ms > 0
               else F.lit(None).cast("string"))
    kind = F.coalesce(F.nullif(F.trim("event_type"), F.lit("")),
                      F.when(F.col("_skip"), F.lit("skip")).when(~F.col("_skip"), F.lit("play")), by_time,
                      F.lit("play"))
    t_us = F.expr("unix_micros(try_to_timestamp(trim(event_time)))")
    derived_id = F.sha2(F.to_json(F.struct(F.col("user_id"), t_us.alias("event_time_us"), F.col("track_id"),
                                           ms.alias("ms_played"))), 256)
    pre_reason = (F.when(F.col("malformed"), F.lit(None))
                  .when(F.col("_missing").isNotNull(), F.lit(R.MISSING_REQUIRED_VALUE))
                  .when(F.col("track_id").isNull(), F.lit(R.MISSING_TRACK_ID)))
    pre_detail = (F.when(F.col("malformed"), F.col("read_detail"))
                  .when(F.col("_missing").isNotNull(), F.col("_missing"))
                  .when(F.col("track_id").isNull(), F.lit("no track id, and no artist and title to key it by")))
    out = df.withColumn("track_id", track).withColumn("event_type", kind)
    if not profile.fields["event_id"].strip():
        out = out.withColumn("event_id", derived_id)
    return (out.withColumn("pre_reason", pre_reason).withColumn("pre_detail", pre_detail)
            .select("source_file", "row_pos", "raw_record", "malformed", *EVENT_SOURCE, *EXTRA))


def map_profile(df: DataFrame, profile: EventProfile, *, root: Path) -> DataFrame:
    """Raw export records -> raw contract events (see the module docstring).

    Parameters
    ----------
    df : DataFrame
        From :func:`read_export_files`.
    root : Path
        ``ingest.events_path`` (a folder; for a file or a glob, the folder holding it).

    Returns
    -------
    DataFrame[source_file, row_pos, raw_record, malformed, event_id, user_id, track_id, event_type,
    event_time, ms_played, artist_name, title, spotify_uri, isrc, mbid, not_a_track, pre_reason, pre_detail]
    """
    return (df.transform(lambda d: with_source_names(d, root))
            .transform(lambda d: source_to_fields(d, profile))
            .transform(lambda d: derive_contract(d, profile)))
