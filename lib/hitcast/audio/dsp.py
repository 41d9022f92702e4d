"""Log-mel spectrograms in plain NumPy/SciPy, equal to librosa's within a tested tolerance.

``log_mel(y, dsp)`` computes what ::

    S = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels,
                                       fmin=fmin, fmax=fmax)          # center=True, zero padding, hann, power 2
    librosa.power_to_db(S, ref=np.max, top_db=top_db)

computes, without importing librosa on the workers: a centred, zero-padded framing
(``n_frames = 1 + len(y) // hop_length``), a periodic Hann window, a float32 real FFT, the power
spectrum, the Slaney-normalised Slaney-scale mel filterbank, and dB relative to the clip maximum
clipped ``top_db`` below it, so values lie in ``[-top_db, 0]``.

The filterbank and the window are built once per process for each setting (``functools.lru_cache``):
a Spark Python worker builds them on its first clip and reuses them for every clip after. The STFT's
large intermediate arrays (padded signal, windowed frames, power) live in a per-thread workspace that
is reused from clip to clip: allocating them afresh cost more than the FFT itself (the allocator hands
multi-megabyte arrays back to the kernel, so every clip paid their page faults again). The mel projection uses the filterbank as a sparse matrix (~2 non-zeros per bin).
``tests/test_dsp.py`` checks the result against librosa on real recordings.
"""
from __future__ import annotations

import hashlib
import json
import threading
from functools import lru_cache

import numpy as np
import scipy.fft
import scipy.sparse

from hitcast.config import DspSection

#: Bump when the decoding or DSP code changes what it computes: it is part of ``dsp_version``.
DSP_CODE_VERSION = 1
#: DspSection fields that change a spectrogram (``tracks_per_partition`` does not).
DSP_FIELDS = ("sr", "n_fft", "hop_length", "n_mels", "fmin", "fmax", "clip_seconds", "crop", "min_seconds",
              "max_decode_seconds", "top_db", "silence_dbfs")
AMIN = 1e-10


def dsp_version(dsp: DspSection) -> str:
    """Short hash (12 hex digits) of every setting that changes a spectrogram, plus the code version."""
    settings = {name: getattr(dsp, name) for name in DSP_FIELDS}
    settings["code"] = DSP_CODE_VERSION
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def clip_samples(dsp: DspSection) -> int:
    """Samples of the analysed clip at ``dsp.sr``: ``round(clip_seconds * sr)``."""
    return int(round(dsp.clip_seconds * dsp.sr))


def n_frames(dsp: DspSection) -> int:
    """Frames of every ``ok`` spectrogram: ``1 + clip_samples // hop_length`` (centred framing)."""
    return 1 + clip_samples(dsp) // dsp.hop_length


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above (as ``librosa.hz_to_mel(htk=False)``)."""
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    mels = f / f_sp
    log_t = f >= min_log_hz
    mels[log_t] = min_log_mel + np.log(f[log_t] / min_log_hz) / logstep
    return mels


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    freqs = f_sp * m
    log_t = m >= min_log_mel
    freqs[log_t] = min_log_hz * np.exp(logstep * (m[log_t] - min_log_mel))
    return freqs


@lru_cache(maxsize=8)
def mel_filterbank(sr: int, *, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Slaney-normalised triangular mel filters, as ``librosa.filters.mel`` (defaults).

    Returns
    -------
    np.ndarray, shape (n_mels, 1 + n_fft // 2), float32, read-only
    """
    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(np.array([fmin]))[0], _hz_to_mel(np.array([fmax]))[0], n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)
    lower = -ramps[:n_mels] / fdiff[:n_mels, None]
    upper = ramps[2:n_mels + 2] / fdiff[1:n_mels + 1, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    out = weights.astype(np.float32)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=8)
def hann_window(n_fft: int) -> np.ndarray:
    """Periodic Hann window (``scipy.signal.get_window('hann', n_fft)``), shape (n_fft,), float32."""
    w = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    w.setflags(write=False)
    return w


class _Workspace(threading.local):
    """Per-thread reusable STFT buffers, keyed by their shapes (re-made when a shape changes)."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], zero: bool = False) -> np.ndarray:
        a = self.arrays.get(name)
        if a is None or a.shape != shape:
            a = self.arrays[name] = np.zeros(shape, np.float32) if zero else np.empty(shape, np.float32)
        return a


_WORKSPACE = _Workspace()


def _power_frames(y: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """``|STFT|**2`` frames-major, shape (n_frames, 1 + n_fft // 2), in the thread's workspace.

    The result is overwritten by the next call on the same thread: use it before calling again.
    """
    y = np.asarray(y, dtype=np.float32)
    pad = n_fft // 2
    padded = _WORKSPACE.get("padded", (y.size + 2 * pad,), zero=True)   # the pads stay zero
    padded[pad:pad + y.size] = y
    count = 1 + (padded.size - n_fft) // hop_length
    frames = np.lib.stride_tricks.as_strided(
        padded, shape=(count, n_fft), strides=(padded.strides[0] * hop_length, padded.strides[0]), writeable=False)
    windowed = np.multiply(frames, hann_window(n_fft), out=_WORKSPACE.get("windowed", (count, n_fft)))
    spec = scipy.fft.rfft(windowed, axis=1, workers=1)
    power = np.multiply(spec.real, spec.real, out=_WORKSPACE.get("power", spec.shape))
    power += np.multiply(spec.imag, spec.imag, out=_WORKSPACE.get("scratch", spec.shape))
    return power


def power_spectrogram(y: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """``|STFT|**2`` with centred zero-padded frames and a periodic Hann window.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono signal; converted to float32.

    Returns
    -------
    np.ndarray, shape (1 + n_fft // 2, 1 + n_samples // hop_length), float32
        A view of a per-thread buffer: it is overwritten by the next call on the same thread (copy it to
        keep it).
    """
    return _power_frames(y, n_fft, hop_length).T


@lru_cache(maxsize=8)
def _sparse_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> scipy.sparse.csr_matrix:
    return scipy.sparse.csr_matrix(mel_filterbank(sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax))


def power_to_db(S: np.ndarray, top_db: float) -> np.ndarray:
    """``librosa.power_to_db(S, ref=np.max, amin=1e-10, top_db=top_db)``: values in ``[-top_db, 0]``."""
    log_spec = 10.0 * np.log10(np.maximum(AMIN, S))
    log_spec -= 10.0 * np.log10(max(AMIN, float(S.max())))
    return np.maximum(log_spec, log_spec.max() - top_db)


def log_mel(y: np.ndarray, dsp: DspSection) -> np.ndarray:
    """Log-mel spectrogram in dB relative to the clip maximum.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono signal at ``dsp.sr``, finite.
    dsp
        ``n_fft``, ``hop_length``, ``n_mels``, ``fmin``, ``fmax``, ``top_db``.

    Returns
    -------
    np.ndarray, shape (n_mels, 1 + n_samples // hop_length), float32, values in ``[-top_db, 0]``
    """
    fb = _sparse_filterbank(int(dsp.sr), int(dsp.n_fft), int(dsp.n_mels), float(dsp.fmin), float(dsp.fmax))
    mel = np.asarray(fb @ _power_frames(y, int(dsp.n_fft), int(dsp.hop_length)).T)
    return power_to_db(mel, float(dsp.top_db)).astype(np.float32, copy=False)
