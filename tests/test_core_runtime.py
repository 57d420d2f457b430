"""The house the stages live in: the backend registry, the compute environment, the model cache, views."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from pathlib import Path

import numpy as np
import pytest

from strata.core.backends import REGISTRY
from strata.core.cache import ModelCache, model_key, process_cache
from strata.core.compute import ComputeEnv
from strata.core.errors import UnavailableError
from strata.core.registry import STAGES, Availability, Backend, BackendUnavailable, Registry
from strata.core.views import PSHUMAN_VIEWS, View, first

# --------------------------------------------------------------------------------------------- model cache


def test_model_cache_loads_once_and_releases():
    cache = ModelCache()
    calls = []

    def loader():
        calls.append(1)
        time.sleep(0.05)
        return object()

    got = []
    threads = [threading.Thread(target=lambda: got.append(cache.get("m", loader))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and all(g is got[0] for g in got)
    assert cache.loaded() == ["m"] and "m" in cache and cache.peek("m") is got[0]
    assert cache.release() == ["m"] and cache.loaded() == [] and cache.peek("m") is None


def test_model_keys_separate_device_dtype_and_options():
    keys = {model_key("body_model/anny", "cpu", "float32", rig="anny"), model_key("body_model/anny", "cuda"),
            model_key("body_model/anny", "cpu", "float16"), model_key("body_model/anny", "cpu", rig="mixamo")}
    assert len(keys) == 4
    assert model_key("x", rig=None) == model_key("x")


def test_release_drops_every_real_model():
    """Load the CPU path's models through the registry, release, and check nothing keeps them alive."""
    pytest.importorskip("torch")
    pytest.importorskip("anny")
    import torch

    from strata.core.body import get_body_model
    from strata.core.pose.mediapipe_graph import shared_pose_graph
    from strata.core.reconstruct.texture import uv_layout
    from strata.core.render import get_rasterizer
    from strata.core.render.topology import edge_topology
    from strata.core.segmentation import choose_segmenter

    cache, env = ModelCache(), ComputeEnv()
    body = get_body_model("anny", env=env, cache=cache)
    body.skin_texture(size=64)  # painted textures live on the model, not in a class-level cache
    models = [body, get_body_model("anny", env=env, cache=cache),
              get_rasterizer(env=env, cache=cache),
              choose_segmenter("auto", has_cutout=True, env=env, cache=cache),
              uv_layout(body.uvs, body.uv_faces, 64, cache=cache)]
    assert models[0] is models[1]  # one key per (model, device, dtype): never built twice
    if REGISTRY.get("pose", "mediapipe").availability(env):
        models.append(shared_pose_graph(cache))
        models.append(REGISTRY.build("pose", "auto", env=env, cache=cache))
    faces = torch.as_tensor(body.faces)
    models.append(edge_topology(faces))  # kept in the process cache's LRU
    held = cache.loaded()
    assert len(held) >= 5
    refs = [weakref.ref(m) for m in models]
    del body, models
    assert sorted(cache.release()) == held and cache.loaded() == []
    process_cache().release()
    gc.collect()
    alive = [r() for r in refs if r() is not None]
    assert not alive, f"still referenced after release: {[type(a).__name__ for a in alive]}"


# --------------------------------------------------------------------------------------------- registry


def _registry(tmp_path: Path) -> Registry:
    reg = Registry()
    reg.register(Backend("multiview", "gpu-model", "needs CUDA and weights", "builtins:dict", device="cuda",
                         weights=("Model_768",), priority=10))
    reg.register(Backend("multiview", "missing-package", "needs a package", "builtins:dict",
                         modules=("surely_not_a_module_xyz",), install="pip install xyz", priority=5))
    reg.register(Backend("multiview", "cpu", "always", "builtins:dict", priority=0))
    reg.register(Backend("segmentation", "cutout-only", "needs a cut-out", "builtins:dict", needs=("cutout",),
                         priority=100))
    reg.register(Backend("segmentation", "model", "always", "builtins:dict"))
    return reg


def test_backends_answer_for_themselves_with_reasons(tmp_path):
    reg = _registry(tmp_path)
    cpu = ComputeEnv()
    avail = reg.availability(cpu)["multiview"]
    assert "needs CUDA (this server runs on cpu)" in avail["gpu-model"].reason
    assert "surely_not_a_module_xyz" in avail["missing-package"].reason
    assert "pip install xyz" in avail["missing-package"].reason
    assert avail["cpu"]
    gpu = ComputeEnv(device="cuda:0", weights_dir=tmp_path)
    assert f"no weights in {tmp_path / 'Model_768'}" in reg.get("multiview", "gpu-model").availability(gpu).reason
    assert "--weights-dir" in reg.get("multiview", "gpu-model").availability(ComputeEnv(device="cuda")).reason
    (tmp_path / "Model_768").mkdir()
    assert reg.get("multiview", "gpu-model").availability(gpu)
    assert "still being probed" in reg.get("multiview", "gpu-model").availability(None).reason


