"""The server's version string, read once from the installed distribution metadata."""

from __future__ import annotations

from importlib import metadata

try:
    SERVER_VERSION = metadata.version("strata")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    SERVER_VERSION = "0.0.0+source"
