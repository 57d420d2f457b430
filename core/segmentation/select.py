"""The one place that decides which segmentation backend runs.

``auto`` policy: a photo whose alpha is a real cut-out is segmented by its alpha (nothing beats the user's
own mask); any other photo goes to the best backend available here, in :data:`AUTO_ORDER`: rembg when
its weights have been provisioned (dedicated matting-grade models), else MediaPipe (always offline).
Instances are cached so model sessions and graphs are built once per process.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from ..imaging.backends import Availability
from ..imaging.errors import BackendUnavailableError
from .alpha import AlphaSegmenter
from .base import Segmenter
from .mediapipe_backend import MediaPipeSegmenter
from .people import PersonMask, find_people
from .rembg_backend import RembgSegmenter

BACKENDS: Mapping[str, type[Segmenter]] = {
    "alpha": AlphaSegmenter,
    "rembg": RembgSegmenter,
    "mediapipe": MediaPipeSegmenter,
}
#: Best first, for photos without a cut-out.
AUTO_ORDER: tuple[str, ...] = ("rembg", "mediapipe")

_instances: dict[str, Segmenter] = {}
_lock = threading.Lock()


def segmenter_availability() -> dict[str, Availability]:
    """Every backend's availability, for the server's capabilities report and the add-on's menu."""
    return {name: cls.availability() for name, cls in BACKENDS.items()}


def choose_segmenter(name: str = "auto", *, has_cutout: bool = False) -> Segmenter:
    """Return the (shared) segmenter to use.

    Args:
        name: "auto", or a key of :data:`BACKENDS`.
        has_cutout: whether the photo's alpha is a real cut-out (``LoadedImage.has_cutout``).

    Raises:
        BackendUnavailableError: unknown name, "alpha" without a cut-out, or the backend cannot run here.
    """
    if name == "auto":
        if has_cutout:
            return _instance("alpha")
        reasons = []
        for candidate in AUTO_ORDER:
            avail = BACKENDS[candidate].availability()
            if avail:
                return _instance(candidate)
            reasons.append(f"{candidate}: {avail.reason}")
        raise BackendUnavailableError(
            "No segmentation backend can run here, and the photo has no cut-out alpha. " + " ".join(reasons),
            hint="Use a photo with the background already removed (PNG with transparency), or install MediaPipe.",
            backend="auto",
        )
    if name not in BACKENDS:
        raise BackendUnavailableError(
            f"Unknown segmentation backend {name!r}.",
            hint=f"Use one of: auto, {', '.join(BACKENDS)}.",
            backend=name,
        )
    if name == "alpha" and not has_cutout:
        raise BackendUnavailableError(
            "The alpha backend needs a photo with the background removed, and this one has none.",
            hint="Choose 'auto' or another backend, or use a PNG with transparency.",
            backend=name,
        )
    avail = BACKENDS[name].availability()
    if not avail:
        raise BackendUnavailableError(f"The {name} backend cannot run here: {avail.reason}", backend=name)
    return _instance(name)


def segment_person(
    rgba: np.ndarray, *, has_cutout: bool, backend: str = "auto", strict: bool = False, **find_kwargs
) -> PersonMask:
    """Choose a backend, segment, and pick the person: the whole segmentation step in one call.

    ``find_kwargs`` go to :func:`find_people`. The returned ``PersonMask.backend`` names the backend used.
    """
    seg = choose_segmenter(backend, has_cutout=has_cutout)
    people = find_people(seg.segment(rgba), strict=strict, **find_kwargs)
    return replace(people, backend=seg.name)


def _instance(name: str) -> Segmenter:
    with _lock:
        seg = _instances.get(name)
        if seg is None:
            seg = _instances[name] = BACKENDS[name]()
        return seg
