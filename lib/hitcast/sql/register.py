"""What the SQL endpoint serves: the warehouse's Delta tables, registered by location, and the views.

Run against a live server through a DB-API connection (:mod:`hitcast.sql.client`); every step is idempotent:

1. ``CREATE DATABASE IF NOT EXISTS <sql.tables_database>``;
2. ``CREATE TABLE IF NOT EXISTS <db>.<table> USING delta LOCATION '<path>'`` for every Delta table in the
   warehouse, except ``sql.private_tables`` (user-level rows). Jobs keep reading and writing the tables by path;
   the metastore only points at them, so a job never waits for it;
3. ``CREATE OR REPLACE GLOBAL TEMPORARY VIEW`` for every view whose tables exist (:mod:`hitcast.sql.views`);
4. no registered table or view may have a column of ``sql.private_columns`` (``user_id``): one that has is
   dropped again and the registration fails, naming it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hitcast.config import Config
from hitcast.errors import HitcastError
from hitcast.model.spec import DEFAULT_SPEC
from hitcast.sql.client import execute, fetch
from hitcast.sql.views import create_statement, load_views, view_parameters

log = logging.getLogger(__name__)

#: The tables hitcast writes (looked for when the warehouse is not a local folder that can be listed).
KNOWN_TABLES = ("catalog", "engagement_events", "engagement_daily", "ingested_files", "quarantine", "training_examples",
                "spectrograms", "models",
                "model_promotions", "predictions", "scoring_runs", "scoring_features", "audio_embeddings",
                "track_aliases", *DEFAULT_SPEC.sources())


@dataclass
class Registration:
    """What one registration did.

    Attributes
    ----------
    tables : list of str
        Tables registered in ``sql.tables_database`` (new or already there).
    views : list of str
        Views (re)created in ``sql.views_database``.
    skipped : dict
        View name -> the tables it needs that do not exist yet.
    """

    tables: list[str] = field(default_factory=list)
    views: list[str] = field(default_factory=list)
    skipped: dict[str, list[str]] = field(default_factory=dict)

    def __str__(self) -> str:
        skipped = "; ".join(f"{v} (needs {', '.join(m)})" for v, m in self.skipped.items()) or "none"
        return (f"{len(self.tables)} tables ({', '.join(self.tables)}), {len(self.views)} views "
                f"({', '.join(self.views)}); views skipped: {skipped}")


def warehouse_tables(cfg: Config) -> dict[str, str]:
    """``{name: location}`` of the Delta tables in the warehouse (a folder holding ``_delta_log``).

    A local warehouse is listed (folders starting with ``_``, such as staging, are left out); for a remote one
    (``hdfs://``, ``s3a://``...) the :data:`KNOWN_TABLES` are assumed to exist.
    """
    warehouse = cfg.path(cfg.paths.warehouse)
    if "://" in cfg.paths.warehouse and not cfg.paths.warehouse.startswith("file:"):
        return {name: cfg.table(name) for name in KNOWN_TABLES}
    if not Path(warehouse).is_dir():
        return {}
    return {p.name: str(p) for p in sorted(Path(warehouse).iterdir())
            if p.is_dir() and not p.name.startswith(("_", ".")) and (p / "_delta_log").is_dir()}


def _quoted(path: str) -> str:
    return "'" + path.replace("\\", "\\\\").replace("'", "\\'") + "'"


def registered_location(conn: Any, table: str) -> str | None:
    """The location the metastore holds for ``table`` (``db.name``), without a ``file:`` scheme."""
    columns, rows = fetch(conn, f"DESCRIBE DETAIL {table}")
    location = str(dict(zip(columns, rows[0]))["location"]) if rows else None
    return location[len("file:"):] if location and location.startswith("file:") else location


def register_tables(conn: Any, cfg: Config, tables: dict[str, str]) -> list[str]:
    """Register ``tables`` (``{name: location}``) in ``sql.tables_database``, skipping ``sql.private_tables``.

    Raises
    ------
    HitcastError
        When a table of that name is already registered at another location (naming both and the fix).
    """
    db = cfg.sql.tables_database
    execute(conn, f"CREATE DATABASE IF NOT EXISTS {db} COMMENT 'hitcast Delta tables, registered by location'")
    _, rows = fetch(conn, f"SHOW TABLES IN {db}")
    existing = {r[1] for r in rows}
    done = []
    for name, location in sorted(tables.items()):
        if name in cfg.sql.private_tables:
            log.info("not registering %s: it is in sql.private_tables", name)
            continue
        if name in existing:
            have = registered_location(conn, f"{db}.{name}")
            if have is not None and have.rstrip("/") != location.rstrip("/"):
                raise HitcastError(f"table {db}.{name} is registered at {have}, not at {location}: run "
                                   f"'DROP TABLE {db}.{name}' through the endpoint (the data stays), or delete "
                                   f"{cfg.path(cfg.sql.metastore_dir)}, then start again")
        else:
            execute(conn, f"CREATE TABLE IF NOT EXISTS {db}.{name} USING delta LOCATION {_quoted(location)}")
            log.info("registered %s.%s -> %s", db, name, location)
        done.append(name)
    return done


def create_views(conn: Any, cfg: Config, available: set[str]) -> tuple[list[str], dict[str, list[str]]]:
    """(Re)create every view whose required tables are in ``available`` (tables, and views created before it).

    Returns
    -------
    (created, skipped)
        View names, and ``{view: missing tables}``.
    """
    params = view_parameters(cfg)
    have = set(available)
    created, skipped = [], {}
    for view in load_views():
        missing = [r for r in view.requires if r not in have]
        if missing:
            log.warning("view %s not created: %s not there yet", view.name, ", ".join(missing))
            skipped[view.name] = missing
            continue
        execute(conn, create_statement(view, params))
        have.add(view.name)
        created.append(view.name)
    return created, skipped


def columns_of(conn: Any, name: str) -> list[str]:
    """Column names of a table or view (``db.name``), from ``DESCRIBE``."""
    _, rows = fetch(conn, f"DESCRIBE {name}")
    out = []
    for row in rows:
        col = str(row[0] or "").strip()
        if not col or col.startswith("#"):
            break                        # partitioning and detail sections follow the columns
        out.append(col)
    return out


def check_private_columns(conn: Any, cfg: Config, registration: Registration) -> None:
    """Refuse any registered table or view with a ``sql.private_columns`` column: drop it and raise.

    Raises
    ------
    HitcastError
        Naming the table or view and the column.
    """
    private = {c.lower() for c in cfg.sql.private_columns}
    objects = [(f"{cfg.sql.tables_database}.{t}", "TABLE") for t in registration.tables]
    objects += [(f"{cfg.sql.views_database}.{v}", "VIEW") for v in registration.views]
    for name, kind in objects:
        found = sorted(private & {c.lower() for c in columns_of(conn, name)})
        if found:
            execute(conn, f"DROP {kind} IF EXISTS {name}")
            raise HitcastError(f"{kind.lower()} {name} has the column {found[0]} (sql.private_columns): it is not "
                               f"served; add the table to sql.private_tables, or drop the column from the view")


def register_all(conn: Any, cfg: Config) -> Registration:
    """Register the warehouse's tables and (re)create the views on the server behind ``conn``."""
    tables = warehouse_tables(cfg)
    if not tables:
        log.warning("no Delta tables under %s yet: run the pipeline (make demo), then jobs/sql_server.py refresh",
                    cfg.path(cfg.paths.warehouse))
    registration = Registration(tables=register_tables(conn, cfg, tables))
    registration.views, registration.skipped = create_views(conn, cfg, set(tables))
    check_private_columns(conn, cfg, registration)
    log.info("SQL endpoint serves %s", registration)
    return registration
