"""Decoding real recordings (``../shared/data/audio-clips``) and MP3 / FLAC / 24-bit WAV encodings of them.

Every file gets the status a listener would agree with: whole recordings and whole excerpts are ``ok``
(also when shorter than the analysed clip), half a second is ``too_short``, digital silence is ``silent``,
and a file with bytes chopped off its end is ``truncated``. An MP3 whose length libsndfile over-estimates by
a few hundred frames (its frame count is an estimate) is whole, so it is ``ok``.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from helpers import dsp_settings
from hitcast.audio import compute_clip, n_frames
from hitcast.audio import decode as decode_module
from hitcast.audio.decode import MPEG_SLACK_FRAMES

DSP = dsp_settings()                     # conf/base.yaml: 8-second clip, 1-second minimum
ENCODINGS = {"mp3": ("MP3", "MPEG_LAYER_III"), "flac": ("FLAC", "PCM_16"), "wav24": ("WAV", "PCM_24")}
TRUMPET = "sorohanro_-_solo-trumpet-06.hq.ogg"


@pytest.fixture(scope="module")
def clips(shared_data) -> list[Path]:
    folder = shared_data / "audio-clips"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    found = sorted(folder.glob("*.ogg"))
    assert len(found) == 30, [p.name for p in found]
    return found


def encode(path: Path, y: np.ndarray, sr: int, kind: str) -> Path:
    fmt, subtype = ENCODINGS[kind]
    sf.write(str(path), y, sr, format=fmt, subtype=subtype)
    return path


def excerpt(clip: Path, start_s: float, seconds: float) -> tuple[np.ndarray, int]:
    """``seconds`` of ``clip`` from ``start_s`` (frames x channels, float32) and its sample rate."""
    with sf.SoundFile(str(clip)) as f:
        f.seek(int(start_s * f.samplerate))
        return f.read(int(round(seconds * f.samplerate)), dtype="float32", always_2d=True), f.samplerate


def overstate_mp3_length(path: Path, extra_frames: int = 1) -> Path:
    """Raise the MPEG frame count in the MP3's Xing/Info header by ``extra_frames``, in place.

    libsndfile then declares more frames than the stream decodes to, as it does for real MP3s whose header
    or size-based estimate is off by a little.
    """
    data = bytearray(path.read_bytes())
    at = max(data.find(b"Xing", 0, 200), data.find(b"Info", 0, 200))
    assert at > 0 and struct.unpack(">I", data[at + 4:at + 8])[0] & 1, "no Xing/Info frame count"
    count = struct.unpack(">I", data[at + 8:at + 12])[0]
    data[at + 8:at + 12] = struct.pack(">I", count + extra_frames)
    path.write_bytes(bytes(data))
    return path


def chop(path: Path, keep: float) -> Path:
    """Keep the first ``keep`` share of the file's bytes, in place (a download cut short)."""
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    return path


def declared_and_decoded(path: Path) -> tuple[int, int]:
    with sf.SoundFile(str(path)) as f:
        return f.frames, f.read(dtype="float32", always_2d=True).shape[0]


def test_every_real_clip_decodes_ok_with_its_own_rate_channels_and_length(clips):
    got, facts = {}, {}
    for clip in clips:
        result = compute_clip(str(clip), DSP)
        got[clip.name] = (result.status, result.error)
        info = sf.info(str(clip))
        facts[clip.name] = (result.sample_rate, result.channels, result.duration_s, result.db.shape)
        assert facts[clip.name] == (info.samplerate, info.channels, info.frames / info.samplerate,
                                    (DSP.n_mels, n_frames(DSP))), clip.name
        assert abs(float(result.db.max())) < 1e-4 and float(result.db.min()) >= -DSP.top_db   # dB re the clip's peak
    assert got == {clip.name: ("ok", None) for clip in clips}
    # Mono 22.05 kHz and stereo 44.1 / 48 kHz, mono 16 kHz speech, and a 2.7-second bird call (padded)
    assert {(rate, ch) for rate, ch, _, _ in facts.values()} == {(22050, 1), (44100, 2), (44100, 1), (16000, 1),
                                                                (48000, 2)}
    assert round(facts["456440__inspectorj__bird-whistling-robin-single-13.ogg"][2], 2) == 2.7


