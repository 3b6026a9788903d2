"""The version of reformer-ko, in one place: the package, its metadata (setup.cfg) and model cards read it."""

__version__ = "0.1.0"
