"""Benchmark: training examples/s fed through Petastorm vs. the same loop fed from in-memory NumPy arrays,
and 1 vs. 2 barrier workers.

Every variant runs the same worker code (:mod:`hitcast.model.trainloop`: MultiWorkerMirroredStrategy custom
loop, same model, same batch size per worker, same ``mel`` bytes decoding); only the source of the batches
differs. A fourth run leaves TensorFlow's malloc setting in place (:mod:`hitcast.model.allocator`), to show
what it costs. Rates are the median over epochs of (steps x global batch) / epoch wall time, so TensorFlow's start-up
and tracing are left out. Data: synthetic rows of the real shape (``dsp.n_mels`` x frames of
``dsp.clip_seconds``), so the benchmark needs no demo tables.

    python bench/bench_training.py --conf conf/local.yaml [--rows 2048] [--epochs 3]
"""
from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from hitcast.audio.dsp import n_frames as dsp_n_frames
from hitcast.cli import config_from_args, job_parser
from hitcast.model.dataset import make_converter, rows_schema, shard_rows
from hitcast.model.distributed import run_barrier_training
from hitcast.model.spec import DEFAULT_SPEC
from hitcast.spark import build_session

log = logging.getLogger("hitcast.bench.training")


def synthetic_rows(n: int, width: int, n_mels: int, n_frames: int, seed: int = 0) -> pd.DataFrame:
    """``n`` rows of :func:`hitcast.model.dataset.rows_schema` (with audio): random mel bytes and features."""
    rng = np.random.default_rng(seed)
    mel = rng.integers(0, 256, size=(n, n_mels * n_frames), dtype=np.uint8)
    return pd.DataFrame({
        "track_id": [f"b{i:06d}" for i in range(n)], "cutoff": "2025-03-01", "split": "train",
        "is_hit": (rng.random(n) < 0.2).astype(np.float32), "popularity": (rng.random(n) * 100).astype(np.float32),
        "tabular": list(rng.normal(size=(n, width)).astype(np.float32)),
        "mel": [m.tobytes() for m in mel], "has_audio": np.ones(n, np.float32),
    })


def main() -> None:
    parser = job_parser("bench_training", __doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2048, help="synthetic training rows (default 2048)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (default 3)")
    parser.add_argument("--width", type=int, default=40, help="encoded tabular width (default 40)")
    args = parser.parse_args()
    cfg = config_from_args(args)
    spark = build_session(cfg, "hitcast-bench-training")
    t = cfg.train
    n_mels, n_frames = cfg.dsp.n_mels, dsp_n_frames(cfg.dsp)
    pdf = synthetic_rows(args.rows, args.width, n_mels, n_frames)
    model = {"tabular_width": args.width, "n_mels": n_mels, "n_frames": n_frames, "variant": "fused",
             "popularity_head": t.popularity_head, "conv_filters": list(t.conv_filters), "dense_units": t.dense_units,
             "dropout": t.dropout, "kernel_size": t.kernel_size}
    base = {"batch_size": t.batch_size, "epochs": args.epochs, "seed": t.seed, "learning_rate": t.learning_rate,
            "audio_dropout": t.audio_dropout, "popularity_weight": t.popularity_weight,
            "shuffle_buffer": t.shuffle_buffer, "reader_workers": t.reader_workers, "save_path": None, "val_converter": None, "model": model}
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="hitcast-bench-") as tmp:
        npz = str(Path(tmp) / "rows.npz")
        np.savez(npz, **{c: (np.stack(pdf[c].to_numpy()) if c == "tabular" else
                             np.array(pdf[c].tolist(), dtype=object) if c == "mel" else pdf[c].to_numpy())
                         for c in ("is_hit", "popularity", "tabular", "mel", "has_audio")})
        converter = make_converter(spark, cfg, spark.createDataFrame(pdf, rows_schema(DEFAULT_SPEC)), files=4)
        try:
            for name, workers, source in (("numpy, 1 worker", 1, {"numpy_path": npz}),
                                          ("petastorm, 1 worker", 1, {"converter": converter}),
                                          ("petastorm, 2 workers", 2, {"converter": converter}),
                                          ("petastorm, 1, TF malloc", 1, {"converter": converter,
                                                                          "keep_freed_memory": False})):
                steps = (min(shard_rows(converter.file_urls, workers)) if "converter" in source
                         else args.rows // workers) // t.batch_size
                t0 = time.perf_counter()
                spec = dict(base, steps_per_epoch=steps, converter=converter)
                spec.update(source)
                res = run_barrier_training(spark, spec, workers=workers, timeout_s=t.timeout_s)
                results[name] = res[0]["examples_per_s"]
                log.info("%-22s %7.0f examples/s (median epoch; %d steps x %d epochs, %.0f s with start-up)", name,
                         results[name], steps, args.epochs, time.perf_counter() - t0)
        finally:
            converter.delete()
    print(f"rows {args.rows}, batch {t.batch_size}/worker, mel {n_mels}x{n_frames}, conv {t.conv_filters}")
    for name, rate in results.items():
        print(f"{name:22s} {rate:8.0f} examples/s")
    print(f"petastorm / numpy (1 worker): {results['petastorm, 1 worker'] / results['numpy, 1 worker']:.2f}x "
          f"(target >= 0.8x)")
    print(f"2 workers / 1 worker (petastorm): {results['petastorm, 2 workers'] / results['petastorm, 1 worker']:.2f}x")
    print(f"petastorm / numpy with TensorFlow's malloc setting left in place: "
          f"{results['petastorm, 1, TF malloc'] / results['numpy, 1 worker']:.2f}x (see hitcast.model.allocator)")
    spark.stop()


if __name__ == "__main__":
    main()
