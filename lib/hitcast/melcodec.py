"""The compact on-disk form of a log-mel spectrogram (``spectrograms.mel``).

A spectrogram in dB, shape ``(n_mels, n_frames)``, is stored as uint8 bytes, row-major, with an
affine scale: ``dB = db_offset + db_scale * u8``. With ``ref=max`` and ``top_db`` the dB values lie
in ``[-top_db, 0]``, so ``db_offset = -top_db`` and ``db_scale = top_db / 255`` (0.31 dB steps at
80 dB, below what the CNN can use). One byte a cell keeps a 64 x 345 clip at 22 KB, and Arrow moves
it as one binary value, which training and scoring read without float conversion in Spark.
"""
from __future__ import annotations

import numpy as np


def encode(db: np.ndarray, top_db: float) -> tuple[bytes, float, float]:
    """Quantise a dB spectrogram to uint8.

    Parameters
    ----------
    db : np.ndarray, shape (n_mels, n_frames), float
        Log-mel in dB relative to the clip maximum (values in ``[-top_db, 0]``).
    top_db : float
        Dynamic range kept.

    Returns
    -------
    (bytes, db_offset, db_scale)
        ``n_mels * n_frames`` bytes, and the affine scale back to dB.
    """
    offset, scale = -float(top_db), float(top_db) / 255.0
    q = np.clip(np.rint((np.asarray(db, dtype=np.float32) - offset) / scale), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(q).tobytes(), offset, scale


def decode(mel: bytes, *, n_mels: int, n_frames: int, db_offset: float, db_scale: float) -> np.ndarray:
    """Inverse of :func:`encode`: float32 dB array of shape ``(n_mels, n_frames)``."""
    q = np.frombuffer(mel, dtype=np.uint8)
    if q.size != n_mels * n_frames:
        raise ValueError(f"mel has {q.size} bytes, expected {n_mels} x {n_frames}")
    return (db_offset + db_scale * q.astype(np.float32)).reshape(n_mels, n_frames)
