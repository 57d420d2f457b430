"""Body models through the one backend registry (:mod:`strata.core.backends`) and the one model cache.

Why a cache: building an anny model costs ~0.5 s warm (a minute cold) plus ~100 MB of tensors, and the
server serves many jobs with the same body model. ``get_body_model`` returns the same instance for the same
(model, rig, device) from :func:`strata.core.cache.process_cache` (or the cache given); instances are safe to
share because ``forward`` keeps no state. Cheap to import: torch and anny load on the first build.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..registry import Availability, BackendUnavailable
from .base import BodyModelError
from .rigs import ANNY_RIGS

if TYPE_CHECKING:
    from ..cache import ModelCache
    from ..compute import ComputeEnv
    from ..progress import Progress
    from .base import BodyModel

#: Backend name -> rigs it offers (first = default). SMPL-X needs the user's files (an unavailable error
#: names them when they are missing).
BODY_MODELS: dict[str, list[str]] = {
    "anny": list(ANNY_RIGS),
    "smplx": ["smplx"],
}
#: Backend name -> the body model's own name, as errors say it to artists.
MODEL_TITLES = {"anny": "anny", "smplx": "SMPL-X"}


def available_body_models() -> dict[str, list[str]]:
    """Backend name -> supported rigs (without importing any backend)."""
    return {name: list(rigs) for name, rigs in BODY_MODELS.items()}


def rig_for(name: str, rig: str) -> str:
    """The rig a job on body model ``name`` gets when it asks for ``rig``: SMPL-X bodies come with SMPL-X's
    skeleton only, so asking for "anny" (the jobs' default) gives the model's own rig, and any other anny rig
    is refused (ValueError) rather than silently replaced."""
    rigs = BODY_MODELS[name.lower()]
    if rig in rigs:
        return rig
    if rig == "anny":
        return rigs[0]
    raise ValueError(f"the {name} body has only the {', '.join(rigs)} rig; {rig!r} is an anny rig "
                     f"(leave the rig out, or ask for {rigs[0]!r})")


def get_body_model(
    name: str = "anny",
    rig: str | None = None,
    *,
    device: str = "cpu",
    model_path: str | Path | None = None,
    env: ComputeEnv | None = None,
    cache: ModelCache | None = None,
    gender: str = "neutral",
) -> BodyModel:
    """The cached body model ``name`` with skeleton ``rig`` (None = the backend's default rig).

    Args:
        name: "anny", or "smplx" (the user's model files under ``env.smplx_dir`` or ``model_path``).
        rig: for anny, one of :data:`~strata.core.body.rigs.ANNY_RIGS`.
        device: torch device for the model's tensors, when no ``env`` is given.
        model_path: the SMPL-X folder (instead of ``env.smplx_dir``); must be None for anny.
        env: the job's compute environment (device, SMPL-X folder); default: the CPU.
        cache: the model cache; default: the process cache.
        gender: which SMPL-X file (neutral, female, male); anny's gender is a shape phenotype instead.

    Raises:
        BodyModelError: unknown model, missing package, or model files needed (an *unavailable* error).
        ValueError: unknown rig.
    """
    from ..backends import REGISTRY
    from ..compute import ComputeEnv

    name = name.lower()
    if name not in BODY_MODELS:
        raise BodyModelError(f"unknown body model {name!r}; available: {sorted(BODY_MODELS)}")
    if model_path is not None and name != "smplx":
        raise BodyModelError(f"the {name!r} body model ships its own data; model_path must be None")
    rig = rig or BODY_MODELS[name][0]
    if rig not in BODY_MODELS[name]:
        raise ValueError(f"unknown rig {rig!r} for body model {name!r}; supported: {BODY_MODELS[name]}")
    env = env or ComputeEnv(device=str(device))
    if model_path is not None:  # the SMPL-X folder given here rather than in the environment
        from dataclasses import replace

        env = replace(env, smplx_dir=Path(model_path))
    try:
        return REGISTRY.build("body_model", name, env=env, cache=cache, **_options(name, rig, gender))
    except BackendUnavailable as exc:
        title = MODEL_TITLES.get(name, name)  # said to artists: "the SMPL-X body model cannot run here: ..."
        raise BodyModelError(exc.message.replace(f"the {name} body_model backend", f"the {title} body model")) from None


def watched_body_model(name: str, rig: str, *, env: ComputeEnv, cache: ModelCache, progress: Progress,
                       stage: str, gender: str = "neutral", announce: str = "") -> BodyModel:
    """:func:`get_body_model` for a job: from the cache when it is warm (the usual case: nothing to watch);
    otherwise ``announce`` (when given) and then a rig's first-use build by anny, reported to ``progress``
    under ``stage`` (:func:`.anny_cache.visible_build`)."""
    from .anny_cache import visible_build

    if body_model_key(name, rig, env, gender) in cache:
        return get_body_model(name, rig, env=env, cache=cache, gender=gender)
    if announce:
        progress.report(stage, 0.0, announce)
    with visible_build(progress, stage, rig):
        return get_body_model(name, rig, env=env, cache=cache, gender=gender)


def body_model_key(name: str, rig: str, env: ComputeEnv, gender: str = "neutral") -> str:
    """The model-cache key :func:`get_body_model` uses (so a job can say "loading..." only on a miss)."""
    from ..backends import REGISTRY

    return REGISTRY.get("body_model", name).cache_key(env, _options(name, rig, gender))


def _options(name: str, rig: str, gender: str) -> dict[str, str]:
    """The registry options of a body model (the builder's arguments and the cache key alike): SMPL-X's file
    is chosen by gender; anny's gender is a shape phenotype, not an option."""
    return {"rig": rig, **({"gender": gender} if name == "smplx" else {})}


def build_anny(env: ComputeEnv, rig: str = "anny") -> BodyModel:
    """The registry's builder for anny (float32 on the environment's device)."""
    from .anny_model import AnnyBody

    if rig == "smplx":  # SMPL-X's skeleton placed on the default rig's body (shared through the cache)
        from .anny_smplx import AnnySMPLX

        return AnnySMPLX(get_body_model("anny", "anny", env=env))
    return AnnyBody(rig=rig, device=env.device)


def build_smplx(env: ComputeEnv, rig: str = "smplx", gender: str = "neutral") -> BodyModel:
    """The registry's builder for the user's SMPL-X model of ``gender`` from ``env.smplx_dir``."""
    from .smplx_model import SMPLXBody

    return SMPLXBody(env.smplx_dir, gender, device=env.device)


def smplx_availability(env: ComputeEnv | None = None) -> Availability:
    """SMPL-X runs where the user's files and the ``smplx`` package are; the reason says what is missing."""
    import importlib.util

    from .smplx_files import model_file

    try:
        path = model_file(env.smplx_dir if env is not None else None)
    except BodyModelError as exc:
        return Availability(False, str(exc))
    if importlib.util.find_spec("smplx") is None:
        return Availability(False, "the 'smplx' package is not installed (pip install 'smplx==0.1.28')")
    return Availability(True, f"SMPL-X model files at {path.parent}")
