"""hitcast: catalog-scale hit prediction on Spark, Delta Lake and TensorFlow."""

__version__ = "0.1.0"
