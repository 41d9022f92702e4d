"""The model file MLflow logs (models from code): the pyfunc it serves is :class:`BundleModel`."""
import mlflow.models

from hitcast.lifecycle.pyfunc import BundleModel

mlflow.models.set_model(BundleModel())
