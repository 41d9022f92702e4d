"""The analysts' SQL endpoint, for real: Spark's Thrift server started on a free loopback port over the tables a
small pipeline wrote, queried through impyla and once through beeline; every view is compared row by row with
the same data read directly from the Delta tables with Spark, and time travel with the table's history."""
from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import ipaddress
import json
import logging
import math
import re
import subprocess
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from analyst_pipeline import EARLY_AS_OF, scored_pipeline
from hitcast.config import base_config
from hitcast.errors import ConfigError, HitcastError
from hitcast.sql import server
from hitcast.sql.client import connect, fetch
from hitcast.sql.register import Registration
from hitcast.sql.views import create_statement, load_views, parse_view, view_parameters

log = logging.getLogger(__name__)

#: Every view and its columns, in order; none may carry user_id.
VIEW_COLUMNS = {
    "predictions_current": ["track_id", "title", "artist_name", "genre", "release_date", "model_version",
                            "hit_probability", "popularity_score", "predicted_hit", "mode", "audio_status", "reasons",
                            "as_of", "run_id", "scored_at"],
    "top_tracks": ["genre", "genre_rank", "track_id", "title", "artist_name", "release_date", "hit_probability",
                   "popularity_score", "predicted_hit", "mode", "reasons", "as_of"],
    "cold_start_watchlist": ["watch_rank", "track_id", "title", "artist_name", "genre", "release_date", "unreleased",
                             "hit_probability", "popularity_score", "predicted_hit", "audio_status", "reasons",
                             "as_of"],
    "model_leaderboard": ["leaderboard_rank", "model_version", "variant", "role", "role_reason", "created_at",
                          "role_changed_at", "test_roc_auc", "test_f1", "threshold", "test_rows", "tested_at",
                          "validation_roc_auc", "validation_f1"],
    "score_history": ["track_id", "model_version", "hit_probability", "popularity_score", "predicted_hit", "mode",
                      "audio_status", "as_of", "run_id", "scored_at", "table_version", "committed_at"],
    "rising": ["rise_rank", "track_id", "title", "artist_name", "genre", "previous_probability", "hit_probability",
               "rise", "previous_as_of", "as_of", "previous_run_id", "run_id", "mode", "reasons"],
    "prediction_outcomes": ["track_id", "model_version", "as_of", "window_end", "hit_probability", "predicted_hit",
                            "mode", "run_id", "future_plays", "outcome_popularity", "outcome_hit"],
}
#: The warehouse tables the endpoint serves (engagement_events and quarantine hold user-level rows: never).
SERVED_TABLES = {"catalog", "training_examples", "spectrograms", "models", "model_promotions", "predictions",
                 "scoring_runs", "scoring_features", "audio_embeddings", "track_aliases"}


def listening_addresses(port: int) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Local addresses in LISTEN state on ``port``, from /proc/net/tcp and tcp6 (an IPv4-mapped IPv6 address, as
    the JVM binds ``127.0.0.1``, is given as its IPv4 address)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            hex_address, hex_port = local.split(":")
            if int(hex_port, 16) != port or state != "0A":
                continue
            # the kernel prints each 32-bit word in host (little-endian) byte order
            raw = b"".join(bytes.fromhex(hex_address[i:i + 8])[::-1] for i in range(0, len(hex_address), 8))
            address = ipaddress.ip_address(raw)
            found.add(address.ipv4_mapped or address if isinstance(address, ipaddress.IPv6Address) else address)
    return found


@pytest.fixture(scope="module")
def pipeline(spark, tmp_path_factory, trained_demo):
    return scored_pipeline(spark, tmp_path_factory.mktemp("analysts") / "root", trained_demo)


@pytest.fixture(scope="module")
def endpoint(analysts_endpoint):
    """The session's SQL endpoint over :func:`pipeline`'s tables (conftest.py: a free loopback port, its own
    metastore; stopped and checked gone at the end of the session)."""
    return analysts_endpoint


@pytest.fixture(scope="module")
def conn(endpoint):
    cfg, info = endpoint
    with connect(info.host, info.port, user="analyst") as c:
        yield c


def delta(spark, cfg, name: str, **options):
    reader = spark.read.format("delta")
    for key, value in options.items():
        reader = reader.option(key, value)
    return reader.load(cfg.table(name))


