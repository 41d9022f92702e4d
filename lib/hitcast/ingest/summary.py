"""The ingest summary: rows read, loaded and quarantined by reason, per table."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


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

    def log(self) -> None:
        """Log the summary, one line per input plus the catalog collisions."""
        for name, s in (("catalog", self.catalog), ("events", self.events)):
            log.info("%s: %d files, %d rows read, %d valid, %d inserted, %d updated, %d quarantined %s "
                     "(%d new in quarantine)", name, s.files, s.rows_read, s.rows_valid, s.rows_inserted,
                     s.rows_updated, sum(s.quarantined.values()), dict(sorted(s.quarantined.items())),
                     s.quarantine_inserted)
        log.info("catalog collisions: %d track_ids (%d older versions superseded, %d identical copies); "
                 "events for unknown tracks: %d kept; %d events newly linked to the catalog",
                 self.catalog_collisions, self.catalog_updates, self.catalog_identical,
                 self.unknown_track_events, self.known_track_flipped)
