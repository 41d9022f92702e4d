"""Deliberate bad input of every kind the ingest contract handles, in known numbers.

What each kind becomes after ingest (see :mod:`hitcast.ingest.reasons`):

==========================  ====================================================================
generator count key         what ingest does
==========================  ====================================================================
``malformed_json``          quarantine, reason ``malformed_json``
``unknown_track_events``    kept in ``engagement_events`` with ``known_track = false``
``duplicate_events``        quarantine, reason ``duplicate_event`` (the first copy is kept)
``negative_ms_played``      quarantine, reason ``negative_ms_played``
``future_event_time``       quarantine, reason ``future_event_time``
``missing_track_id``        quarantine, reason ``missing_track_id``
``duplicate_track_id``      quarantine, reason ``duplicate_track_id`` (same ``updated_at``, other data;
                            the row from the later file wins)
``catalog_updates``         a later ``updated_at`` wins; counted as collisions, not quarantined
``missing_audio`` ...       ``missing`` / ``empty`` / ``truncated`` audio: left to the spectrogram job
==========================  ====================================================================
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

#: How many of each kind a catalog gets (capped for tiny catalogs).
COUNTS = {"malformed_json": 5, "unknown_track_events": 7, "duplicate_events": 6, "negative_ms_played": 4,
          "future_event_time": 3, "missing_track_id": 3, "duplicate_track_id": 4, "catalog_updates": 5,
          "missing_audio": 3, "empty_audio": 2, "truncated_audio": 2}

_MALFORMED = ['{"event_id": "bad-0001", "user_id": "u0000001", "track_id"',
              "this is not json",
              '{"event_id": "bad-0003", "event_type": "play",}',
              "[1, 2, 3",
              '{"event_id": "bad-0005" "user_id": "u0000002"}']


def bad_audio_tracks(n_tracks: int, seed: int) -> dict[str, list[int]]:
    """Track indices whose audio will be missing / empty / truncated (disjoint, deterministic)."""
    need = COUNTS["missing_audio"] + COUNTS["empty_audio"] + COUNTS["truncated_audio"]
    pick = np.random.default_rng([seed, 21]).permutation(n_tracks)[: min(need, max(n_tracks // 4, 0))]
    a, b = COUNTS["missing_audio"], COUNTS["missing_audio"] + COUNTS["empty_audio"]
    return {"missing": sorted(pick[:a].tolist()), "empty": sorted(pick[a:b].tolist()),
            "truncated": sorted(pick[b:].tolist())}


def bad_audio_path(kind: str, track_idx: int) -> str:
    """Relative audio path of a deliberately bad file (missing / empty / truncated)."""
    ext = {"missing": "wav", "empty": "flac", "truncated": "flac"}[kind]
    return f"bad/{kind}-trk{track_idx:07d}.{ext}"


def bad_catalog_rows(cat: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Rows to add to the base catalog file and the rows of the update file.

    Returns
    -------
    (extra_base_rows, update_rows, counts)
        ``extra_base_rows``: rows without ``track_id``; ``update_rows``: legit updates (later
        ``updated_at``, new title) and colliding duplicates (same ``updated_at``, other title/album).
    """
    rng = np.random.default_rng([seed, 22])
    n = len(cat)
    k_missing = min(COUNTS["missing_track_id"], n)
    k_dup = min(COUNTS["duplicate_track_id"], n // 3)
    k_upd = min(COUNTS["catalog_updates"], n // 3)
    pick = rng.permutation(n)
    missing = cat.iloc[pick[:k_missing]].copy()
    missing["track_id"] = ""
    missing["title"] = [f"Orphan {i}" for i in range(k_missing)]
    dups = cat.iloc[sorted(pick[k_missing:k_missing + k_dup])].copy()
    dups["title"] = dups["title"] + " (alternate master)"
    dups["album_id"] = dups["album_id"] + "-alt"
    upd = cat.iloc[sorted(pick[k_missing + k_dup:k_missing + k_dup + k_upd])].copy()
    upd["title"] = upd["title"] + " (remastered)"
    upd["updated_at"] = "2026-01-15T12:00:00Z"
    counts = {"missing_track_id": k_missing, "duplicate_track_id": k_dup, "catalog_updates": k_upd}
    return missing, pd.concat([upd, dups], ignore_index=True), counts


def bad_event_lines(first_lines: list[str], n_tracks: int, end_date: str) -> tuple[list[str], dict[str, int]]:
    """JSON lines with malformed records, unknown tracks, duplicates, negative ms and future times.

    Parameters
    ----------
    first_lines : list of str
        The first lines of the first events file (copied verbatim as duplicates).
    n_tracks : int
        Unknown track ids start after the catalog's last index.
    end_date : str
        The simulation's last day; good-looking events are stamped on it.
    """
    lines: list[str] = list(_MALFORMED[: COUNTS["malformed_json"]])
    stamp = f"{end_date}T12:00:00Z"

    def event(i: int, kind: str, **kw) -> str:
        rec = {"event_id": f"x{kind}-{i:04d}", "user_id": f"u{i:07d}", "track_id": "trk0000000",
               "event_type": "play", "event_time": stamp, "ms_played": 120000}
        rec.update(kw)
        return json.dumps(rec)

    for i in range(COUNTS["unknown_track_events"]):
        lines.append(event(i, "unknown", track_id=f"trk{n_tracks + 1_000_000 + i % 3:07d}"))
    dups = first_lines[: COUNTS["duplicate_events"]]
    lines.extend(dups)
    for i in range(COUNTS["negative_ms_played"]):
        lines.append(event(i, "negative", ms_played=-1000 * (i + 1)))
    for i in range(COUNTS["future_event_time"]):
        lines.append(event(i, "future", event_time=f"{2090 + i}-06-01T00:00:00Z"))
    counts = {"malformed_json": COUNTS["malformed_json"], "unknown_track_events": COUNTS["unknown_track_events"],
              "duplicate_events": len(dups), "negative_ms_played": COUNTS["negative_ms_played"],
              "future_event_time": COUNTS["future_event_time"]}
    return lines, counts
