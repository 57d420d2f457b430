"""Person segmentation: backends behind one interface, one selection policy, and the person checks."""

from ..imaging.errors import MultiplePeopleError, NoPersonError, PersonCutOffError
from .alpha import AlphaSegmenter
from .base import Segmenter
from .mediapipe_backend import MediaPipeSegmenter
from .people import EDGES, PersonMask, find_people
from .refine import guided_filter
from .rembg_backend import RembgSegmenter, find_rembg_model
from .select import choose_segmenter, segment_person, segmenter_availability

__all__ = [
    "EDGES",
    "AlphaSegmenter",
    "MediaPipeSegmenter",
    "MultiplePeopleError",
    "NoPersonError",
    "PersonCutOffError",
    "PersonMask",
    "RembgSegmenter",
    "Segmenter",
    "choose_segmenter",
    "find_people",
    "find_rembg_model",
    "guided_filter",
    "segment_person",
    "segmenter_availability",
]
