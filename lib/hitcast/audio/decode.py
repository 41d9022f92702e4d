"""Decode the analysed part of an audio file to a fixed-length mono clip at ``dsp.sr``.

Crop and pad policy (every ``ok`` clip has exactly ``round(clip_seconds * sr)`` samples):

1. Only the first ``max_decode_seconds`` of a file are ever considered ("available" audio); a 3-hour
   file costs no more than a 10-minute one.
2. ``crop: center`` (default) analyses the middle ``clip_seconds`` of the available audio;
   ``crop: start`` the first ``clip_seconds``. Only that region plus a 0.1 s margin on each side is
   decoded: :meth:`soundfile.SoundFile.seek` jumps to it, so a compressed file is not decoded in full.
   The margin keeps the resampler's edge effects out of the clip.
3. The region is downmixed to mono (mean of the channels) and resampled to ``sr`` with soxr
   (``HQ``, as ``librosa.load``'s default ``soxr_hq``).
4. A file shorter than ``clip_seconds`` but at least ``min_seconds`` long is analysed whole and padded
   with silence (zeros) at the end; shorter than ``min_seconds`` is ``too_short``.
5. A file that decodes to fewer frames than its header declares is ``truncated``, with one exception: the
   frame count libsndfile gives for an MP3 is an estimate (from the Xing/LAME header, else the file size),
   and a whole MP3 may decode up to about an MPEG frame plus the encoder delay short of it (a real
   5-second MP3 fell 274 frames short). At the end of an MP3, a shortfall of at most
   :data:`MPEG_SLACK_FRAMES` is that estimate's error, and the decoded length is the file's length; a
   file cut short loses far more (1 % of a 5-second MP3 is 2,200 frames at 44.1 kHz).

Bad input raises :class:`~hitcast.audio.status.AudioError` with its status; see :mod:`hitcast.audio.status`.
"""
from __future__ import annotations

import io
import math
import os
import re
from dataclasses import dataclass
from typing import BinaryIO, Union

import numpy as np
import soundfile as sf
import soxr

from hitcast.audio.dsp import clip_samples
from hitcast.audio.status import EMPTY, NON_FINITE, SILENT, TOO_SHORT, TRUNCATED, UNDECODABLE, AudioError
from hitcast.config import DspSection

#: A path, the file's bytes, or an open binary file object.
AudioSource = Union[str, "os.PathLike[str]", bytes, BinaryIO]
MARGIN_SECONDS = 0.1
_DATA_SIZE = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_STREAMING_SIZES = (0, 0xFFFFFFFF, 0x7FFFFFFF)
#: Frames an MP3 may decode short of libsndfile's estimate at its end: two MPEG-1 Layer III frames
#: (1,152 samples each; 52 ms at 44.1 kHz).
MPEG_SLACK_FRAMES = 2 * 1152


@dataclass(frozen=True)
class DecodedClip:
    """A fixed-length mono clip and facts about its source.

    Attributes
    ----------
    y : np.ndarray, shape (round(clip_seconds * sr),), float32
    duration_s, sample_rate, channels
        Of the source file (duration before the ``max_decode_seconds`` cap).
    """

    y: np.ndarray
    duration_s: float
    sample_rate: int
    channels: int


