"""Packaging for hitcast: the library lives in ``lib/hitcast``."""
from pathlib import Path

from setuptools import find_packages, setup

#: The pinned set, named once in requirements.txt (pytest is for the tests only).
REQUIREMENTS = [line.strip() for line in (Path(__file__).parent / "requirements.txt").read_text().splitlines()
                if line.strip() and not line.startswith("#") and not line.startswith("pytest")]

setup(
    name="hitcast",
    version="0.1.0",
    description="Catalog-scale hit prediction on Spark, Delta Lake and TensorFlow",
    package_dir={"": "lib"},
    packages=find_packages("lib"),
    package_data={"hitcast": ["py.typed", "sql/views/*.sql"]},
    python_requires=">=3.11,<3.12",
    install_requires=REQUIREMENTS,
)
