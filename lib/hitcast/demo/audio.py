"""Synthetic music clips whose sound carries the latent audio appeal (plain NumPy + SciPy filters).

With ``s = sigmoid(1.6 * a)`` for audio appeal ``a``:

- **beat**: a kick on every beat and a hat on the off-beats at the genre's tempo. High ``s``: loud
  and regular; low ``s``: quiet, jittered, with dropped hits.
- **hook**: a pentatonic melody in the 2-5 kHz band with amplitude ``~ s ** 2`` (bright, visible in the
  upper mel bands).
- **timbre**: a per-genre harmonic pad/bass (fundamental range, number of harmonics, brightness);
  the whole mix is low-passed at ``500 + 9000 * s**2`` Hz, and low ``s`` adds low rumbling noise.
"""
from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

from hitcast.demo.catalog import GENRE_BY_NAME, Genre

log = logging.getLogger(__name__)

_TABLE = 4096
_SUBTYPE = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS")}


def _place(out: np.ndarray, onsets: np.ndarray, amps: np.ndarray, kernel: np.ndarray) -> None:
    """Add ``amp * kernel`` at each onset sample (in place), clipped at the end of ``out``."""
    n = out.shape[0]
    for o, g in zip(onsets, amps):
        if 0 <= o < n:
            seg = kernel[: n - o]
            out[o:o + seg.shape[0]] += g * seg


def synthesize(appeal: float, genre: Genre, *, sr: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """One mono clip.

    Parameters
    ----------
    appeal : float
        Latent audio appeal (about N(0, 1)).
    genre : Genre
        Tempo, timbre and rhythm of the genre.
    sr : int
        Sample rate in Hz.
    seconds : float
        Clip length.
    rng : numpy.random.Generator
        The only source of randomness (deterministic for a seed).

    Returns
    -------
    np.ndarray, shape (round(sr * seconds),), float32, peak 0.9
    """
    n = int(round(sr * seconds))
    t = np.arange(n, dtype=np.float64) / sr
    s = float(1.0 / (1.0 + np.exp(-1.6 * appeal)))
    bpm = rng.uniform(*genre.bpm)
    period = 60.0 / bpm
    mix = np.zeros(n, dtype=np.float64)

    # Timbre: harmonic pad on a slowly changing root.
    f0 = rng.uniform(*genre.f0)
    roots = f0 * np.array([1.0, 1.1225, 1.3348, 1.1892])[(t // (4 * period)).astype(int) % 4]
    cycles = np.cumsum(roots) / sr
    k = np.arange(1, genre.harmonics + 1)
    weights = k ** -genre.brightness
    table = np.sin(np.outer(np.arange(_TABLE) * 2 * np.pi / _TABLE, k)) @ weights / weights.sum()
    pad = table[(cycles * _TABLE).astype(np.int64) % _TABLE]
    mix += 0.35 * pad

    # Beat: kick on beats, hat on off-beats.
    n_beats = int(seconds / period) + 1
    beat_t = np.arange(n_beats) * period
    jitter = (1 - s) * 0.22 * period * rng.standard_normal(n_beats)
    keep = rng.random(n_beats) >= (1 - s) * 0.5
    amp = (0.15 + 0.85 * s) * (1 - (1 - s) * rng.random(n_beats)) * keep
    kl = int(0.18 * sr)
    kt = np.arange(kl) / sr
    kick = np.sin(2 * np.pi * (50 * kt + 60 * (1 - np.exp(-kt * 30)) / 30)) * np.exp(-kt * 18)
    _place(mix, np.round((beat_t + jitter) * sr).astype(int), 0.7 * amp, kick)
    hl = int(0.05 * sr)
    hat = rng.standard_normal(hl) * np.exp(-np.arange(hl) / sr * 80)
    hat = signal.sosfilt(signal.butter(2, 5000, "highpass", fs=sr, output="sos"), hat)
    off = beat_t + period * (0.5 + genre.swing * 0.16) + (1 - s) * 0.2 * period * rng.standard_normal(n_beats)
    _place(mix, np.round(off * sr).astype(int), 0.5 * amp * (rng.random(n_beats) >= (1 - s) * 0.5), hat)

    # Hook: pentatonic notes, two per beat, in 2-5 kHz.
    scale = 2200.0 * 2 ** (np.array([0, 2, 4, 7, 9, 12, 14]) / 12.0)
    motif = rng.integers(0, len(scale), 8)
    note_len = period / 2
    idx = (t // note_len).astype(int)
    freq = scale[motif[idx % 8]]
    env = np.exp(-(t % note_len) / (0.35 * note_len))
    cyc = 2 * np.pi * np.cumsum(freq) / sr
    hook = (np.sin(cyc) + 0.7 * np.sin(1.4983 * cyc) + 0.5 * np.sin(1.2599 * cyc)) * env
    mix += 0.9 * s ** 2 * hook

    # Rumbling noise and a dull low-pass for low appeal.
    noise = signal.sosfilt(signal.butter(2, 900, "lowpass", fs=sr, output="sos"), rng.standard_normal(n))
    mix += (1 - s) * 0.6 * noise
    cutoff = min(500.0 + 9000.0 * s ** 2, 0.45 * sr)
    mix = signal.sosfilt(signal.butter(4, cutoff, "lowpass", fs=sr, output="sos"), mix)
    peak = float(np.max(np.abs(mix))) or 1.0
    return (0.9 * mix / peak).astype(np.float32)


def encode(clip: np.ndarray, sr: int, fmt: str) -> bytes:
    """Encode a clip as ``wav`` / ``flac`` (16-bit PCM) or ``ogg`` (Vorbis); returns the file bytes."""
    container, subtype = _SUBTYPE[fmt]
    buf = io.BytesIO()
    sf.write(buf, clip, sr, format=container, subtype=subtype)
    return buf.getvalue()


def write_clip(path: Path, *, appeal: float, genre: str, sr: int, seconds: float, seed: int, key: int) -> int:
    """Synthesize and write one clip to ``path`` (format from the suffix); returns the bytes written."""
    rng = np.random.default_rng([seed, 7, key])
    data = encode(synthesize(appeal, GENRE_BY_NAME[genre], sr=sr, seconds=seconds, rng=rng), sr,
                  path.suffix.lstrip("."))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return len(data)


def write_partition(rows, root: str, *, sr: int, seconds: float, seed: int):
    """Spark ``mapPartitions`` body: rows of ``(key, rel_path, appeal, genre)`` -> ``(key, bytes)``."""
    base = Path(root)
    for key, rel, appeal, genre in rows:
        yield key, write_clip(base / rel, appeal=float(appeal), genre=genre, sr=sr, seconds=seconds, seed=seed,
                              key=int(key))
