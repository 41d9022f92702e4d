"""Running hitcast's jobs on a real cluster.

- :mod:`hitcast.cluster.standalone`: a Spark standalone master and workers on this machine, from the pip pyspark
  (``make cluster-up`` / ``make cluster-down``);
- :mod:`hitcast.cluster.package`: what ``spark-submit`` ships (``make package``): the library as a zip for
  ``--py-files`` and the Python environment packed by venv-pack for ``--archives``;
- :mod:`hitcast.cluster.submit`: the ``spark-submit`` command line of a job.
"""
