"""Ingest: raw catalog and engagement files -> Delta ``catalog``, ``engagement_events``, ``quarantine``.

Entry point: :func:`hitcast.ingest.pipeline.run_ingest`. Reasons for quarantine are listed in
:mod:`hitcast.ingest.reasons`.
"""
