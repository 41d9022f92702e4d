"""Decoding and the crop/pad policy, on synthetic files of every awkward kind."""
from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import soxr

from audio_fixtures import make_bad_files, make_good_files, tone, write, write_tone
from hitcast.audio import compute_clip, log_mel_clip
from hitcast.audio.decode import MARGIN_SECONDS, crop_window, decode_clip
from helpers import centre_crop, dsp_settings, librosa_reference

DSP = dsp_settings(clip_seconds=2.0)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("audio")
    make_bad_files(folder)
    make_good_files(folder)
    return folder


def test_bad_files_get_their_status_and_a_message_naming_the_file(files):
    got = {}
    expected = {"empty.wav": "empty", "truncated.flac": "truncated", "truncated.wav": "truncated",
                "aac.m4a": "undecodable", "random.m4a": "undecodable", "nan.wav": "non_finite",
                "silence.wav": "silent", "short.wav": "too_short"}
    for name in expected:
        result = compute_clip(str(files / name), DSP)
        got[name] = result.status
        assert result.db is None
        assert str(files / name) in result.error
    assert got == expected
    msg = {n: compute_clip(str(files / n), DSP).error.split(": ", 1)[1] for n in expected}
    assert msg["empty.wav"] == "zero-byte file"
    assert msg["nan.wav"] == "100 NaN or infinite samples in the analysed region"
    assert msg["silence.wav"] == "silent (peak digital silence, threshold -90.0 dBFS)"
    assert msg["short.wav"] == "0.500 s of audio, below the minimum 1.0 s"
    assert msg["truncated.wav"] == "truncated: header declares 176400 data bytes, the file holds 88178"
    assert msg["truncated.flac"] == ("decoding failed after frame 19845 of 88200 declared (truncated or corrupt): "
                                     "Error : flac decoder lost sync.")
    assert msg["aac.m4a"].startswith("cannot decode: Error opening")


def test_unusual_valid_files_decode_to_the_fixed_shape(files):
    expected = {"hires.wav": (96000, 1), "float.wav": (44100, 1), "six.wav": (48000, 6), "plain.flac": (22050, 1),
                "stereo.ogg": (44100, 2), "mono.mp3": (22050, 1)}
    for name, (rate, channels) in expected.items():
        result = compute_clip(str(files / name), DSP)
        assert (name, result.status, result.error) == (name, "ok", None)
        assert result.db.shape == (64, 87) and result.db.dtype == np.float32
        assert (result.sample_rate, result.channels) == (rate, channels)
        # librosa (its own decode and resampler, then the same centre crop) gives the same log-mel
        y, _ = librosa.load(str(files / name), sr=DSP.sr)
        reference = librosa_reference(centre_crop(y, int(DSP.sr * DSP.clip_seconds)), DSP)
        assert float(np.abs(result.db - reference).max()) < 0.01, name
    assert compute_clip(str(files / "hires.wav"), DSP).duration_s == 2.0
    assert compute_clip(str(files / "plain.flac"), DSP).duration_s == 3.0


def test_center_and_start_crop_take_exact_samples(tmp_path):
    src = tone(30.0, 22050, seed=3)
    path = write(tmp_path / "long.wav", src, 22050, subtype="FLOAT")
    n = 44100
    mid = (src.size - n) // 2
    np.testing.assert_array_equal(decode_clip(str(path), DSP).y, src[mid:mid + n])
    start = dsp_settings(clip_seconds=2.0, crop="start")
    np.testing.assert_array_equal(decode_clip(str(path), start).y, src[:n])
    # max_decode_seconds caps what is considered: the centre of the first 10 s.
    capped = dsp_settings(clip_seconds=2.0, max_decode_seconds=10.0)
    np.testing.assert_array_equal(decode_clip(str(path), capped).y, src[(220500 - n) // 2:(220500 - n) // 2 + n])
    assert crop_window(220500, 22050, capped) == (88200, 44100)
    assert decode_clip(str(path), capped).duration_s == 30.0


def test_short_clips_are_padded_with_silence_at_the_end(tmp_path):
    src = tone(1.5, 22050, seed=4)
    path = write(tmp_path / "short.wav", src, 22050, subtype="FLOAT")
    y = decode_clip(str(path), DSP).y
    assert y.shape == (44100,)
    np.testing.assert_array_equal(y[:src.size], src)
    assert not y[src.size:].any()


def test_resampled_crop_matches_resampling_the_whole_file(tmp_path):
    src = tone(12.0, 44100, channels=2, seed=5)
    path = write(tmp_path / "stereo.wav", src, 44100, subtype="FLOAT")
    full = soxr.resample(src.mean(axis=1), 44100, 22050, quality="HQ")
    mid = (12 * 44100 - 2 * 44100) // 2 // 2
    y = decode_clip(str(path), DSP).y
    err = np.abs(y - full[mid:mid + 44100])
    assert float(err.max()) < 1e-3, "the 0.1 s margin must keep resampler edge effects out"
    assert MARGIN_SECONDS == 0.1


def test_bytes_and_path_give_the_same_spectrogram(files):
    data = (files / "stereo.ogg").read_bytes()
    s1, e1, db1 = log_mel_clip(str(files / "stereo.ogg"), DSP)
    s2, e2, db2 = log_mel_clip(data, DSP)
    assert (s1, e1, s2, e2) == ("ok", None, "ok", None)
    np.testing.assert_array_equal(db1, db2)
    assert log_mel_clip(b"", DSP) == ("empty", "<bytes>: zero bytes", None)


def test_ogg_streams_of_unknown_length_are_read_up_to_the_cap(tmp_path):
    # This truncated Vorbis stream has lost its last page: libsndfile reports 0 frames, so the
    # decoder reads sequentially (at most max_decode_seconds) and finds no complete packet.
    y = (0.3 * np.sin(2 * np.pi * 440 * np.arange(22050 * 4) / 22050)).astype(np.float32)
    path = write(tmp_path / "t.ogg", y, 22050)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with sf.SoundFile(str(path)) as f:
        if f.frames != 0:
            pytest.skip(f"this libvorbis build kept a readable length ({f.frames} frames)")
    result = compute_clip(str(path), DSP)
    assert (result.status, result.error) == ("empty", f"{path}: no audio frames could be decoded")


def test_an_unexpected_failure_becomes_status_error(files):
    result = compute_clip(str(files / "plain.flac"), dsp_settings(clip_seconds=2.0, crop="diagonal"))
    assert (result.status, result.db) == ("error", None)
    assert result.error == (f"{files / 'plain.flac'}: unexpected ValueError: dsp.crop must be 'center' or 'start', "
                            "got 'diagonal'")
