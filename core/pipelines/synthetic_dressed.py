"""Synthetic DRESSED people: layered humans with known garments, posed and photographed on clutter.

Why: deciding from one photo what a person wears (:mod:`strata.core.reconstruct.wardrobe`) needs people
whose garments are known. Each person here is a `generate` human (:func:`.generate.generate_layered`: a
sampled body, garments from the procedural library) in an outfit drawn from the seed with garment colours
drawn over the whole colour cube (so some are skin-like, as in real photos), posed by
:func:`strata.core.reconstruct.synthetic.random_pose` through every layer's own skin weights, rendered
with each layer's texture by an orthographic camera and composited onto a cluttered background. The outfit
is the truth the decisions are scored against (:func:`outfit_labels`).

World and camera as in :mod:`strata.core.reconstruct.synthetic`: metres, Z up, feet near z = 0, the camera
facing the body."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from strata.exchange.asset.schema import HumanAsset
from strata.exchange.wire.jobs import LAYER_STYLES

from ..body.base import BodyModel
from ..reconstruct.synthetic import PHOTO_SIZE, cluttered_background, encode_png, random_pose
from ..render.camera import OrthographicCamera, orbit_rotation

#: Styles an outfit draws from, per layer: the published ones, and "" (none) for shoes and hair (everyone
#: wears a top and, unless the top is a dress, a bottom).
OUTFIT_STYLES: dict[str, tuple[str, ...]] = {kind: styles + (("",) if kind in ("shoes", "hair") else ())
                                             for kind, styles in LAYER_STYLES.items()}
#: Side of each layer's tile in the render atlas (texels).
TILE = 512


@dataclass
class DressedPerson:
    """One synthetic dressed photo and its truth."""

    photo: np.ndarray
    """(H, W, 3) uint8 on clutter."""
    cutout: np.ndarray
    """(H, W, 4) uint8, alpha = the person's coverage."""
    layers: list[str]
    """The outfit as `generate` layer choices (``["body", "bottom:skirt", ...]``)."""
    asset: HumanAsset
    """The layered human in its bind pose."""
    posed: list[np.ndarray]
    """Each layer's vertices in the photo's pose (the asset's layer order)."""
    camera: OrthographicCamera
    shape: np.ndarray
    pose: np.ndarray
    height_m: float
    seed: int = 0
    info: dict[str, object] = field(default_factory=dict)

    def png_bytes(self, cutout: bool = True) -> bytes:
        """The cut-out (or the photo on clutter) as the PNG a user would upload."""
        return encode_png(self.cutout if cutout else self.photo)


def random_outfit(rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """``(layers, colours)`` for `generate`: a random style per layer, random ``#rrggbb`` garment colours
    (hair from a natural range)."""
    layers, colours = ["body"], []
    top = str(rng.choice(OUTFIT_STYLES["top"]))
    for kind in ("bottom", "top", "shoes", "hair"):
        style = top if kind == "top" else str(rng.choice(OUTFIT_STYLES[kind]))
        if not style or (kind == "bottom" and top == "dress"):
            continue
        layers.append(f"{kind}:{style}")
        if kind == "hair":
            rgb = np.array([40, 28, 18]) + rng.uniform(0, 1) ** 2 * np.array([180, 150, 100])
        else:
            rgb = rng.uniform(15, 240, 3)
        colours.append("#" + "".join(f"{int(c):02x}" for c in rgb))
    return layers, colours


def make_dressed_person(model: BodyModel, seed: int, *, size: tuple[int, int] = PHOTO_SIZE,
                        max_yaw: float = 20.0, layers: list[str] | None = None,
                        colours: list[str] | None = None) -> DressedPerson:
    """One dressed person (module docstring), deterministic in ``seed``; ``layers``/``colours`` override
    the drawn outfit."""
    import torch

    from ..body.skinning import pose_vertices
    from ..reconstruct.evaluate import textured_union
    from ..render.shade import render_rgba
    from .generate import generate_layered

    rng = np.random.default_rng([seed, 7])
    drawn_layers, drawn_colours = random_outfit(rng)
    layers = drawn_layers if layers is None else layers
    colours = drawn_colours if colours is None else colours
    # 1. The layered human in its bind pose (generate's own body sampling from the seed).
    asset = generate_layered(model, {"layers": layers, "colors": colours, "seed": seed, "sample_body": True,
                                     "texture_size": TILE, "pose": "A"})
    assert asset.body is not None and asset.rig is not None
    shape = np.asarray(asset.body.shape, np.float32)
    # 2. A random pose; every layer follows the skeleton through its own skin weights.
    pose = random_pose(model, shape, rng, max_yaw=max_yaw)
    with torch.no_grad():
        posed_world = model.forward(shape[None], pose[None]).joint_world[0].numpy().astype(np.float64)
    posed = [pose_vertices(layer.mesh.vertices, layer.skin.joints, layer.skin.weights, asset.rig.rest, posed_world)
             for layer in asset.layers]
    # 3. One mesh with one texture atlas (a tile per layer), framed like the single-body synthetic photos.
    vertices, faces, uvs, uv_faces, atlas = textured_union(asset, posed, TILE)
    h, w = size
    lo, hi = vertices.min(0), vertices.max(0)
    fill = float(rng.uniform(0.72, 0.88))
    scale = min(fill * h / (hi[2] - lo[2]), 0.92 * w / max(hi[0] - lo[0], 1e-6))
    camera = OrthographicCamera(rotation=orbit_rotation(0.0, 0.0), center=(lo + hi) / 2, scale=float(scale),
                                width=w, height=h,
                                principal=np.array([w / 2 + rng.uniform(-0.04, 0.04) * w, h / 2]))
    rgba = render_rgba(vertices.astype(np.float32), faces, camera, ssaa=2, texture=atlas, uvs=uvs,
                       uv_faces=uv_faces)
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    background = cluttered_background(h, w, rng)
    photo = rgba[..., :3].astype(np.float32) * alpha + background.astype(np.float32) * (1 - alpha) + 0.5
    return DressedPerson(photo=photo.astype(np.uint8), cutout=rgba, layers=list(layers), asset=asset,
                         posed=posed, camera=camera, shape=shape, pose=pose,
                         height_m=float(asset.body.extra["height_m"]), seed=seed, info={"colours": colours})


def outfit_labels(layers: list[str]) -> dict[str, str]:
    """The decisions a photo can show, from ``layers`` (see :func:`strata.core.reconstruct.wardrobe.labels`)."""
    from ..reconstruct.wardrobe import labels

    return labels([tuple(item.split(":", 1)) for item in layers if item != "body"])  # type: ignore[misc]
