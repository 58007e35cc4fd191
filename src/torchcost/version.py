"""The release, as pyproject.toml names it (a test checks they agree)."""

__version__ = "0.1.0"
