"""Event profiles: how one service's listening-history export maps onto the events contract.

A profile is a YAML file, chosen with ``ingest.events_profile``: a name (``spotify-extended`` is
``conf/events/spotify-extended.yaml`` in the checkout) or the path of a file (absolute, or relative to
``paths.root``). Empty means the events contract itself (JSON lines or Parquet, ``events_column_mapping``).
Every key below is required and no other is allowed; an error names the file and the key.

=================  ================================================================================
key                meaning
=================  ================================================================================
``profile``        the profile's name (for logs)
``reader``         ``json_array`` (each file one JSON array of objects), ``json_lines`` or ``csv``
``files``          file-name globs to read under ``ingest.events_path`` (``[]``: every file); an export
                   folder also holds files that are not listening history
``csv_options``    Spark CSV options for ``reader: csv`` (the header names the fields)
``source_fields``  the source fields the expressions use; one a file lacks is NULL
``required``       source fields that must be non-empty, else ``missing_required_value`` (detail: field)
``not_a_track``    ``{name: SQL condition}``: records that are not music (a podcast episode); counted
                   by name in the ingest summary and skipped, never quarantined
``fields``         contract column -> Spark SQL expression over the source fields, ``_file`` (file name)
                   and ``_folder`` (the first folder below ``ingest.events_path``; the name of that
                   folder itself for a file directly in it); an empty expression means "derive"
``skip_when``      SQL condition over the source fields: true -> ``skip``, false -> ``play``, NULL ->
                   decided by ``skip_below_ms``; empty = always NULL
``skip_below_ms``  with no answer from ``skip_when``, ``ms_played`` below this is a ``skip`` (0: never)
=================  ================================================================================

``fields`` has exactly these keys: ``event_id`` (empty: sha256 of the parsed user, time, track and
``ms_played``, see :mod:`hitcast.ingest.exports`), ``user_id``, ``event_time`` (a timestamp, or text that
Spark reads as ISO-8601; no zone means UTC), ``ms_played``, ``track_id`` (empty, or NULL on a record: the
``key:`` of the normalised artist and title, :mod:`hitcast.ingest.trackkey`), ``artist_name`` and
``title`` (kept for that key and for the catalog derived from the logs) and ``event_type`` (empty: from
``skip_when`` / ``skip_below_ms``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from hitcast.config import PROJECT_ROOT, Config
from hitcast.errors import ConfigError

log = logging.getLogger(__name__)

READERS = ("json_array", "json_lines", "csv")
#: The keys of a profile's ``fields``: the events contract plus the names a track key is built from.
FIELDS = ("event_id", "user_id", "event_time", "ms_played", "track_id", "artist_name", "title", "event_type")


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
    #: The file the profile was read from.
    path: str = ""


def _check(data: Any, path: Path) -> EventProfile:
    """Type-check the YAML mapping of a profile file."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: an event profile must be a YAML mapping")
    names = [f.name for f in fields(EventProfile) if f.name != "path"]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"{path}: unknown event profile key {unknown[0]!r} (known: {', '.join(names)})")
    missing = [n for n in names if n not in data]
    if missing:
        raise ConfigError(f"{path}: event profile key {missing[0]!r} is missing")
    if data["reader"] not in READERS:
        raise ConfigError(f"{path}: reader {data['reader']!r} is not one of {', '.join(READERS)}")
    for key in ("files", "source_fields", "required"):
        if not isinstance(data[key], list) or not all(isinstance(v, str) for v in data[key]):
            raise ConfigError(f"{path}: {key} must be a list of strings")
    for key in ("csv_options", "not_a_track", "fields"):
        if not isinstance(data[key], dict):
            raise ConfigError(f"{path}: {key} must be a mapping")
    got = set(data["fields"])
    if got != set(FIELDS):
        odd = sorted(got - set(FIELDS)) or sorted(set(FIELDS) - got)
        raise ConfigError(f"{path}: fields.{odd[0]}: fields must have exactly the keys {', '.join(FIELDS)}")
    not_read = sorted(set(data["required"]) - set(data["source_fields"]))
    if not_read:
        raise ConfigError(f"{path}: required field {not_read[0]!r} is not in source_fields")
    if not isinstance(data["skip_below_ms"], int) or isinstance(data["skip_below_ms"], bool):
        raise ConfigError(f"{path}: skip_below_ms must be an integer (milliseconds)")
    text = {k: "" if v is None else str(v) for k, v in data["fields"].items()}
    return EventProfile(profile=str(data["profile"]), reader=data["reader"], files=list(data["files"]),
                        csv_options={str(k): str(v) for k, v in data["csv_options"].items()},
                        source_fields=list(data["source_fields"]), required=list(data["required"]),
                        not_a_track={str(k): str(v) for k, v in data["not_a_track"].items()},
                        fields=text, skip_when=str(data["skip_when"] or ""),
                        skip_below_ms=int(data["skip_below_ms"]), path=str(path))


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
