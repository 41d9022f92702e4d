"""The demo catalog generator: a synthetic label with artists, audio, listeners and a known truth.

Modules
-------
catalog   latent values (audio appeal, fan base, genre) and the catalog rows
audio     per-genre NumPy synthesis of clips whose log-mel shows the audio appeal
events    the engagement simulation, run in Spark (``mapInPandas``), written as JSON lines
truth     Monte Carlo hit probabilities per (track, cutoff); :func:`hitcast.demo.truth.load_truth`
badinput  deliberate bad records of every kind the ingest contract handles
generate  the whole generator, as one function
"""
