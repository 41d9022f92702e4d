"""One catalog track to one ``spectrograms`` row (a plain dict), including the incremental check.

This is what a Spark worker runs per track (see :mod:`hitcast.spectrograms.stage`); it is pure Python so it
can be tested and reused without Spark.

Order of work, cheapest first:

1. resolve ``audio_path`` inside the audio roots (:func:`hitcast.audio.paths.resolve_audio_path`);
   a rejected path is never opened;
2. sha256 of the file's bytes (streamed);
3. if the stored row has the same ``audio_path``, ``content_hash`` and ``dsp_version`` (and, for
   tracks without a readable file, the same status), the track is ``unchanged`` and nothing is decoded;
4. otherwise decode + log-mel (:func:`hitcast.audio.clip.compute_clip`) and encode with
   :func:`hitcast.melcodec.encode`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from hitcast import melcodec
from hitcast.audio.clip import compute_clip, sha256_file
from hitcast.audio.paths import resolve_audio_path
from hitcast.audio.status import OK, UNCHANGED, UNREADABLE, AudioError
from hitcast.config import DspSection

#: Keys of the dict :func:`process_track` returns, in ``hitcast.schemas.SPECTROGRAMS`` order
#: (``computed_at`` is added by the caller).
ROW_KEYS = ("track_id", "audio_path", "content_hash", "dsp_version", "status", "error", "n_mels", "n_frames",
            "mel", "db_offset", "db_scale", "duration_s", "sample_rate", "channels")


@dataclass(frozen=True)
class Previous:
    """What the ``spectrograms`` table already holds for a track (all ``None`` if it holds nothing)."""

    audio_path: str | None = None
    content_hash: str | None = None
    dsp_version: str | None = None
    status: str | None = None


def _row(track_id: str, audio_path: str | None, version: str, status: str, error: str | None = None,
         content_hash: str | None = None, **extra: Any) -> dict[str, Any]:
    row = dict.fromkeys(ROW_KEYS)
    row.update(track_id=track_id, audio_path=audio_path, content_hash=content_hash, dsp_version=version,
               status=status, error=error, **extra)
    return row


def _unchanged(prev: Previous, audio_path: str | None, content_hash: str | None, path_status: str | None,
               version: str) -> bool:
    if prev.dsp_version is None or prev.dsp_version != version or prev.audio_path != audio_path:
        return False
    if content_hash is not None:
        return prev.content_hash == content_hash
    return prev.content_hash is None and prev.status == path_status


def _failed(track_id: str, audio_path: str | None, prev: Previous, version: str, status: str,
            error: str) -> dict[str, Any]:
    """Row of a track whose file cannot be hashed (no audio_path, rejected, missing, unreadable)."""
    if _unchanged(prev, audio_path, None, status, version):
        return _row(track_id, audio_path, version, UNCHANGED)
    return _row(track_id, audio_path, version, status, error)


def process_track(track_id: str, audio_path: str | None, *, prev: Previous, dsp: DspSection,
                  roots: Sequence[str], version: str) -> dict[str, Any]:
    """Compute the ``spectrograms`` row of one track, or mark it ``unchanged``.

    Parameters
    ----------
    track_id, audio_path
        From the catalog.
    prev
        The stored row's inputs (``Previous()`` for a new track).
    dsp, version
        DSP settings and their :func:`hitcast.audio.dsp.dsp_version`.
    roots
        Audio roots as absolute real paths.

    Returns
    -------
    dict
        Keys :data:`ROW_KEYS`. ``status == 'unchanged'`` means: keep the stored row. For ``ok`` rows
        ``mel`` holds ``n_mels * n_frames`` uint8 bytes (row-major) with ``db_offset``/``db_scale``.
    """
    try:
        real = resolve_audio_path(audio_path, roots)
    except AudioError as exc:
        return _failed(track_id, audio_path, prev, version, exc.status, str(exc))
    try:
        content_hash = sha256_file(real)
    except OSError as exc:
        return _failed(track_id, audio_path, prev, version, UNREADABLE, f"{real}: cannot read: {exc.strerror or exc}")
    if _unchanged(prev, audio_path, content_hash, None, version):
        return _row(track_id, audio_path, version, UNCHANGED, content_hash=content_hash)
    result = compute_clip(real, dsp)
    facts = dict(duration_s=result.duration_s, sample_rate=result.sample_rate, channels=result.channels)
    if result.status != OK or result.db is None:
        return _row(track_id, audio_path, version, result.status, result.error, content_hash, **facts)
    mel, offset, scale = melcodec.encode(result.db, dsp.top_db)
    n_mels, n_frames = result.db.shape
    return _row(track_id, audio_path, version, OK, None, content_hash, n_mels=int(n_mels), n_frames=int(n_frames),
                mel=mel, db_offset=offset, db_scale=scale, **facts)
