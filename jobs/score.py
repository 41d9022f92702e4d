"""Score the whole catalog with a model version and MERGE into the Delta table `predictions`."""
from __future__ import annotations

import datetime as dt
import sys

from hitcast.cli import job_parser, run_stage


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(
        "score.py",
        "Catalog-wide rescoring with the champion model (or --model-version): features as of a date for every\n"
        "catalog track (cold-start tracks included, reused when catalog and events are unchanged),\n"
        "spectrograms joined, the model and its reasons run on executors, and a Delta MERGE into\n"
        "`predictions` on (track_id, model_version). Incremental: only tracks whose model inputs changed\n"
        "since the stored row are scored again (--full scores all). Each run appends a row to\n"
        "`scoring_runs` (counts by mode, score quantiles, drift against the previous run).\n"
        "With --audio-dir DIR it scores a folder of audio files that are not in the catalog (demos before\n"
        "release) with the champion in cold-start mode instead: rows MERGEd into `prospects`, a ranked table\n"
        "in the log and an HTML page with each file's reasons and spectrogram (<paths.reports>/prospects.html).")
    parser.add_argument("--model-version", default=None,
                        help="model version to score with (default: score.model_version, 'champion')")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=None,
                        help="features use events before this date, YYYY-MM-DD "
                             "(default: score.as_of, else the day after the last event)")
    parser.add_argument("--full", action="store_true", help="rescore every track, not only changed ones")
    parser.add_argument("--reasons", type=int, default=None, metavar="N",
                        help="top inputs explained per track (default: score.reasons; 0 = none)")
    parser.add_argument("--audio-dir", metavar="DIR", default=None,
                        help="score the audio files in DIR (not in the catalog) as prospects")
    parser.add_argument("--metadata", metavar="FILE", default=None,
                        help="with --audio-dir: CSV (header) or JSON lines, column 'file' (path in DIR) and any "
                             "of artist_name, title, genre, release_date, artist_id, explicit, duration_ms, ...")
    args = parser.parse_args(argv)
    if args.metadata and not args.audio_dir:
        parser.error("--metadata needs --audio-dir")
    if args.audio_dir:
        if args.full:
            parser.error("--full is for catalog runs; --audio-dir scores every file")
        from hitcast.scoring.prospects import run_prospects

        return run_stage(args, "hitcast-prospects",
                         lambda spark, cfg: run_prospects(spark, cfg, folder=args.audio_dir, metadata=args.metadata,
                                                          version=args.model_version, as_of=args.as_of,
                                                          reasons=args.reasons))
    from hitcast.scoring.stage import run_scoring

    return run_stage(args, "hitcast-score",
                     lambda spark, cfg: run_scoring(spark, cfg, version=args.model_version, as_of=args.as_of,
                                                    full=args.full, reasons=args.reasons))


if __name__ == "__main__":
    sys.exit(main())
