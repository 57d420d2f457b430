"""PSHuman's multiview UNet: the released architecture's exact tensors, strict loading, and the multiview
wiring (which view may influence which) checked on tiny random weights, all on CPU.

The influence tests state properties of the official blocks (pengHTYX/PSHuman ``attn_processors.py``,
``transformer_mv2d_self_rowwise.py``): inside a group of 7 views (6 body + face, one domain, one CFG branch)
only three paths cross images: attn1 joins view v's normal and colour tokens, the face is blended into the
front view, and the row-wise attention joins the 6 body views of one domain. Everything else (convs, norms,
cross-attention, feed-forward) is per image.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("diffusers", reason="the multiview UNet needs diffusers (pip install 'strata[multiview]')")
import torch  # noqa: E402
from conftest import tiny_pshuman_unet_config  # noqa: E402

from strata.core.errors import UnavailableError  # noqa: E402
from strata.core.multiview import (  # noqa: E402
    PSHUMAN_UNET_CONFIG,
    PSHUMAN_UNET_PARAMETERS,
    MultiviewUnavailableError,
    load_pshuman_unet,
)
from strata.core.multiview.attention import (  # noqa: E402
    JointDomainSelfAttention,
    RowwiseMultiviewAttention,
    blend_face_into_front,
)
from strata.core.multiview.blocks import MultiviewTransformerBlock  # noqa: E402
from strata.core.multiview.unet import PSHumanUNet  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TENSORS = Path(__file__).parent / "data" / "pshuman_unet_tensors.json"
VIEWS = 7
SIDE = 6  # tiny latent side: 6 at the attention level, 3 at the mid block (both multiples of 3)
TINY = tiny_pshuman_unet_config(SIDE, cross_attention_dim=12, class_dim=10)
NORMAL, COLOUR = 0, 1  # domain index
UNCOND, COND = 0, 1  # CFG branch index
FRONT, BACK, FACE = 0, 3, 6


def idx(domain: int, branch: int, view: int, branches: int = 2) -> int:
    """Batch index of a view in the [normal_uncond, normal_cond, colour_uncond, colour_cond] x 7 layout."""
    return (domain * branches + branch) * VIEWS + view


def randomised(model: PSHumanUNet, seed: int = 0, rowwise: bool = True) -> PSHumanUNet:
    """All weights random (the zero-initialised row-wise output projection too, unless ``rowwise`` is False)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
            if not rowwise and ".attn_mv.to_out.0." in name:
                p.zero_()
    return model.eval()


def inputs(batch: int = 4 * VIEWS, seed: int = 1) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {
        "sample": torch.randn(batch, 8, SIDE, SIDE, generator=gen),
        "timestep": torch.tensor(500),
        "encoder_hidden_states": torch.randn(batch, 5, TINY["cross_attention_dim"], generator=gen),
        "class_labels": torch.randn(batch, TINY["projection_class_embeddings_input_dim"], generator=gen),
    }


