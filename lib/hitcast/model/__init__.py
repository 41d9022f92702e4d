"""The fused CNN: tabular encoding, architecture, Petastorm input, distributed training, versions, bundles.

============================  =================================================================
module                        idea
============================  =================================================================
:mod:`.spec`                  the model spec: the input groups every other module asks (``spec.json``)
:mod:`.tabular`               feature columns, standardisation stats (Spark), NumPy encoding
:mod:`.architecture`          the Keras 3 functional model, one branch per input group of the spec
:mod:`.explain`               reasons: the encoder/head split of the network, occlusion by input group
:mod:`.dataset`               training_examples x spectrograms x group sources -> fixed-shape rows
:mod:`.distributed`           Spark barrier stage that runs one TF worker per task
:mod:`.trainloop`             the worker process: MultiWorkerMirroredStrategy custom loop
:mod:`.registry`              deterministic model versions on disk + the Delta table ``models``
:mod:`.bundle`                load a model version for inference (``predict_pandas``)
:mod:`.training`              the train stage end to end (what ``jobs/train.py`` calls)
============================  =================================================================
"""
