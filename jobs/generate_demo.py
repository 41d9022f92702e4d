"""Generate the demo catalog: catalog files, real encoded audio, engagement events, bad input, ground truth."""
from __future__ import annotations

import sys

from hitcast.cli import job_parser, run_stage


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
    from hitcast.demo.generate import generate_demo

    return run_stage(args, "hitcast-generate-demo",
                     lambda spark, cfg: generate_demo(spark, cfg, out=args.out, tracks=args.tracks, seed=args.seed,
                                                      force=args.force))


if __name__ == "__main__":
    sys.exit(main())
