"""Tiny synthetic ``training_examples`` and ``spectrograms`` rows (schemas from hitcast.schemas), shared by
the model, training and evaluation tests. No tests here."""
from __future__ import annotations

import datetime as dt

import numpy as np
from pyspark.sql.types import (BooleanType, DateType, DoubleType, IntegerType, LongType, StringType,
                               StructField, StructType)

from hitcast.schemas import SPECTROGRAMS

GENRES = ["pop", "rock", "jazz"]
N_MELS, N_FRAMES = 8, 16

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
