"""Track identity: every identifier a source gives for a track -> one canonical ``track_id`` (plain Python).

A **sighting** is one source's view of a track: the ``track_id`` it gives (a catalog id, a Spotify URI, or
the ``key:`` of the normalised artist and title when it has no id), the other exact identifiers it carries
(``spotify_uri``, ``isrc``, ``mbid``) and that key. An **alias** is one identifier, ``(alias_kind, alias)``:

==============  ==============================================================================
alias_kind      alias
==============  ==============================================================================
``track_id``    a track id that is none of the below (a catalog's own id)
``spotify_uri`` ``spotify:track:<id>``
``isrc``        an ISRC, upper case
``mbid``        a MusicBrainz recording id, lower case
``key``         ``key:<artist>|<title>`` (:mod:`hitcast.ingest.trackkey`)
==============  ==============================================================================

Rules (:func:`resolve`), in order:

1. What is already linked stays linked (the stored ``track_aliases`` of the groups this run touches).
2. **Exact identifiers link first**: all exact identifiers of one sighting are one track.
3. **The key links what has no shared identifier**: a key joins the groups of the records that carry it (an
   account-data listen to the Spotify URI's track, a label's catalog id to it), preferred group first (below),
   except a group that would then hold two identifiers of one kind (two Spotify URIs, two ISRCs, two MBIDs,
   two catalog ids): a remaster with its own ISRC, another release's URI, stay their own tracks.
4. **Two catalog ids never merge**: a link that would join two tracks of the catalog files is not made
   (the catalog is the authority on what is one track).

The canonical id of a group is the catalog's id when the catalog files have the track, else the id first
seen (earliest ``first_seen``, then the smallest id). Only a sighting's ``track_id`` can be canonical.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

KINDS = ("track_id", "spotify_uri", "isrc", "mbid", "key")
EXACT = ("track_id", "spotify_uri", "isrc", "mbid")
Alias = tuple[str, str]


def kind_of(track_id: str) -> str:
    """The alias kind of a track id by its form: ``key``, ``spotify_uri`` or ``track_id``."""
    if track_id.startswith("key:"):
        return "key"
    if track_id.startswith("spotify:track:"):
        return "spotify_uri"
    return "track_id"


@dataclass(frozen=True)
class Sighting:
    """One source's view of one track (see the module docstring)."""

    track_id: str
    first_seen: dt.datetime
    spotify_uri: str | None = None
    isrc: str | None = None
    mbid: str | None = None
    key: str | None = None
    #: True for a row of a catalog file (not one derived from the logs).
    from_catalog: bool = False

    def exact(self) -> list[Alias]:
        """The exact identifiers: the track id (unless it is a key) and the other ids it carries."""
        out = [] if kind_of(self.track_id) == "key" else [(kind_of(self.track_id), self.track_id)]
        for kind in ("spotify_uri", "isrc", "mbid"):
            value = getattr(self, kind)
            if value and (kind, value) not in out:
                out.append((kind, value))
        return out

    def key_alias(self) -> Alias | None:
        """``("key", key)``: the key it carries, or its track id when that is a key."""
        key = self.key or (self.track_id if kind_of(self.track_id) == "key" else None)
        return ("key", key) if key else None


@dataclass(frozen=True)
class StoredAlias:
    """One row of ``track_aliases``."""

    alias_kind: str
    alias: str
    track_id: str
    first_seen: dt.datetime
    source: str


@dataclass
class Resolution:
    """What :func:`resolve` decided.

    Attributes
    ----------
    aliases : dict
        ``(alias_kind, alias) -> StoredAlias`` for every identifier of the touched groups.
    canonical : dict
        Every sighting's ``track_id`` (and every stored canonical id) -> its canonical id.
    merged : dict
        Stored canonical ids that are canonical no more -> the id they merge into.
    """

    aliases: dict[Alias, StoredAlias] = field(default_factory=dict)
    canonical: dict[str, str] = field(default_factory=dict)
    merged: dict[str, str] = field(default_factory=dict)


