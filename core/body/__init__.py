"""Body models: parametric human bodies (anny now, SMPL-X later) behind one interface.

Import cost: numpy only. torch and anny load when a model is first requested::

    from strata.core.body import get_body_model
    body = get_body_model("anny", rig="anny")
    shape = body.solve_height(1.80, body.shape_vector(gender=0.0))
    out = body.forward(shape, body.pose_preset("T", shape))

Conventions (metres, Z up, facing -Y, Blender bone frames and pose semantics) are in :mod:`.base`.
"""

from .anny_cache import visible_build
from .base import (
    A_POSE_ARM_ANGLE_DEG,
    POSE_PRESETS,
    BodyModel,
    BodyModelError,
    BodyOutput,
    Skeleton,
    forward_kinematics_np,
    rotation_between,
    world_to_local_rotation,
)
from .registry import (
    BODY_MODELS,
    available_body_models,
    body_model_key,
    get_body_model,
    rig_for,
    watched_body_model,
)
from .rigs import ANNY_RIGS, ANNY_SHAPE_NAMES

__all__ = [
    "A_POSE_ARM_ANGLE_DEG",
    "ANNY_RIGS",
    "ANNY_SHAPE_NAMES",
    "BODY_MODELS",
    "POSE_PRESETS",
    "BodyModel",
    "BodyModelError",
    "BodyOutput",
    "Skeleton",
    "available_body_models",
    "body_model_key",
    "forward_kinematics_np",
    "get_body_model",
    "rig_for",
    "visible_build",
    "watched_body_model",
    "rotation_between",
    "world_to_local_rotation",
]
