"""The ingest summary: rows read, loaded and quarantined by reason, per table."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class SourceSummary:
    """What happened to one input (``catalog`` or ``events``) in one run."""

    files: int = 0
    rows_read: int = 0
    #: Rows inserted into / updated in the target table by this run (0 on an identical re-run).
    rows_inserted: int = 0
    rows_updated: int = 0
    #: Good rows in the input (after de-duplication), whether or not they were new.
    rows_valid: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    #: Records an event profile skips as not music, by its rule's name (e.g. ``podcast_episode``).
    skipped: dict[str, int] = field(default_factory=dict)
    #: Rows added to ``quarantine`` by this run (0 on an identical re-run).
    quarantine_inserted: int = 0


@dataclass
class IngestSummary:
    """Returned by :func:`hitcast.ingest.pipeline.run_ingest` and logged at the end of the job."""

    catalog: SourceSummary = field(default_factory=SourceSummary)
    events: SourceSummary = field(default_factory=SourceSummary)
    #: track_ids with more than one good row in the input, and how they were resolved.
    catalog_collisions: int = 0
    catalog_updates: int = 0
    catalog_identical: int = 0
    #: Good events whose track the catalog does not hold (kept, known_track = false).
    unknown_track_events: int = 0
    #: Older events flipped to known_track = true because the catalog now has their track.
    known_track_flipped: int = 0
    #: Catalog rows derived from the logs (``ingest.derive_catalog``): added, and moved to an earlier first seen.
    derived_inserted: int = 0
    derived_updated: int = 0
    #: The catalog files this run read (with ``ingest.new_files_only``, only those not taken in before).
    catalog_files: list[Path] = field(default_factory=list)
    #: The event files this run read (with ``ingest.new_files_only``, only those not taken in before).
    event_files: list[Path] = field(default_factory=list)
    #: Track identity (``ingest.track_identity``): ids of this run that resolve to another track's id, stored
    #: tracks merged into another (and the rows moved), listens dropped as repeated by an overlapping export,
    #: and ``track_aliases`` rows added / changed.
    ids_linked: int = 0
    tracks_merged: int = 0
    events_moved: int = 0
    catalog_rows_moved: int = 0
    scores_moved: int = 0
    overlapping_events: int = 0
    aliases_inserted: int = 0
    aliases_updated: int = 0
    #: With an event profile: profile name -> the files (below ``ingest.events_path``) read with it.
    event_profiles: dict[str, list[str]] = field(default_factory=dict)
    #: Files no event profile fits, one message each (the file, its columns, the profiles tried).
    unfit_files: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        """One line per input, then the catalog collisions."""
        lines = [f"{name}: {s.files} files, {s.rows_read} rows read, {s.rows_valid} valid, {s.rows_inserted} "
                 f"inserted, {s.rows_updated} updated, {sum(s.quarantined.values())} quarantined "
                 f"{dict(sorted(s.quarantined.items()))} ({s.quarantine_inserted} new in quarantine)"
                 + (f", {sum(s.skipped.values())} skipped as not music {dict(sorted(s.skipped.items()))}"
                    if s.skipped else "")
                 for name, s in (("catalog", self.catalog), ("events", self.events))]
        lines.append(f"catalog collisions: {self.catalog_collisions} track_ids ({self.catalog_updates} older "
                     f"versions superseded, {self.catalog_identical} identical copies); events for unknown "
                     f"tracks: {self.unknown_track_events} kept; {self.known_track_flipped} events newly "
                     "linked to the catalog")
        if self.aliases_inserted or self.aliases_updated or self.overlapping_events:
            lines.append(f"track identity: {self.ids_linked} ids linked to another track's id, {self.tracks_merged} "
                         f"tracks merged (moved {self.events_moved} events, {self.catalog_rows_moved} catalog rows, "
                         f"{self.scores_moved} scores), {self.overlapping_events} listens repeated by an "
                         f"overlapping export; track_aliases: {self.aliases_inserted} added, "
                         f"{self.aliases_updated} changed")
        if self.event_profiles:
            lines.append("event profiles: " + ", ".join(f"{name} ({len(files)} files: {', '.join(files)})"
                                                        for name, files in self.event_profiles.items()))
        lines.extend(f"not read as events: {line}" for line in self.unfit_files)
        if self.derived_inserted or self.derived_updated:
            lines.append(f"catalog from the logs: {self.derived_inserted} tracks added (no audio), "
                         f"{self.derived_updated} moved to an earlier first seen")
        return "\n".join(lines)
