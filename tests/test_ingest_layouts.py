"""Exports in the layouts people have, read with ``ingest.events_profile=auto``: Last.fm CSVs with and without a
header, ListenBrainz JSON lines and JSON arrays, and files no profile fits (``tests/fixtures/layouts``, see its
README). One module-scoped ingest run, re-run once; exact rows, quarantine reasons and the summary."""
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
from hitcast.ingest.layouts import Layout, choose, fits, peek
from hitcast.ingest.pipeline import run_ingest
from hitcast.ingest.profiles import read_profile

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "layouts"
NOW = "2026-01-01T00:00:00"
EVENT = Row("event_id", "user_id", "track_id", "source_track_id", "event_type", "event_time", "ms_played",
            "source_file")
QROW = Row("source_file", "reason", "detail")
GINA, LENA, HANK = "gina/scrobbles.csv", "lena/lena.csv", "hank/hank.csv"
KATE, IVY, JACK = "kate/recenttracks-kate-1612200000.csv", "ivy/listens/2021/1.jsonl", "jack/jack_lb-2021-02-01.json"
CRAZY, HOPPIPOLLA, ONE_MORE = "key:beyonce|crazyinlove", "key:sigurros|hoppipolla", "key:daftpunk|onemoretime"
BOHEMIAN, TAKE_ON_ME = "key:queen|bohemianrhapsody", "key:aha|takeonme"
LASTFM = "lastfm (uts|utc_time, artist, track)"
CSV_TRIED = ("profiles tried: " + LASTFM + "; lastfm-noheader (4 columns without a header: artist, album, track, "
             "date); lastfm-simple (artist, track|song_title, date|date_time)")
HISTORY = "no event profile fits this file: its columns: when, what, who; " + CSV_TRIED
LISTENS = ("no event profile fits this file: its fields: time, song; profiles tried: listenbrainz (listened_at, "
           "track_metadata)")


