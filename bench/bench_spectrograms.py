#!/usr/bin/env python
"""Benchmark the spectrogram stage against a plain librosa loop and the decode + STFT floor.

Corpora (the same files for every method):

- ``bench``: real music from ``../shared/scripts/fetch-bench-audio`` (41 Ogg Vorbis files, 44.1 kHz
  stereo, about two hours);
- ``demo``: the demo catalog's audio (``<paths.raw>/audio``) if it exists, else ~200 synthesised clips.

Methods, timed in the same run:

- (a) a plain single-process loop: ``librosa.load(path, sr=22050)`` of the whole file, the same centre
  crop applied after loading (as a naive user would), ``melspectrogram`` + ``power_to_db``;
- (b) hitcast's spectrogram job (:func:`hitcast.spectrograms.stage.update_spectrograms`) on ``local[2]``, into a
  fresh Delta table: hashing, decoding, log-mel and the write, everything but the session start (the
  session is warmed up once on 4 other clips first, as a long-running cluster would be);
- (c) the floor on one core: decoding alone (seek + read of the same crop region as (b)) plus the STFT
  alone (of the same clips).

Then the peak RSS of the Python workers (sampled from ``/proc/*/status``) running (b) on catalogs of
100 and 1,000 tracks.

Usage: ``bench/bench_spectrograms.py --conf conf/local.yaml`` (``make bench-spectrograms``).
"""
from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from hitcast.audio.decode import MARGIN_SECONDS, crop_window, decode_clip
from hitcast.audio.dsp import clip_samples, power_spectrogram
from hitcast.audio.status import AudioError
from hitcast.cli import config_from_args, job_parser
from hitcast.config import Config, DspSection
from hitcast.spark import build_session
from rss import RssSampler

REPO = Path(__file__).resolve().parents[1]
FETCH = REPO.parent / "shared" / "scripts" / "fetch-bench-audio"
AUDIO_EXT = (".wav", ".flac", ".ogg", ".mp3")


def fetch_bench_audio() -> Path | None:
    if not FETCH.is_file():
        return None
    out = subprocess.run(["bash", str(FETCH)], capture_output=True, text=True)
    if out.returncode != 0:
        print(f"fetch-bench-audio failed: {out.stderr.strip()[-500:]}")
        return None
    return Path(out.stdout.strip().splitlines()[-1])


