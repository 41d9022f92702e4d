"""Generate the demo catalog: catalog files, real encoded audio, engagement events, bad input, ground truth."""
from __future__ import annotations

import logging

from hitcast.cli import config_from_args, job_parser
from hitcast.demo.generate import generate_demo
from hitcast.spark import build_session

log = logging.getLogger("hitcast.jobs.generate_demo")


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(
        "generate_demo.py",
        "Write a synthetic, deterministic demo catalog in the input contract's formats: catalog CSV + JSON "
        "lines, wav/flac/ogg audio, engagement events as JSON lines (simulated in Spark), deliberate bad "
        "input, and the ground truth (beside the output folder, never read by the pipeline).")
    parser.add_argument("--tracks", type=int, help="number of tracks (default demo.tracks)")
    parser.add_argument("--seed", type=int, help="random seed (default demo.seed); same seed => same files")
    parser.add_argument("--out", help="output folder (default paths.raw); audio goes to OUT/audio")
    parser.add_argument("--force", action="store_true",
                        help="regenerate even if OUT already holds a catalog made with the same settings")
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    spark = build_session(cfg, "hitcast-generate-demo")
    res = generate_demo(spark, cfg, out=args.out, tracks=args.tracks, seed=args.seed, force=args.force)
    log.info("summary: %d tracks, %d events, %d audio files in %s; bad input %s", res.tracks, res.events,
             res.audio_files, res.out, res.bad_input)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