def same(a, b) -> bool:
    """Equal values; floats to 1e-9 relative; the client's JSON structs against Spark Rows."""
    if hasattr(b, "asDict"):
        b = b.asDict(recursive=True)
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def assert_rows(got: list[tuple], want: list[tuple], what: str) -> None:
    assert len(got) == len(want), f"{what}: {len(got)} rows through the endpoint, {len(want)} from Delta"
    for i, (g, w) in enumerate(zip(got, want)):
        assert len(g) == len(w) and all(same(x, y) for x, y in zip(g, w)), f"{what} row {i}: {g} != {w}"


def view_rows(conn, cfg, view: str, order_by: str) -> list[tuple]:
    columns, rows = fetch(conn, f"SELECT * FROM {cfg.sql.views_database}.{view} ORDER BY {order_by}")
    assert columns == VIEW_COLUMNS[view]
    return rows


# --- the view files -------------------------------------------------------------------------------------------

def test_every_view_file_has_a_comment_and_its_tables_and_renders(tmp_path):
    cfg = base_config(["sql.top_n=7"])
    views = load_views()
    assert [v.name for v in views] == list(VIEW_COLUMNS)
    params = view_parameters(cfg)
    for view in views:
        assert len(view.comment) > 40 and view.requires, view.name
        statement = create_statement(view, params)
        assert statement.startswith(f"CREATE OR REPLACE GLOBAL TEMPORARY VIEW {view.name} COMMENT '")
        assert "${" not in statement and "user_id" not in statement
    assert "genre_rank <= 7" in create_statement(views[1], params)
    bad = tmp_path / "01_bad.sql"
    bad.write_text("-- A view with a typo in its placeholder.\n-- requires: catalog\nSELECT ${nope}\n")
    with pytest.raises(HitcastError, match=r"01_bad.sql: unknown placeholder 'nope'"):
        create_statement(parse_view(bad), params)
    bad.write_text("SELECT 1\n")
    with pytest.raises(HitcastError, match=r"01_bad.sql: needs a '--' comment header"):
        parse_view(bad)


# --- the server itself -----------------------------------------------------------------------------------------

def test_the_server_listens_on_loopback_only_and_records_its_pid(endpoint):
    cfg, info = endpoint
    assert listening_addresses(info.port) == {ipaddress.ip_address("127.0.0.1")}     # loopback, nothing else
    recorded = json.loads(server.pid_file(cfg).read_text())
    assert (recorded["pid"], recorded["port"], recorded["host"]) == (info.pid, info.port, "127.0.0.1")
    assert server.running_server(cfg) == info
    assert (cfg.path("metastore-endpoint") / "metastore_db").is_dir()   # the metastore is under the data root


def test_a_second_start_is_refused_with_a_clear_error(endpoint):
    cfg, info = endpoint
    with pytest.raises(HitcastError, match=rf"already runs \(pid {info.pid}"):
        server.start_server(cfg)
    other = dataclasses.replace(cfg, sql=dataclasses.replace(cfg.sql, metastore_dir="metastore-other"))
    with pytest.raises(HitcastError, match=rf"port {info.port} on 127.0.0.1 is in use \(sql.port\)"):
        server.start_server(other)


def test_no_authentication_means_loopback_only(pipeline):
    exposed = dataclasses.replace(pipeline.cfg, sql=dataclasses.replace(pipeline.cfg.sql, host="0.0.0.0"))
    with pytest.raises(ConfigError, match="sql.host: 0.0.0.0 is not a loopback address"):
        server.start_server(exposed)
    with_ldap = dataclasses.replace(exposed.sql, hiveconf={"hive.server2.authentication": "LDAP"})
    server.check_settings(dataclasses.replace(exposed, sql=with_ldap))     # allowed: authentication is on


# --- what it serves --------------------------------------------------------------------------------------------

