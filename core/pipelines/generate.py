"""The `generate` job: a layered human from layer choices and a seed (the `procedural` layered backend).

A body, drawn from the seed or from the given shape, is dressed layer by layer, inner first, with the
procedural garment library (:mod:`strata.core.garments`): every garment its own closed, textured mesh,
skinned to the one armature, with the body vertices it covers listed for a Mask modifier (hidden, never
deleted). The same seed and choices give the same human; adding a layer does not change the body or the
layers under it (each draws from its own stream of the seed).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from strata.exchange.asset.schema import BodyParams, HumanAsset, Layer, Mesh, Provenance, Skin
from strata.exchange.wire.jobs import LAYER_ORDER

from ..backends import REGISTRY
from ..body.base import BodyModel
from ..body.skinning import rig_from
from ..compute import ComputeEnv
from ..garments.fabric import fabric_texture, hair_shade
from ..garments.frame import body_frame
from ..garments.piece import Piece
from ..garments.styles import Dresser, GarmentSpec, garment_spec
from ..progress import Progress, Silent
from .body import add_shape_keys, body_layer, shape_values, smplx_extras
from .common import now_iso, png_texture, versions

GARMENT_TEXTURE = 512
"""Side of each garment's fabric texture (pixels): the fabrics are fine patterns, not photos."""


def parse_layers(layers: list[str], colors: list[str]) -> list[tuple[str, str, tuple[int, int, int] | None]]:
    """``["body", "bottom:trousers", ...]`` and ``["#rrggbb", ...]`` -> ``[(kind, style, colour or None)]``
    in the stacking order, one per kind (ValueError with the reason otherwise)."""
    garments = [item.split(":", 1) for item in layers if item != "body"]
    kinds = [k for k, _ in garments]
    repeated = sorted({k for k in kinds if kinds.count(k) > 1})
    if repeated:
        raise ValueError(f"one style per layer: {', '.join(repeated)} given more than once")
    if len(colors) > len(garments):
        raise ValueError(f"{len(colors)} colours for {len(garments)} garment layers")
    parsed = [(k, s, _colour(colors[i]) if i < len(colors) and colors[i] else None)
              for i, (k, s) in enumerate(garments)]
    return sorted(parsed, key=lambda item: LAYER_ORDER.index(item[0]))


def generate_layered(model: BodyModel, params: dict[str, Any], progress: Progress | None = None,
                     env: ComputeEnv | None = None) -> HumanAsset:
    """``params`` as validated by exchange/wire/jobs.py's "generate" spec (defaults filled); the garment
    library is the registry's ``garments`` backend for ``env``."""
    progress = progress or Silent()
    env = env or ComputeEnv()
    seed = int(params.get("seed", 0))
    # 1. The layer choices, checked before any work.
    choices = parse_layers(list(params.get("layers", ["body"])), list(params.get("colors", [])))
    # 2. The body: drawn from the seed's body stream, or as given.
    progress.report("shape", 0.0, "choosing the body")
    shape, tone = _body_shape(model, params, np.random.default_rng([seed, 0]))
    pose = model.pose_preset(str(params.get("pose", "A")), shape)
    frame = body_frame(model, shape, pose)
    # 3. The garments, inner first, each from its own stream of the seed.
    garments = REGISTRY.choose("garments", "auto", env)
    dresser: Dresser = REGISTRY.build_backend(garments, env=env, frame=frame)
    dressed: list[tuple[GarmentSpec, Piece]] = []
    for i, (kind, style, colour) in enumerate(choices):
        progress.report("dress", i / max(len(choices), 1), f"dressing the {kind}: {style}")
        spec = garment_spec(kind, style, np.random.default_rng([seed, 1, LAYER_ORDER.index(kind)]), colour)
        dressed.append((spec, dresser.dress(spec)))
    # 4. Everything on the ground (soles may lift the body), then the asset.
    progress.report("assemble", 0.0, "texturing and assembling the layers")
    lift = -min([frame.vertices[frame.skin, 2].min()] + [p.vertices[:, 2].min() for _, p in dressed])
    shift = np.array([0.0, 0.0, lift])
    layers = [body_layer(model, frame.vertices + shift, tone, int(params.get("texture_size", 2048)))]
    for i, (spec, piece) in enumerate(dressed):
        layers.append(garment_layer(spec, piece, shift, seed=seed * 16 + i))
    bones = add_shape_keys(model, shape, pose, layers, frame.faces)
    joint_world = frame.joint_world.copy()
    joint_world[:, :3, 3] += shift
    rig = rig_from(model, joint_world.astype(np.float32), frame.bone_lengths, rest_pose=str(params.get("pose", "A")))
    progress.report("assemble", 1.0, "done")
    return HumanAsset(
        name=f"layered_{seed}",
        layers=layers,
        provenance=Provenance(job_kind="generate", backends={"body_model": model.name, "garments": garments.name},
                              versions=versions("anny", "torch"), params=dict(params), created=now_iso(),
                              notes=[f"{s.kind}: {s.style} " + str({k: v for k, v in asdict(s).items()
                                                                    if k not in ("kind", "style")})
                                     for s, _ in dressed]),
        rig=rig,
        body=BodyParams(model=model.name, shape_names=list(model.shape_names), shape=np.asarray(shape, np.float32),
                        pose=np.asarray(pose, np.float32), translation=shift.astype(np.float32),
                        extra={"rig": model.rig, "height_m": float(model.measure_height(shape[None])[0]),
                               "skin_tone": tone, **smplx_extras(model, shape),
                               **({"shape_key_bones": bones} if bones else {})}),
    )


