"""The optional C extension; everything else is in pyproject.toml."""

from setuptools import Extension
from setuptools import setup

setup(
    ext_modules=[
        Extension(
            "framework.metrics._counting",
            ["framework/metrics/_counting.c"],
            optional=True,
        )
    ]
)
