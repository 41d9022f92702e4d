"""Helpers the test modules share: configurations for a test, tiny training settings and synthetic
``training_examples`` / ``spectrograms`` rows. Fixtures live in ``conftest.py``; no test module imports
another test module."""
from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
from pyspark.sql.types import (BooleanType, DateType, DoubleType, IntegerType, LongType, StringType,
                               StructField, StructType)

from hitcast.config import Config, DspSection, base_config, load_config
from hitcast.schemas import SPECTROGRAMS

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def make_config(tmp_path: Path, *overrides: str) -> Config:
    """Configuration for a test: ``conf/local.yaml`` on local[2], every path under ``tmp_path``."""
    return load_config(None, [
        "spark.master=local[2]",
        f"paths.root={tmp_path}",
        "paths.warehouse=warehouse",
        "paths.raw=raw",
        "paths.audio_roots=[raw/audio]",
        "paths.models=models",
        "paths.reports=reports",
        "ingest.catalog_path=raw/catalog",
        "ingest.events_path=raw/events",
        *overrides,
    ])


def dsp_settings(**changes) -> DspSection:
    """``conf/base.yaml``'s DSP settings with ``changes`` (no validation: tests may pass bad values)."""
    return dataclasses.replace(base_config().dsp, **changes)



# --- A reference log-mel ----------------------------------------------------------------------------

def librosa_reference(y: np.ndarray, dsp: DspSection) -> np.ndarray:
    """librosa's log-mel of the mono signal ``y`` with ``dsp``'s settings (the reference hitcast's DSP matches)."""
    import librosa

    S = librosa.feature.melspectrogram(y=y, sr=dsp.sr, n_fft=dsp.n_fft, hop_length=dsp.hop_length,
                                       n_mels=dsp.n_mels, fmin=dsp.fmin, fmax=dsp.fmax)
    return librosa.power_to_db(S, ref=np.max, top_db=dsp.top_db)


def centre_crop(y: np.ndarray, n: int) -> np.ndarray:
    """The middle ``n`` samples of ``y``, or ``y`` padded with zeros at the end to ``n``."""
    if y.size <= n:
        return np.pad(y, (0, n - y.size))
    start = (y.size - n) // 2
    return y[start:start + n]


# --- Distributed training in seconds ----------------------------------------------------------------

#: Settings for a tiny model trained on 2 barrier workers (a few seconds on local[2]).
TINY_TRAIN = ["train.epochs=4", "train.batch_size=8", "train.learning_rate=0.01", "train.conv_filters=[4,8]",
              "train.kernel_size=3", "train.dense_units=16", "train.dropout=0.0", "train.workers=2",
              "train.files_per_worker=2", "spark.shuffle_partitions=2"]


# --- Synthetic training_examples and spectrograms rows ---------------------------------------------

GENRES = ["pop", "rock", "jazz"]
N_MELS, N_FRAMES = 8, 16

#: A ``training_examples`` schema cut down to four numeric features.
EXAMPLES = StructType([
    StructField("track_id", StringType(), False),
    StructField("cutoff", DateType()),
    StructField("split", StringType()),
    StructField("artist_id", StringType()),
    StructField("artist_name", StringType()),
    StructField("genre", StringType()),
    StructField("release_date", DateType()),
    StructField("cold_start", BooleanType()),
    StructField("future_plays", LongType()),
    StructField("popularity", DoubleType()),
    StructField("is_hit", IntegerType()),
    StructField("plays_7d", DoubleType()),
    StructField("skip_rate_28d", DoubleType()),
    StructField("danceability", DoubleType()),
    StructField("days_since_release", IntegerType()),
])

SPLITS = {dt.date(2025, 3, 1): "train", dt.date(2025, 5, 1): "train", dt.date(2025, 7, 1): "validation",
          dt.date(2025, 9, 1): "test"}


def synth_rows(n_tracks: int = 40, seed: int = 0) -> tuple[list[tuple], list[tuple]]:
    """(training_examples rows, spectrograms rows).

    A track is a hit when ``0.8 * plays_z + bright_audio + danceability`` is high; every fifth track is
    cold start (NULL engagement), every seventh has no ``ok`` spectrogram.
    """
    rng = np.random.default_rng(seed)
    examples, specs = [], []
    bright = rng.random(n_tracks) < 0.5
    dance = rng.random(n_tracks)
    for t in range(n_tracks):
        tid = f"t{t:03d}"
        genre = GENRES[t % 3]
        if t % 7 == 3:
            specs.append((tid, f"{tid}.wav", "h" + tid, "dsp1", "missing", "file not found", None, None, None,
                          None, None, None, None, None, None))
        else:
            mel = rng.integers(0, 60, size=(N_MELS, N_FRAMES), dtype=np.uint8)
            if bright[t]:
                mel[2:5, :] = 220
            specs.append((tid, f"{tid}.wav", "h" + tid, "dsp1", "ok", None, N_MELS, N_FRAMES,
                          mel.tobytes(), -80.0, 80.0 / 255, 8.0, 22050, 1, None))
        for cutoff, split in SPLITS.items():
            cold = t % 5 == 0
            plays = None if cold else float(rng.poisson(30 + 40 * bright[t]))
            skip = None if cold else float(rng.random())
            score = (0.0 if plays is None else (plays - 50) / 20) + 1.5 * bright[t] + dance[t] + rng.normal(0, .3)
            hit = int(score > 1.2)
            examples.append((tid, cutoff, split, f"a{t % 6}", f"Artist {t % 6}", genre, dt.date(2024, 6, 1),
                             cold, int(score * 100 + 500), float(np.clip(50 + 20 * score, 0, 100)), hit,
                             plays, skip, float(dance[t]), 100 + t))
    return examples, specs


def synth_frames(spark, n_tracks: int = 40, seed: int = 0):
    """The synthetic rows as Spark DataFrames ``(examples, spectrograms)``."""
    ex, sp = synth_rows(n_tracks, seed)
    return spark.createDataFrame(ex, EXAMPLES), spark.createDataFrame(sp, SPECTROGRAMS)


# --- Pipeline inputs -------------------------------------------------------------------------------

def build_inputs(spark, cfg: Config, *, generate: bool = True) -> None:
    """A generated demo catalog (``generate=False``: the one already under ``cfg``'s raw folder) through ingest,
    features and spectrograms into ``cfg``'s warehouse."""
    from hitcast.demo.generate import generate_demo
    from hitcast.features.stage import run_features
    from hitcast.ingest.pipeline import run_ingest
    from hitcast.spectrograms.stage import run_spectrograms

    if generate:
        generate_demo(spark, cfg)
    run_ingest(spark, cfg)
    run_features(spark, cfg)
    run_spectrograms(spark, cfg)
