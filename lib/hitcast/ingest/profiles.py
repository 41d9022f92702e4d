"""Event profiles: how one service's listening-history export maps onto the events contract.

A profile is a YAML file, chosen with ``ingest.events_profile``: a name (``spotify-extended`` is
``conf/events/spotify-extended.yaml`` in the checkout) or the path of a file (absolute, or relative to
``paths.root``). Empty means the events contract itself (JSON lines or Parquet, ``events_column_mapping``).
Every key below is required and no other is allowed; an error names the file and the key.

=================  ================================================================================
key                meaning
=================  ================================================================================
``profile``        the profile's name (for logs)
``reader``         ``json_array`` (each file one JSON array of objects), ``json_lines``, ``json`` (either,
                   decided per file by its first character) or ``csv``
``files``          file-name globs to read under ``ingest.events_path`` (``[]``: every file); an export
                   folder also holds files that are not listening history
``csv_options``    Spark CSV options for ``reader: csv`` (the header names the fields)
``source_fields``  the source fields the expressions use; one a file lacks is NULL
``required``       source fields that must be non-empty, else ``missing_required_value`` (detail: field);
                   ``a|b`` means one of them
``not_a_track``    ``{name: SQL condition}``: records that are not music (a podcast episode); counted
                   by name in the ingest summary and skipped, never quarantined
``fields``         contract column -> Spark SQL expression over the source fields, ``_file`` (file name)
                   and ``_folder`` (the first folder below ``ingest.events_path``; the name of that
                   folder itself for a file directly in it); an empty expression means "derive"
``skip_when``      SQL condition over the source fields: true -> ``skip``, false -> ``play``, NULL ->
                   decided by ``skip_below_ms``; empty = always NULL
``skip_below_ms``  with no answer from ``skip_when``, ``ms_played`` below this is a ``skip`` (0: never)
=================  ================================================================================

Optional keys:

=================  ================================================================================
``detect``         the fields (``a|b``: one of them) a file must have for the profile to fit it (default:
                   ``required``); see :mod:`hitcast.ingest.layouts`
``columns``        for a CSV without a header: the names of its columns, in order ([]: the header names
                   them). Such a profile fits a file whose first row has that many cells and is not a
                   header
=================  ================================================================================

``fields`` has exactly these keys: ``event_id`` (empty: sha256 of the parsed user, time, track and
``ms_played``, see :mod:`hitcast.ingest.exports`), ``user_id``, ``event_time`` (a timestamp, or text that
Spark reads as ISO-8601; no zone means UTC), ``ms_played``, ``track_id`` (empty, or NULL on a record: the
``key:`` of the normalised artist and title, :mod:`hitcast.ingest.trackkey`), ``artist_name`` and
``title`` (kept for that key and for the catalog derived from the logs) and ``event_type`` (empty: from
``skip_when`` / ``skip_below_ms``), and may have the identifiers of :data:`ID_FIELDS` (``spotify_uri``,
``isrc``, ``mbid``: other ids the record gives for its track, for :mod:`hitcast.ingest.identity`).

``ingest.events_profile: auto`` tries every shipped profile on every file (:func:`resolve_profiles`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from hitcast.config import PROJECT_ROOT, Config
from hitcast.errors import ConfigError

log = logging.getLogger(__name__)

READERS = ("json_array", "json_lines", "json", "csv")
#: ``ingest.events_profile`` value that picks a shipped profile per file.
AUTO = "auto"
#: The keys of a profile's ``fields``: the events contract plus the names a track key is built from.
FIELDS = ("event_id", "user_id", "event_time", "ms_played", "track_id", "artist_name", "title", "event_type")
#: Optional keys of ``fields``: further identifiers of the record's track.
ID_FIELDS = ("spotify_uri", "isrc", "mbid")
#: Profile keys that may be left out, with their defaults (``detect`` empty: ``required``).
OPTIONAL = {"detect": [], "columns": []}


@dataclass(frozen=True)
class EventProfile:
    """One export format's mapping onto the events contract (the keys: see the module docstring)."""

    profile: str
    reader: str
    files: list[str]
    csv_options: dict[str, str]
    source_fields: list[str]
    required: list[str]
    not_a_track: dict[str, str]
    fields: dict[str, str]
    skip_when: str
    skip_below_ms: int
    #: Fields a file must have for the profile to fit it (``a|b``: one of them); empty: ``required``.
    detect: list[str] = field(default_factory=list)
    #: Column names of a CSV without a header (empty: the header names them).
    columns: list[str] = field(default_factory=list)
    #: The file the profile was read from.
    path: str = ""

    @property
    def detect_fields(self) -> list[str]:
        """``detect``, or ``required`` when it is empty."""
        return list(self.detect or self.required)


def alternatives(entry: str) -> list[str]:
    """The field names of one ``required`` / ``detect`` entry (``"track|song_title"`` -> both)."""
    return [a.strip() for a in entry.split("|") if a.strip()]


