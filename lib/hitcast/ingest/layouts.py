"""Which event profile fits which export file: a look at the file's first records, in plain Python.

A file's **layout** is its kind and its fields, read from its start only (a few kilobytes):

- ``csv`` (a ``.csv`` file, or one that starts with neither ``[`` nor ``{``): the cells of the first row
  (the header, when it has one);
- ``json_array`` (starts with ``[``) and ``json_lines`` (starts with ``{``): the keys of the first
  :data:`PEEK_RECORDS` objects;
- ``empty``: nothing but whitespace.

A profile (:mod:`hitcast.ingest.profiles`) **fits** a file when its ``files`` globs match the name (no glob:
any name), its reader reads that kind (``json`` reads both JSON kinds), and

- with ``columns`` (a CSV without a header): the first row has exactly that many cells and is not a header
  (fewer than half of its cells are the column name of their position, case aside: ``Queen, Album, ...``
  is a row);
- otherwise: the file has every ``detect`` field (``a|b``: one of them).

Of several profiles that fit, the one whose ``source_fields`` the file has most of is chosen (then the
first by name). A file that no profile fits is reported once (:class:`Unfit`: its name, its fields, the
profiles tried) and its records are quarantined under ``no_matching_profile``
(:mod:`hitcast.ingest.profiled`).
"""
from __future__ import annotations

import csv
import fnmatch
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from hitcast.ingest.profiles import EventProfile, alternatives

log = logging.getLogger(__name__)

#: Records whose keys make a JSON file's fields.
PEEK_RECORDS = 20
#: Bytes read first; a JSON array whose first records are longer is read whole.
PEEK_BYTES = 1 << 16
KINDS = {"csv": ("csv",), "json_array": ("json_array",), "json_lines": ("json_lines",),
         "json": ("json_array", "json_lines")}


@dataclass(frozen=True)
class Layout:
    """What a file looks like: ``kind`` (csv | json_array | json_lines | empty) and ``fields`` (the first CSV
    row's cells, or the keys of the first JSON objects, in order of first appearance)."""

    path: Path
    kind: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class Unfit:
    """A file that no profile fits: its layout and the profiles tried (each with what it looks for)."""

    layout: Layout
    tried: tuple[str, ...]

    @property
    def detail(self) -> str:
        """The one message about the file (also ``quarantine.detail`` of its records)."""
        what = "columns" if self.layout.kind == "csv" else "fields"
        have = ", ".join(self.layout.fields) or "none"
        return f"no event profile fits this file: its {what}: {have}; profiles tried: {'; '.join(self.tried)}"


def _json_records(text: str, array: bool, limit: int) -> list[object] | None:
    """Up to ``limit`` JSON values from the start of ``text`` (``None`` if ``text`` ends inside one)."""
    dec, out, i = json.JSONDecoder(), [], 0
    if array:
        i = text.index("[") + 1
    while len(out) < limit:
        while i < len(text) and text[i] in " \t\r\n,":
            i += 1
        if i >= len(text) or (array and text[i] == "]"):
            return out
        try:
            value, i = dec.raw_decode(text, i)
        except json.JSONDecodeError:
            if not array:                       # a bad line: skip to the next one
                nl = text.find("\n", i)
                if nl < 0:
                    return None if out == [] else out
                i = nl + 1
                continue
            return None
        out.append(value)
    return out


def peek(path: Path) -> Layout:
    """The :class:`Layout` of ``path`` from its first :data:`PEEK_BYTES` (more for a long JSON array)."""
    with path.open("r", encoding="utf-8-sig", errors="replace") as fh:
        head = fh.read(PEEK_BYTES)
        whole = len(head) < PEEK_BYTES
    start = head.lstrip()[:1]
    if not start:
        return Layout(path, "empty", ())
    if path.suffix.lower() == ".csv" or start not in "[{":
        row = next(csv.reader(io.StringIO(head)), [])
        return Layout(path, "csv", tuple(c.strip() for c in row))
    kind = "json_array" if start == "[" else "json_lines"
    records = _json_records(head, kind == "json_array", PEEK_RECORDS)
    if records is None and not whole:
        records = _json_records(path.read_text(encoding="utf-8-sig", errors="replace"), kind == "json_array",
                                PEEK_RECORDS)
    keys: dict[str, None] = {}
    for r in records or []:
        if isinstance(r, dict):
            keys.update(dict.fromkeys(r))
    return Layout(path, kind, tuple(keys))


def named_for(profile: EventProfile, name: str) -> bool:
    """True when ``profile.files`` selects a file of this name (no glob: every name)."""
    return not profile.files or any(fnmatch.fnmatchcase(name, g) for g in profile.files)


def fits(profile: EventProfile, layout: Layout) -> bool:
    """True when ``profile`` reads ``layout``'s kind and finds its fields there (module docstring)."""
    if layout.kind not in KINDS[profile.reader]:
        return False
    if profile.columns:
        if len(layout.fields) != len(profile.columns):
            return False
        named = sum(f.strip().lower() == c.lower() for f, c in zip(layout.fields, profile.columns))
        return 2 * named < len(profile.columns)
    have = set(layout.fields)
    return all(any(a in have for a in alternatives(e)) for e in profile.detect_fields)


def looks_for(profile: EventProfile) -> str:
    """What ``profile`` needs of a file, for messages: ``lastfm (uts|utc_time, artist, track)``."""
    if profile.columns:
        return f"{profile.profile} ({len(profile.columns)} columns without a header: {', '.join(profile.columns)})"
    return f"{profile.profile} ({', '.join(profile.detect_fields)})"


def choose(layout: Layout, profiles: list[EventProfile]) -> EventProfile | None:
    """The profile of ``profiles`` that fits ``layout`` best (module docstring), or ``None``."""
    fitting = [p for p in profiles if fits(p, layout)]
    if not fitting:
        return None
    have = set(layout.fields)
    return sorted(fitting, key=lambda p: (-len(have & set(p.source_fields)), p.profile))[0]


def assign(paths: list[Path], profiles: list[EventProfile]) -> tuple[dict[str, list[Path]], list[Unfit]]:
    """Each file's profile: ``({profile name: files}, files no profile fits)``.

    A file whose name no profile's ``files`` selects is left out (logged: not listening history); an empty
    file is left out too.
    """
    chosen: dict[str, list[Path]] = {}
    unfit: list[Unfit] = []
    for path in paths:
        candidates = [p for p in profiles if named_for(p, path.name)]
        if not candidates:
            log.info("events: %s: no event profile reads files of this name; not read", path)
            continue
        layout = peek(path)
        if layout.kind == "empty":
            log.info("events: %s is empty; not read", path)
            continue
        best = choose(layout, candidates)
        if best is None:
            miss = Unfit(layout, tuple(looks_for(p) for p in candidates))
            log.warning("events: %s: %s", path, miss.detail)
            unfit.append(miss)
        else:
            chosen.setdefault(best.profile, []).append(path)
    for name, files in chosen.items():
        log.info("events: profile %s for %d files (%s)", name, len(files), ", ".join(p.name for p in files[:5]))
    return chosen, unfit
