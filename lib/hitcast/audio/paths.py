"""Resolve a catalog ``audio_path`` to a file inside the configured audio roots, or refuse it.

Accepted forms (the input contract):

- a relative path, e.g. ``pop/t0001.flac``: tried under each root in order, the first that exists wins;
- an absolute ``file://`` URI (or a plain absolute path) that lies inside one of the roots.

Refused, with :data:`~hitcast.audio.status.REJECTED_PATH` and without opening the file:

- any ``..`` component, a NUL byte, or a backslash-separated Windows path;
- any scheme other than ``file`` (``http://``, ``s3://``, ``hdfs://``, ...), or a ``file://`` URI with a host;
- a path whose real location (every symlink followed) is outside every root, e.g. a symlink that
  points out of the root.

Resolution only inspects names and symlinks (``os.path.realpath``); it never reads file content.
"""
from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Sequence
from urllib.parse import unquote, urlsplit

from hitcast.audio.status import MISSING, NO_AUDIO, REJECTED_PATH, AudioError


def real_roots(roots: Sequence[str | os.PathLike[str]]) -> list[str]:
    """The roots as absolute real paths (symlinks resolved), in the given order."""
    return [os.path.realpath(os.fspath(r)) for r in roots]


def _inside(path: str, roots: Sequence[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def _split_uri(audio_path: str) -> tuple[str, bool]:
    """Return ``(filesystem path, is_absolute)``; raise ``rejected_path`` for other schemes."""
    if "\x00" in audio_path:
        raise AudioError(REJECTED_PATH, f"audio_path {audio_path!r} rejected: contains a NUL byte")
    if "\\" in audio_path:
        raise AudioError(REJECTED_PATH, f"audio_path {audio_path!r} rejected: backslashes are not allowed")
    if "://" in audio_path or audio_path.lower().startswith("file:"):
        parts = urlsplit(audio_path)
        if parts.scheme.lower() != "file":
            raise AudioError(REJECTED_PATH, f"audio_path {audio_path!r} rejected: scheme "
                                            f"'{parts.scheme}' is not allowed (only file://)")
        if parts.netloc not in ("", "localhost"):
            raise AudioError(REJECTED_PATH, f"audio_path {audio_path!r} rejected: file:// URI with a host")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise AudioError(REJECTED_PATH, f"audio_path {audio_path!r} rejected: file:// URI must be absolute")
        return path, True
    return audio_path, audio_path.startswith("/")


def resolve_audio_path(audio_path: str | None, roots: Sequence[str]) -> str:
    """Map ``audio_path`` to the real path of a regular file inside ``roots``.

    Parameters
    ----------
    audio_path
        As stored in the catalog: relative to a root, or an absolute ``file://`` URI.
    roots
        Audio roots as absolute real paths (see :func:`real_roots`).

    Returns
    -------
    str
        The real (symlink-free) absolute path of an existing regular file.

    Raises
    ------
    AudioError
        ``no_audio`` (null or blank), ``rejected_path`` (escapes the roots; the file is not opened)
        or ``missing`` (inside a root but absent, or not a regular file).
    """
    if audio_path is None or not str(audio_path).strip():
        raise AudioError(NO_AUDIO, "track has no audio_path")
    path, absolute = _split_uri(str(audio_path))
    if ".." in PurePosixPath(path).parts:
        raise AudioError(REJECTED_PATH, f"audio_path {audio_path!r} rejected: '..' is not allowed")
    if not roots:
        raise AudioError(REJECTED_PATH, f"audio_path {audio_path!r} rejected: no audio roots are configured")
    candidates = [path] if absolute else [os.path.join(root, path) for root in roots]
    for candidate in candidates:
        real = os.path.realpath(candidate)
        if not _inside(real, roots):
            kind = "is a symlink that resolves" if real != os.path.abspath(candidate) else "lies"
            raise AudioError(REJECTED_PATH, f"audio_path {audio_path!r} rejected: {kind} outside the audio "
                                            f"roots ({real})")
        if os.path.isfile(real):
            return real
    where = candidates[0]
    if os.path.exists(where):
        raise AudioError(MISSING, f"audio file {where} is not a regular file")
    raise AudioError(MISSING, f"audio file {where} not found" +
                     (f" (nor under {len(roots) - 1} other root(s))" if len(candidates) > 1 else ""))