class _Groups:
    """Union-find over aliases. Each group knows its catalog id (it refuses to join two groups holding
    different ones), its best track id ``(first_seen, id)`` and the kinds of exact identifiers it holds."""

    def __init__(self, catalog_ids: set[str]) -> None:
        self.parent: dict[Alias, Alias] = {}
        self.catalog: dict[Alias, str | None] = {}
        self.best: dict[Alias, tuple[dt.datetime, str] | None] = {}
        self.kinds: dict[Alias, frozenset[str]] = {}
        self.catalog_ids = catalog_ids

    def add(self, a: Alias) -> None:
        if a not in self.parent:
            self.parent[a], self.best[a] = a, None
            self.kinds[a] = frozenset() if a[0] == "key" else frozenset([a[0]])
            self.catalog[a] = a[1] if a[0] != "key" and a[1] in self.catalog_ids else None

    def track(self, track_id: str, first_seen: dt.datetime) -> None:
        """Note that ``track_id`` is a track id (a candidate canonical id) first seen then."""
        root = self.find((kind_of(track_id), track_id))
        self.best[root] = min(self.best[root] or (first_seen, track_id), (first_seen, track_id))

    def find(self, a: Alias) -> Alias:
        self.add(a)
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: Alias, b: Alias) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        ca, cb = self.catalog[ra], self.catalog[rb]
        if ca and cb and ca != cb:
            return False
        self.parent[rb] = ra
        self.catalog[ra] = ca or cb
        self.best[ra] = min([b for b in (self.best[ra], self.best[rb]) if b is not None], default=None)
        self.kinds[ra] = self.kinds[ra] | self.kinds[rb]
        return True

    def clash(self, a: Alias, b: Alias) -> bool:
        """True when the groups of ``a`` and ``b`` are two and each holds an identifier of one same kind."""
        ra, rb = self.find(a), self.find(b)
        return ra != rb and bool(self.kinds[ra] & self.kinds[rb])

    def rank(self, root: Alias) -> tuple:
        """Preference among groups: a catalog track first, then the track first seen."""
        return (self.catalog[root] is None, *(self.best[root] or (dt.datetime.max, root[1])))

    def canonical(self, a: Alias) -> str:
        root = self.find(a)
        best = self.best[root]
        return self.catalog[root] or (best[1] if best else a[1])


def _chain(groups: _Groups, items: list[Alias]) -> None:
    for other in items[1:]:
        groups.union(items[0], other)


def _first_seen(sightings: list[Sighting], stored: list[StoredAlias]) -> dict[str, dt.datetime]:
    """Each track id's first seen: its sightings', or its stored aliases' earliest."""
    first: dict[str, dt.datetime] = {}
    for s in sightings:
        first[s.track_id] = min(first.get(s.track_id, s.first_seen), s.first_seen)
    for row in stored:
        first[row.track_id] = min(first.get(row.track_id, row.first_seen), row.first_seen)
    return first


def resolve(sightings: list[Sighting], stored: list[StoredAlias], catalog_ids: set[str]) -> Resolution:
    """Group ``sightings`` with the ``stored`` aliases of the groups they touch (rules: module docstring).

    Parameters
    ----------
    sightings : list of Sighting
        This run's catalog rows and distinct event identities.
    stored : list of StoredAlias
        Every stored alias of every group that shares an identifier with a sighting.
    catalog_ids : set of str
        Track ids of catalog-file rows among the ids involved.
    """
    groups = _Groups(catalog_ids)
    first = _first_seen(sightings, stored)
    for track, seen in first.items():
        groups.track(track, seen)
    by_track: dict[str, list[Alias]] = {}
    for row in stored:                                            # rule 1
        by_track.setdefault(row.track_id, []).append((row.alias_kind, row.alias))
    for track, items in sorted(by_track.items()):
        _chain(groups, [(kind_of(track), track), *items])
    for s in sightings:                                           # rule 2
        exact = s.exact()
        for a in exact:
            groups.add(a)
        _chain(groups, exact)
    carriers: dict[Alias, list[Alias]] = {}                       # rule 3
    for s in sightings:
        key = s.key_alias()
        if key is not None:
            carriers.setdefault(key, []).extend(s.exact()[:1])
    for key, items in sorted(carriers.items()):
        roots = sorted({groups.find(a) for a in [key, *items]}, key=groups.rank)
        for other in roots[1:]:
            if not groups.clash(roots[0], other):
                groups.union(roots[0], other)
    return _result(groups, sightings, stored, first)


def _result(groups: _Groups, sightings: list[Sighting], stored: list[StoredAlias],
            first: dict[str, dt.datetime]) -> Resolution:
    out = Resolution()
    seen: dict[Alias, tuple[dt.datetime, str]] = {}
    entries = [(a, s.first_seen, "catalog" if s.from_catalog else "events")
               for s in sightings for a in [*s.exact(), *([s.key_alias()] if s.key_alias() else [])]]
    entries += [((r.alias_kind, r.alias), r.first_seen, r.source) for r in stored]
    for a, when, src in entries:
        t, was = seen.get(a, (when, src))
        seen[a] = (min(t, when), "catalog" if "catalog" in (was, src) else "events")
    for a, (t, src) in sorted(seen.items()):
        out.aliases[a] = StoredAlias(a[0], a[1], groups.canonical(a), t, src)
    for track in first:
        out.canonical[track] = groups.canonical((kind_of(track), track))
    for row in stored:
        if out.canonical[row.track_id] != row.track_id:
            out.merged[row.track_id] = out.canonical[row.track_id]
    return out