def synthesise_clips(folder: Path, n: int, seed: int = 0) -> Path:
    """``n`` clips of 10-40 s (wav, flac and ogg; 22.05 and 44.1 kHz; mono and stereo), chords + noise."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        sr = (22050, 44100)[i % 2]
        ext, fmt, sub = [(".wav", "WAV", "PCM_16"), (".flac", "FLAC", "PCM_16"), (".ogg", "OGG", "VORBIS")][i % 3]
        seconds = float(rng.uniform(10, 40))
        t = np.arange(int(seconds * sr)) / sr
        y = sum(0.2 * np.sin(2 * np.pi * f * t) for f in rng.uniform(80, 2000, 3))
        y = y * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 4) * t)) + 0.02 * rng.standard_normal(t.size)
        y = np.stack([y, np.roll(y, 50)], axis=1) if i % 4 == 0 else y
        sf.write(str(folder / f"clip{i:04d}{ext}"), y.astype(np.float32), sr, format=fmt, subtype=sub)
    return folder


def list_audio(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXT and p.is_file())


def durations(files: list[Path]) -> float:
    """Seconds of audio in ``files`` (files libsndfile cannot open count 0)."""
    total = 0.0
    for f in files:
        try:
            total += sf.info(str(f)).duration
        except (RuntimeError, sf.SoundFileError):
            pass
    return total


def naive_loop(files: list[Path], dsp: DspSection) -> float:
    import librosa

    n = clip_samples(dsp)
    t0 = time.perf_counter()
    for f in files:
        try:
            y, _ = librosa.load(str(f), sr=dsp.sr)
        except Exception:  # noqa: BLE001 - the demo catalog holds deliberately bad files
            continue
        y = y[(y.size - n) // 2:(y.size - n) // 2 + n] if y.size > n else np.pad(y, (0, n - y.size))
        S = librosa.feature.melspectrogram(y=y, sr=dsp.sr, n_fft=dsp.n_fft, hop_length=dsp.hop_length,
                                           n_mels=dsp.n_mels, fmin=dsp.fmin, fmax=dsp.fmax)
        librosa.power_to_db(S, ref=np.max, top_db=dsp.top_db)
    return time.perf_counter() - t0


def floor(files: list[Path], dsp: DspSection) -> tuple[float, float]:
    """(decode seconds, STFT seconds) on one core, with (b)'s crop policy."""
    clips = []
    for f in files:  # the clips the STFT is timed on; a bad file (e.g. a silent one) costs a clip of zeros
        try:
            clips.append(decode_clip(str(f), dsp).y)
        except AudioError:
            clips.append(np.zeros(clip_samples(dsp), dtype=np.float32))
    t0 = time.perf_counter()
    for f in files:
        try:
            with sf.SoundFile(str(f)) as fh:
                available = min(fh.frames, int(dsp.max_decode_seconds * fh.samplerate))
                start, length = crop_window(available, fh.samplerate, dsp)
                margin = int(MARGIN_SECONDS * fh.samplerate)
                a, b = max(0, start - margin), min(available, start + length + margin)
                fh.seek(a)
                fh.read(b - a, dtype="float32", always_2d=True)
        except (RuntimeError, sf.SoundFileError):  # bad files in the demo catalog
            continue
    t_decode = time.perf_counter() - t0
    t0 = time.perf_counter()
    for y in clips:
        power_spectrogram(y, dsp.n_fft, dsp.hop_length)
    return t_decode, time.perf_counter() - t0


def run_job(spark, files: list[Path], root: Path, location: Path, dsp: DspSection, repeat_to: int | None = None,
            fresh: bool = True):
    """Time (b) on ``files`` (or ``repeat_to`` tracks cycling over them) into the table at ``location``."""
    from hitcast.spectrograms.stage import update_spectrograms

    rel = [f.relative_to(root).as_posix() for f in files]
    n = repeat_to or len(rel)
    rows = [(f"t{i:06d}", rel[i % len(rel)]) for i in range(n)]
    tracks = spark.createDataFrame(rows, "track_id string, audio_path string")
    if fresh:
        shutil.rmtree(location, ignore_errors=True)
    t0 = time.perf_counter()
    summary = update_spectrograms(spark, tracks, location=str(location), dsp=dsp, roots=[root])
    return time.perf_counter() - t0, summary


def report(name: str, files: list[Path], root: Path, spark, cfg: Config, work: Path) -> dict[str, float]:
    dsp = cfg.dsp
    audio_s = durations(files)
    n = len(files)
    print(f"\n== {name}: {n} files, {audio_s / 60:.1f} min of audio, clip {dsp.clip_seconds} s at {dsp.sr} Hz "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores) ==")
    def line(label: str, t: float) -> None:
        print(f"{label:<36} {t:8.2f} s  {n / t:8.1f} clips/s  {audio_s / t:9.0f} audio-s/s", flush=True)

    t_b, summary = run_job(spark, files, root, work / f"tables/{name}", dsp)
    line("(b) hitcast job, local[2]", t_b)
    print(f"    (b) statuses {summary.recomputed_by_status}", flush=True)
    t_b2, summary2 = run_job(spark, files, root, work / f"tables/{name}", dsp, fresh=False)
    print(f"    (b) re-run, nothing changed (hash only): {t_b2:.2f} s, {summary2.skipped} skipped, "
          f"{summary2.recomputed} recomputed", flush=True)
    t_a = naive_loop(files, dsp)
    line("(a) librosa loop, 1 process", t_a)
    t_dec, t_stft = floor(files, dsp)
    t_c = t_dec + t_stft
    line("(c) floor: decode + STFT, 1 core", t_c)
    line("    floor scaled to 2 cores", t_c / 2)
    print(f"    (c) decode {t_dec:.2f} s + STFT {t_stft:.2f} s")
    print(f"speed-up (a)/(b): {t_a / t_b:.2f}x (target >= 3x)   (b) / two-core floor: {t_b / (t_c / 2):.2f}x "
          f"(target <= 1.5x) (load average now {os.getloadavg()[0]:.1f})", flush=True)
    return {"a": t_a, "b": t_b, "c": t_c}