def derived_id(user: str, when: dt.datetime, track: str, ms: int | None) -> str:
    """The documented event id (:mod:`hitcast.ingest.exports`), computed independently."""
    micros = (when - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)
    obj = {"user_id": user, "event_time_us": micros, "track_id": track, "ms_played": ms}
    text = json.dumps({k: v for k, v in obj.items() if v is not None}, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def play(user: str, when: str, track: str, source: str, given: str | None = None) -> Row:
    """A scrobble or listen of ``track`` (canonical), ``given`` the id its source gave (default: ``track``)."""
    t = dt.datetime.fromisoformat(when)
    given = given or track
    return EVENT(derived_id(user, t, given, None), user, track, given, "play", t, None, source)


def table(spark, cfg, name: str):
    return spark.read.format("delta").load(cfg.table(name))


@pytest.fixture(scope="module")
def auto(spark, tmp_path_factory):
    cfg = make_config(tmp_path_factory.mktemp("layouts"), f"ingest.now={NOW}", f"ingest.events_path={FIXTURES}",
                      "ingest.events_profile=auto")
    first = run_ingest(spark, cfg)
    tables = {n: table(spark, cfg, n).collect() for n in ("engagement_events", "quarantine")}
    again = run_ingest(spark, cfg)
    return cfg, first, again, tables


def test_auto_picks_a_profile_per_file_and_maps_every_layout(spark, auto):
    cfg, summary, _, _ = auto
    assertDataFrameEqual(table(spark, cfg, "engagement_events").select(*EVENT), [
        play("gina", "2021-01-31T12:00:00", CRAZY, GINA),          # song_title, date_time "31 Jan 2021 12:00"
        play("gina", "2021-01-31T12:05:00", HOPPIPOLLA, GINA),
        play("lena", "2021-02-01T09:30:00", ONE_MORE, LENA),       # track, date "1 Feb 2021, 09:30"
        play("hank", "2021-01-31T12:00:00", BOHEMIAN, HANK),       # no header
        play("hank", "2021-01-31T12:04:00", TAKE_ON_ME, HANK),
        play("kate", "2021-01-31T10:00:00", BOHEMIAN, KATE),       # uts
        # an open.spotify.com URL; the URI and the key of Queen's song are one track, the key first seen (tie: id)
        play("ivy", "2021-01-31T10:00:00", BOHEMIAN, IVY, "spotify:track:7tFiyTwD0nx5a1eklYtX2J"),
        play("ivy", "2021-01-31T11:00:00", TAKE_ON_ME, IVY),
        play("jack", "2021-02-01T10:00:00", CRAZY, JACK, "spotify:track:5IVuqXILoxVWvWEPm82Jxr"),
        play("jack", "2021-02-01T11:00:00", ONE_MORE, JACK),       # ISO listened_at; user from the folder
    ])
    assert summary.event_profiles == {"lastfm": [KATE], "lastfm-noheader": [HANK], "lastfm-simple": [LENA, GINA],
                                      "listenbrainz": [IVY, JACK]}
    s = summary.events
    assert (s.files, s.rows_read, s.rows_valid, s.rows_inserted) == (8, 17, 10, 10)
    assert "event profiles: lastfm (1 files: " + KATE + ")" in str(summary)


def test_a_file_no_profile_fits_is_reported_once_and_kept_in_quarantine(spark, auto):
    cfg, summary, _, _ = auto
    assert summary.unfit_files == [f"odd/history.csv: {HISTORY}", f"odd/listens.json: {LISTENS}"]
    assert f"not read as events: odd/history.csv: {HISTORY}" in str(summary)
    assertDataFrameEqual(table(spark, cfg, "quarantine").select(*QROW), [
        QROW(GINA, "bad_event_time", None),
        QROW(LENA, "missing_required_value", "artist"),
        QROW(IVY, "malformed_json", "line is not a JSON object"),
        QROW(IVY, "missing_track_id", "no track id, and no artist and title to key it by"),
        QROW("odd/history.csv", "no_matching_profile", HISTORY),
        QROW("odd/history.csv", "no_matching_profile", HISTORY),
        QROW("odd/listens.json", "no_matching_profile", LISTENS),
    ])
    raw = sorted(r.raw_record for r in table(spark, cfg, "quarantine").where("source_file = 'odd/history.csv'")
                 .collect())
    assert [json.loads(r) for r in raw] == [{"when": "2021-01-31", "what": "song one", "who": "someone"},
                                            {"when": "2021-02-01", "what": "song two", "who": "someone else"}]


def test_rerun_adds_nothing_and_tries_the_unfit_files_again(spark, auto):
    cfg, _, again, before = auto
    assert (again.events.rows_inserted, again.events.quarantine_inserted) == (0, 0)
    assert again.event_profiles == {} and len(again.unfit_files) == 2    # fitted files are not read again
    for name in ("engagement_events", "quarantine"):
        assertDataFrameEqual(table(spark, cfg, name), before[name])


def test_one_named_profile_reports_a_layout_it_does_not_read_once(spark, tmp_path):
    """The case of the issue: the ``lastfm`` profile on an ``artist, album, song_title, date_time`` file."""
    cfg = make_config(tmp_path, f"ingest.now={NOW}", f"ingest.events_path={FIXTURES / 'gina'}",
                      "ingest.events_profile=lastfm")
    summary = run_ingest(spark, cfg)
    detail = f"no event profile fits this file: its columns: artist, album, song_title, date_time; profiles tried: {LASTFM}"
    assert summary.unfit_files == [f"scrobbles.csv: {detail}"]
    assert summary.events.quarantined == {"no_matching_profile": 3}
    assert [tuple(r) for r in table(spark, cfg, "quarantine").select("reason", "detail").distinct().collect()] == [
        ("no_matching_profile", detail)]


def test_layouts_and_fits_in_plain_python():
    profiles = {n: read_profile(PROJECT_ROOT / "conf" / "events" / f"{n}.yaml")
                for n in ("lastfm", "lastfm-simple", "lastfm-noheader", "listenbrainz")}
    assert peek(FIXTURES / "hank" / "hank.csv") == Layout(FIXTURES / "hank" / "hank.csv", "csv", (
        "Queen", "A Night at the Opera", "Bohemian Rhapsody", "31 Jan 2021 12:00"))
    ivy = peek(FIXTURES / IVY)
    assert (ivy.kind, ivy.fields) == ("json_lines", ("listened_at", "user_name", "track_metadata"))
    assert peek(FIXTURES / JACK).kind == "json_array" and fits(profiles["listenbrainz"], peek(FIXTURES / JACK))
    header = Layout(Path("x.csv"), "csv", ("artist", "album", "track", "date"))
    assert not fits(profiles["lastfm-noheader"], header)                 # a header is not a row
    assert choose(header, list(profiles.values())).profile == "lastfm-simple"
    assert choose(Layout(Path("x.csv"), "csv", ("a", "b", "c", "d")), list(profiles.values())).profile == \
        "lastfm-noheader"
    row = Layout(Path("x.csv"), "csv", ("Queen", "Album", "Bohemian Rhapsody", "31 Jan 2021 12:00"))
    assert choose(row, list(profiles.values())).profile == "lastfm-noheader"     # "Album" is a value here
    assert choose(Layout(Path("x.csv"), "csv", ("artist", "track")), list(profiles.values())) is None
