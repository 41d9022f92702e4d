"""Catalog scoring: the stage that writes ``predictions`` (:mod:`.stage`) and the end-of-run summary an
analyst reads (:mod:`.summary`)."""
