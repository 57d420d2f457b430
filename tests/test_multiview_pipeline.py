"""The PSHuman multiview pipeline (core/multiview/pipeline.py) end to end on TINY random components, on CPU.

A checkpoint folder with the released layout (unet/, vae/, image_encoder/, feature_extractor/, text_encoder/,
tokenizer/, scheduler/, image_normalizer/, image_noising_scheduler/) is written once per module from tiny random
models, loaded with our loader, and run for a few steps at 48 px (12x12 latents). What is checked is the
plumbing and the conventions, not image quality: six views with images, masks, unit normals and cameras;
seeds; per-step progress and cancellation; the loader's errors; batched and sequential CFG agreeing.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers", reason="the multiview pipeline needs diffusers (pip install 'strata[gpu]')")
pytest.importorskip("transformers", reason="the multiview pipeline needs transformers (pip install 'strata[gpu]')")
import torch  # noqa: E402
from conftest import tiny_pshuman_unet_config  # noqa: E402

from strata.core.compute import ComputeEnv  # noqa: E402
from strata.core.multiview import MultiviewUnavailableError, load_pshuman_generator  # noqa: E402
from strata.core.multiview.components import LAYOUT, load_pshuman, prompts  # noqa: E402
from strata.core.multiview.pipeline import PSHumanGenerator  # noqa: E402
from strata.core.multiview.policy import PRESETS, MemoryPolicy, memory_policy  # noqa: E402
from strata.core.multiview.postprocess import (  # noqa: E402
    NORMAL_WHITE_GAP,
    fill_normals,
    mask_from_normal_map,
    paste_face_normal,
    unmirror,
)
from strata.core.progress import Cancelled, Progress  # noqa: E402
from strata.core.render.camera import OrthographicCamera  # noqa: E402
from strata.core.views import PSHUMAN_VIEWS, MultiviewGenerator, View  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LATENT = 12  # UNet side: a multiple of 3 * 2 (two levels)
VAE_FACTOR = 4  # three VAE levels
SIZE = LATENT * VAE_FACTOR  # 48 px images
CROSS, PROJ = 12, 5  # text width (UNet cross-attention) and CLIP image projection (class labels 2 * PROJ)
TINY_UNET = tiny_pshuman_unet_config(LATENT, cross_attention_dim=CROSS, class_dim=2 * PROJ)
BODY = tuple(PSHUMAN_VIEWS)


# --------------------------------------------------------------------------- a tiny checkpoint


def _write_tokenizer(folder: Path) -> None:
    """A CLIP tokenizer whose vocabulary is single printable characters (no merges): every prompt tokenizes."""
    from transformers import CLIPTokenizer

    chars = [chr(c) for c in range(33, 127)]
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in chars:
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    raw = folder.parent / "raw_tokenizer"
    raw.mkdir()
    (raw / "vocab.json").write_text(json.dumps(vocab))
    (raw / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(str(raw / "vocab.json"), str(raw / "merges.txt"), model_max_length=77)
    tok.save_pretrained(str(folder))
    return len(vocab)


def build_checkpoint(root: Path, scheduler: str = "DDIMScheduler") -> Path:
    """Write every component of a tiny PSHuman checkpoint under ``root`` (the released folder names)."""
    from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, EulerDiscreteScheduler
    from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import StableUnCLIPImageNormalizer
    from transformers import (
        CLIPImageProcessor,
        CLIPTextConfig,
        CLIPTextModel,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    from strata.core.multiview.unet import PSHumanUNet

    torch.manual_seed(0)
    root.mkdir(parents=True)
    unet = PSHumanUNet.from_config(TINY_UNET)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # all weights random (the zero-initialised row-wise projections too)
        for p in unet.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    unet.save_pretrained(root / "unet")
    AutoencoderKL(block_out_channels=(8, 16, 16), down_block_types=("DownEncoderBlock2D",) * 3,
                  up_block_types=("UpDecoderBlock2D",) * 3, latent_channels=4, norm_num_groups=4,
                  layers_per_block=1, sample_size=SIZE).save_pretrained(root / "vae")
    vision = CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                              image_size=16, patch_size=8, projection_dim=PROJ)
    CLIPVisionModelWithProjection(vision).save_pretrained(root / "image_encoder")
    CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}).save_pretrained(
        root / "feature_extractor")
    StableUnCLIPImageNormalizer(embedding_dim=PROJ).save_pretrained(root / "image_normalizer")
    DDPMScheduler(beta_schedule="squaredcos_cap_v2").save_pretrained(root / "image_noising_scheduler")
    sampler = {"DDIMScheduler": DDIMScheduler, "EulerDiscreteScheduler": EulerDiscreteScheduler}[scheduler]
    sampler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", prediction_type="v_prediction",
            steps_offset=1).save_pretrained(root / "scheduler")
    vocab_size = _write_tokenizer(root / "tokenizer")
    text = CLIPTextConfig(vocab_size=vocab_size, hidden_size=CROSS, intermediate_size=24, num_hidden_layers=1,
                          num_attention_heads=2, max_position_embeddings=77, bos_token_id=0, eos_token_id=1,
                          pad_token_id=1)
    CLIPTextModel(text).save_pretrained(root / "text_encoder")
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return build_checkpoint(tmp_path_factory.mktemp("pshuman") / "PSHuman_Unclip_768_6views")


@pytest.fixture(scope="module")
def components(checkpoint):
    return load_pshuman(checkpoint, ComputeEnv(), "cpu-test")


def person(h: int = 80, w: int = 50) -> View:
    """A standing 'person': an ellipse with a head, coloured by position, on a grey photo."""
    yy, xx = np.mgrid[0:h, 0:w]
    body = ((xx - w / 2) / (w * 0.3)) ** 2 + ((yy - h * 0.6) / (h * 0.38)) ** 2 < 1
    head = ((xx - w / 2) / (w * 0.12)) ** 2 + ((yy - h * 0.14) / (h * 0.1)) ** 2 < 1
    mask = (body | head).astype(np.float32)
    image = np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 90)], -1).astype(np.uint8)
    return View(name="photo", image=image, mask=mask, exact_mask=True)


class Recorder(Progress):
    """Records every report; raises Cancelled at the ``cancel_at``-th 'views' report."""

    def __init__(self, cancel_at: int | None = None) -> None:
        super().__init__()
        self.reports: list[tuple[str, float]] = []
        self.cancel_at = cancel_at

    def emit(self, stage: str, fraction: float, text: str) -> None:
        self.reports.append((stage, fraction))
        if self.cancel_at is not None and len(self.reports) >= self.cancel_at:
            raise Cancelled()


# --------------------------------------------------------------------------- the pipeline


def test_generates_six_views_in_our_convention(components):
    gen = PSHumanGenerator(components, steps=2, include_face=True, height_m=1.8)
    assert isinstance(gen, MultiviewGenerator)
    views = gen.generate(person(), seed=3)
    assert [v.name for v in views] == [*BODY, "face"]
    for v in views:
        assert v.image.shape == (SIZE, SIZE, 3) and v.image.dtype == np.uint8
        assert v.mask.shape == (SIZE, SIZE) and v.mask.dtype == np.float32
        assert v.mask.min() >= 0.0 and v.mask.max() <= 1.0
        inside = v.mask > 0.5
        length = np.linalg.norm(v.normal, axis=-1)
        np.testing.assert_allclose(length[inside], 1.0, atol=1e-4)
        assert np.all(length[~inside] == 0.0)
        assert isinstance(v.camera, OrthographicCamera) and (v.camera.width, v.camera.height) == (SIZE, SIZE)
    front = views[0]
    assert front.exact_mask and front.weight == 1.0 and views[1].weight == 0.4
    # the front colour is the framed photo, and the front mask its alpha: the person spans 1.8 m of the camera
    rows = np.flatnonzero((front.mask > 0.5).any(axis=1))
    assert float(front.camera.scale) == pytest.approx((rows[-1] + 1 - rows[0]) / 1.8)
    # the face camera magnifies the front camera 3x onto the top-centre tile
    face = views[-1].camera
    point = np.array([0.01, 0.0, 1.6])
    canvas_xy = np.asarray(front.camera.project(point))
    np.testing.assert_allclose(np.asarray(face.project(point)), (canvas_xy - [SIZE // 3, 0]) * 3, atol=1e-6)


def test_seed_reproduces_and_another_seed_differs(components):
    gen = PSHumanGenerator(components, steps=2)
    a, b, c = (gen.generate(person(), seed=s) for s in (7, 7, 8))
    for va, vb in zip(a, b, strict=True):
        assert np.array_equal(va.image, vb.image) and np.array_equal(va.normal, vb.normal)
    assert any(not np.array_equal(va.image, vc.image) for va, vc in zip(a[1:], c[1:], strict=True))


def test_progress_every_step_and_cancel_within_one_step(components):
    calls = []
    hook = components.unet.register_forward_hook(lambda *_: calls.append(1))
    try:
        rec = Recorder()
        PSHumanGenerator(components, steps=3).generate(person(), seed=0, progress=rec)
        assert rec.reports == [("views", 0.0), ("views", pytest.approx(1 / 3)), ("views", pytest.approx(2 / 3)),
                               ("views", 1.0)]
        assert len(calls) == 3  # batched CFG: one UNet call per step
        calls.clear()
        with pytest.raises(Cancelled):  # cancelled at the report after step 1: no second step runs
            PSHumanGenerator(components, steps=3).generate(person(), seed=0, progress=Recorder(cancel_at=2))
        assert len(calls) == 1
    finally:
        hook.remove()


def test_sequential_cfg_equals_batched(components):
    sequential = replace(components, policy=MemoryPolicy(name="seq", dtype="float32", cfg="sequential"))
    a = PSHumanGenerator(components, steps=2).generate(person(), seed=5)
    b = PSHumanGenerator(sequential, steps=2).generate(person(), seed=5)
    for va, vb in zip(a, b, strict=True):
        assert np.abs(va.image.astype(int) - vb.image.astype(int)).max() <= 1
        both = (va.mask > 0.5) & (vb.mask > 0.5)
        np.testing.assert_allclose(va.normal[both], vb.normal[both], atol=0.02)


def test_reduced_precision_and_model_offload_run(checkpoint):
    """bfloat16 networks with a float32 VAE, sequential CFG, model offload and VAE tiling: the dtype/device
    plumbing of the GPU presets, on the CPU (offload moves are no-ops here)."""
    policy = MemoryPolicy(name="t", dtype="bfloat16", vae_dtype="float32", cfg="sequential", vae_tiling=True,
                          offload="model")
    gen = load_pshuman_generator(checkpoint, ComputeEnv(), policy, steps=2)
    assert gen.c.unet.dtype == torch.bfloat16 and gen.c.vae.dtype == torch.float32
    views = gen.generate(person(), seed=2)
    assert len(views) == 6 and all(v.image.dtype == np.uint8 for v in views)


def test_prompt_embeddings_are_computed_once_and_the_text_encoder_is_dropped(components):
    assert components.prompt_embeds.shape == (14, 77, CROSS)
    assert not hasattr(components, "text_encoder")
    assert prompts("normal")[2] == "a rendering image of 3D human, right view, normal map."
    # normal and colour prompts differ, so their embeddings do
    assert not torch.allclose(components.prompt_embeds[0], components.prompt_embeds[7])


def test_scheduler_class_comes_from_the_checkpoint(tmp_path):
    root = build_checkpoint(tmp_path / "ckpt", scheduler="EulerDiscreteScheduler")
    gen = load_pshuman_generator(root, ComputeEnv(), "cpu-test", steps=2)
    assert type(gen.c.scheduler).__name__ == "EulerDiscreteScheduler"
    views = gen.generate(person(), seed=1)
    assert len(views) == 6


# --------------------------------------------------------------------------- loading errors


def test_missing_or_partial_checkpoint_names_the_layout(checkpoint, tmp_path):
    with pytest.raises(MultiviewUnavailableError, match="image_encoder/"):
        load_pshuman(tmp_path / "nothing_here", ComputeEnv())
    partial = tmp_path / "partial"
    shutil.copytree(checkpoint, partial)
    shutil.rmtree(partial / "vae")
    (partial / "tokenizer" / "vocab.json").unlink(missing_ok=True)
    (partial / "tokenizer" / "tokenizer.json").unlink(missing_ok=True)
    with pytest.raises(MultiviewUnavailableError, match=r"missing vae/config\.json.*tokenizer/vocab\.json") as err:
        load_pshuman(partial, ComputeEnv())
    assert "never downloads" in str(err.value.hint)
    bad = tmp_path / "bad_scheduler"
    shutil.copytree(checkpoint, bad)
    (bad / "scheduler" / "scheduler_config.json").write_text(json.dumps({"_class_name": "AutoencoderKL"}))
    with pytest.raises(MultiviewUnavailableError, match="not a diffusers scheduler"):
        load_pshuman(bad, ComputeEnv())
    assert set(LAYOUT) == {"unet", "vae", "image_encoder", "feature_extractor", "image_normalizer",
                           "image_noising_scheduler", "scheduler", "text_encoder", "tokenizer"}


# --------------------------------------------------------------------------- policy and post-processing


def test_memory_policy_presets():
    assert memory_policy(None, device="cuda") is PRESETS["h100"]
    assert memory_policy(None, device="cpu") is PRESETS["cpu-test"]
    assert PRESETS["16gb"].cfg == "sequential" and PRESETS["16gb"].offload == "model"
    assert all(p.vae_slicing for n, p in PRESETS.items() if n != "cpu-test")
    with pytest.raises(ValueError, match="presets"):
        memory_policy("4gb")
    with pytest.raises(ValueError, match="cfg"):
        MemoryPolicy(cfg="parallel")


def test_post_processing_facts():
    images = np.arange(7 * 6 * 6 * 3, dtype=np.uint8).reshape(7, 6, 6, 3)
    fixed = unmirror(images)
    for i in range(7):  # back (3) and left (4) flipped left-right, pixel values untouched
        expected = images[i, :, ::-1] if i in (3, 4) else images[i]
        assert np.array_equal(fixed[i], expected)
    front = np.zeros((9, 9, 3), np.uint8)
    pasted = paste_face_normal(front, np.full((9, 9, 3), 200, np.uint8))
    assert np.all(pasted[:3, 3:6] == 200) and pasted.sum() == 9 * 3 * 200
    # a unit normal's encoding is never near white; the white background is mask 0
    rng = np.random.default_rng(0)
    n = rng.normal(size=(50, 50, 3))
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    encoded = np.round((n * 0.5 + 0.5) * 255).astype(np.uint8)
    assert np.all(mask_from_normal_map(encoded) == 1.0)
    assert np.all(mask_from_normal_map(np.full((4, 4, 3), 255, np.uint8)) == 0.0)
    assert NORMAL_WHITE_GAP > 0.25
    # the front mask (the photo's) may cover pixels the generated normal map left as background: nearest fill
    normals = np.zeros((5, 5, 3), np.float32)
    normals[:, :2] = [0.0, 0.0, 1.0]
    known = np.zeros((5, 5), bool)
    known[:, :2] = True
    mask = np.zeros((5, 5), np.float32)
    mask[:, :3] = 1.0
    filled = fill_normals(normals, known, mask)
    assert np.all(filled[:, :3] == [0.0, 0.0, 1.0]) and np.all(filled[:, 3:] == 0.0)
