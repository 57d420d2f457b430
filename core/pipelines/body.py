"""The `body` job: a rigged, textured human body from shape parameters.

The body is posed in the requested preset (rest / A / T) and that pose is the bind pose of the rig, with
no pose on the armature: what an artist expects from a base mesh (the asset contract's standard rest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from strata.exchange.asset.schema import BodyParams, HumanAsset, Layer, Mesh, Provenance

from ..body.base import BodyModel
from ..body.skinning import rig_from, skin_from
from ..progress import Progress, Silent
from .common import now_iso, png_texture, versions

SHAPE_PARAMS = ("gender", "age", "muscle", "weight", "proportions")


def smplx_extras(model: BodyModel, shape: np.ndarray) -> dict[str, Any]:
    """The asset's body extras a body from the user's SMPL-X files needs (empty for anny): its file's
    ``gender``, and ``smplx_pelvis``, the pelvis in SMPL-X's own frame, with which the fit written beside
    exports places the body where the asset is (:func:`strata.client.outputs.write_smplx_pose`)."""
    if getattr(model, "name", "") != "smplx":
        return {}
    return {"gender": str(model.gender), "smplx_pelvis": [float(x) for x in model.canonical_pelvis(shape)]}


def shape_values(model: BodyModel, params: dict[str, Any]) -> dict[str, float]:
    """The job's shape parameters as ``model``'s phenotypes (the age, given in years, as anny's 0-1)."""
    from ..body.rigs import age_phenotype

    named = {k: float(params[k]) for k in SHAPE_PARAMS if k in params and k in model.shape_names}
    if "age" in named:
        named["age"] = age_phenotype(named["age"])
    return named


def build_body(model: BodyModel, params: dict[str, Any], progress: Progress | None = None) -> HumanAsset:
    """`params` as validated by exchange/wire/jobs.py's "body" spec (defaults filled)."""
    import torch

    progress = progress or Silent()
    progress.report("shape", 0.0, "solving the body shape")
    shape = model.shape_vector(**shape_values(model, params))
    notes = []
    try:
        shape = model.solve_height(float(params.get("height", 1.70)), shape)
    except ValueError as exc:
        if model.name == "anny":
            raise
        # A model whose stature one coefficient cannot reach (SMPL-X's betas are fitted, not set by height):
        # the body keeps its own, and says so.
        notes.append(f"{exc}; the body keeps its own height.")

    preset = str(params.get("pose", "A"))
    progress.report("pose", 0.0, f"posing in the {preset} preset")
    pose = model.pose_preset(preset, shape)
    with torch.no_grad():
        out = model.forward(shape=shape[None], pose=pose[None])
    vertices = out.vertices[0].cpu().numpy().astype(np.float32)
    joints = out.joint_world[0].cpu().numpy().astype(np.float32)
    lengths = out.bone_lengths[0].cpu().numpy().astype(np.float32)

    progress.report("texture", 0.0, "painting the skin texture")
    body = body_layer(model, vertices, float(params.get("skin_tone", 0.4)), int(params.get("texture_size", 2048)))
    bones = add_shape_keys(model, shape, pose, [body], out=out)  # sliders that stay editable in Blender
    progress.report("assemble", 0.0, "assembling the asset")
    provenance = Provenance(
        job_kind="body",
        backends={"body_model": model.name},
        versions=versions("anny", "smplx", "torch") if model.name == "smplx" else versions("anny", "torch"),
        params=dict(params),
        created=now_iso(),
        notes=notes,
    )
    params_out = BodyParams(
        model=model.name,
        shape_names=list(model.shape_names),
        shape=np.asarray(shape, np.float32),
        pose=np.asarray(pose, np.float32),
        translation=np.zeros(3, np.float32),
        extra={"rig": model.rig, "height_m": float(model.measure_height(shape[None])[0]), **smplx_extras(model, shape),
               **({"shape_key_bones": bones} if bones else {})},
    )
    progress.report("assemble", 1.0, "done")
    rig = rig_from(model, joints, lengths, rest_pose=preset if preset in ("A", "T") else "")
    return HumanAsset(
        name=f"body_{params.get('height', 1.7):.2f}m",
        layers=[body],
        provenance=provenance,
        rig=rig,
        body=params_out,
    )


def body_layer(model: BodyModel, vertices: np.ndarray, skin_tone: float, texture_size: int) -> Layer:
    """The body layer of an asset: the model's mesh at ``vertices`` with its UVs, painted skin and skin weights
    (the `body` and `generate` jobs both start from it)."""
    mesh = Mesh(
        vertices=np.asarray(vertices, np.float32),
        faces=np.asarray(model.faces, np.uint32),
        uvs=np.asarray(model.uvs, np.float32),
        uv_faces=np.asarray(model.uv_faces, np.uint32),
    )
    texture = png_texture(model.skin_texture(tone=skin_tone, size=texture_size))
    return Layer("Body", "body", mesh, texture=texture, skin=skin_from(model))


@dataclass
class ShapeKeys:
    """A body's shape sliders as the asset carries them."""

    names: list[str]
    vertices: np.ndarray
    """(K, N, 3) float32 offsets of the posed body's vertices per key at 1."""
    bones: dict[str, Any] | None = None
    """For keys that reach a model shape (anny's): ``{"names", "heads", "tails"}``, (K, J, 3) lists of how
    each rig bone's head and tail move at 1 (the model's own joints there, posed as stored), so the bones can
    be fitted to the sliders (Blender's *Fit Bones to Shape*); None for linear keys (SMPL-X's)."""


def shape_keys(model: BodyModel, out: Any, shape: np.ndarray, pose: np.ndarray) -> ShapeKeys | None:
    """The shape keys of the body ``out`` (a ``forward`` output at ``shape`` and ``pose``), or None when the
    model offers none: SMPL-X's betas, anny's phenotypes towards each end
    (:meth:`~..body.base.BodyModel.shape_keys_rest`).

    The keys are rest-pose offsets; on a body stored in another pose (the A preset) each vertex's offset
    turns with the blended rotation of its skinning, so a slider moves the skin where it now is."""
    import torch

    from ..body.skinning import skinning_transforms

    targets = None if getattr(model, "shape_directions", None) is not None else model.shape_key_shapes(shape)
    found = model.shape_keys_rest(shape, targets)
    if found is None:
        return None
    names, dirs = found
    with torch.no_grad():
        transforms = skinning_transforms(out.rest_joint_world[0].cpu().numpy().astype(np.float64),
                                         out.joint_world[0].cpu().numpy().astype(np.float64))
    joints, weights = model.skin_weights(None)
    blended = np.einsum("nk,nkab->nab", weights.astype(np.float64), transforms[joints][..., :3, :3])
    keys = ShapeKeys(names, np.einsum("nab,snb->sna", blended, dirs).astype(np.float32))
    if targets is not None:  # the model's own joints at each key's shape, posed as the body is
        _, shapes = targets
        with torch.no_grad():
            there = model.forward(shape=shapes, pose=np.asarray(pose, np.float32)[None])
        heads = (there.joint_heads - out.joint_heads).cpu().numpy()
        tails = (there.joint_tails - out.joint_tails).cpu().numpy()
        keys.bones = {"names": names, "heads": np.round(heads, 6).tolist(), "tails": np.round(tails, 6).tolist()}
    return keys


def add_shape_keys(model: BodyModel, shape: np.ndarray, pose: np.ndarray, layers: list[Layer],
                   skin_faces: np.ndarray | None = None, out: Any = None) -> dict[str, Any] | None:
    """The shape sliders onto an asset's layers: the body's (``layers[0]``, on the model's topology, at
    ``shape`` in ``pose``; ``out`` its ``forward`` output when the caller has it) and each garment's, bound
    to the body's skin (``skin_faces``: :mod:`..garments.binding`), so the sliders reshape the body and its
    clothes together. Returns how the bones move with the keys (:class:`ShapeKeys`), for the body extras;
    None (and no keys) when the model offers none."""
    import torch

    from ..garments.binding import bind, follow_keys

    if out is None:
        with torch.no_grad():
            out = model.forward(shape=np.asarray(shape, np.float32)[None], pose=np.asarray(pose, np.float32)[None])
    keys = shape_keys(model, out, shape, pose)
    if keys is None:
        return None
    body = layers[0].mesh
    body.shape_keys, body.shape_key_names = keys.vertices, keys.names
    surface = np.asarray(body.vertices, np.float64)
    for layer in layers[1:]:
        # 4 nearest candidates, not 16: the same anchors for the keys' purpose (no garment inside the body at
        # any key, measured on two outfits), in a quarter of the time.
        binding = bind(np.asarray(layer.mesh.vertices, np.float64), surface, skin_faces, candidates=4)
        layer.mesh.shape_keys = follow_keys(binding, skin_faces, keys.vertices, np.asarray(layer.mesh.faces, np.int64))
        layer.mesh.shape_key_names = keys.names
    return keys.bones
