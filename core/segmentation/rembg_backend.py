"""rembg (U2-Net / IS-Net / BiRefNet ONNX models), only when its weights are already on disk.

rembg downloads weights on first use, which Strata never allows (offline machines, reproducible installs),
and no package on PyPI carries them. So this backend is opt-in by provisioning: a user or installer puts a
model file where rembg looks for it, and :meth:`RembgSegmenter.availability` finds it *without importing
rembg* (its first import compiles pymatting with numba, ~30 s). The search mirrors rembg 2.0.x:

  * ``<home>/models/<name>/<name>.onnx`` with ``<home>`` = ``$U2NET_HOME`` if set, else ``$REMBG_HOME``,
    else ``$XDG_DATA_HOME/rembg``, else ``~/.rembg``;
  * the legacy flat folder ``$U2NET_HOME`` (else ``$XDG_DATA_HOME/.u2net``, else ``~/.u2net``)/``<name>.onnx``.

Because the file exists there, rembg uses it and skips its download path.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..imaging.backends import Availability, import_backend_module, module_present
from ..imaging.errors import BackendFailedError, BackendUnavailableError
from .base import Segmenter, check_image

#: Models tried in order when none is named. Human-suited general models first; bria-rmbg is late because
#: its weights are CC BY-NC (non-commercial). u2net_cloth_seg is absent on purpose (it segments garments).
MODEL_PREFERENCE: tuple[str, ...] = (
    "birefnet-portrait",
    "birefnet-general",
    "isnet-general-use",
    "u2net_human_seg",
    "birefnet-general-lite",
    "bria-rmbg",
    "u2net",
    "silueta",
    "u2netp",
)
#: Environment variable naming the model to use (must be present on disk).
MODEL_ENV = "STRATA_REMBG_MODEL"

_INSTALL_HINT = "pip install 'rembg[cpu]' and place the model's .onnx file in ~/.u2net (or $U2NET_HOME)."


def _search_dirs(name: str) -> list[Path]:
    xdg = os.environ.get("XDG_DATA_HOME")
    u2net_home = os.environ.get("U2NET_HOME")
    legacy = Path(os.path.expanduser(u2net_home or os.path.join(xdg or "~", ".u2net")))
    if u2net_home:
        home = legacy
    else:
        default = os.path.join(xdg, "rembg") if xdg else os.path.join("~", ".rembg")
        home = Path(os.path.expanduser(os.environ.get("REMBG_HOME", default)))
    return [home / "models" / name / f"{name}.onnx", legacy / f"{name}.onnx"]


def find_rembg_model(names: tuple[str, ...] | None = None) -> tuple[str, Path] | None:
    """First (model name, file) present on disk, in preference order (or ``$STRATA_REMBG_MODEL`` only)."""
    forced = os.environ.get(MODEL_ENV)
    for name in names or ((forced,) if forced else MODEL_PREFERENCE):
        for path in _search_dirs(name):
            if path.is_file() and path.stat().st_size > 0:
                return name, path
    return None


class RembgSegmenter(Segmenter):
    """rembg on a locally provisioned model. Sessions are kept per model by the instance (which the model
    cache holds, so "release" drops them); thread-safe."""

    name: ClassVar[str] = "rembg"

    def __init__(self, model_name: str | None = None) -> None:
        self._requested = model_name
        self._sessions: dict[str, Any] = {}
        self._sessions_lock = threading.Lock()

    @classmethod
    def availability(cls, model_name: str | None = None) -> Availability:
        if not module_present("rembg"):
            return Availability(False, "the 'rembg' package is not installed. " + _INSTALL_HINT)
        if not module_present("onnxruntime"):
            return Availability(False, "rembg needs 'onnxruntime' (pip install 'rembg[cpu]').")
        found = find_rembg_model((model_name,) if model_name else None)
        if found is None:
            wanted = model_name or os.environ.get(MODEL_ENV) or ", ".join(MODEL_PREFERENCE)
            where = ", ".join(str(p.parent) for p in _search_dirs("<name>"))
            return Availability(
                False,
                f"no rembg model file on disk (looked for {wanted} under {where}); rembg would try to "
                "download one, which Strata does not allow.",
            )
        return Availability(True, f"model {found[0]} at {found[1]}")

    def _session(self) -> tuple[str, Any]:
        found = find_rembg_model((self._requested,) if self._requested else None)
        if found is None:
            raise BackendUnavailableError(
                f"rembg cannot run: {self.availability(self._requested).reason}", backend=self.name
            )
        model, _path = found
        with self._sessions_lock:
            session = self._sessions.get(model)
            if session is None:
                rembg = import_backend_module("rembg", self.name, _INSTALL_HINT)
                try:
                    session = rembg.new_session(model)
                except Exception as exc:
                    raise BackendFailedError(f"rembg could not load model {model}: {exc}", backend=self.name) from exc
                self._sessions[model] = session
        return model, session

    def segment(self, rgba: np.ndarray) -> np.ndarray:
        check_image(rgba)
        from PIL import Image

        model, session = self._session()
        try:
            masks = session.predict(Image.fromarray(np.ascontiguousarray(rgba[..., :3])))
        except Exception as exc:
            raise BackendFailedError(f"rembg ({model}) failed: {exc}", backend=self.name) from exc
        mask = np.asarray(masks[0].convert("L"), dtype=np.float32) / 255.0
        if mask.shape != rgba.shape[:2]:
            raise BackendFailedError(f"rembg ({model}) returned a {mask.shape} mask for a {rgba.shape[:2]} image")
        return mask


def rembg_availability() -> Availability:
    """The registry's check (:mod:`strata.core.backends`): a model file on disk."""
    return RembgSegmenter.availability()
