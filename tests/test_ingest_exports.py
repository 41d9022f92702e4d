"""Listening-history exports through event profiles: Spotify Extended streaming history, Spotify account
data and Last.fm scrobbles, on the hand-written files of ``tests/fixtures/exports`` (see its README).

One module-scoped ingest run per format; each test asserts exact ``engagement_events`` rows, quarantine
reasons and the ingest summary. Spotify's two formats also derive the catalog from the logs, and the
Extended one is re-ingested (idempotent; a catalog file then wins over a derived row) and carried through
spectrograms and scoring's features and mode.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from helpers import make_config
from hitcast.config import PROJECT_ROOT
from hitcast.errors import ConfigError
from hitcast.ingest.pipeline import run_ingest
from hitcast.ingest.profiles import read_profile, resolve_profile
from hitcast.ingest.trackkey import track_key

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "exports"
NOW = "2026-01-01T00:00:00"
TABLES = ("catalog", "engagement_events", "quarantine")
EVENT = Row("event_id", "user_id", "track_id", "event_type", "event_time", "ms_played", "known_track",
            "event_date", "source_file")
QROW = Row("source_file", "reason", "detail")
CAT = Row("track_id", "artist_name", "title", "artist_id", "release_date", "audio_path", "source_file",
          "derived_from_logs")

RICK, AHA, QUEEN = ("spotify:track:4PTG3Z6ehGkBFwjybzWkR8", "spotify:track:2WfaOiMkCvy7F5fcp2zZ8L",
                    "spotify:track:7tFiyTwD0nx5a1eklYtX2J")
ALICE0, ALICE1, BOB = ("alice/Streaming_History_Audio_2023_0.json", "alice/Streaming_History_Audio_2023_1.json",
                       "bob/endsong_0.json")
CAROL0, CAROL1 = "carol/StreamingHistory_music_0.json", "carol/StreamingHistory_music_1.json"
DAVE0, DAVE1, ERIN = "recenttracks-dave-1700000000.csv", "recenttracks-dave-1710000000.csv", "erin/scrobbles.csv"
NO_KEY = "no track id, and no artist and title to key it by"


def utc(text: str) -> dt.datetime:
    """A naive UTC datetime (the session time zone and the tests' are UTC)."""
    return dt.datetime.fromisoformat(text)


def derived_id(user: str, when: dt.datetime, track: str, ms: int | None) -> str:
    """The documented event id (:mod:`hitcast.ingest.exports`), computed independently."""
    micros = (when - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)
    obj = {"user_id": user, "event_time_us": micros, "track_id": track, "ms_played": ms}
    text = json.dumps({k: v for k, v in obj.items() if v is not None}, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def event(user, when, track, kind, ms, source, known) -> Row:
    t = utc(when)
    return EVENT(derived_id(user, t, track, ms), user, track, kind, t, ms, known, t.date(), source)


def ingest(spark, tmp_path_factory, name: str, *overrides: str):
    """Ingest ``tests/fixtures/exports/<name>`` with the profile of that name."""
    cfg = make_config(tmp_path_factory.mktemp(name), f"ingest.now={NOW}", f"ingest.events_path={FIXTURES / name}",
                      f"ingest.events_profile={name}", *overrides)
    summary = run_ingest(spark, cfg)
    return cfg, summary


def table(spark, cfg, name: str):
    return spark.read.format("delta").load(cfg.table(name))


def quarantine(spark, cfg):
    return table(spark, cfg, "quarantine").where("source = 'events'").select(*QROW)


# --- Spotify Extended streaming history ---------------------------------------------------------------

@pytest.fixture(scope="module")
def extended(spark, tmp_path_factory):
    cfg, summary = ingest(spark, tmp_path_factory, "spotify-extended", "ingest.derive_catalog=true")
    return cfg, summary, {name: table(spark, cfg, name).collect() for name in TABLES}


EXTENDED_EVENTS = [
    event("alice", "2023-03-01T08:00:00", RICK, "play", 213573, ALICE0, True),     # skipped: false
    event("alice", "2023-03-01T08:04:00", AHA, "skip", 12000, ALICE0, True),       # skipped: true
    event("alice", "2023-03-01T08:30:00", QUEEN, "skip", 5000, ALICE0, True),      # +01:00; skipped null, < 30 s
    event("alice", "2023-03-02T19:00:00", QUEEN, "play", 354000, ALICE1, True),
    event("alice", "2023-03-02T19:10:00", AHA, "play", 45000, ALICE1, True),       # skipped null, >= 30 s
    event("bob.listener", "2022-12-31T23:59:59", RICK, "play", 200000, BOB, True),  # user from `username`
    event("bob.listener", "2023-01-01T00:04:00", AHA, "play", 31000, BOB, True),
]


def test_extended_history_maps_onto_the_events_contract(spark, extended):
    cfg, summary, _ = extended
    assertDataFrameEqual(table(spark, cfg, "engagement_events").select(*EVENT), EXTENDED_EVENTS)
    s = summary.events
    assert (s.files, s.rows_read, s.rows_valid, s.rows_inserted) == (3, 13, 7, 7)
    assert s.skipped == {"podcast_episode": 1}          # counted, skipped, never quarantined
    assert "1 skipped as not music {'podcast_episode': 1}" in str(summary)


def test_extended_history_quarantines_what_it_cannot_map(spark, extended):
    cfg, summary, _ = extended
    assertDataFrameEqual(quarantine(spark, cfg), [
        QROW(ALICE0, "missing_required_value", "ms_played"),
        QROW(ALICE0, "missing_track_id", NO_KEY),
        QROW(ALICE0, "duplicate_event", None),           # an exact copy in the same file
        QROW(ALICE1, "duplicate_event", None),           # the +01:00 listen again, written with Z
        QROW(BOB, "malformed_json", "element is not a JSON object"),
    ])
    assert summary.events.quarantined == {"missing_required_value": 1, "missing_track_id": 1,
                                          "duplicate_event": 2, "malformed_json": 1}
    raw = {(r.source_file, r.reason): r.raw_record for r in table(spark, cfg, "quarantine").collect()}
    assert raw[(BOB, "malformed_json")] == "5"
    assert json.loads(raw[(ALICE1, "duplicate_event")])["ts"] == "2023-03-01T08:30:00Z"


def test_extended_history_derives_catalog_rows_without_audio(spark, extended):
    cfg, summary, _ = extended
    assertDataFrameEqual(table(spark, cfg, "catalog").select(*CAT), [
        CAT(RICK, "Rick Astley", "Never Gonna Give You Up", None, dt.date(2022, 12, 31), None, BOB, True),
        CAT(AHA, "a-ha", "Take On Me", None, dt.date(2023, 1, 1), None, BOB, True),
        CAT(QUEEN, "Queen", "Bohemian Rhapsody", None, dt.date(2023, 3, 1), None, ALICE0, True),
    ])
    assert (summary.derived_inserted, summary.derived_updated, summary.unknown_track_events) == (3, 0, 0)


def test_derived_catalog_tracks_are_scored_without_audio(spark, extended):
    """Scoring's own steps (features as of a date, spectrogram status, mode) on the derived catalog: a track
    with events before ``as_of`` is ``no_audio``, one without is ``cold_start``; no model is trained here."""
    from hitcast.features.dailytable import update_engagement_daily
    from hitcast.scoring.featurecache import scoring_features
    from hitcast.scoring.inputs import MODE_COLUMN, light_inputs, with_mode
    from hitcast.spectrograms.stage import run_spectrograms
    from hitcast.tables import read_table, table_version

    cfg, _, _ = extended
    specs = run_spectrograms(spark, cfg)
    assert specs.table_by_status == {"no_audio": 3}
    as_of = dt.date(2023, 3, 1)                       # Queen's first listen is on that day: not before it
    update_engagement_daily(spark, cfg)
    versions = {n: table_version(spark, cfg.table(n)) for n in ("catalog", "engagement_daily")}
    features, _ = scoring_features(spark, cfg, catalog=read_table(spark, cfg, "catalog"),
                                   daily=read_table(spark, cfg, "engagement_daily"), as_of=as_of,
                                   versions=versions)
    inputs = with_mode(light_inputs(features, read_table(spark, cfg, "spectrograms")), uses_audio=True)
    row = Row("track_id", "artist_name", "cold_start", "status", MODE_COLUMN)
    assertDataFrameEqual(inputs.select(*row), [row(RICK, "Rick Astley", False, "no_audio", "no_audio"),
                                               row(AHA, "a-ha", False, "no_audio", "no_audio"),
                                               row(QUEEN, "Queen", True, "no_audio", "cold_start")])


def test_reingest_adds_nothing_and_a_catalog_file_wins_over_a_derived_row(spark, extended):
    cfg, _, before = extended
    catalog = cfg.path(cfg.ingest.catalog_path)
    catalog.mkdir(parents=True)
    (catalog / "cat.csv").write_text("track_id,title,artist_name,release_date,audio_path\n"
                                     f"{QUEEN},Bohemian Rhapsody,Queen,1975-10-31,queen/bohemian.wav\n")
    again = run_ingest(spark, cfg)
    assert (again.events.rows_inserted, again.events.quarantine_inserted) == (0, 0)
    assert (again.derived_inserted, again.derived_updated, again.catalog.rows_updated) == (0, 0, 1)
    for name in ("engagement_events", "quarantine"):
        assertDataFrameEqual(table(spark, cfg, name), before[name], rtol=0, atol=0)
    assertDataFrameEqual(table(spark, cfg, "catalog").select(*CAT), [
        CAT(RICK, "Rick Astley", "Never Gonna Give You Up", None, dt.date(2022, 12, 31), None, BOB, True),
        CAT(AHA, "a-ha", "Take On Me", None, dt.date(2023, 1, 1), None, BOB, True),
        CAT(QUEEN, "Queen", "Bohemian Rhapsody", None, dt.date(1975, 10, 31), "queen/bohemian.wav", "cat.csv",
            False),
    ])


# --- Spotify account data ----------------------------------------------------------------------------

CRAZY, TAKE_ON_ME, BOHEMIAN = "key:beyonce|crazyinlove", "key:aha|takeonme", "key:queen|bohemianrhapsody"


@pytest.fixture(scope="module")
def account(spark, tmp_path_factory):
    return ingest(spark, tmp_path_factory, "spotify-account", "ingest.derive_catalog=true")


def test_account_history_maps_onto_the_events_contract(spark, account):
    cfg, summary = account
    assertDataFrameEqual(table(spark, cfg, "engagement_events").select(*EVENT), [
        event("carol", "2022-11-05T20:14:00", CRAZY, "play", 236133, CAROL0, True),      # "(feat. JAY-Z)"
        event("carol", "2022-11-05T20:15:00", TAKE_ON_ME, "skip", 9000, CAROL0, True),   # < 30 s
        event("carol", "2022-11-05T20:20:00", BOHEMIAN, "play", 354320, CAROL0, True),   # 21:20+01:00
        event("carol", "2022-11-06T08:00:00", CRAZY, "play", 30000, CAROL1, True),       # "BEYONCE", 30 s
    ])
    s = summary.events
    assert (s.files, s.rows_read, s.rows_valid, s.rows_inserted) == (3, 8, 4, 4)
    assert s.skipped == {"podcast_episode": 1}


def test_account_history_quarantines_what_it_cannot_map(spark, account):
    cfg, summary = account
    assertDataFrameEqual(quarantine(spark, cfg), [
        QROW(CAROL0, "missing_required_value", "artistName"),
        QROW(CAROL0, "duplicate_event", None),
        QROW(CAROL1, "bad_event_time", None),
    ])
    assert summary.events.quarantined == {"missing_required_value": 1, "duplicate_event": 1, "bad_event_time": 1}


def test_account_history_derives_catalog_rows_by_artist_and_title_key(spark, account):
    cfg, summary = account
    day = dt.date(2022, 11, 5)
    assertDataFrameEqual(table(spark, cfg, "catalog").select(*CAT), [
        CAT(CRAZY, "Beyoncé", "Crazy In Love (feat. JAY-Z)", None, day, None, CAROL0, True),
        CAT(TAKE_ON_ME, "a-ha", "Take On Me", None, day, None, CAROL0, True),
        CAT(BOHEMIAN, "Queen", "Bohemian Rhapsody", None, day, None, CAROL0, True),
    ])
    assert summary.derived_inserted == 3


# --- Last.fm scrobbles ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lastfm(spark, tmp_path_factory):
    return ingest(spark, tmp_path_factory, "lastfm")


def test_lastfm_scrobbles_map_onto_the_events_contract(spark, lastfm):
    cfg, summary = lastfm
    assertDataFrameEqual(table(spark, cfg, "engagement_events").select(*EVENT), [
        event("dave", "2023-11-14T19:26:40", BOHEMIAN, "play", None, DAVE0, False),   # user from the file name
        event("dave", "2023-11-14T19:30:00", CRAZY, "play", None, DAVE0, False),      # no uts: utc_time
        event("dave", "2024-03-09T13:13:20", "key:queen|dontstopmenow", "play", None, DAVE1, False),
        event("erin", "2023-11-14T22:13:20", BOHEMIAN, "play", None, ERIN, False),    # user from the folder
    ])
    s = summary.events
    assert (s.files, s.rows_read, s.rows_valid, s.rows_inserted, s.skipped) == (3, 7, 4, 4, {})
    assert summary.unknown_track_events == 4 and summary.derived_inserted == 0   # ingest.derive_catalog off


def test_lastfm_scrobbles_quarantine_what_they_cannot_map(spark, lastfm):
    cfg, summary = lastfm
    assertDataFrameEqual(quarantine(spark, cfg), [
        QROW(DAVE0, "missing_required_value", "track"),
        QROW(DAVE0, "duplicate_event", None),            # the same scrobble twice in one export
        QROW(DAVE1, "duplicate_event", None),            # and again in the next, overlapping export
    ])
    assert summary.events.quarantined == {"missing_required_value": 1, "duplicate_event": 2}


# --- Pure pieces: the track key and the profile files ----------------------------------------------------

@pytest.mark.parametrize("artist,title,key", [
    ("Beyoncé", "Crazy In Love (feat. JAY-Z)", CRAZY),
    ("BEYONCE", "Crazy in Love", CRAZY),
    ("Beyoncé feat. Jay-Z", "Crazy In Love [ft. Jay-Z]", CRAZY),
    ("Simon & Garfunkel", "The Boxer", "key:simonandgarfunkel|theboxer"),
    ("!!!", "Me and Giuliani Down by the School Yard", "key:!!!|meandgiulianidownbytheschoolyard"),
    ("Sigur Rós", "Hoppípolla", "key:sigurros|hoppipolla"),
    ("a-ha", "", None),
    (None, "Take On Me", None),
])
def test_track_key_normalises_artist_and_title(artist, title, key):
    assert track_key(artist, title) == key


def test_shipped_profiles_load_and_a_bad_profile_names_its_key(tmp_path, cfg):
    for name in ("spotify-extended", "spotify-account", "lastfm"):
        assert read_profile(PROJECT_ROOT / "conf" / "events" / f"{name}.yaml").profile == name
    text = (PROJECT_ROOT / "conf" / "events" / "lastfm.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("skip_below_ms: 0", "skip_below_ms: 0\nskip_above_ms: 1"))
    with pytest.raises(ConfigError, match="unknown event profile key 'skip_above_ms'"):
        read_profile(bad)
    bad.write_text(text.replace("  event_type: \"'play'\"\n", ""))
    with pytest.raises(ConfigError, match="fields.event_type"):
        read_profile(bad)
    with pytest.raises(ConfigError, match="no profile named 'spotify' .*spotify-extended"):
        resolve_profile(make_config(tmp_path, "ingest.events_profile=spotify"))
    assert resolve_profile(cfg) is None
