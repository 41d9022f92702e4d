"""Latent values of the demo label and its catalog rows (plain NumPy / pandas, no Spark).

Every track has a latent ``audio_appeal`` ``a ~ N(0, 1)`` (what its audio sounds like), a genre with a
base popularity, an ``explicit`` flag and an artist with a latent log fan base. Its listening rate
``lam`` combines them (:data:`APPEAL_WEIGHTS`). The Spotify-style audio features are noisy proxies of
``a`` (``danceability`` and ``energy`` correlate about 0.5 with it), so the audio carries information
the tabular features lack.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from hitcast.config import DemoSection
from hitcast.demo import model


@dataclass(frozen=True)
class Genre:
    """Per-genre sound and popularity."""

    name: str
    popularity: float      # added to the log listening rate
    bpm: tuple[float, float]
    f0: tuple[float, float]  # Hz of the bass/pad fundamental
    harmonics: int
    brightness: float      # harmonic k has weight k ** -brightness
    swing: float           # 0 straight, > 0 shuffled off-beats


GENRES: tuple[Genre, ...] = (
    Genre("pop", 0.45, (100, 128), (110, 220), 6, 1.2, 0.0),
    Genre("hiphop", 0.35, (80, 100), (45, 90), 4, 1.8, 0.2),
    Genre("electronic", 0.20, (120, 140), (55, 110), 10, 0.8, 0.0),
    Genre("rock", 0.05, (110, 150), (82, 165), 12, 0.9, 0.0),
    Genre("rnb", 0.0, (70, 95), (65, 130), 5, 1.5, 0.3),
    Genre("folk", -0.30, (90, 120), (130, 260), 7, 1.6, 0.1),
    Genre("jazz", -0.45, (110, 180), (98, 196), 8, 1.3, 0.5),
    Genre("classical", -0.60, (60, 90), (196, 392), 9, 1.9, 0.0),
)
GENRE_BY_NAME = {g.name: g for g in GENRES}

#: log lam = AUDIO * a + genre.popularity + EXPLICIT * explicit + FAN * log_fan_base (+ scale)
APPEAL_WEIGHTS = {"audio": 0.9, "explicit": 0.25, "fan": 0.6}
FORMATS = ("wav", "flac", "ogg")
_WORDS = ("midnight", "river", "golden", "echo", "neon", "summer", "ghost", "velvet", "paper", "fire",
          "ocean", "static", "honey", "silver", "wild", "city", "lonely", "electric", "blue", "heart")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def n_days(demo: DemoSection) -> int:
    """Days simulated: ``start_date .. end_date`` inclusive."""
    return (dt.date.fromisoformat(demo.end_date) - dt.date.fromisoformat(demo.start_date)).days + 1


def make_latents(demo: DemoSection, n_tracks: int, seed: int) -> pd.DataFrame:
    """Draw every latent value of the catalog.

    Returns
    -------
    pandas.DataFrame, one row per track (``n_tracks``), columns
        track_idx int, track_id str, artist_idx int, genre str, release_day int, explicit bool,
        audio_appeal, log_fan_base, log_rate, lam, skip_p, save_p, playlist_add_p, share_p (float64),
        duration_ms int, pool_idx int (-1 without a pool). With ``demo.audio_pool > 0`` the audio
        appeal is snapped to the pool (:func:`snap_to_pool`) before the rates are computed.
    """
    rng = np.random.default_rng([seed, 1])
    n_art = max(1, int(round(n_tracks / max(demo.tracks_per_artist, 1.0))))
    art_genre = rng.integers(0, len(GENRES), n_art)
    art_fan = rng.standard_normal(n_art)
    artist = rng.integers(0, n_art, n_tracks)
    own = rng.random(n_tracks) < 0.8
    genre_idx = np.where(own, art_genre[artist], rng.integers(0, len(GENRES), n_tracks))
    a = rng.standard_normal(n_tracks)
    explicit = rng.random(n_tracks) < 0.25
    days = n_days(demo)
    release_day = rng.integers(0, days, n_tracks)
    gpop = np.array([g.popularity for g in GENRES])[genre_idx]
    pool_idx = np.full(n_tracks, -1, dtype=np.int64)
    if demo.audio_pool > 0:
        snapped = snap_to_pool(pd.DataFrame({"genre": np.array([g.name for g in GENRES])[genre_idx],
                                             "audio_appeal": a}), demo.audio_pool)
        a, pool_idx = snapped["audio_appeal"].to_numpy(), snapped["pool_idx"].to_numpy()
    log_rate = (APPEAL_WEIGHTS["audio"] * a + gpop + APPEAL_WEIGHTS["explicit"] * explicit
                + APPEAL_WEIGHTS["fan"] * art_fan[artist])
    skip_p = _sigmoid(-0.9 - 0.6 * a)
    save_p = np.clip(0.06 * np.exp(0.3 * a), 0, 0.5)
    add_p = np.clip(0.04 * np.exp(0.3 * a), 0, 0.5)
    share_p = np.clip(0.01 * np.exp(0.3 * a), 0, 0.5)
    per_listen = 1.0 + (1.0 - skip_p) * (save_p + add_p + share_p)
    weight = model.lifetime_weight(release_day, days) * model.MEAN_BURST * per_listen
    scale = demo.events_per_track * n_tracks / float(np.sum(np.exp(log_rate) * weight))
    return pd.DataFrame({
        "track_idx": np.arange(n_tracks, dtype=np.int64),
        "track_id": [f"trk{i:07d}" for i in range(n_tracks)],
        "artist_idx": artist.astype(np.int64),
        "genre": np.array([g.name for g in GENRES])[genre_idx],
        "release_day": release_day.astype(np.int64),
        "explicit": explicit,
        "audio_appeal": a,
        "log_fan_base": art_fan[artist],
        "log_rate": log_rate,
        "lam": scale * np.exp(log_rate),
        "skip_p": skip_p, "save_p": save_p, "playlist_add_p": add_p, "share_p": share_p,
        "duration_ms": rng.integers(120_000, 300_000, n_tracks).astype(np.int64),
        "pool_idx": pool_idx,
    })


def snap_to_pool(lat: pd.DataFrame, pool_size: int) -> pd.DataFrame:
    """Give every track the pool file of its genre whose appeal is nearest to its own.

    Pool file ``p`` has genre ``GENRES[p % 8]``; the files of a genre have appeals at the normal
    quantiles ``(j + 0.5) / k``. The track's ``audio_appeal`` becomes its file's (the truth stays exact).
    Adds ``pool_idx``.
    """
    names = [g.name for g in GENRES]
    pool = pd.DataFrame({"pool_idx": np.arange(pool_size)})
    pool["genre"] = [names[p % len(names)] for p in pool["pool_idx"]]
    pool["j"] = pool.groupby("genre").cumcount()
    pool["k"] = pool.groupby("genre")["pool_idx"].transform("size")
    pool["appeal"] = norm.ppf((pool["j"] + 0.5) / pool["k"])
    lat = lat.copy()
    lat["pool_idx"] = -1
    for g, files in pool.groupby("genre"):
        sel = lat["genre"] == g
        ap = files["appeal"].to_numpy()
        nearest = np.abs(lat.loc[sel, "audio_appeal"].to_numpy()[:, None] - ap[None, :]).argmin(axis=1)
        lat.loc[sel, "pool_idx"] = files["pool_idx"].to_numpy()[nearest]
        lat.loc[sel, "audio_appeal"] = ap[nearest]
    missing = ~lat["genre"].isin(pool["genre"])
    if missing.any():  # pool smaller than the number of genres
        lat.loc[missing, "pool_idx"] = 0
        lat.loc[missing, "audio_appeal"] = float(pool["appeal"].iloc[0])
    return lat


def spotify_features(lat: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Spotify-style audio features: noisy proxies of ``audio_appeal`` plus per-genre values.

    Returns
    -------
    pandas.DataFrame indexed like ``lat`` with the 12 columns of :data:`hitcast.schemas.AUDIO_FEATURES`.
    """
    rng = np.random.default_rng([seed, 2])
    n = len(lat)
    a = lat["audio_appeal"].to_numpy()
    g = [GENRE_BY_NAME[x] for x in lat["genre"]]

    def proxy(corr: float) -> np.ndarray:
        return corr * a + np.sqrt(1 - corr ** 2) * rng.standard_normal(n)

    bright = np.array([x.brightness for x in g])
    return pd.DataFrame({
        "danceability": np.round(np.clip(0.55 + 0.13 * proxy(0.5), 0, 1), 4),
        "energy": np.round(np.clip(0.6 - 0.1 * (bright - 1.3) + 0.15 * proxy(0.5), 0, 1), 4),
        "key": rng.integers(0, 12, n).astype(float),
        "loudness": np.round(-9.0 + 2.5 * proxy(0.3), 3),
        "mode": (rng.random(n) < 0.6).astype(float),
        "speechiness": np.round(np.clip(rng.gamma(2.0, 0.03, n) + 0.1 * (lat["genre"] == "hiphop"), 0, 1), 4),
        "acousticness": np.round(np.clip(rng.beta(2, 4, n) + 0.4 * lat["genre"].isin(["folk", "classical",
                                                                                      "jazz"]), 0, 1), 4),
        "instrumentalness": np.round(np.clip(rng.beta(1, 6, n) + 0.5 * (lat["genre"] == "classical"), 0, 1), 4),
        "liveness": np.round(rng.beta(2, 8, n), 4),
        "valence": np.round(np.clip(0.5 + 0.2 * proxy(0.3), 0, 1), 4),
        "tempo": np.round([rng.uniform(*x.bpm) for x in g], 3),
        "time_signature": np.where(lat["genre"] == "jazz", 3.0, 4.0),
    }, index=lat.index)


