"""Track identity across catalogs and listening exports (``tests/fixtures/identity``, see its README): one
listener's overlapping Spotify exports, Last.fm spellings, a ListenBrainz ISRC, then a label's catalog row
that absorbs two derived tracks, then an identical re-run. Exact rows of ``engagement_events``,
``track_aliases``, ``catalog``, ``predictions`` and ``quarantine``; the rules themselves in plain Python."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from helpers import make_config
from hitcast.features.dailytable import update_engagement_daily
from hitcast.ingest.identity import Sighting, StoredAlias, resolve
from hitcast.ingest.pipeline import run_ingest
from hitcast.schemas import PREDICTIONS

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "identity"
NOW = dt.datetime(2026, 1, 1)
Q, AHA = "spotify:track:7tFiyTwD0nx5a1eklYtX2J", "spotify:track:2WfaOiMkCvy7F5fcp2zZ8L"
KQ, KA, CRAZY = "key:queen|bohemianrhapsody", "key:aha|takeonme", "key:beyonce|crazyinlove"
B_HALO, DM_HALO, DM_REMASTER = "key:beyonce|halo", "key:depechemode|halo", "key:depechemode|halo2006remaster"
ISRC, LBL = "GBAJH9000001", "LBL-001"
ACC, EXT = "paula/StreamingHistory_music_0.json", "paula/Streaming_History_Audio_2023_0.json"
LFM, LB = "quinn/recenttracks-quinn-1678400000.csv", "rose/listens.jsonl"
EVENT = Row("event_id", "user_id", "track_id", "source_track_id", "event_type", "event_time", "ms_played",
            "source_file")
ALIAS = Row("alias_kind", "alias", "track_id", "first_seen", "source")
CAT = Row("track_id", "artist_name", "title", "derived_from_logs", "source_file")


def derived_id(user: str, when: dt.datetime, track: str, ms: int | None) -> str:
    """The documented event id (:mod:`hitcast.ingest.exports`), computed independently."""
    micros = (when - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)
    obj = {"user_id": user, "event_time_us": micros, "track_id": track, "ms_played": ms}
    text = json.dumps({k: v for k, v in obj.items() if v is not None}, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def ev(user, when, track, source_id, kind, ms, file) -> Row:
    t = dt.datetime.fromisoformat(when)
    return EVENT(derived_id(user, t, source_id, ms), user, track, source_id, kind, t, ms, file)


def t(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


E1 = ev("paula", "2023-03-01T08:03:12", KQ, Q, "play", 354000, EXT)
E2 = ev("paula", "2023-03-01T08:09:41", AHA, AHA, "play", 225000, EXT)
PAULA = [E1, E2,
         ev("paula", "2023-03-02T10:00:05", AHA, AHA, "play", 31000, EXT),
         ev("paula", "2023-03-01T09:00:00", KQ, KQ, "skip", 10000, ACC),     # only in the account data
         ev("paula", "2023-03-02T10:00:00", AHA, KA, "play", 30000, ACC)]    # 31000 in the other: two listens
QUINN = [ev("quinn", "2023-03-05T12:00:00", CRAZY, CRAZY, "play", None, LFM),    # "Beyoncé feat. Jay-Z"
         ev("quinn", "2023-03-06T12:00:00", CRAZY, CRAZY, "play", None, LFM),    # "Beyonce", "(feat. JAY-Z)"
         ev("quinn", "2023-03-07T12:00:00", B_HALO, B_HALO, "play", None, LFM)]


def table(spark, cfg, name: str):
    return spark.read.format("delta").load(cfg.table(name))


def frame(spark, cfg, rows: list, name: str):
    """Rows collected from table ``name`` as a DataFrame again (its schema: NULL-only columns have no type)."""
    return spark.createDataFrame(rows, table(spark, cfg, name).schema)


@pytest.fixture(scope="module")
def runs(spark, tmp_path_factory):
    """Run 1: the exports; run 2: plus the label's catalog (and a stored score); run 3: everything again."""
    root = tmp_path_factory.mktemp("identity")
    shutil.copytree(FIXTURES / "events", root / "events")
    settings = [f"ingest.now={NOW.isoformat()}", f"ingest.events_path={root / 'events'}",
                f"ingest.catalog_path={root / 'catalog'}", "ingest.events_profile=auto", "ingest.derive_catalog=true"]
    cfg = make_config(root, *settings)
    names = ("engagement_events", "track_aliases", "catalog", "quarantine")
    first = run_ingest(spark, cfg)
    update_engagement_daily(spark, cfg)
    after1 = {n: table(spark, cfg, n).collect() for n in names}
    score = Row(*PREDICTIONS.fieldNames())(DM_HALO, "m1", 0.7, 70.0, True, "no_audio", "no_spectrogram", [], "i", "s",
                                           dt.date(2023, 3, 10), "r1", NOW)
    spark.createDataFrame([score], PREDICTIONS).write.format("delta").save(cfg.table("predictions"))
    shutil.copytree(FIXTURES / "catalog", root / "catalog")
    second = run_ingest(spark, cfg)
    after2 = {n: table(spark, cfg, n).collect() for n in (*names, "predictions")}
    after2["daily"] = update_engagement_daily(spark, cfg)
    after2["engagement_daily"] = table(spark, cfg, "engagement_daily").collect()
    third = run_ingest(spark, make_config(root, *settings, "ingest.new_files_only=false"))
    return cfg, (first, second, third), (after1, after2)


