"""One audio file to one log-mel spectrogram, with a status instead of an exception.

This is the pure, Spark-free unit the spectrogram job maps over a catalog, and that scoring or
training code can reuse on a single file (:func:`log_mel_clip`).
"""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass

import numpy as np

from hitcast.audio.decode import AudioSource, decode_clip, source_name
from hitcast.audio.dsp import log_mel
from hitcast.audio.status import ERROR, OK, AudioError
from hitcast.config import DspSection

log = logging.getLogger(__name__)

HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class ClipResult:
    """The outcome for one file.

    Attributes
    ----------
    status : str
        One of :data:`hitcast.audio.status.STATUSES`.
    error : str or None
        Why it is not ``ok``; names the file.
    db : np.ndarray, shape (n_mels, n_frames), float32, or None
        Log-mel in dB in ``[-top_db, 0]``; ``None`` unless ``ok``.
    duration_s, sample_rate, channels
        Of the source, when known.
    """

    status: str
    error: str | None
    db: np.ndarray | None
    duration_s: float | None = None
    sample_rate: int | None = None
    channels: int | None = None


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks (memory does not grow with file size)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(HASH_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def compute_clip(source: AudioSource, dsp: DspSection) -> ClipResult:
    """Decode ``source`` and compute its log-mel spectrogram; never raises on bad audio.

    Parameters
    ----------
    source
        A path (already checked against the audio roots by the caller), bytes, or a binary file object.
    dsp
        DSP settings (``hitcast.config.DspSection``).

    Returns
    -------
    ClipResult
        ``db`` of shape ``(dsp.n_mels, 1 + round(clip_seconds * sr) // hop_length)`` when ``ok``.
    """
    try:
        clip = decode_clip(source, dsp)
        db = log_mel(clip.y, dsp)
    except AudioError as exc:
        return ClipResult(exc.status, str(exc), None, exc.duration_s, exc.sample_rate, exc.channels)
    except Exception as exc:  # noqa: BLE001 - one bad file must never fail a job
        log.warning("unexpected failure on %s", source_name(source), exc_info=True)
        return ClipResult(ERROR, f"{source_name(source)}: unexpected {type(exc).__name__}: {exc}", None)
    return ClipResult(OK, None, db, clip.duration_s, clip.sample_rate, clip.channels)


def log_mel_clip(source: AudioSource, dsp: DspSection) -> tuple[str, str | None, np.ndarray | None]:
    """``(status, error, db)`` for one file: the reusable entry point for scoring and training code.

    ``db`` has shape ``(n_mels, n_frames)`` (float32 dB in ``[-top_db, 0]``) when ``status == 'ok'``,
    else ``None``. Encode it for the ``spectrograms`` table with :func:`hitcast.melcodec.encode`.
    """
    result = compute_clip(source, dsp)
    return result.status, result.error, result.db
