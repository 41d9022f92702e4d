"""The prospects page: one self-contained HTML file (images inline) that an A&R person opens in a browser.

One card per file, in rank order: its score, audio status, metadata, the reasons behind its score and its
log-mel spectrogram.
"""
from __future__ import annotations

import base64
import html
import io
import logging
from pathlib import Path
from typing import Sequence

from pyspark.sql import DataFrame

from hitcast.melcodec import decode

log = logging.getLogger(__name__)

STYLE = """body{font-family:sans-serif;margin:2em;max-width:70em;color:#222}
table{border-collapse:collapse}td,th{padding:.2em .6em;text-align:left;border-bottom:1px solid #ddd}
.card{display:flex;gap:1.5em;align-items:flex-start;margin:1.2em 0;padding-bottom:1em;border-bottom:1px solid #ccc}
.rank{font-size:2em;width:2em}.bad{color:#a40}.num{text-align:right}"""


def spectrogram_png(row: dict, *, sample_rate: int, hop_length: int) -> bytes:
    """A PNG of one ``spectrograms`` row's log-mel (dB over time in seconds and mel band).

    Parameters
    ----------
    row : dict
        ``mel`` (uint8 bytes), ``n_mels``, ``n_frames``, ``db_offset``, ``db_scale``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    db = decode(row["mel"], n_mels=row["n_mels"], n_frames=row["n_frames"], db_offset=row["db_offset"],
                db_scale=row["db_scale"])
    fig, ax = plt.subplots(figsize=(5.0, 1.9))
    seconds = row["n_frames"] * hop_length / sample_rate
    img = ax.imshow(db, origin="lower", aspect="auto", cmap="magma", extent=(0.0, seconds, 0, row["n_mels"]))
    ax.set_xlabel("seconds")
    ax.set_ylabel("mel band")
    fig.colorbar(img, ax=ax, label="dB")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


def _reasons_html(reasons: Sequence[dict] | None) -> str:
    if not reasons:
        return "<p>no reasons</p>"
    cells = "".join(f"<tr><td>{html.escape(r['input'])}</td><td class=num>{r['contribution']:+.3f}</td></tr>"
                    for r in reasons)
    return f"<table><tr><th>input</th><th>contribution</th></tr>{cells}</table>"


def card(rank: int, row: dict, png: bytes | None) -> str:
    """One file's HTML block (``row``: a ``prospects`` row as a dict)."""
    score = "-" if row["hit_probability"] is None else f"{row['hit_probability']:.3f}"
    facts = [("artist", row.get("artist_name")), ("title", row.get("title")), ("genre", row.get("genre")),
             ("duration", None if row.get("duration_s") is None else f"{row['duration_s']:.1f} s")]
    meta = " · ".join(f"{k}: {html.escape(str(v))}" for k, v in facts if v is not None)
    status = html.escape(row["audio_status"])
    if row["audio_status"] != "ok":
        status = f"<span class=bad>{status}: {html.escape(row.get('audio_error') or '')}</span> (scored from " \
                 f"metadata alone)"
    image = (f"<img alt='log-mel spectrogram of {html.escape(row['track_id'])}' "
             f"src='data:image/png;base64,{base64.b64encode(png).decode()}'>" if png else "<p>no spectrogram</p>")
    return (f"<div class=card><div class=rank>{rank}</div><div><h3>{html.escape(row['track_id'])}</h3>"
            f"<p>P(hit) <b>{score}</b>{' (predicted hit)' if row.get('predicted_hit') else ''} · audio {status}</p>"
            f"<p>{meta}</p>{_reasons_html(row.get('reasons'))}</div><div>{image}</div></div>")


def write_page(ranked: Sequence[dict], spectrograms: DataFrame, *, path: Path, title: str,
               sample_rate: int, hop_length: int) -> Path:
    """Write the page for ``ranked`` (``prospects`` rows, best first) with each file's spectrogram from
    ``spectrograms`` (``ROW_SCHEMA``); returns ``path``."""
    mels = {r["track_id"]: r.asDict() for r in spectrograms.where("status = 'ok'")
            .select("track_id", "mel", "n_mels", "n_frames", "db_offset", "db_scale").collect()}
    cards = []
    for i, row in enumerate(ranked, 1):
        spec = mels.get(row["track_id"])
        png = spectrogram_png(spec, sample_rate=sample_rate, hop_length=hop_length) if spec else None
        cards.append(card(i, row, png))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title>"
                    f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
                    f"<p>{len(ranked)} files, ranked by hit probability in cold-start mode (no engagement yet).</p>"
                    f"{''.join(cards)}</body></html>", encoding="utf-8")
    log.info("prospects page: %s", path)
    return path