def test_every_served_table_and_view_and_none_has_user_id(conn, endpoint, spark):
    cfg, _ = endpoint
    _, tables = fetch(conn, f"SHOW TABLES IN {cfg.sql.tables_database}")
    assert {r[1] for r in tables if not r[2]} == SERVED_TABLES          # engagement_events, quarantine: not served
    _, views = fetch(conn, f"SHOW TABLES IN {cfg.sql.views_database}")
    assert {r[1] for r in views} == set(VIEW_COLUMNS)
    for view, columns in VIEW_COLUMNS.items():
        got, _ = fetch(conn, f"SELECT * FROM {cfg.sql.views_database}.{view} LIMIT 0")
        assert got == columns, view
    for table in SERVED_TABLES:
        got, _ = fetch(conn, f"SELECT * FROM {cfg.sql.tables_database}.{table} LIMIT 0")
        assert got == delta(spark, cfg, table).columns, table
        assert "user_id" not in got, table
    assert "user_id" in delta(spark, cfg, "engagement_events").columns   # the table the endpoint keeps away


def test_registration_is_idempotent(conn, endpoint):
    cfg, info = endpoint
    before = fetch(conn, f"SELECT track_id, hit_probability FROM {cfg.sql.views_database}.top_tracks "
                         "ORDER BY track_id")
    again = server.refresh(cfg, port=info.port)
    assert isinstance(again, Registration) and set(again.tables) == SERVED_TABLES
    assert again.views == list(VIEW_COLUMNS) and again.skipped == {}
    assert fetch(conn, f"SELECT track_id, hit_probability FROM {cfg.sql.views_database}.top_tracks "
                       "ORDER BY track_id") == before


# --- every view against Delta ----------------------------------------------------------------------------------

def current_rows(spark, cfg) -> list:
    """predictions_current, computed with Spark from the Delta tables."""
    champion = delta(spark, cfg, "models").where("role = 'champion'").select("model_version")
    catalog = delta(spark, cfg, "catalog").select("track_id", "title", "artist_name", "genre", "release_date")
    return (delta(spark, cfg, "predictions").join(champion, "model_version").join(catalog, "track_id", "left")
            .select(*VIEW_COLUMNS["predictions_current"]).collect())


def test_predictions_current_is_the_champions_row_per_track(conn, endpoint, spark, pipeline):
    cfg, _ = endpoint
    want = sorted(current_rows(spark, cfg), key=lambda r: r.track_id)
    got = view_rows(conn, cfg, "predictions_current", "track_id")
    assert_rows(got, [tuple(r) for r in want], "predictions_current")
    assert {r[5] for r in got} == {pipeline.model_version}
    assert len(got) == delta(spark, cfg, "catalog").count()
    assert any(r[11] for r in got) and all(set(x) == {"input", "contribution"} for r in got for x in r[11])


def test_top_tracks_are_the_best_n_of_each_genre(conn, endpoint, spark):
    cfg, _ = endpoint
    by_genre: dict = {}
    for r in current_rows(spark, cfg):
        by_genre.setdefault(r.genre, []).append(r)
    want = []
    for genre in sorted(by_genre, key=lambda g: (g is None, g)):
        best = sorted(by_genre[genre], key=lambda r: (-r.hit_probability, r.track_id))[:cfg.sql.top_n]
        want += [(genre, rank, r.track_id, r.title, r.artist_name, r.release_date, r.hit_probability,
                  r.popularity_score, r.predicted_hit, r.mode, r.reasons, r.as_of) for rank, r in enumerate(best, 1)]
    got = view_rows(conn, cfg, "top_tracks", "genre NULLS LAST, genre_rank")
    assert_rows(got, want, "top_tracks")
    assert len(by_genre) >= 3 and len(got) == sum(min(len(v), cfg.sql.top_n) for v in by_genre.values())


def test_cold_start_watchlist(conn, endpoint, spark):
    cfg, _ = endpoint
    cold = sorted((r for r in current_rows(spark, cfg) if r.mode == "cold_start"),
                  key=lambda r: (-r.hit_probability, r.track_id))
    want = [(i, r.track_id, r.title, r.artist_name, r.genre, r.release_date, r.release_date >= r.as_of,
             r.hit_probability, r.popularity_score, r.predicted_hit, r.audio_status, r.reasons, r.as_of)
            for i, r in enumerate(cold, 1)]
    got = view_rows(conn, cfg, "cold_start_watchlist", "watch_rank")
    assert_rows(got, want, "cold_start_watchlist")
    assert got, "the generated catalog has tracks with no engagement before as_of"


