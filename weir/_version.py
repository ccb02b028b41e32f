"""weir's version: the one place it is written (pyproject.toml reads it, `weir --version` prints it)."""

__version__ = "0.1.0"
