"""Per-track audio status: the closed set of outcomes of turning one audio file into a spectrogram.

Bad audio never fails a job. Every track ends with exactly one status from :data:`STATUSES` and,
unless it is ``ok``, an error message that names the file.
"""
from __future__ import annotations

from hitcast.errors import HitcastError

OK = "ok"
#: The catalog row has no ``audio_path`` (e.g. a metadata-only catalog).
NO_AUDIO = "no_audio"
#: ``audio_path`` escapes the configured audio roots, or uses a scheme other than ``file://``.
#: The file is never opened.
REJECTED_PATH = "rejected_path"
#: No such file inside any audio root (or not a regular file).
MISSING = "missing"
#: The file exists but cannot be read (permissions, I/O error).
UNREADABLE = "unreadable"
#: A zero-byte file, or a file that decodes to zero samples.
EMPTY = "empty"
#: libsndfile cannot open it (unknown format such as AAC, random bytes, malformed header).
UNDECODABLE = "undecodable"
#: The header promises more audio than the file holds, or decoding stops early.
TRUNCATED = "truncated"
#: Shorter than ``dsp.min_seconds``.
TOO_SHORT = "too_short"
#: The analysed clip peaks below ``dsp.silence_dbfs``.
SILENT = "silent"
#: NaN or infinite samples.
NON_FINITE = "non_finite"
#: An unexpected exception while processing this track (a bug, not bad input); the job goes on.
ERROR = "error"

STATUSES: tuple[str, ...] = (OK, NO_AUDIO, REJECTED_PATH, MISSING, UNREADABLE, EMPTY, UNDECODABLE, TRUNCATED,
                             TOO_SHORT, SILENT, NON_FINITE, ERROR)

#: Internal marker of the incremental pass: inputs identical to the stored row; nothing is written.
UNCHANGED = "unchanged"


class AudioError(HitcastError):
    """A track's audio cannot become a spectrogram; :attr:`status` says why, the message names the file.

    Parameters
    ----------
    status
        One of :data:`STATUSES` (never ``ok``).
    message
        Human-readable reason naming the file.
    """

    def __init__(self, status: str, message: str) -> None:
        if status not in STATUSES or status == OK:
            raise ValueError(f"not an error status: {status!r}")
        super().__init__(message)
        self.status = status
        #: Facts about the source, when known before the failure (``None`` otherwise).
        self.duration_s: float | None = None
        self.sample_rate: int | None = None
        self.channels: int | None = None