def test_model_leaderboard(conn, endpoint, spark, pipeline):
    cfg, _ = endpoint
    promotions = delta(spark, cfg, "model_promotions").collect()
    tested = {}
    for p in sorted(promotions, key=lambda p: p.promoted_at):
        tested[p.model_version] = (p.candidate_roc_auc, p.candidate_f1, p.candidate_threshold, p.test_rows,
                                   p.promoted_at)
        if p.previous_champion:
            tested[p.previous_champion] = (p.champion_roc_auc, p.champion_f1, p.champion_threshold, p.test_rows,
                                           p.promoted_at)
    models = delta(spark, cfg, "models").collect()
    rows = []
    for m in models:
        ev = json.loads(m.test_metrics) if m.test_metrics else {}     # the evaluation's figures, if any
        t = tested.get(m.model_version, (ev.get("roc_auc"), ev.get("f1"), ev.get("threshold"), ev.get("rows"),
                                         dt.datetime.fromisoformat(ev["evaluated_at"]) if ev else None))
        val = json.loads(m.metrics)["validation"]
        rows.append((m.model_version, m.variant, m.role, m.role_reason, m.created_at, m.role_changed_at, *t,
                     val.get("val_auc"), val.get("val_f1")))
    rows.sort(key=lambda r: (r[6] is None, -(r[6] or 0), -r[4].timestamp(), r[0]))
    want = [(i, *r) for i, r in enumerate(rows, 1)]
    got = view_rows(conn, cfg, "model_leaderboard", "leaderboard_rank")
    assert_rows(got, want, "model_leaderboard")
    assert got[0][1] == pipeline.model_version and got[0][3] == "champion" and got[0][7] is not None


def test_score_history_is_the_change_data_feed(conn, endpoint, spark, pipeline):
    cfg, _ = endpoint
    changes = (delta(spark, cfg, "predictions", readChangeFeed="true", startingVersion=0)
               .where(F.col("_change_type").isin("insert", "update_postimage"))
               .select(*VIEW_COLUMNS["score_history"][:10], F.col("_commit_version").alias("table_version"),
                       F.col("_commit_timestamp").alias("committed_at"))
               .orderBy("track_id", "table_version").collect())
    got = view_rows(conn, cfg, "score_history", "track_id, table_version")
    assert_rows(got, [tuple(r) for r in changes], "score_history")
    runs = {(r[8], r[7]) for r in got}
    assert runs == {(pipeline.early_run, EARLY_AS_OF), (pipeline.late_run, pipeline.late_as_of)}


def test_rising_compares_the_last_two_runs(conn, endpoint, spark, pipeline):
    """Against Delta time travel: the table as the late run found it (after the early run) vs now."""
    cfg, _ = endpoint
    late = delta(spark, cfg, "scoring_runs").where(F.col("run_id") == pipeline.late_run).first()
    before = {r.track_id: r for r in delta(spark, cfg, "predictions",
                                           versionAsOf=late.input_versions["predictions"]).collect()}
    assert {r.run_id for r in before.values()} == {pipeline.early_run}
    now = [r for r in current_rows(spark, cfg)
           if r.track_id in before and r.hit_probability > before[r.track_id].hit_probability]
    now.sort(key=lambda r: (-(r.hit_probability - before[r.track_id].hit_probability), r.track_id))
    want = []
    for i, r in enumerate(now, 1):
        b = before[r.track_id]
        want.append((i, r.track_id, r.title, r.artist_name, r.genre, b.hit_probability, r.hit_probability,
                     r.hit_probability - b.hit_probability, b.as_of, r.as_of, b.run_id, r.run_id, r.mode, r.reasons))
    got = view_rows(conn, cfg, "rising", "rise_rank")
    assert_rows(got, want, "rising")
    assert len(got) >= 3 and got[0][7] > 0