def _check(data: Any, path: Path) -> EventProfile:
    """Type-check the YAML mapping of a profile file."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: an event profile must be a YAML mapping")
    data = {**OPTIONAL, **data}
    names = [f.name for f in fields(EventProfile) if f.name != "path"]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"{path}: unknown event profile key {unknown[0]!r} (known: {', '.join(names)})")
    missing = [n for n in names if n not in data]
    if missing:
        raise ConfigError(f"{path}: event profile key {missing[0]!r} is missing")
    if data["reader"] not in READERS:
        raise ConfigError(f"{path}: reader {data['reader']!r} is not one of {', '.join(READERS)}")
    for key in ("files", "source_fields", "required", "detect", "columns"):
        if not isinstance(data[key], list) or not all(isinstance(v, str) for v in data[key]):
            raise ConfigError(f"{path}: {key} must be a list of strings")
    for key in ("csv_options", "not_a_track", "fields"):
        if not isinstance(data[key], dict):
            raise ConfigError(f"{path}: {key} must be a mapping")
    got = set(data["fields"])
    if not set(FIELDS) <= got <= set(FIELDS) | set(ID_FIELDS):
        odd = sorted(got - set(FIELDS) - set(ID_FIELDS)) or sorted(set(FIELDS) - got)
        raise ConfigError(f"{path}: fields.{odd[0]}: fields must have the keys {', '.join(FIELDS)} "
                          f"(and may have {', '.join(ID_FIELDS)})")
    for key in ("required", "detect"):
        not_read = sorted({a for e in data[key] for a in alternatives(e)} - set(data["source_fields"]))
        if not_read:
            raise ConfigError(f"{path}: {key} field {not_read[0]!r} is not in source_fields")
    if data["columns"] and data["reader"] != "csv":
        raise ConfigError(f"{path}: columns (a CSV without a header) needs reader: csv")
    if not isinstance(data["skip_below_ms"], int) or isinstance(data["skip_below_ms"], bool):
        raise ConfigError(f"{path}: skip_below_ms must be an integer (milliseconds)")
    text = {k: "" if v is None else str(v) for k, v in data["fields"].items()}
    return EventProfile(profile=str(data["profile"]), reader=data["reader"], files=list(data["files"]),
                        csv_options={str(k): str(v) for k, v in data["csv_options"].items()},
                        source_fields=list(data["source_fields"]), required=list(data["required"]),
                        not_a_track={str(k): str(v) for k, v in data["not_a_track"].items()},
                        fields=text, skip_when=str(data["skip_when"] or ""),
                        skip_below_ms=int(data["skip_below_ms"]), detect=list(data["detect"]),
                        columns=list(data["columns"]), path=str(path))


def read_profile(path: Path) -> EventProfile:
    """Load and check one profile file.

    Raises
    ------
    ConfigError
        Naming the file and the offending key.
    """
    try:
        with path.open() as fh:
            data = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"event profile {path}: cannot read: {exc}") from exc
    return _check(data, path)


def shipped_profiles() -> list[str]:
    """Names of the profiles in the checkout's ``conf/events/`` (``conf/events/<name>.yaml``)."""
    return sorted(p.stem for p in (PROJECT_ROOT / "conf" / "events").glob("*.yaml"))


def resolve_profile(cfg: Config) -> EventProfile | None:
    """The profile ``ingest.events_profile`` names, or ``None`` for the events contract itself."""
    value = cfg.ingest.events_profile.strip()
    if not value:
        return None
    if "/" not in value and not value.endswith((".yaml", ".yml")):
        path = PROJECT_ROOT / "conf" / "events" / f"{value}.yaml"
        if not path.is_file():
            raise ConfigError(f"ingest.events_profile: no profile named {value!r} (shipped: "
                              f"{', '.join(shipped_profiles())}; or give the path of a profile file)")
    else:
        path = cfg.path(value)
        if not path.is_file() and not Path(value).is_absolute() and (PROJECT_ROOT / value).is_file():
            path = PROJECT_ROOT / value
        if not path.is_file():
            raise ConfigError(f"ingest.events_profile: profile file {path} not found")
    profile = read_profile(path)
    log.info("events: profile %s (%s, reader %s)", profile.profile, path, profile.reader)
    return profile


def resolve_profiles(cfg: Config) -> list[EventProfile] | None:
    """The profiles to try on each event file: every shipped one for ``auto`` (by name), else the one
    :func:`resolve_profile` names; ``None`` for the events contract itself."""
    if cfg.ingest.events_profile.strip() != AUTO:
        one = resolve_profile(cfg)
        return None if one is None else [one]
    profiles = [read_profile(PROJECT_ROOT / "conf" / "events" / f"{name}.yaml") for name in shipped_profiles()]
    log.info("events: profile auto (tries %s on each file)", ", ".join(p.profile for p in profiles))
    return profiles