def audio_path(track_idx: int, genre: str, pool_idx: int | None = None) -> str:
    """Relative audio path of a track (or of its pool file); the format cycles wav / flac / ogg."""
    if pool_idx is not None:
        return f"pool/{genre}/p{pool_idx:05d}.{FORMATS[pool_idx % 3]}"
    return f"{genre}/trk{track_idx:07d}.{FORMATS[track_idx % 3]}"


def make_catalog(lat: pd.DataFrame, feats: pd.DataFrame, *, demo: DemoSection, seed: int) -> pd.DataFrame:
    """Catalog rows in the input contract's layout (strings for dates, ``audio_path`` relative).

    ``lat`` must carry ``audio_path`` already (see :mod:`hitcast.demo.generate`).
    """
    rng = np.random.default_rng([seed, 3])
    start = dt.date.fromisoformat(demo.start_date)
    words = np.array(_WORDS)
    w = rng.integers(0, len(words), (len(lat), 2))
    release = [(start + dt.timedelta(days=int(d))).isoformat() for d in lat["release_day"]]
    cat = pd.DataFrame({
        "track_id": lat["track_id"],
        "title": [f"{words[i].title()} {words[j].title()}" for i, j in w],
        "artist_id": [f"art{i:06d}" for i in lat["artist_idx"]],
        "artist_name": [f"Artist {i}" for i in lat["artist_idx"]],
        "album_id": [f"alb{i:06d}-{d[:4]}" for i, d in zip(lat["artist_idx"], release)],
        "genre": lat["genre"],
        "release_date": release,
        "duration_ms": lat["duration_ms"],
        "explicit": np.where(lat["explicit"], "true", "false"),
        "audio_path": lat["audio_path"],
    })
    cat = pd.concat([cat, feats], axis=1)
    cat["updated_at"] = [f"{d}T00:00:00Z" for d in release]
    return cat
