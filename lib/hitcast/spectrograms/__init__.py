"""The spectrogram stage: catalog audio into the Delta table ``spectrograms`` (:mod:`.stage`), and the
``--audio-dir`` report over a folder of files outside the catalog (:mod:`.report`).

The per-track work (decode, log-mel, status) is pure Python in :mod:`hitcast.audio`; this package is the
Spark side.
"""
