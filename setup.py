"""Packaging for hitcast: the library lives in ``lib/hitcast``."""
from setuptools import find_packages, setup

setup(
    name="hitcast",
    version="0.1.0",
    description="Catalog-scale hit prediction on Spark, Delta Lake and TensorFlow",
    package_dir={"": "lib"},
    packages=find_packages("lib"),
    package_data={"hitcast": ["py.typed"]},
    python_requires=">=3.11,<3.12",
    install_requires=[
        "pyspark==4.0.5",
        "delta-spark==4.0.1",
        "petastorm==0.13.1",
        "pyarrow==14.0.2",
        "numpy==1.26.4",
        "pandas==2.3.3",
        "tensorflow-cpu==2.21.0",
        "keras==3.15.1",
        "librosa==0.11.0",
        "soundfile==0.14.0",
        "PyYAML",
        "matplotlib",
        "scikit-learn",
    ],
)
