"""audio_path resolution: only files inside the audio roots, never opened when rejected."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from audio_fixtures import symlink, write_tone
from hitcast.audio.paths import real_roots, resolve_audio_path
from hitcast.audio.status import AudioError
from hitcast.audio.track import Previous, process_track
from helpers import dsp_settings

OPENED: list[str] = []
WATCHED: set[str] = set()


def _audit(event: str, args: tuple) -> None:
    if event == "open" and args and str(args[0]) in WATCHED:
        OPENED.append(str(args[0]))


sys.addaudithook(_audit)


@pytest.fixture
def layout(tmp_path: Path):
    root, root2, outside = tmp_path / "audio", tmp_path / "audio2", tmp_path / "outside"
    write_tone(root / "pop" / "a.wav", 1.5)
    write_tone(root2 / "b.wav", 1.5)
    write_tone(outside / "secret.wav", 1.5)
    symlink(root / "link_out.wav", outside / "secret.wav")
    symlink(root / "link_in.wav", root / "pop" / "a.wav")
    symlink(root / "dir_out", outside)
    return real_roots([root, root2]), root.resolve(), root2.resolve(), outside.resolve()


def status_of(path, roots) -> tuple[str, str]:
    with pytest.raises(AudioError) as info:
        resolve_audio_path(path, roots)
    return info.value.status, str(info.value)


def test_relative_paths_resolve_inside_roots_in_order(layout):
    roots, root, root2, _ = layout
    assert resolve_audio_path("pop/a.wav", roots) == str(root / "pop" / "a.wav")
    assert resolve_audio_path("b.wav", roots) == str(root2 / "b.wav")
    assert resolve_audio_path("link_in.wav", roots) == str(root / "pop" / "a.wav")


def test_file_uri_and_absolute_path_inside_a_root_are_accepted(layout):
    roots, root, root2, _ = layout
    assert resolve_audio_path(f"file://{root}/pop/a.wav", roots) == str(root / "pop" / "a.wav")
    assert resolve_audio_path(f"file://localhost{root2}/b.wav", roots) == str(root2 / "b.wav")
    assert resolve_audio_path(f"file://{root}/pop/%61.wav", roots) == str(root / "pop" / "a.wav")
    assert resolve_audio_path(str(root2 / "b.wav"), roots) == str(root2 / "b.wav")


def test_escapes_are_rejected_with_a_reason(layout):
    roots, root, _, outside = layout
    assert status_of("../outside/secret.wav", roots) == (
        "rejected_path", "audio_path '../outside/secret.wav' rejected: '..' is not allowed")
    assert status_of("pop/../../outside/secret.wav", roots)[0] == "rejected_path"
    assert status_of(f"file://{outside}/secret.wav", roots) == (
        "rejected_path", f"audio_path 'file://{outside}/secret.wav' rejected: lies outside the audio roots "
                         f"({outside}/secret.wav)")
    assert status_of("/etc/passwd", roots) == (
        "rejected_path", "audio_path '/etc/passwd' rejected: lies outside the audio roots (/etc/passwd)")
    assert status_of("link_out.wav", roots) == (
        "rejected_path", f"audio_path 'link_out.wav' rejected: is a symlink that resolves outside the audio roots "
                         f"({outside}/secret.wav)")
    assert status_of("dir_out/secret.wav", roots)[0] == "rejected_path"
    assert status_of("http://example.org/a.wav", roots) == (
        "rejected_path", "audio_path 'http://example.org/a.wav' rejected: scheme 'http' is not allowed (only file://)")
    assert status_of("s3://bucket/a.wav", roots) == (
        "rejected_path", "audio_path 's3://bucket/a.wav' rejected: scheme 's3' is not allowed (only file://)")
    assert status_of(f"file://otherhost{root}/pop/a.wav", roots)[1].endswith("rejected: file:// URI with a host")
    assert status_of("pop\\a.wav", roots)[0] == "rejected_path"
    assert status_of("pop/a.wav\x00.txt", roots)[0] == "rejected_path"


def test_missing_and_no_audio(layout):
    roots, root, _, _ = layout
    assert status_of("pop/nope.wav", roots) == (
        "missing", f"audio file {root}/pop/nope.wav not found (nor under 1 other root(s))")
    assert status_of("pop", roots) == ("missing", f"audio file {root}/pop is not a regular file")
    assert status_of(None, roots) == ("no_audio", "track has no audio_path")
    assert status_of("  ", roots) == ("no_audio", "track has no audio_path")
    assert status_of("a.wav", []) == ("rejected_path", "audio_path 'a.wav' rejected: no audio roots are configured")


def test_rejected_files_are_never_opened(layout):
    roots, root, _, outside = layout
    secret = str(outside / "secret.wav")
    WATCHED.update({secret, str(root / "link_out.wav")})
    OPENED.clear()
    dsp = dsp_settings(clip_seconds=1.0)
    for path in ["link_out.wav", f"file://{secret}", "../outside/secret.wav", "dir_out/secret.wav"]:
        row = process_track("t", path, prev=Previous(), dsp=dsp, roots=roots, version="v1")
        assert (row["status"], row["content_hash"], row["mel"]) == ("rejected_path", None, None)
    assert OPENED == []
    # The same file through an allowed root is opened, so the audit hook does see opens. (It sees
    # Python's open, used by the hash; libsndfile's decode is only ever reached after the hash.)
    ok = process_track("t", "secret.wav", prev=Previous(), dsp=dsp, roots=real_roots([outside]), version="v1")
    assert ok["status"] == "ok" and OPENED == [secret]