def test_one_song_is_one_track_and_an_overlapping_export_counts_a_listen_once(spark, runs):
    cfg, (first, _, _), (after1, _) = runs
    events = frame(spark, cfg, after1["engagement_events"], "engagement_events").select(*EVENT)
    assertDataFrameEqual(events, [*PAULA, *QUINN, ev("quinn", "2023-03-08T12:00:00", DM_HALO, DM_HALO, "play", None, LFM),
                                  ev("rose", "2023-03-09T12:00:00", DM_REMASTER, DM_REMASTER, "play", None, LB)])
    assert (first.ids_linked, first.tracks_merged, first.overlapping_events) == (2, 0, 2)
    assert first.events.quarantined == {"overlapping_export": 2}
    q = frame(spark, cfg, after1["quarantine"], "quarantine").select("source_file", "reason", "detail")
    qrow = Row("source_file", "reason", "detail")
    assertDataFrameEqual(q, [qrow(ACC, "overlapping_export", f"same listen as event {E1.event_id} of {EXT}"),
                             qrow(ACC, "overlapping_export", f"same listen as event {E2.event_id} of {EXT}")])
    aliases = frame(spark, cfg, after1["track_aliases"], "track_aliases").select(*ALIAS)
    assertDataFrameEqual(aliases, [
        ALIAS("key", KQ, KQ, t("2023-03-01T08:03:00"), "events"),             # first seen: the account data
        ALIAS("spotify_uri", Q, KQ, t("2023-03-01T08:03:12"), "events"),
        ALIAS("spotify_uri", AHA, AHA, t("2023-03-01T08:09:41"), "events"),    # first seen: the extended history
        ALIAS("key", KA, AHA, t("2023-03-01T08:09:41"), "events"),
        ALIAS("key", CRAZY, CRAZY, t("2023-03-05T12:00:00"), "events"),
        ALIAS("key", B_HALO, B_HALO, t("2023-03-07T12:00:00"), "events"),      # same title, other artist: two
        ALIAS("key", DM_HALO, DM_HALO, t("2023-03-08T12:00:00"), "events"),
        ALIAS("key", DM_REMASTER, DM_REMASTER, t("2023-03-09T12:00:00"), "events"),
        ALIAS("isrc", ISRC, DM_REMASTER, t("2023-03-09T12:00:00"), "events"),
    ])
    cat = frame(spark, cfg, after1["catalog"], "catalog").select(*CAT)
    assertDataFrameEqual(cat, [CAT(KQ, "Queen", "Bohemian Rhapsody", True, EXT),
                               CAT(AHA, "a-ha", "Take On Me", True, EXT),
                               CAT(CRAZY, "Beyoncé feat. Jay-Z", "Crazy In Love", True, LFM),
                               CAT(B_HALO, "Beyoncé", "Halo", True, LFM),
                               CAT(DM_HALO, "Depeche Mode", "Halo", True, LFM),
                               CAT(DM_REMASTER, "Depeche Mode", "Halo (2006 Remaster)", True, LB)])


