#!/usr/bin/env python
"""hitcast spectrograms: catalog audio -> log-mel spectrograms in the Delta table `spectrograms`."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from hitcast.cli import config_from_args, job_parser, step
from hitcast.spark import build_session

log = logging.getLogger("hitcast.jobs.spectrograms")

DESCRIPTION = """Compute log-mel spectrograms for every catalog track and MERGE them into the Delta table
`spectrograms` (key track_id). Incremental: only tracks whose audio bytes, audio_path or DSP settings
changed (or that are new) are decoded again; the rest are skipped. Bad audio never fails the job: each
track gets a status (ok, no_audio, rejected_path, missing, unreadable, empty, undecodable, truncated,
too_short, silent, non_finite, error) and an error message, and the job ends with counts by status.

With --audio-dir DIR it instead analyses a folder of audio files (outside the catalog) and logs, per
file, its status and spectrogram shape; --out LOCATION also MERGEs those rows into a Delta table there."""


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("hitcast spectrograms", DESCRIPTION)
    parser.add_argument("--audio-dir", metavar="DIR",
                        help="analyse the audio files in DIR (recursively) instead of the catalog")
    parser.add_argument("--out", metavar="LOCATION",
                        help="with --audio-dir: also write the rows to the Delta table at LOCATION")
    args = parser.parse_args(argv)
    if args.out and not args.audio_dir:
        parser.error("--out needs --audio-dir (catalog runs write to the warehouse table `spectrograms`)")
    cfg = config_from_args(args)

    from hitcast import spectrograms as sg

    spark = build_session(cfg, "hitcast-spectrograms")
    if args.audio_dir:
        folder = Path(args.audio_dir).resolve()
        if not folder.is_dir():
            parser.error(f"--audio-dir {folder}: not a directory")
        with step(f"spectrograms of the audio files in {folder}"):
            if args.out:
                out = str(Path(args.out).resolve())
                sg.update_spectrograms(spark, sg.audio_dir_tracks(spark, folder), out, cfg.dsp, [folder])
                rows = sg.report_rows(spark.read.format("delta").load(out))
            else:
                rows = sg.describe_files(spark, folder, cfg.dsp)
        log.info("%s", sg.format_report(rows))
        return 0
    roots = [cfg.path(r) for r in cfg.paths.audio_roots]
    with step("spectrograms of the catalog"):
        summary = sg.update_spectrograms(spark, sg.catalog_tracks(spark, cfg), cfg.table("spectrograms"),
                                         cfg.dsp, roots)
    log.info("summary: %d tracks, %d recomputed, %d skipped; table %s (version %s) by status: %s",
             summary.tracks, summary.recomputed, summary.skipped, summary.location, summary.table_version,
             ", ".join(f"{k}={v}" for k, v in summary.table_by_status.items()) or "empty")
    return 0


if __name__ == "__main__":
    sys.exit(main())
