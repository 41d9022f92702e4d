"""The model lifecycle above model and evaluation: the registry (MLflow + the ``models`` mirror),
training runs, evaluation records and promotion."""