def test_a_catalog_row_with_an_isrc_absorbs_derived_tracks_in_one_merge(spark, runs):
    cfg, (_, second, _), (_, after2) = runs
    assert (second.tracks_merged, second.events_moved, second.catalog_rows_moved, second.scores_moved) == (2, 2, 2, 1)
    assert (second.aliases_inserted, second.aliases_updated) == (1, 3)
    assert "2 tracks merged (moved 2 events, 2 catalog rows, 1 scores)" in str(second)
    events = frame(spark, cfg, after2["engagement_events"], "engagement_events").select(*EVENT)
    assertDataFrameEqual(events, [*PAULA, *QUINN, ev("quinn", "2023-03-08T12:00:00", LBL, DM_HALO, "play", None, LFM),
                                  ev("rose", "2023-03-09T12:00:00", LBL, DM_REMASTER, "play", None, LB)])
    assert {r.known_track for r in after2["engagement_events"]} == {True}
    aliases = {(r.alias_kind, r.alias): (r.track_id, r.source) for r in after2["track_aliases"]}
    assert {a: v for a, v in aliases.items() if v[0] == LBL} == {
        ("track_id", LBL): (LBL, "catalog"), ("isrc", ISRC): (LBL, "catalog"), ("key", DM_HALO): (LBL, "catalog"),
        ("key", DM_REMASTER): (LBL, "events")}
    cat = frame(spark, cfg, after2["catalog"], "catalog").select(*CAT)
    assertDataFrameEqual(cat, [CAT(KQ, "Queen", "Bohemian Rhapsody", True, EXT),
                               CAT(AHA, "a-ha", "Take On Me", True, EXT),
                               CAT(CRAZY, "Beyoncé feat. Jay-Z", "Crazy In Love", True, LFM),
                               CAT(B_HALO, "Beyoncé", "Halo", True, LFM),
                               CAT(LBL, "Depeche Mode", "Halo", False, "labels.csv")])
    assert [(r.track_id, r.model_version, r.hit_probability) for r in after2["predictions"]] == [(LBL, "m1", 0.7)]
    # the merge updated the events' track_id, so engagement_daily is rebuilt: every day's row under the id its
    # events now carry, none left under the ids that merged
    assert (after2["daily"].mode, after2["daily"].reason) == ("rebuilt", "events were updated or deleted")
    daily = {(r.track_id, str(r.event_date)): (r.plays, r.events) for r in after2["engagement_daily"]}
    assert daily[(LBL, "2023-03-08")] == (1, 1) and daily[(LBL, "2023-03-09")] == (1, 1)
    assert not {t for t, _ in daily} & {DM_HALO, DM_REMASTER}
    assert sum(n for _, n in daily.values()) == len(after2["engagement_events"])


def test_a_rerun_over_every_file_changes_nothing_and_the_sql_endpoint_serves_the_aliases(spark, runs):
    from hitcast.sql.register import warehouse_tables

    cfg, (_, _, third), (_, after2) = runs
    assert (third.tracks_merged, third.aliases_inserted, third.aliases_updated) == (0, 0, 0)
    assert (third.events.rows_inserted, third.events.quarantine_inserted, third.overlapping_events) == (0, 0, 2)
    for name in ("engagement_events", "track_aliases", "catalog", "quarantine", "predictions"):
        assertDataFrameEqual(table(spark, cfg, name), frame(spark, cfg, after2[name], name))
    # registered by the SQL endpoint (not private, no private column such as user_id)
    assert "track_aliases" in warehouse_tables(cfg) and "track_aliases" not in cfg.sql.private_tables
    assert not {c.lower() for c in cfg.sql.private_columns} & set(table(spark, cfg, "track_aliases").columns)


def test_resolution_rules_in_plain_python():
    day = lambda d: dt.datetime(2023, 1, d)  # noqa: E731
    # Two catalog tracks with one key (a remaster with its own ISRC) stay two; the key-only record goes to the
    # one first seen; two catalog ids sharing an ISRC never merge.
    r = resolve([Sighting("T1", day(5), isrc="I1", key=DM_HALO, from_catalog=True),
                 Sighting("T2", day(4), isrc="I2", key=DM_HALO, from_catalog=True),
                 Sighting(DM_HALO, day(1)), Sighting("T3", day(6), isrc="I1", from_catalog=True)],
                [], {"T1", "T2", "T3"})
    assert r.canonical == {"T1": "T1", "T2": "T2", "T3": "T3", DM_HALO: "T2"}
    # A URI record carrying a key links a key-only track; stored links stay; an earlier-seen id becomes canonical.
    stored = [StoredAlias("key", KQ, KQ, day(3), "events")]
    r = resolve([Sighting(Q, day(2), key=KQ)], stored, set())
    assert (r.canonical, r.merged) == ({Q: Q, KQ: Q}, {KQ: Q})
    assert sorted((a.alias, a.track_id, a.first_seen) for a in r.aliases.values()) == [
        (KQ, Q, day(2)), (Q, Q, day(2))]
    # A label's catalog id (no shared id) absorbs the URI track of its key: no two ids of one kind meet.
    uri_track = [StoredAlias("spotify_uri", Q, Q, day(2), "events"), StoredAlias("key", KQ, Q, day(2), "events")]
    r = resolve([Sighting("LBL-9", day(9), isrc="I9", key=KQ, from_catalog=True)], uri_track, {"LBL-9"})
    assert (r.canonical, r.merged) == ({"LBL-9": "LBL-9", Q: "LBL-9"}, {Q: "LBL-9"})
