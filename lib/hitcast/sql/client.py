"""Connecting to the SQL endpoint from Python, with impyla (a DB-API 2.0 client of the HiveServer2 Thrift
protocol, which Spark's Thrift server speaks).

::

    from hitcast.sql.client import connect, query
    with connect("127.0.0.1", 10000) as conn:
        top = query(conn, "SELECT * FROM hitcast.top_tracks")      # a pandas DataFrame

With the server's default authentication (``hive.server2.authentication = NONE``) the transport is SASL PLAIN:
any user name is accepted and no password is checked. With LDAP or CUSTOM authentication, pass the password
(or set ``HITCAST_SQL_USER`` / ``HITCAST_SQL_PASSWORD``); with TLS on (``hive.server2.use.SSL``), ``use_ssl`` and
``ca_cert``.
"""
from __future__ import annotations

import getpass
import json
import logging
import os
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Sequence

import pandas as pd

from hitcast.config import Config
from hitcast.errors import HitcastError

log = logging.getLogger(__name__)

#: HiveServer2 column types whose values the server sends as JSON text.
COMPLEX_TYPES = ("ARRAY", "MAP", "STRUCT")


class SqlEndpointError(HitcastError):
    """A statement failed on the SQL endpoint, or the endpoint could not be reached (the message says which)."""


def client_options(cfg: Config) -> dict[str, Any]:
    """impyla ``connect`` keyword arguments for the server ``cfg`` describes (host, port, TLS, credentials).

    The user and password come from ``HITCAST_SQL_USER`` / ``HITCAST_SQL_PASSWORD`` (default: the operating-system
    user, no password), the CA certificate for TLS from ``HITCAST_SQL_CA_CERT``.
    """
    hive = {str(k): str(v) for k, v in cfg.sql.hiveconf.items()}
    nosasl = hive.get("hive.server2.authentication", "NONE").upper() == "NOSASL"
    return {"host": cfg.sql.host, "port": int(cfg.sql.port), "auth_mechanism": "NOSASL" if nosasl else "PLAIN",
            "use_ssl": hive.get("hive.server2.use.SSL", "false").lower() == "true",
            "ca_cert": os.environ.get("HITCAST_SQL_CA_CERT") or None,
            "user": os.environ.get("HITCAST_SQL_USER") or getpass.getuser(),
            "password": os.environ.get("HITCAST_SQL_PASSWORD") or None}


@contextmanager
def connect(host: str, port: int, *, user: str | None = None, password: str | None = None, use_ssl: bool = False,
            ca_cert: str | None = None, timeout: float | None = None, auth_mechanism: str = "PLAIN") -> Iterator[Any]:
    """A DB-API connection to the endpoint at ``host:port``, closed on exit.

    Parameters
    ----------
    user, password
        Credentials; the default server accepts any user and ignores the password.
    use_ssl, ca_cert
        TLS, when the server has ``hive.server2.use.SSL`` on.
    timeout
        Socket timeout in seconds (``None``: wait as long as a query takes).
    auth_mechanism
        ``PLAIN`` (SASL: the server's NONE, LDAP and CUSTOM authentication) or ``NOSASL``.

    Raises
    ------
    SqlEndpointError
        When nothing answers at ``host:port``.
    """
    from impala.dbapi import connect as impala_connect

    try:
        conn = impala_connect(host=host, port=int(port), auth_mechanism=auth_mechanism, user=user or getpass.getuser(),
                              password=password or "unused", use_ssl=use_ssl, ca_cert=ca_cert, timeout=timeout)
    except Exception as exc:  # impyla raises thrift transport errors of several kinds
        raise SqlEndpointError(f"cannot connect to the SQL endpoint at {host}:{port}: {exc}") from exc
    try:
        yield conn
    finally:
        conn.close()


def execute(conn: Any, sql: str) -> None:
    """Run one statement that returns no rows worth reading (DDL, ``SET``).

    Raises
    ------
    SqlEndpointError
        With the statement's first line and the server's message.
    """
    cursor = conn.cursor()
    try:
        cursor.execute(sql)
    except Exception as exc:
        raise SqlEndpointError(f"statement failed: {_first_line(sql)}: {_server_message(exc)}") from exc
    finally:
        cursor.close()


def fetch(conn: Any, sql: str, parameters: Mapping[str, Any] | Sequence[Any] | None = None
          ) -> tuple[list[str], list[tuple]]:
    """Run a query; return its column names and rows (Python values: ``date``, ``datetime``, ``float``...;
    arrays, maps and structs as lists and dicts).

    ``parameters`` fill ``%(name)s`` (a mapping) or ``%s`` (a sequence) placeholders; impyla quotes them.
    """
    cursor = conn.cursor()
    try:
        cursor.execute(sql, parameters)
        description = cursor.description or []
        if not description:
            return [], []
        complex_ = [str(d[1]).upper() in COMPLEX_TYPES for d in description]
        rows = [tuple(_decode(v) if c else v for v, c in zip(row, complex_)) for row in cursor.fetchall()]
        return [d[0] for d in description], rows
    except Exception as exc:
        raise SqlEndpointError(f"query failed: {_first_line(sql)}: {_server_message(exc)}") from exc
    finally:
        cursor.close()


def _decode(value: Any) -> Any:
    """An ARRAY, MAP or STRUCT value, which arrives as JSON text (bytes), as Python lists and dicts."""
    if isinstance(value, (bytes, bytearray)):
        value = value.decode()
    return json.loads(value) if isinstance(value, str) else value


def query(conn: Any, sql: str, parameters: Mapping[str, Any] | Sequence[Any] | None = None) -> pd.DataFrame:
    """Run a query into a pandas DataFrame (array, map and struct values as Python lists and dicts)."""
    columns, rows = fetch(conn, sql, parameters)
    return pd.DataFrame.from_records(rows, columns=columns)


def _first_line(sql: str) -> str:
    line = next((s.strip() for s in sql.strip().splitlines() if s.strip()), "")
    return line if len(line) <= 120 else line[:117] + "..."


def _server_message(exc: Exception) -> str:
    """The useful part of a HiveServer2 error: Spark's own message, without the Java stack trace."""
    text = str(exc)
    for marker in ("AnalysisException: ", "ParseException: ", "Exception: "):
        if marker in text:
            text = text.split(marker, 1)[1]
            break
    return text.split("\n\tat ", 1)[0].strip()[:2000]
