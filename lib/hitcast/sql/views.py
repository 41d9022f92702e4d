"""The analysts' views: one SQL file each in ``lib/hitcast/sql/views/``, turned into ``CREATE OR REPLACE GLOBAL
TEMPORARY VIEW`` statements.

A view file is a header of ``--`` comment lines, then one ``SELECT``::

    -- What the view answers (this paragraph becomes the view's COMMENT).
    -- requires: predictions, models, catalog
    SELECT ... FROM ${tables_db}.predictions ...

- The file name is ``NN_<view name>.sql``; views are created in file order, so a view may use the views before it.
- ``requires:`` names the tables (and earlier views) the view reads; a view whose tables do not exist yet (say,
  before the first scoring run) is skipped, with a log line that names what is missing.
- ``${name}`` placeholders are filled from the configuration (:func:`view_parameters`); a literal ``$`` (as in a
  JSON path) is written ``$$``.

Why *global temporary* views: Delta's change data feed (``table_changes``), which ``score_history`` and
``rising`` read, is a function that Spark refuses in a view stored in the metastore. Global temporary views live in
the server (all sessions see them, in the database ``sql.views_database``), are re-created on every start, and
are evaluated at query time, so they are always current.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from hitcast.config import Config
from hitcast.errors import HitcastError

log = logging.getLogger(__name__)

#: Where the view files live.
VIEWS_DIR = Path(__file__).resolve().parent / "views"
_FILE_NAME = re.compile(r"^\d+_(?P<name>[a-z][a-z0-9_]*)\.sql$")
_REQUIRES = re.compile(r"^requires:\s*(?P<names>.*)$")


@dataclass(frozen=True)
class ViewDef:
    """One view file, parsed.

    Attributes
    ----------
    name : str
        The view's name (the file name without its ``NN_`` prefix and ``.sql``).
    comment : str
        The header's text (without the ``requires:`` line), one paragraph.
    requires : tuple of str
        Tables and views it reads.
    body : str
        The ``SELECT`` with its ``${...}`` placeholders.
    path : Path
        The file.
    """

    name: str
    comment: str
    requires: tuple[str, ...]
    body: str
    path: Path


def parse_view(path: Path) -> ViewDef:
    """Parse a view file (see the module docstring).

    Raises
    ------
    HitcastError
        When the file name does not read ``NN_<name>.sql``, the header is missing, or no ``requires:`` line.
    """
    match = _FILE_NAME.match(path.name)
    if not match:
        raise HitcastError(f"view file {path}: the name must read NN_<view name>.sql (lower case)")
    lines = path.read_text().splitlines()
    header: list[str] = []
    while lines and lines[0].startswith("--"):
        header.append(lines.pop(0)[2:].strip())
    requires = [m.group("names") for m in (_REQUIRES.match(h) for h in header) if m]
    comment = " ".join(h for h in header if not _REQUIRES.match(h)).strip()
    body = "\n".join(lines).strip()
    if not comment or not body:
        raise HitcastError(f"view file {path}: needs a '--' comment header and a SELECT after it")
    if len(requires) != 1:
        raise HitcastError(f"view file {path}: needs exactly one '-- requires: table, ...' line in its header")
    names = tuple(n.strip() for n in requires[0].split(",") if n.strip())
    return ViewDef(match.group("name"), comment, names, body, path)


def load_views(directory: Path = VIEWS_DIR) -> list[ViewDef]:
    """Every view file of ``directory``, in file-name order."""
    views = [parse_view(p) for p in sorted(directory.glob("*.sql"))]
    if not views:
        raise HitcastError(f"no view files (NN_<name>.sql) in {directory}")
    return views


def view_parameters(cfg: Config) -> dict[str, str]:
    """The values of the ``${...}`` placeholders the view files may use."""
    return {
        "tables_db": cfg.sql.tables_database,
        "views_db": cfg.sql.views_database,
        "top_n": str(int(cfg.sql.top_n)),
        "horizon_days": str(int(cfg.features.horizon_days)),
        "cold_start_days": str(int(cfg.features.cold_start_days)),
        "hit_share": repr(float(cfg.features.hit_share)),
        "events_location": cfg.table("engagement_events"),
    }


def render(text: str, params: dict[str, str], where: Path) -> str:
    """``text`` with its ``${name}`` placeholders filled.

    Raises
    ------
    HitcastError
        Naming the file and the unknown placeholder.
    """
    try:
        return Template(text).substitute(params)
    except KeyError as exc:
        raise HitcastError(f"view file {where}: unknown placeholder {exc} (known: {', '.join(sorted(params))})") \
            from exc
    except ValueError as exc:
        raise HitcastError(f"view file {where}: {exc} (a literal $ is written $$)") from exc


def _sql_string(text: str) -> str:
    """``text`` as a Spark SQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def create_statement(view: ViewDef, params: dict[str, str]) -> str:
    """``CREATE OR REPLACE GLOBAL TEMPORARY VIEW <name> COMMENT '...' AS <body>``, placeholders filled."""
    comment = render(view.comment, params, view.path)
    body = render(view.body, params, view.path)
    return f"CREATE OR REPLACE GLOBAL TEMPORARY VIEW {view.name} COMMENT {_sql_string(comment)} AS\n{body}"