def test_encodings_of_real_clips_get_the_status_a_listener_expects(clips, tmp_path):
    # Each recording once (the .hq versions: 44.1 / 48 kHz stereo, 16 kHz speech, a 44.1 kHz mono whale).
    expected, got = {}, {}
    for clip in (c for c in clips if c.name.endswith(".hq.ogg")):
        stem = clip.name[:-len(".hq.ogg")]
        start = 0.0 if sf.info(str(clip)).duration < 10 else 5.0
        five, sr = excerpt(clip, start, 5.0)            # shorter than the 8-second clip: analysed whole, padded
        for kind in ENCODINGS:
            expected[f"{stem}.5s.{kind}"] = "ok"
            encode(tmp_path / f"{stem}.5s.{kind}", five, sr, kind)
        whole = min(sf.info(str(clip)).duration, 20.0)  # longer than the clip: the centre 8 s
        y, _ = excerpt(clip, 0.0, whole)
        expected[f"{stem}.long.mp3"] = "ok"
        encode(tmp_path / f"{stem}.long.mp3", y, sr, "mp3")
        half = five[:sr // 2]                           # below dsp.min_seconds
        for kind in ("mp3", "wav24"):
            expected[f"{stem}.half.{kind}"] = "too_short"
            encode(tmp_path / f"{stem}.half.{kind}", half, sr, kind)
        for kind in ENCODINGS:                          # a download cut short: the last 40 % of the bytes lost
            expected[f"{stem}.cut.{kind}"] = "truncated"
            chop(encode(tmp_path / f"{stem}.cut.{kind}", five, sr, kind), 0.6)
    for kind in ("mp3", "flac"):
        expected[f"silence.{kind}"] = "silent"
        encode(tmp_path / f"silence.{kind}", np.zeros((5 * 44100, 2), np.float32), 44100, kind)
    for name in expected:
        result = compute_clip(str(tmp_path / name), DSP)
        got[name] = result.status
        assert (result.status == "ok") == (result.error is None) and (result.db is not None) == (result.status == "ok")
        if result.error:
            assert str(tmp_path / name) in result.error
    assert got == expected
    assert len(expected) == 15 * 9 + 2


def test_mp3_whose_length_libsndfile_overestimates_is_whole_not_truncated(clips, tmp_path, monkeypatch):
    trumpet = next(c for c in clips if c.name == TRUMPET)
    y, sr = excerpt(trumpet, 0.0, 5.0)
    path = overstate_mp3_length(encode(tmp_path / "trumpet-5s.mp3", y, sr, "mp3"))
    declared, decoded = declared_and_decoded(path)
    assert 0 < declared - decoded <= MPEG_SLACK_FRAMES, (declared, decoded)   # the estimate says a little more
    result = compute_clip(str(path), DSP)
    assert (result.status, result.error, result.sample_rate, result.channels) == ("ok", None, 44100, 2)
    assert result.duration_s == decoded / sr                                    # what it decodes to
    # Without the allowance for the estimate, this whole file would be reported as cut short.
    monkeypatch.setattr(decode_module, "MPEG_SLACK_FRAMES", 0)
    strict = compute_clip(str(path), DSP)
    assert (strict.status, strict.error) == ("truncated", f"{path}: decoded {decoded} of {declared} declared "
                                                          "frames (truncated or corrupt)")


def test_mp3_cut_short_keeps_truncated_even_by_a_few_percent(clips, tmp_path):
    trumpet = next(c for c in clips if c.name == TRUMPET)
    y, sr = excerpt(trumpet, 0.0, 5.0)
    statuses = {}
    for keep in (0.97, 0.9, 0.5):
        path = chop(encode(tmp_path / f"trumpet-{keep}.mp3", y, sr, "mp3"), keep)
        declared, decoded = declared_and_decoded(path)
        assert declared == 5 * sr and declared - decoded > MPEG_SLACK_FRAMES, (keep, declared, decoded)
        result = compute_clip(str(path), DSP)
        statuses[keep] = result.status
        assert result.error == f"{path}: decoded {decoded} of {declared} declared frames (truncated or corrupt)"
    assert statuses == {0.97: "truncated", 0.9: "truncated", 0.5: "truncated"}
    # Overstated length and a cut at once: still truncated.
    both = overstate_mp3_length(chop(encode(tmp_path / "trumpet-both.mp3", y, sr, "mp3"), 0.9))
    assert compute_clip(str(both), DSP).status == "truncated"
