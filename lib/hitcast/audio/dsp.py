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
a Spark Python worker builds them on its first clip and reuses them for every clip after.
``tests/test_dsp.py`` checks the result against librosa on real recordings.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache

import numpy as np
import scipy.fft

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
def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
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


def power_spectrogram(y: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """``|STFT|**2`` with centred zero-padded frames and a periodic Hann window.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono signal; converted to float32.

    Returns
    -------
    np.ndarray, shape (1 + n_fft // 2, 1 + n_samples // hop_length), float32
    """
    y = np.asarray(y, dtype=np.float32)
    pad = n_fft // 2
    padded = np.pad(y, (pad, pad), mode="constant")
    count = 1 + (padded.size - n_fft) // hop_length
    frames = np.lib.stride_tricks.as_strided(
        padded, shape=(count, n_fft), strides=(padded.strides[0] * hop_length, padded.strides[0]), writeable=False)
    spec = scipy.fft.rfft(frames * hann_window(n_fft), axis=1, workers=1)
    power = spec.real * spec.real
    power += spec.imag * spec.imag
    return power.T


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
    fb = mel_filterbank(int(dsp.sr), int(dsp.n_fft), int(dsp.n_mels), float(dsp.fmin), float(dsp.fmax))
    mel = fb @ power_spectrogram(y, int(dsp.n_fft), int(dsp.hop_length))
    return power_to_db(mel, float(dsp.top_db)).astype(np.float32, copy=False)
