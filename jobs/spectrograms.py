"""Catalog audio -> log-mel spectrograms in the Delta table `spectrograms` (or a report on a folder)."""
from __future__ import annotations

import sys

from hitcast.cli import job_parser, run_stage

DESCRIPTION = """Compute log-mel spectrograms for every catalog track and MERGE them into the Delta table
`spectrograms` (key track_id). Incremental: only tracks whose audio bytes, audio_path or DSP settings
changed (or that are new) are decoded again; the rest are skipped. Bad audio never fails the job: each
track gets a status (ok, no_audio, rejected_path, missing, unreadable, empty, undecodable, truncated,
too_short, silent, non_finite, error) and an error message, and the job ends with counts by status.

With --audio-dir DIR it instead analyses a folder of audio files (outside the catalog) and logs, per
file, its status and spectrogram shape; --out LOCATION also MERGEs those rows into a Delta table there."""


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("spectrograms.py", DESCRIPTION)
    parser.add_argument("--audio-dir", metavar="DIR",
                        help="analyse the audio files in DIR (recursively) instead of the catalog")
    parser.add_argument("--out", metavar="LOCATION",
                        help="with --audio-dir: also write the rows to the Delta table at LOCATION")
    args = parser.parse_args(argv)
    if args.out and not args.audio_dir:
        parser.error("--out needs --audio-dir (catalog runs write to the warehouse table `spectrograms`)")
    if args.audio_dir:
        from hitcast.spectrograms.report import run_audio_dir

        return run_stage(args, "hitcast-spectrograms",
                         lambda spark, cfg: run_audio_dir(spark, cfg, folder=args.audio_dir, out=args.out))
    from hitcast.spectrograms.stage import run_spectrograms

    return run_stage(args, "hitcast-spectrograms", run_spectrograms)


if __name__ == "__main__":
    sys.exit(main())
