"""Synthesise small test audio files (good and deliberately bad) in a temporary folder."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS"),
           ".mp3": ("MP3", "MPEG_LAYER_III")}


def tone(seconds: float, sr: int = 22050, freq: float = 440.0, channels: int = 1, amp: float = 0.3,
         seed: int = 0) -> np.ndarray:
    """A tone plus a little noise, shape (n,) or (n, channels), float32; each channel a different pitch."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    cols = [amp * np.sin(2 * np.pi * freq * (1 + 0.25 * c) * t) + 0.01 * rng.standard_normal(t.size)
            for c in range(channels)]
    y = np.stack(cols, axis=1).astype(np.float32)
    return y[:, 0] if channels == 1 else y


def write(path: Path, y: np.ndarray, sr: int = 22050, subtype: str | None = None) -> Path:
    """Write ``y`` to ``path`` in the format its extension names (wav, flac, ogg, mp3)."""
    fmt, default_subtype = FORMATS[path.suffix]
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), y, sr, format=fmt, subtype=subtype or default_subtype)
    return path


def write_tone(path: Path, seconds: float = 3.0, sr: int = 22050, **kw) -> Path:
    return write(path, tone(seconds, sr, **kw), sr)


def truncate(path: Path, keep: float = 0.5) -> Path:
    """Cut the file to ``keep`` of its bytes, in place."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def aac_adts_bytes(frames: int = 40, seed: int = 0) -> bytes:
    """Bytes shaped like an AAC ADTS stream (valid frame headers, random payload): libsndfile cannot read AAC."""
    rng = np.random.default_rng(seed)
    out = bytearray()
    for _ in range(frames):
        length = 200
        header = bytes([0xFF, 0xF1, 0x50, 0x80 | ((length >> 11) & 0x3), (length >> 3) & 0xFF,
                        ((length & 0x7) << 5) | 0x1F, 0xFC])
        out += header + rng.integers(0, 256, length - len(header), dtype=np.uint8).tobytes()
    return bytes(out)


def make_bad_files(folder: Path) -> dict[str, str]:
    """One file per bad-audio case; returns ``{file name: expected status}``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.wav").write_bytes(b"")
    truncate(write_tone(folder / "truncated.flac", 4.0))
    truncate(write_tone(folder / "truncated.wav", 4.0))
    (folder / "aac.m4a").write_bytes(aac_adts_bytes())
    (folder / "random.m4a").write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    y = tone(3.0)
    y[33000:33100] = np.nan  # inside the analysed (centre) region
    write(folder / "nan.wav", y, subtype="FLOAT")
    write(folder / "silence.wav", np.zeros(22050 * 3, dtype=np.float32))
    write_tone(folder / "short.wav", 0.5)
    return {"empty.wav": "empty", "truncated.flac": "truncated", "truncated.wav": "truncated",
            "aac.m4a": "undecodable", "random.m4a": "undecodable", "nan.wav": "non_finite",
            "silence.wav": "silent", "short.wav": "too_short"}


def make_good_files(folder: Path) -> dict[str, tuple[int, int]]:
    """Unusual but valid files; returns ``{file name: (source sample rate, channels)}``."""
    write(folder / "hires.wav", tone(2.0, 96000), 96000, subtype="PCM_24")
    write(folder / "float.wav", tone(2.0, 44100), 44100, subtype="FLOAT")
    write(folder / "six.wav", tone(2.0, 48000, channels=6), 48000)
    write_tone(folder / "plain.flac", 3.0)
    write(folder / "stereo.ogg", tone(3.0, 44100, channels=2), 44100)
    write_tone(folder / "mono.mp3", 3.0)
    return {"hires.wav": (96000, 1), "float.wav": (44100, 1), "six.wav": (48000, 6), "plain.flac": (22050, 1),
            "stereo.ogg": (44100, 2), "mono.mp3": (22050, 1)}


def symlink(link: Path, target: Path) -> Path:
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, link)
    return link