def test_auto_is_decided_in_one_place(tmp_path):
    reg = _registry(tmp_path)
    assert reg.choose("multiview", "auto", ComputeEnv()).name == "cpu"
    (tmp_path / "Model_768").mkdir()
    assert reg.choose("multiview", "auto", ComputeEnv(device="cuda", weights_dir=tmp_path)).name == "gpu-model"
    assert reg.choose("segmentation", "auto", ComputeEnv()).name == "model"
    assert reg.choose("segmentation", "auto", ComputeEnv(), facts={"cutout"}).name == "cutout-only"
    with pytest.raises(BackendUnavailable, match="needs a photo whose background is already removed"):
        reg.choose("segmentation", "cutout-only", ComputeEnv())
    with pytest.raises(BackendUnavailable, match="cannot run here: needs CUDA") as info:
        reg.choose("multiview", "gpu-model", ComputeEnv())
    assert isinstance(info.value, UnavailableError) and info.value.code == "unavailable"
    with pytest.raises(BackendUnavailable, match="unknown multiview backend 'nope'"):
        reg.choose("multiview", "nope", ComputeEnv())
    with pytest.raises(ValueError, match="already registered"):
        reg.register(Backend("multiview", "cpu", "twice", "builtins:dict"))
    with pytest.raises(ValueError, match="unknown stage"):
        reg.register(Backend("painting", "x", "no such stage", "builtins:dict"))


def test_a_gpu_preferring_backend_runs_anywhere_but_auto_takes_it_only_on_cuda():
    reg = Registry()
    reg.register(Backend("multiview", "diffusion", "a big model", "builtins:dict", auto_device="cuda", priority=10))
    with pytest.raises(BackendUnavailable, match="only on a CUDA device"):
        reg.choose("multiview", "auto", ComputeEnv())
    assert reg.choose("multiview", "diffusion", ComputeEnv()).name == "diffusion"  # asked for by name
    assert reg.choose("multiview", "auto", ComputeEnv(device="cuda")).name == "diffusion"


def test_build_passes_env_and_options_and_caches(tmp_path):
    reg = Registry()
    reg.register(Backend("carve", "made", "records its arguments", "strata.core.views:View", cached=False))
    reg.register(Backend("garments", "kept", "a cached dict", "builtins:dict"))
    cache = ModelCache()
    built = reg.build("garments", env=ComputeEnv(), cache=cache, size=3)
    assert built == {"size": 3} and reg.build("garments", env=ComputeEnv(), cache=cache, size=3) is built
    assert reg.build("garments", env=ComputeEnv(), cache=cache, size=4) is not built
    assert len(cache.loaded()) == 2 and all(k.startswith("garments/kept@cpu/float32") for k in cache.loaded())


def test_the_builtin_table_covers_every_stage_of_todays_jobs():
    cpu = ComputeEnv()
    report = REGISTRY.report(cpu)
    assert set(report) <= set(STAGES)
    for stage in ("segmentation", "pose", "body_model", "rasterizer", "body_fit", "surface", "texture", "rig"):
        assert REGISTRY.is_ready(stage, cpu), (stage, report.get(stage))
    raster = report["rasterizer"]
    assert raster["torch"]["ok"] and not raster["nvdiffrast"]["ok"]
    assert "CUDA" in raster["nvdiffrast"]["reason"] or "nvdiffrast" in raster["nvdiffrast"]["reason"]
    assert not report["body_model"]["smplx"]["ok"] and report["body_model"]["smplx"]["reason"]


def test_rasterizer_follows_the_environment():
    pytest.importorskip("torch")
    from strata.core.render import get_rasterizer

    cache = ModelCache()
    rast = get_rasterizer(env=ComputeEnv(), cache=cache)
    assert rast.name == "torch" and str(rast.device) == "cpu"
    with pytest.raises(UnavailableError, match="nvdiffrast rasterizer backend cannot run here: needs"):
        get_rasterizer("nvdiffrast", env=ComputeEnv(), cache=cache)


# --------------------------------------------------------------------------------------------- environment


