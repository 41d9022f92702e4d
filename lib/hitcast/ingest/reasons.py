"""Stable snake_case reasons a raw record is quarantined (``quarantine.reason``).

=============================  ========  ===============================================================
reason                         source    meaning (``quarantine.detail`` says more)
=============================  ========  ===============================================================
``malformed_json``             both      the line (or JSON array element) is not a JSON object
``missing_required_column``    catalog   the file (after column mapping) lacks a required column
``missing_track_id``           both      ``track_id`` is null or empty
``missing_required_value``     both      another required column (an event profile's ``required``
                                         source field) is null or empty (detail: its name)
``bad_release_date``           catalog   ``release_date`` is missing or not a date (yyyy-MM-dd...)
``bad_value``                  catalog   a typed optional column does not parse (detail: column)
``duplicate_track_id``         catalog   same ``track_id`` and ``updated_at`` as the winning row, other data
``missing_event_id``           events    ``event_id`` is null or empty
``unknown_event_type``         events    ``event_type`` is not one of play, skip, save, playlist_add, share
``bad_event_time``             events    ``event_time`` is missing or not an ISO-8601 time
``bad_ms_played``              events    ``ms_played`` is not a number
``negative_ms_played``         events    ``ms_played`` < 0
``future_event_time``          events    ``event_time`` > now + ``ingest.future_tolerance_hours``
``duplicate_event``            events    a later copy of an ``event_id`` (the first, by file name and
                                         position, is kept)
``no_matching_profile``        events    every record of an export file that no event profile fits
                                         (detail: the file's columns and the profiles tried)
``overlapping_export``         events    the same listen as a kept event from another export of the same
                                         listener (same track, ``ms_played``, end time within a minute)
=============================  ========  ===============================================================

Not quarantined: an event for a track the catalog does not hold (kept with ``known_track = false``,
flipped to true when the catalog gets the track), a catalog row superseded by one with a later
``updated_at`` (an update, counted as a collision), and a record an event profile marks ``not_a_track``
(a podcast episode: counted by rule in the ingest summary and skipped).
"""
MALFORMED_JSON = "malformed_json"
MISSING_REQUIRED_COLUMN = "missing_required_column"
MISSING_TRACK_ID = "missing_track_id"
MISSING_REQUIRED_VALUE = "missing_required_value"
BAD_RELEASE_DATE = "bad_release_date"
BAD_VALUE = "bad_value"
DUPLICATE_TRACK_ID = "duplicate_track_id"
MISSING_EVENT_ID = "missing_event_id"
UNKNOWN_EVENT_TYPE = "unknown_event_type"
BAD_EVENT_TIME = "bad_event_time"
BAD_MS_PLAYED = "bad_ms_played"
NEGATIVE_MS_PLAYED = "negative_ms_played"
FUTURE_EVENT_TIME = "future_event_time"
DUPLICATE_EVENT = "duplicate_event"
NO_MATCHING_PROFILE = "no_matching_profile"
OVERLAPPING_EXPORT = "overlapping_export"

ALL = [MALFORMED_JSON, MISSING_REQUIRED_COLUMN, MISSING_TRACK_ID, MISSING_REQUIRED_VALUE, BAD_RELEASE_DATE,
       BAD_VALUE, DUPLICATE_TRACK_ID, MISSING_EVENT_ID, UNKNOWN_EVENT_TYPE, BAD_EVENT_TIME, BAD_MS_PLAYED,
       NEGATIVE_MS_PLAYED, FUTURE_EVENT_TIME, DUPLICATE_EVENT, NO_MATCHING_PROFILE, OVERLAPPING_EXPORT]
