"""Event files through event profiles: each file read with the profile that fits it
(:mod:`hitcast.ingest.layouts`), the files no profile fits kept whole in quarantine under one reason.

With one profile (``ingest.events_profile: <name>``) a file its ``files`` globs select but whose fields it does
not find is such a file: the Last.fm profile given a CSV of ``artist, album, song_title, date_time`` reports
the file once, with its columns, instead of refusing every row for a missing ``track``. With ``auto`` every
shipped profile is tried on every file.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from typing import Callable, Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hitcast.config import Config
from hitcast.ingest import reasons as R
from hitcast.ingest.exports import EVENT_SOURCE, EXTRA, map_profile, read_export_paths, with_source_names
from hitcast.ingest.layouts import Unfit, assign
from hitcast.ingest.profiles import EventProfile
from hitcast.ingest.readers import list_files, read_csv, read_json_arrays, read_json_lines

log = logging.getLogger(__name__)


@dataclass
class ProfiledRead:
    """What :func:`read_profiled_events` read.

    Attributes
    ----------
    raw : DataFrame or None
        :func:`hitcast.ingest.exports.map_profile`'s columns for every record of every file read.
    files : list of Path
        The files a profile fits (recorded in ``ingested_files``; a file no profile fits is tried again).
    profiles : dict
        Profile name -> the files (below ``ingest.events_path``) read with it.
    unfit : list of Unfit
        The files no profile fits.
    reports : list of str
        One line per such file: ``<file below ingest.events_path>: <Unfit.detail>``.
    """

    raw: DataFrame | None = None
    files: list[Path] = field(default_factory=list)
    profiles: dict[str, list[str]] = field(default_factory=dict)
    unfit: list[Unfit] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)


def events_root(location: Path) -> Path:
    """The folder that ``_folder`` and ``source_file`` are relative to: ``location`` itself, or the folder
    holding a file or a glob."""
    root = location if location.is_dir() else location.parent
    while not root.is_dir() and root != root.parent:
        root = root.parent
    return root


def relative(path: Path, root: Path) -> str:
    """``path`` below ``root`` (its name if it is not below it)."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return path.name


def unfit_records(spark: SparkSession, unfit: Unfit, root: Path) -> DataFrame:
    """Every record of a file no profile fits, with ``pre_reason = no_matching_profile`` and the file's one
    message as ``pre_detail`` (a CSV's first line is its header), in :func:`map_profile`'s columns."""
    layout = unfit.layout
    path = layout.path
    if layout.kind == "csv":
        df = read_csv(spark, path, {}).withColumn("source_path", F.lit(str(path.resolve())))
    elif layout.kind == "json_array":
        df = read_json_arrays(spark, [path], [])
    else:
        df = read_json_lines(spark, [path], [])
    none = F.lit(None).cast("string")
    values = {"pre_reason": F.lit(R.NO_MATCHING_PROFILE), "pre_detail": F.lit(unfit.detail)}
    return (with_source_names(df, root)
            .select("source_file", "row_pos", "raw_record", F.lit(False).alias("malformed"),
                    *[none.alias(c) for c in EVENT_SOURCE], *[values.get(c, none).alias(c) for c in EXTRA]))


def read_profiled_events(spark: SparkSession, cfg: Config, profiles: list[EventProfile],
                         keep: Callable[[Sequence[Path]], list[Path]] | None = None) -> ProfiledRead:
    """The event files under ``ingest.events_path`` (those ``keep`` keeps, when given), each through the
    profile of ``profiles`` that fits it (:func:`hitcast.ingest.layouts.assign`)."""
    location = cfg.path(cfg.ingest.events_path)
    root = events_root(location)
    paths = [p for p, _ in list_files(location, "json")]
    if keep is not None:
        paths = keep(paths)
    chosen, unfit = assign(list(paths), profiles)
    by_name = {p.profile: p for p in profiles}
    frames = [map_profile(read_export_paths(spark, files, by_name[name]), by_name[name], root=root)
              for name, files in sorted(chosen.items())]
    frames += [unfit_records(spark, u, root) for u in unfit]
    read = ProfiledRead(files=[p for files in chosen.values() for p in files], unfit=unfit,
                        profiles={n: [relative(p, root) for p in files] for n, files in sorted(chosen.items())},
                        reports=[f"{relative(u.layout.path, root)}: {u.detail}" for u in unfit])
    read.raw = reduce(DataFrame.unionByName, frames) if frames else None
    return read
