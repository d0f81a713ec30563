"""Telecare pipeline core: the types that flow between stages, configuration, and the CLI."""

__version__ = "0.1.0"