def test_prediction_outcomes_label_past_predictions_like_the_features_job(conn, endpoint, spark, pipeline):
    """The early run's predictions (their 56-day window has passed) against labels computed with the features
    job's own functions; the late run's window has not passed, so it is absent."""
    from hitcast.features.labels import add_labels, future_plays, in_cohort

    cfg, _ = endpoint
    f = cfg.features
    daily = delta(spark, cfg, "engagement_daily")
    cohort = (delta(spark, cfg, "catalog").withColumn("cutoff", F.lit(EARLY_AS_OF))
              .where(in_cohort(F.col("release_date"), F.col("cutoff"), f.cold_start_days)).select("track_id", "cutoff"))
    labels = add_labels(cohort, future_plays(daily, [EARLY_AS_OF], f.horizon_days), f.hit_share)
    late = delta(spark, cfg, "scoring_runs").where(F.col("run_id") == pipeline.late_run).first()
    early = delta(spark, cfg, "predictions", versionAsOf=late.input_versions["predictions"])
    want = (early.join(labels.withColumnRenamed("cutoff", "as_of"), ["track_id", "as_of"])
            .select("track_id", "model_version", "as_of",
                    F.date_add("as_of", f.horizon_days).alias("window_end"), "hit_probability", "predicted_hit",
                    "mode", "run_id", "future_plays", "popularity", F.col("is_hit") == 1)
            .orderBy("track_id").collect())
    got = view_rows(conn, cfg, "prediction_outcomes", "track_id, as_of")
    assert_rows(got, [tuple(r) for r in want], "prediction_outcomes")
    assert {r[2] for r in got} == {EARLY_AS_OF} and len(got) >= 30
    assert 0 < sum(r[10] for r in got) < len(got) and max(r[8] for r in got) > 0


# --- time travel, beeline -----------------------------------------------------------------------------

def test_version_and_timestamp_as_of_match_the_tables_history(conn, endpoint, spark, pipeline):
    from delta.tables import DeltaTable

    cfg, _ = endpoint
    history = {r.version: r for r in DeltaTable.forPath(spark, cfg.table("predictions")).history().collect()}
    late = delta(spark, cfg, "scoring_runs").where(F.col("run_id") == pipeline.late_run).first()
    version = late.input_versions["predictions"]                     # the table right after the early run
    assert history[version].operation == "MERGE" and max(history) > version
    want = sorted((r.track_id, r.hit_probability, r.as_of, r.run_id)
                  for r in delta(spark, cfg, "predictions", versionAsOf=version).collect())
    sql = (f"SELECT track_id, hit_probability, as_of, run_id FROM {cfg.sql.tables_database}.predictions "
           "{clause} ORDER BY track_id")
    _, by_version = fetch(conn, sql.format(clause=f"VERSION AS OF {version}"))
    committed = history[version].timestamp.strftime("%Y-%m-%d %H:%M:%S.%f")
    _, by_time = fetch(conn, sql.format(clause=f"TIMESTAMP AS OF '{committed}'"))
    assert_rows(by_version, want, "VERSION AS OF")
    assert_rows(by_time, want, "TIMESTAMP AS OF")
    assert {r[2] for r in by_version} == {EARLY_AS_OF} and {r[3] for r in by_version} == {pipeline.early_run}
    # "what did we predict for this track on date D": the latest version committed by then
    track = want[0][0]
    _, asked = fetch(conn, f"SELECT hit_probability, as_of FROM {cfg.sql.tables_database}.predictions "
                           f"TIMESTAMP AS OF %(d)s WHERE track_id = %(t)s", {"d": committed, "t": track})
    assert asked == [(want[0][1], EARLY_AS_OF)]
    _, now = fetch(conn, f"SELECT as_of FROM {cfg.sql.tables_database}.predictions WHERE track_id = %(t)s",
                   {"t": track})
    assert now == [(pipeline.late_as_of,)]


def test_beeline_reads_top_tracks(endpoint, conn):
    cfg, info = endpoint
    sql = (f"SELECT genre, genre_rank, track_id, hit_probability FROM {cfg.sql.views_database}.top_tracks "
           "ORDER BY genre, genre_rank")
    out = subprocess.run([str(server.spark_home() / "bin" / "beeline"), "-u", info.jdbc_url, "-n", "analyst",
                          "--silent=true", "--outputformat=csv2", "-e", sql],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    out = re.sub(r"^\d+: jdbc:hive2://\S*> ", "", out, flags=re.M)      # beeline echoes its prompt
    rows = list(csv.reader(io.StringIO(out.strip())))
    assert rows[0] == ["genre", "genre_rank", "track_id", "hit_probability"]
    _, want = fetch(conn, sql)
    assert len(rows) - 1 == len(want) > 0
    for got, w in zip(rows[1:], want):
        assert (got[0], int(got[1]), got[2]) == (w[0], w[1], w[2]) and float(got[3]) == pytest.approx(w[3], rel=1e-12)
