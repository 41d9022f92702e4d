"""A track id for exports without one: ``key:<artist>|<title>``, both normalised.

Normalisation, in order (the same rule for artist and title):

1. featured artists are dropped: a title's ``(feat. X)``, ``[ft. X]``, ``(featuring X)``, ``(with X)`` or
   trailing ``feat. X``, and an artist's trailing ``feat. X`` / ``ft. X`` / ``featuring X``;
2. Unicode NFKD, then combining marks removed (accents: ``Beyoncé`` -> ``Beyonce``);
3. case-folded (``ß`` -> ``ss``), and ``&`` read as ``and``;
4. everything but letters and digits removed (punctuation, whitespace, underscores): any script is kept.

So ``Beyoncé, "Crazy In Love (feat. JAY-Z)"`` and ``beyonce, "Crazy in Love"`` are one track:
``key:beyonce|crazyinlove``. A name made only of punctuation (``!!!``) keeps its case-folded text, with
whitespace collapsed. A record whose artist or title is empty gets no key (``None``).
"""
from __future__ import annotations

import re
import unicodedata

import pandas as pd
from pyspark.sql import Column
from pyspark.sql import functions as F

PREFIX = "key:"
_FEAT = r"(?:feat\.?|ft\.?|featuring)"
_TITLE_FEAT = re.compile(rf"\s*[(\[]\s*(?:{_FEAT}|with)\s[^)\]]*[)\]]|\s+{_FEAT}\s.*$", re.IGNORECASE)
_ARTIST_FEAT = re.compile(rf"\s+{_FEAT}\s.*$", re.IGNORECASE)
_NOT_ALNUM = re.compile(r"[\W_]+")


def normalise(text: str | None) -> str | None:
    """Steps 2-4 of the module docstring; ``None`` for an empty result."""
    if text is None:
        return None
    folded = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    folded = folded.casefold().replace("&", " and ")
    return _NOT_ALNUM.sub("", folded) or " ".join(folded.split()) or None


def track_key(artist: str | None, title: str | None) -> str | None:
    """``key:<artist>|<title>`` (module docstring), or ``None`` when either is missing or empty."""
    if not isinstance(artist, str) or not isinstance(title, str):
        return None
    a = normalise(_ARTIST_FEAT.sub("", artist))
    t = normalise(_TITLE_FEAT.sub("", title))
    if not a or not t:
        return None
    return f"{PREFIX}{a}|{t}"


def _keys(artist: pd.Series, title: pd.Series) -> pd.Series:
    return pd.Series([track_key(a, t) for a, t in zip(artist, title)], dtype=object)


def track_key_column(artist: Column, title: Column) -> Column:
    """:func:`track_key` as a Spark column (a pandas UDF: one Python call per Arrow batch)."""
    return F.pandas_udf(_keys, "string")(artist, title)