def marginal_rate(timed: dict[int, float], floor_per_clip: float) -> None:
    """Print the job's cost per extra track (between the smallest and largest catalog timed) against the floor.

    The difference of two runs cancels the fixed cost of a run (planning, Spark job and stage start-up,
    the Delta commit), leaving what each further track of a large catalog costs.
    """
    if len(timed) < 2:
        return
    lo, hi = min(timed), max(timed)
    per_track = (timed[hi] - timed[lo]) / (hi - lo)
    fixed = timed[lo] - lo * per_track
    print(f"marginal cost ({lo} -> {hi} tracks): {1000 * per_track:.2f} ms/track on local[2] "
          f"({1 / per_track:.0f} tracks/s); fixed cost per run {fixed:.2f} s; "
          f"vs the demo floor scaled to 2 cores ({1000 * floor_per_clip / 2:.2f} ms/clip): "
          f"{per_track / (floor_per_clip / 2):.2f}x", flush=True)


def main() -> int:
    parser = job_parser("bench_spectrograms", __doc__.split("\n\n")[0])
    parser.add_argument("--bench-audio", help="folder of the real music (default: run ../shared/scripts/"
                                              "fetch-bench-audio)")
    parser.add_argument("--demo-audio", help="demo catalog audio (default <paths.raw>/audio, else synthesised)")
    parser.add_argument("--demo-clips", type=int, default=200, help="clips to synthesise without demo audio")
    parser.add_argument("--rss-tracks", default="100,1000", help="catalog sizes for the worker RSS check")
    parser.add_argument("--work", help="scratch folder (default: a temporary folder, removed at the end)")
    args = parser.parse_args()
    args.overrides = ["spark.master=local[2]", *args.overrides]
    cfg = config_from_args(args)
    work = Path(args.work or tempfile.mkdtemp(prefix="hitcast-bench-"))
    spark = build_session(cfg, "hitcast-bench-spectrograms")
    try:
        # Warm-up, not timed: JVM, Delta and the Python workers' imports, as a long-running cluster would be.
        warm = synthesise_clips(work / "warm-audio", 4, seed=99)
        run_job(spark, list_audio(warm), warm, work / "tables/warm", cfg.dsp)
        bench_dir = Path(args.bench_audio) if args.bench_audio else fetch_bench_audio()
        if bench_dir and list_audio(bench_dir):
            report("bench", list_audio(bench_dir), bench_dir, spark, cfg, work)
        else:
            print("real bench audio not available: skipped")
        demo_dir = Path(args.demo_audio) if args.demo_audio else cfg.path(cfg.paths.raw) / "audio"
        if not list_audio(demo_dir):
            demo_dir = synthesise_clips(work / "demo-audio", args.demo_clips)
            print(f"\n(demo audio synthesised: {args.demo_clips} clips in {demo_dir})")
        demo_files = list_audio(demo_dir)
        demo = report("demo", demo_files, demo_dir, spark, cfg, work)
        print("\n== peak RSS of a Python worker (sampled VmRSS), hitcast job on local[2] ==")
        timed: dict[int, float] = {}
        for size in [int(s) for s in args.rss_tracks.split(",")]:
            with RssSampler() as rss:
                t, summary = run_job(spark, demo_files, demo_dir, work / f"tables/rss{size}", cfg.dsp, repeat_to=size)
            timed[size] = t
            print(f"{size:6d} tracks: {t:7.2f} s ({size / t:6.1f} tracks/s), {len(rss.workers)} worker processes, "
                  f"peak worker RSS {rss.max_mib:7.1f} MiB", flush=True)
        marginal_rate(timed, demo["c"] / len(demo_files))
    finally:
        spark.stop()
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
