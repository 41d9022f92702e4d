"""The ``--audio-dir`` report: status and spectrogram shape of every audio file in a folder.

For a folder of files outside the catalog (a label's demos, a test corpus): each file is a "track" whose
``track_id`` is its relative path. The rows come from the same per-track code as the catalog stage
(:func:`hitcast.spectrograms.stage.compute_rows`), so a file gets exactly the status it would get there.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from pyspark.sql import DataFrame, SparkSession

from hitcast.config import Config, DspSection
from hitcast.errors import InputContractError
from hitcast.spectrograms.stage import compute_rows, partitions_for, update_spectrograms, with_previous

#: Extensions ``--audio-dir`` picks up (formats libsndfile cannot read are reported as undecodable).
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".w64",
                    ".caf", ".m4a", ".aac", ".mp4", ".wma")


def audio_dir_files(folder: str | os.PathLike[str], extensions: Sequence[str] = AUDIO_EXTENSIONS) -> list[str]:
    """Audio files under ``folder`` (recursive, hidden entries skipped), as sorted relative POSIX paths."""
    root = Path(folder)
    found = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or path.suffix.lower() not in extensions:
            continue
        if path.is_file() or path.is_symlink():
            found.append(rel.as_posix())
    return sorted(found)


def audio_dir_tracks(spark: SparkSession, folder: str | os.PathLike[str]) -> DataFrame:
    """A ``track_id, audio_path`` DataFrame for the audio files of ``folder`` (``track_id`` = relative path)."""
    files = audio_dir_files(folder)
    return spark.createDataFrame([(f, f) for f in files], "track_id string, audio_path string")


def describe_files(spark: SparkSession, folder: str | os.PathLike[str], dsp: DspSection) -> list[dict]:
    """Status and spectrogram shape of every audio file in ``folder`` (nothing is written).

    Returns
    -------
    list of dict
        Keys ``track_id, status, error, n_mels, n_frames, duration_s, sample_rate, channels``, sorted by file.
    """
    files = audio_dir_files(folder)
    tracks = audio_dir_tracks(spark, folder)
    rows = compute_rows(with_previous(tracks, None), dsp=dsp, roots=[os.fspath(folder)],
                        partitions=partitions_for(spark, len(files), dsp.tracks_per_partition))
    return report_rows(rows)


REPORT_COLUMNS = ("track_id", "status", "n_mels", "n_frames", "duration_s", "sample_rate", "channels", "error")


def report_rows(rows: DataFrame) -> list[dict]:
    """``REPORT_COLUMNS`` of ``rows`` (``ROW_SCHEMA`` or ``SPECTROGRAMS``) as dicts, sorted by ``track_id``."""
    return [r.asDict() for r in rows.select(*REPORT_COLUMNS).orderBy("track_id").collect()]


def format_report(rows: Sequence[dict]) -> str:
    """A plain-text table: one line per file with its status and spectrogram shape, then counts by status."""
    width = max([len("file")] + [len(str(r["track_id"])) for r in rows])
    lines = [f"{'file':<{width}}  {'status':<13} {'shape':>9} {'seconds':>8} {'rate':>6} {'ch':>3}  error"]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
        shape = f"{r['n_mels']}x{r['n_frames']}" if r["n_mels"] is not None else "-"
        secs = f"{r['duration_s']:.2f}" if r["duration_s"] is not None else "-"
        lines.append(f"{r['track_id']:<{width}}  {r['status']:<13} {shape:>9} {secs:>8} "
                     f"{r['sample_rate'] or '-':>6} {r['channels'] or '-':>3}  {r['error'] or ''}")
    lines.append(f"{len(rows)} files: " + (", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "none"))
    return "\n".join(lines)


@dataclass
class AudioDirReport:
    """The ``--audio-dir`` result: one dict per file (:data:`REPORT_COLUMNS`), and the table written, if any."""

    folder: str
    rows: list[dict]
    location: str | None = None

    def __str__(self) -> str:
        where = f"; rows MERGEd into {self.location}" if self.location else ""
        return f"audio files in {self.folder}{where}\n{format_report(self.rows)}"


def run_audio_dir(spark: SparkSession, cfg: Config, *, folder: str | os.PathLike[str],
                  out: str | os.PathLike[str] | None = None) -> AudioDirReport:
    """Analyse every audio file in ``folder`` with ``cfg.dsp``; with ``out``, also MERGE the rows into the
    Delta table there (``SPECTROGRAMS`` schema, ``track_id`` = the file's relative path).

    Raises
    ------
    InputContractError
        When ``folder`` is not a directory.
    """
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise InputContractError(f"--audio-dir {folder}: not a directory")
    if out is None:
        return AudioDirReport(str(folder), describe_files(spark, folder, cfg.dsp))
    location = str(Path(out).resolve())
    update_spectrograms(spark, audio_dir_tracks(spark, folder), location=location, dsp=cfg.dsp, roots=[folder])
    return AudioDirReport(str(folder), report_rows(spark.read.format("delta").load(location)), location)