def garment_layer(spec: GarmentSpec, piece: Piece, shift: np.ndarray, seed: int) -> Layer:
    """One garment as an asset layer: its mesh (per-vertex UVs), fabric texture, skin and the body it hides."""
    uvs, uv_faces = piece.uvs, piece.faces
    texture = fabric_texture(spec.color, spec.fabric, GARMENT_TEXTURE, seed=seed)
    if spec.kind == "hair":
        # Strands run down from the crown in 3D; the scalp's UVs are the body's, mirrored left to right, so
        # the hair gets an atlas of its own where every texel is one place.
        from ..reconstruct.uv import unwrap

        uvs, uv_faces = unwrap(piece.vertices, piece.faces, size=GARMENT_TEXTURE)
        shade = hair_shade(piece.vertices, piece.faces, uvs, uv_faces, GARMENT_TEXTURE, seed=seed)
        texture = np.clip(np.asarray(spec.color, np.float32) * shade[..., None], 0, 255).astype(np.uint8)
    mesh = Mesh(vertices=(piece.vertices + shift).astype(np.float32), faces=piece.faces.astype(np.uint32),
                uvs=np.asarray(uvs, np.float32), uv_faces=np.asarray(uv_faces, np.uint32))
    texture = png_texture(texture)
    return Layer(spec.title, spec.kind, mesh, texture=texture,
                 skin=Skin(joints=piece.joints.astype(np.uint16), weights=piece.weights.astype(np.float32)),
                 hides_body=np.flatnonzero(piece.hides).astype(np.uint32))


def _body_shape(model: BodyModel, params: dict[str, Any], rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """(shape, skin tone): sampled from ``rng`` when ``sample_body``, else from the given phenotypes and height."""
    if params.get("sample_body", True):
        from ..reconstruct.synthetic import random_shape

        shape, _ = random_shape(model, rng)
        return shape, float(rng.uniform(0.05, 0.95))
    shape = model.solve_height(float(params.get("height", 1.70)), model.shape_vector(**shape_values(model, params)))
    return shape, float(params.get("skin_tone", 0.4))


def _colour(text: str) -> tuple[int, int, int]:
    value = text.strip().lstrip("#")
    if len(value) != 6 or any(c not in "0123456789abcdefABCDEF" for c in value):
        raise ValueError(f"colour {text!r} is not #rrggbb")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)