def source_name(source: AudioSource) -> str:
    """How messages name ``source``: its path, or ``<bytes>`` / ``<stream>``."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return "<bytes>" if isinstance(source, (bytes, bytearray)) else getattr(source, "name", "<stream>")


def crop_window(available: int, src_sr: int, dsp: DspSection) -> tuple[int, int]:
    """Start and length, in source frames, of the analysed region of ``available`` frames."""
    need = int(math.ceil(dsp.clip_seconds * src_sr))
    if available <= need:
        return 0, available
    if dsp.crop == "center":
        return (available - need) // 2, need
    if dsp.crop == "start":
        return 0, need
    raise ValueError(f"dsp.crop must be 'center' or 'start', got {dsp.crop!r}")


def _header_truncated(info: str) -> str | None:
    m = _DATA_SIZE.search(info or "")
    if m and int(m.group(1)) not in _STREAMING_SIZES and int(m.group(1)) > int(m.group(2)):
        return f"header declares {m.group(1)} data bytes, the file holds {m.group(2)}"
    return None


def _read_region(f: sf.SoundFile, name: str, dsp: DspSection) -> tuple[np.ndarray, int, int, float]:
    """Decode the crop region (+ margin). Returns (frames x channels data, region start, data start, duration)."""
    src_sr = f.samplerate
    cap = int(dsp.max_decode_seconds * src_sr)
    declared = f.frames
    if 0 < declared < 2 ** 62:
        duration = declared / src_sr
        if duration < dsp.min_seconds:
            raise AudioError(TOO_SHORT, f"{name}: {duration:.3f} s of audio, below the minimum {dsp.min_seconds} s")
        available = min(declared, cap)
        start, length = crop_window(available, src_sr, dsp)
        margin = int(MARGIN_SECONDS * src_sr)
        a, b = max(0, start - margin), min(available, start + length + margin)
        try:
            if a:
                f.seek(a)
            data = f.read(b - a, dtype="float32", always_2d=True)
        except (RuntimeError, sf.SoundFileError) as exc:
            raise AudioError(TRUNCATED, f"{name}: decoding failed after frame {a} of {declared} declared "
                                        f"(truncated or corrupt): {exc}") from exc
        short = (b - a) - data.shape[0]
        if short > 0:
            # Only an MP3's length is an estimate, and only its end can fall short of it.
            slack = MPEG_SLACK_FRAMES if f.format == "MP3" and b == declared else 0
            if short > slack:
                raise AudioError(TRUNCATED, f"{name}: decoded {a + data.shape[0]} of {declared} declared frames "
                                            "(truncated or corrupt)")
            duration = (a + data.shape[0]) / src_sr
        return data, start, a, duration
    # Length unknown: read sequentially up to the cap, then crop in memory.
    try:
        data = f.read(cap, dtype="float32", always_2d=True)
    except (RuntimeError, sf.SoundFileError) as exc:
        raise AudioError(TRUNCATED, f"{name}: decoding failed (truncated or corrupt): {exc}") from exc
    if data.shape[0] == 0:
        raise AudioError(EMPTY, f"{name}: no audio frames could be decoded")
    duration = data.shape[0] / src_sr
    if duration < dsp.min_seconds:
        raise AudioError(TOO_SHORT, f"{name}: {duration:.3f} s of audio, below the minimum {dsp.min_seconds} s")
    start, length = crop_window(data.shape[0], src_sr, dsp)
    return data[start:start + length], start, start, duration


def decode_clip(source: AudioSource, dsp: DspSection) -> DecodedClip:
    """Decode, downmix, resample and crop/pad ``source`` to the analysed clip (policy in the module doc).

    Parameters
    ----------
    source
        A path (already resolved inside the audio roots), the file's bytes, or a binary file object.
    dsp
        ``sr``, ``clip_seconds``, ``crop``, ``min_seconds``, ``max_decode_seconds``, ``silence_dbfs``.

    Returns
    -------
    DecodedClip
        ``y`` has shape ``(round(clip_seconds * sr),)``, float32, finite, not silent.

    Raises
    ------
    AudioError
        ``empty``, ``undecodable``, ``truncated``, ``too_short``, ``non_finite`` or ``silent``.
    """
    name = source_name(source)
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise AudioError(EMPTY, f"{name}: zero bytes")
        source = io.BytesIO(source)
    elif isinstance(source, (str, os.PathLike)) and os.path.getsize(source) == 0:
        raise AudioError(EMPTY, f"{name}: zero-byte file")
    try:
        f = sf.SoundFile(source)
    except (RuntimeError, sf.SoundFileError, TypeError, ValueError) as exc:
        raise AudioError(UNDECODABLE, f"{name}: cannot decode: {exc}") from exc
    with f:
        if f.samplerate <= 0 or f.channels <= 0:
            raise AudioError(UNDECODABLE, f"{name}: invalid sample rate {f.samplerate} / channels {f.channels}")
        src_sr, channels = int(f.samplerate), int(f.channels)
        try:
            reason = _header_truncated(f.extra_info)
            if reason:
                raise AudioError(TRUNCATED, f"{name}: truncated: {reason}")
            data, start, data_start, duration = _read_region(f, name, dsp)
        except AudioError as exc:
            exc.sample_rate, exc.channels = src_sr, channels
            exc.duration_s = f.frames / src_sr if 0 < f.frames < 2 ** 62 else None
            raise
    try:
        return _finish(data, start, data_start, duration, src_sr, channels, name, dsp)
    except AudioError as exc:
        exc.duration_s, exc.sample_rate, exc.channels = duration, src_sr, channels
        raise


def _finish(data: np.ndarray, start: int, data_start: int, duration: float, src_sr: int, channels: int,
            name: str, dsp: DspSection) -> DecodedClip:
    """Check, downmix, resample and crop/pad the decoded region (frames x channels) to the clip."""
    if not np.isfinite(data).all():
        bad = int(data.size - np.count_nonzero(np.isfinite(data)))
        raise AudioError(NON_FINITE, f"{name}: {bad} NaN or infinite samples in the analysed region")
    mono = data.mean(axis=1, dtype=np.float32) if channels > 1 else data[:, 0]
    if src_sr != dsp.sr:
        mono = soxr.resample(mono, src_sr, int(dsp.sr), quality="HQ")
    n = clip_samples(dsp)
    offset = int(round((start - data_start) * dsp.sr / src_sr))
    y = np.asarray(mono[offset:offset + n], dtype=np.float32)
    if y.size < n:
        y = np.pad(y, (0, n - y.size))
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak < 10.0 ** (dsp.silence_dbfs / 20.0):
        level = f"{20 * math.log10(peak):.1f} dBFS" if peak > 0 else "digital silence"
        raise AudioError(SILENT, f"{name}: silent (peak {level}, threshold {dsp.silence_dbfs} dBFS)")
    return DecodedClip(y=y, duration_s=duration, sample_rate=src_sr, channels=channels)
