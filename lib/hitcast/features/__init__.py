"""Point-in-time features and labels as of a cutoff T (gold table ``training_examples``).

- :func:`hitcast.features.examples.features_as_of` — one row per catalog track, features from events
  strictly before T (also used by catalog scoring);
- :func:`hitcast.features.examples.build_training_examples` — the same rows for every configured cutoff,
  restricted to each cutoff's cohort, with labels from ``[T, T + horizon)`` and a ``split``.
"""