def test_compute_env_resolves_auto_and_describes_itself(monkeypatch, tmp_path):
    monkeypatch.setenv("STRATA_DEVICE", "cpu")
    env = ComputeEnv.resolve(weights_dir=tmp_path)
    assert env.device == "cpu" and env.dtype == "float32" and env.threads == 1 and not env.is_cuda
    assert env.weights_path("PSHuman") == tmp_path / "PSHuman"
    assert env.describe()["type"] == "cpu" and env.describe()["weights_dir"] == str(tmp_path)
    with pytest.raises(ValueError, match="dtype"):
        ComputeEnv(dtype="float8")
    assert ComputeEnv(device="cuda").with_device("cpu").device == "cpu"


def test_torch_threads_is_scoped():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    with ComputeEnv(threads=1).torch_threads():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with ComputeEnv(threads=None).torch_threads():
        assert torch.get_num_threads() == before


def test_set_num_threads_is_called_in_one_place():
    root = Path(__file__).resolve().parents[1]
    callers = [p.relative_to(root).as_posix() for top in ("core", "server", "client", "exchange")
               for p in (root / top).rglob("*.py") if "set_num_threads(" in p.read_text()]
    assert callers == ["core/compute.py"]


# --------------------------------------------------------------------------------------------- views


def test_views_check_their_sizes():
    img = np.zeros((8, 6, 3), np.uint8)
    view = View("front", img, np.ones((8, 6), np.float32), normal=np.zeros((8, 6, 3), np.float32))
    assert view.size == (8, 6) and first([view]) is view
    with pytest.raises(ValueError, match="differ in size"):
        View("front", img, np.ones((8, 5), np.float32))
    with pytest.raises(ValueError, match="no views"):
        first([])
    assert list(PSHUMAN_VIEWS.values()) == [0.0, 45.0, 90.0, 180.0, 270.0, 315.0]


def test_process_cache_is_one_instance():
    assert process_cache() is process_cache()
    assert Availability(False, "x").as_dict() == {"ok": False, "reason": "x"}


def _recorded(cancel_after: int | None = None):
    """A Progress that records its reports and cancels after ``cancel_after`` of them."""
    from strata.core.progress import Cancelled, Progress

    class Recorded(Progress):
        def __init__(self) -> None:
            super().__init__()
            self.lines: list[tuple[str, float, str]] = []

        def check(self) -> None:
            if cancel_after is not None and len(self.lines) >= cancel_after:
                raise Cancelled("cancelled by the user")

        def emit(self, stage: str, fraction: float, text: str) -> None:
            self.lines.append((stage, fraction, text))

    return Recorded()


def _anny_builds(steps: list[str], seconds: float) -> None:
    """What anny logs while it builds a rig's data for the first time: nested builders, the outer first."""
    import logging

    log = logging.getLogger("anny.models.model_data")
    paths = [f"/home/u/.cache/anny/v14/{step}_0123456789abcdef0123456789abcdef.safetensors" for step in steps]
    for path in paths:
        log.info(f"No cached model data found at {path}, building model data...")
    for path in reversed(paths):
        time.sleep(seconds)
        log.info(f"Saved built model data to cache at {path}")


def test_a_rigs_first_build_is_reported_with_its_steps():
    """anny's one-time build shows as numbered steps with the elapsed time; a cached load says nothing."""
    from strata.core.body import visible_build

    progress = _recorded()
    with visible_build(progress, "load_model", "mixamo", every=0.02):
        _anny_builds(["build_model_data", "load_data"], 0.15)
    texts = [text for _, _, text in progress.lines]
    assert texts and all(t.startswith("first use of the mixamo rig") for t in texts)
    assert any("step 1 of up to 3: reading MakeHuman's assets" in t for t in texts)
    assert any("step 2 of up to 3: building the rig's model data" in t for t in texts)
    fractions = [f for _, f, _ in progress.lines]
    assert fractions == sorted(fractions) and fractions[-1] > fractions[0]
    quiet = _recorded()
    with visible_build(quiet, "load_model", "mixamo", every=0.02):
        time.sleep(0.1)  # anny found its cache: no build, no report
    assert quiet.lines == []


def test_a_cancel_during_the_build_stops_the_job_when_it_ends():
    """anny's builder cannot be interrupted: a cancel met by the heartbeat is raised once the block ends."""
    from strata.core.body import visible_build
    from strata.core.progress import Cancelled

    progress = _recorded(cancel_after=1)
    finished = []
    with pytest.raises(Cancelled), visible_build(progress, "load_model", "anny", every=0.02):
        _anny_builds(["build_model_data"], 0.2)
        finished.append(True)
    assert finished == [True] and len(progress.lines) == 1