def run(model: PSHumanUNet, args: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return model(**args).sample


def changed(a: torch.Tensor, b: torch.Tensor) -> list[int]:
    """Batch indices whose outputs differ."""
    return [i for i in range(a.shape[0]) if not torch.allclose(a[i], b[i], atol=1e-6, rtol=0)]


@pytest.fixture(scope="module")
def tiny() -> PSHumanUNet:
    return randomised(PSHumanUNet.from_config(TINY))


@pytest.fixture(scope="module")
def tiny_no_rowwise() -> PSHumanUNet:
    return randomised(PSHumanUNet.from_config(TINY), rowwise=False)


# -- the released architecture ---------------------------------------------------------------------------------


def test_the_released_config_builds_exactly_the_checkpoints_tensors():
    reference = json.loads(TENSORS.read_text())
    with torch.device("meta"):
        model = PSHumanUNet.from_config(PSHUMAN_UNET_CONFIG)
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    theirs = reference["tensors"]
    assert sorted(set(theirs) - set(ours)) == []  # missing
    assert sorted(set(ours) - set(theirs)) == []  # unexpected
    assert [k for k in theirs if ours[k] != theirs[k]] == []  # shape mismatches
    assert len(ours) == reference["num_tensors"] == 802
    assert sum(v.numel() for v in model.state_dict().values()) == PSHUMAN_UNET_PARAMETERS == reference["num_params"]
    # the checkpoint's own config keys survive in ours (so save_pretrained writes the official layout)
    assert {k: model.config[k] for k in reference["config"]} == {
        k: (list(v) if isinstance(v, tuple) else v) for k, v in reference["config"].items()}
    assert model.config.down_block_types[0] == "CrossAttnDownBlockMV2D"


def test_every_transformer_block_is_multiview_and_attention_goes_through_sdpa(tiny, monkeypatch):
    blocks = [m for m in tiny.modules() if isinstance(m, MultiviewTransformerBlock)]
    assert len(blocks) == 4  # down level 0 (1 layer), mid (1), up level 0 (layers_per_block + 1 = 2)
    calls = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", counting)
    run(tiny, inputs())
    assert len(calls) == 3 * len(blocks)  # attn1, attn_mv, attn2 in every block
    # attn1 sees 14 joint sequences of 2*36 tokens; attn_mv 4 groups x 6 rows of 6 views x 6 columns
    assert (14, 2, 2 * SIDE * SIDE, 8) in calls and (4 * SIDE, 2, 6 * SIDE, 8) in calls


def test_generic_processor_switches_are_refused(tiny):
    with pytest.raises(NotImplementedError):
        tiny.set_default_attn_processor()


# -- which view influences which ---------------------------------------------------------------------------------


def test_a_body_view_sees_the_other_body_views_only_through_the_rowwise_attention(tiny, tiny_no_rowwise):
    base = inputs()
    moved = {**base, "sample": base["sample"].clone()}
    moved["sample"][idx(NORMAL, COND, 2)] += 1.0  # the right view's normal latent
    with_rowwise = changed(run(tiny, base), run(tiny, moved))
    without = changed(run(tiny_no_rowwise, base), run(tiny_no_rowwise, moved))
    body = [idx(d, COND, v) for d in (NORMAL, COLOUR) for v in range(6)]
    assert sorted(with_rowwise) == sorted(body)  # every body view of that CFG branch, both domains
    assert sorted(without) == [idx(NORMAL, COND, 2), idx(COLOUR, COND, 2)]  # only its own view (joint domains)


def test_the_face_reaches_the_front_view_and_nothing_reaches_the_face(tiny, tiny_no_rowwise):
    base = inputs()
    face_moved = {**base, "sample": base["sample"].clone()}
    face_moved["sample"][idx(NORMAL, UNCOND, FACE)] += 1.0
    # 1. the face -> front blend: without row-wise attention the face changes only itself and the front view
    without = changed(run(tiny_no_rowwise, base), run(tiny_no_rowwise, face_moved))
    assert sorted(without) == sorted(idx(d, UNCOND, v) for d in (NORMAL, COLOUR) for v in (FRONT, FACE))
    # 2. ...and through the front view's row-wise attention the other body views of that branch
    assert sorted(changed(run(tiny, base), run(tiny, face_moved))) == sorted(
        idx(d, UNCOND, v) for d in (NORMAL, COLOUR) for v in range(VIEWS))
    # 3. the face view is excluded from the row-wise attention and receives no blend: body views never reach it
    body_moved = {**base, "sample": base["sample"].clone()}
    for v in range(6):
        body_moved["sample"][idx(NORMAL, UNCOND, v)] += 1.0
    out, out_moved = run(tiny, base), run(tiny, body_moved)
    for d in (NORMAL, COLOUR):
        torch.testing.assert_close(out_moved[idx(d, UNCOND, FACE)], out[idx(d, UNCOND, FACE)], rtol=0, atol=1e-6)


def test_normal_and_colour_of_one_view_attend_jointly(tiny_no_rowwise):
    base = inputs()
    moved = {**base, "sample": base["sample"].clone()}
    moved["sample"][idx(COLOUR, COND, BACK)] += 1.0
    assert sorted(changed(run(tiny_no_rowwise, base), run(tiny_no_rowwise, moved))) == [
        idx(NORMAL, COND, BACK), idx(COLOUR, COND, BACK)]


def test_cfg_halves_are_independent_and_one_half_runs_alone(tiny):
    base = inputs()
    moved = {k: v.clone() for k, v in base.items()}
    uncond = [idx(d, UNCOND, v) for d in (NORMAL, COLOUR) for v in range(VIEWS)]
    cond = [idx(d, COND, v) for d in (NORMAL, COLOUR) for v in range(VIEWS)]
    for key in ("sample", "encoder_hidden_states", "class_labels"):
        moved[key][uncond] = torch.randn_like(moved[key][uncond])
    out, out_moved = run(tiny, base), run(tiny, moved)
    assert sorted(changed(out, out_moved)) == sorted(uncond)
    # the cond half alone (14 images: [normal_cond, colour_cond]) gives the same prediction
    half = {k: (v[cond] if v.ndim else v) for k, v in base.items()}
    torch.testing.assert_close(run(tiny, half), out[cond], rtol=1e-5, atol=1e-5)


def test_class_labels_and_text_embeddings_condition_each_image(tiny):
    base = inputs()
    for key in ("class_labels", "encoder_hidden_states"):
        moved = {**base, key: base[key].clone()}
        moved[key][idx(NORMAL, COND, FRONT)] += 1.0
        assert idx(NORMAL, COND, FRONT) in changed(run(tiny, base), run(tiny, moved))


def test_batches_and_latents_the_layout_cannot_split_are_refused(tiny):
    with pytest.raises(ValueError, match="multiple of 14"):
        run(tiny, inputs(batch=21))
    bad = inputs()
    bad["sample"] = torch.randn(28, 8, 8, 8)
    with pytest.raises(ValueError, match="multiple of 6"):
        run(tiny, bad)


# -- the processors, exactly -------------------------------------------------------------------------------------


def test_the_face_blend_mixes_a_bilinear_third_of_the_face_into_the_front_tile_only():
    side, channels = 9, 4
    x = torch.randn(2 * VIEWS, side * side, channels)
    out = blend_face_into_front(x, VIEWS, side)
    grid, got = x.reshape(2, VIEWS, side, side, channels), out.reshape(2, VIEWS, side, side, channels)
    # bilinear (align_corners=False) at exactly a third samples the centre pixel of each 3x3 cell
    face_third = grid[:, FACE, 1::3, 1::3]
    torch.testing.assert_close(got[:, FRONT, :3, 3:6], 0.5 * grid[:, FRONT, :3, 3:6] + 0.5 * face_third)
    untouched = torch.ones(side, side, dtype=torch.bool)
    untouched[:3, 3:6] = False
    assert torch.equal(got[:, FRONT][:, untouched], grid[:, FRONT][:, untouched])
    assert torch.equal(got[:, 1:], grid[:, 1:])


def test_rowwise_attention_joins_one_row_across_the_body_views():
    from diffusers.models.attention_processor import Attention

    attn = Attention(query_dim=8, heads=2, dim_head=4)
    attn.set_processor(RowwiseMultiviewAttention(6))
    x = torch.randn(6, 16, 8)
    moved = x.clone()
    moved[2].view(4, 4, 8)[1] += 1.0  # row 1 of view 2
    with torch.no_grad():
        diff = (attn(x) - attn(moved)).abs().amax(-1).reshape(6, 4, 4).amax(-1) > 1e-6  # (view, row)
    assert diff[:, 1].all() and not diff[:, [0, 2, 3]].any()


def test_joint_domain_attention_pairs_image_i_with_image_i_of_the_other_domain():
    from diffusers.models.attention_processor import Attention

    attn = Attention(query_dim=8, heads=2, dim_head=4)
    attn.set_processor(JointDomainSelfAttention(VIEWS))
    x = torch.randn(2 * VIEWS, 9, 8)
    moved = x.clone()
    moved[VIEWS + BACK] += 1.0  # colour back view
    with torch.no_grad():
        assert changed(attn(x), attn(moved)) == [BACK, VIEWS + BACK]


# -- loading -----------------------------------------------------------------------------------------------------


def test_save_pretrained_then_load_gives_the_same_model(tiny, tmp_path):
    tiny.save_pretrained(tmp_path / "unet")
    args = inputs()
    expected = run(tiny, args)
    for folder in (tmp_path / "unet", tmp_path):  # the unet folder or the repository root
        loaded = load_pshuman_unet(folder)
        assert isinstance(loaded, PSHumanUNet) and not loaded.training
        assert all(p.device.type == "cpu" and p.dtype == torch.float32 for p in loaded.parameters())
        torch.testing.assert_close(run(loaded, args), expected, rtol=0, atol=0)
    assert load_pshuman_unet(tmp_path, dtype=torch.bfloat16).dtype == torch.bfloat16


def test_a_hugging_face_cache_layout_loads(tiny, tmp_path):
    repo = tmp_path / "models--pengHTYX--PSHuman_Unclip_768_6views"
    tiny.save_pretrained(repo / "snapshots" / "abc123" / "unet")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    args = inputs()
    for folder in (repo, repo / "snapshots" / "abc123", repo / "snapshots" / "abc123" / "unet"):
        torch.testing.assert_close(run(load_pshuman_unet(folder), args), run(tiny, args), rtol=0, atol=0)


def test_missing_or_partial_weights_are_a_clear_unavailable_error(tiny, tmp_path):
    from safetensors.torch import load_file, save_file

    assert issubclass(MultiviewUnavailableError, UnavailableError)
    with pytest.raises(MultiviewUnavailableError, match="unet/config.json"):
        load_pshuman_unet(tmp_path / "nothing")
    unet = tmp_path / "unet"
    tiny.save_pretrained(unet)
    weights_file = unet / "diffusion_pytorch_model.safetensors"
    weights = load_file(weights_file)
    # wrong keys: one missing, one foreign
    weights.pop("conv_in.weight")
    weights["to_k_ip.weight"] = torch.zeros(2)
    save_file(weights, weights_file)
    with pytest.raises(MultiviewUnavailableError, match="1 missing: conv_in.weight; 1 unexpected: to_k_ip.weight"):
        load_pshuman_unet(tmp_path)
    # a truncated download
    weights_file.write_bytes(weights_file.read_bytes()[:100])
    with pytest.raises(MultiviewUnavailableError, match="incomplete download"):
        load_pshuman_unet(tmp_path)
    # no weights file at all
    weights_file.unlink()
    with pytest.raises(MultiviewUnavailableError, match="no UNet weights") as info:
        load_pshuman_unet(tmp_path)
    assert "PSHuman_Unclip_768_6views" in info.value.hint


def test_a_config_of_another_variant_is_refused(tiny, tmp_path):
    tiny.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "regress_elevation": True}))
    with pytest.raises(MultiviewUnavailableError, match="regress_elevation"):
        load_pshuman_unet(tmp_path)


def test_importing_the_package_does_not_import_torch():
    code = "import sys, strata.core.multiview\nassert 'torch' not in sys.modules and 'diffusers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
