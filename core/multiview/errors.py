"""Why the multiview UNet cannot be loaded here: missing package, missing or partial weights, foreign config.

Torch-free so that callers (registry, server) can catch it without importing the model.
"""

from __future__ import annotations

from strata.core.errors import UnavailableError


class MultiviewUnavailableError(UnavailableError):
    """The PSHuman multiview UNet cannot be built or loaded on this server (wire code ``unavailable``)."""
