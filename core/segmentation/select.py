"""Person segmentation through the one backend registry: which backend runs, and the whole step in one call.

``auto`` policy (declared as data in :mod:`strata.core.backends`): a photo whose alpha is a real cut-out is
segmented by its alpha (nothing beats the user's own mask: that backend needs the fact "cutout"); any
other photo goes to the best backend available here: rembg when its weights have been provisioned
(matting-grade models), else MediaPipe (always offline). Built segmenters live in the model cache.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from ..imaging.errors import BackendUnavailableError
from ..registry import Availability, BackendUnavailable
from .base import Segmenter
from .people import PersonMask, find_people

if TYPE_CHECKING:
    from ..cache import ModelCache
    from ..compute import ComputeEnv

STAGE = "segmentation"


def segmenter_availability(env: ComputeEnv | None = None) -> dict[str, Availability]:
    """Every backend's availability, for the server's capabilities report and the add-on's menu."""
    from ..backends import REGISTRY

    return REGISTRY.availability(env or _cpu()).get(STAGE, {})


def choose_segmenter(name: str = "auto", *, has_cutout: bool = False, env: ComputeEnv | None = None,
                     cache: ModelCache | None = None) -> Segmenter:
    """The (cached) segmenter to use.

    Args:
        name: "auto", or a registered segmentation backend ("alpha", "rembg", "mediapipe").
        has_cutout: whether the photo's alpha is a real cut-out (``LoadedImage.has_cutout``).

    Raises:
        BackendUnavailableError: unknown name, "alpha" without a cut-out, or the backend cannot run here.
    """
    from ..backends import REGISTRY

    facts = ("cutout",) if has_cutout else ()
    try:
        return REGISTRY.build(STAGE, name, env=env or _cpu(), cache=cache, facts=facts)
    except BackendUnavailable as exc:
        hint = exc.hint or ("Use a photo with the background already removed (PNG with transparency), or "
                            "install MediaPipe." if name == "auto" else "Choose 'auto' or another backend.")
        raise BackendUnavailableError(exc.message[:1].upper() + exc.message[1:] + ".", hint=hint,
                                      backend=name) from None


def segment_person(
    rgba: np.ndarray, *, has_cutout: bool, backend: str = "auto", strict: bool = False,
    env: ComputeEnv | None = None, cache: ModelCache | None = None, **find_kwargs
) -> PersonMask:
    """Choose a backend, segment, and pick the person: the whole segmentation step in one call.

    ``find_kwargs`` go to :func:`find_people`. The returned ``PersonMask.backend`` names the backend used.
    """
    seg = choose_segmenter(backend, has_cutout=has_cutout, env=env, cache=cache)
    people = find_people(seg.segment(rgba), strict=strict, **find_kwargs)
    return replace(people, backend=seg.name)


def _cpu() -> ComputeEnv:
    from ..compute import ComputeEnv

    return ComputeEnv()
