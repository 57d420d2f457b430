"""The photo's layers: what the person wears read from the photo, built by the garment library, textured from
the photo (the `reconstruct` job with ``layers`` on).

Two steps join :data:`strata.core.pipelines.reconstruct.LAYERED_STEPS` (a third, :func:`surface_on_body`,
first carries a surface carved from views onto the body's topology, so the views paths share them):

* :func:`read_outfit`, after the clothed surface: the garments and their parameters from the photo and the
  fitted body (:mod:`strata.core.reconstruct.wardrobe`);
* :func:`dress_layers`, after the rig:

  1. the body's frame in the rig's rest pose, and how far the photo's clothed surface (un-posed into that
     rest by the rig step) stands off the skin: the *outline* every garment's outer sheet reaches, so the
     layered result keeps the clothed surface's silhouette (the clothed-surface stage moves to the
     outermost layers);
  2. the garments dressed inner first around the body (:class:`~strata.core.garments.styles.Dresser`);
  3. the body itself: the tight fitted body where garments cover it, the clothed surface where it shows
     (face, hands, bare arms and legs follow the photo's silhouette);
  4. every layer posed into the photo's pose by the rig, and the photo's pixels shared out by which layer
     is in front (a layer map rendered in the photo camera; on the views paths, in each view's);
  5. textures: the body's from its own pixels over painted skin of the person's tone (covered skin is skin,
     not the clothes spread over it); each garment's from its pixels but not the skin-coloured ones (a hand
     resting on it), unseen parts filled from the seen (a plausible back), in a UV atlas of its own (xatlas);
  6. the whole stood on the ground again in both poses (shoes can reach below the clothed surface's soles).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from strata.exchange.asset.schema import Layer, Mesh, Skin
from strata.exchange.wire.jobs import LAYER_ORDER

from ..views import View
from .common import png_texture

if TYPE_CHECKING:
    from ..garments.frame import BodyFrame
    from ..garments.piece import Piece
    from ..garments.styles import Dresser, GarmentSpec
    from .reconstruct import ReconstructionState

#: How far the body under clothes is taken in (m): about a garment's thickness plus the air under it.
INSET = 0.010
#: Largest garment texture (px): a garment's photo region is a fraction of the body's.
GARMENT_TEXTURE_MAX = 1024
#: Largest painted-skin base under the body's photo texture (px; resized to the texture): it shows only
#: where the photo does not, and painting it costs ~4x per doubling.
SKIN_BASE_MAX = 1024
#: Fewest photo pixels a garment needs for a photo texture (fewer: its fabric in the photo's colour).
MIN_PIXELS = 50
#: Longest side of the layer map (px); larger photos get it upsampled (nearest).
LAYER_MAP_MAX = 1280
#: How far a carved surface may stand off the fitted body's skin (m): inward (a body prior a little too
#: big) and outward (a coat's hem, a hood, long hair); beyond is an artefact of the carve.
CARVED_OFFSET = (-0.03, 0.25)


def surface_on_body(state: ReconstructionState) -> None:
    """6c. The carved clothed surface carried onto the fitted body's own topology, so the layers are read,
    dressed and textured as on the photo path: each skin vertex moved along its normal to where the carved
    surface stands over it (the offset to its closest carved point, along the normal, smoothed), the eyes
    and teeth moved with their closest skin vertex. The carved triangles are dropped; their shape lives
    on in the garments' outline."""
    from ..body.skinning import closest_points
    from ..garments.frame import skin_surface, vertex_normals
    from ..garments.shell import smooth_over

    assert state.fit is not None and state.body is not None and state.surface is not None
    assert state.surface_faces is not None
    state.progress.report("dress", 0.0, "carrying the carved surface onto the body")
    body = np.asarray(state.fit.vertices, np.float64)
    faces = np.asarray(state.body.faces, np.int64)
    skin_faces, skin = skin_surface(faces, len(body))
    normals = vertex_normals(body, skin_faces)
    # 1. How far out along its normal the carved surface stands over each skin vertex.
    carved_v = np.asarray(state.surface, np.float64)
    face, bary, _ = closest_points(carved_v, np.asarray(state.surface_faces, np.int64), body, candidates=16)
    closest = np.einsum("vk,vkd->vd", bary, carved_v[np.asarray(state.surface_faces)[face]])
    offset = np.clip(np.einsum("vd,vd->v", closest - body, normals), *CARVED_OFFSET)
    offset = smooth_over(skin_faces, skin, offset, rounds=2)  # a carve's speckle gone
    moved = offset[:, None] * normals
    # 2. What is not skin (eyes, teeth, tongue) moves with its closest skin vertex.
    from scipy.spatial import cKDTree

    inner = np.flatnonzero(~skin)
    if len(inner):
        skin_index = np.flatnonzero(skin)
        moved[inner] = moved[skin_index[cKDTree(body[skin_index]).query(body[inner])[1]]]
    state.notes.append(f"The carved surface ({len(state.surface_faces)} triangles) was split into layers.")
    state.surface = (body + moved).astype(np.float32)
    state.surface_faces = state.uvs = state.uv_faces = None


def read_outfit(state: ReconstructionState) -> None:
    """6b. The garments the photo shows, from the canvas view and the fitted body."""
    from ..garments.frame import body_frame
    from ..reconstruct.wardrobe import read_outfit as read
    from ..render import get_rasterizer

    assert state.body is not None and state.fit is not None and state.views
    state.progress.report("dress", 0.0, "reading what the person wears")
    view = state.views[0]
    rest_pose = str(state.params.get("rest_pose", "A"))
    state.frame = body_frame(state.body, state.fit.shape, state.body.pose_preset(rest_pose, state.fit.shape))
    state.outfit = read(view.image, view.mask, state.fit.vertices, state.frame, view.camera,
                        get_rasterizer(env=state.env, cache=state.cache))
    state.notes.append(f"Garments read from the photo: {state.outfit.summary()}.")


def dress_layers(state: ReconstructionState) -> None:
    """9. The garments built, posed and textured; the body under them (module docstring)."""
    from ..backends import REGISTRY
    from ..garments.shell import smooth_field
    from ..reconstruct.wardrobe import skin_like

    assert state.outfit is not None and state.rest_surface is not None and state.rig is not None
    assert state.body is not None and state.backends is not None
    body = state.body
    size = state.backends.texture_size
    sources = _sources(state)
    if not state.outfit.garments:  # nothing worn that the library makes: the single-layer texture
        state.progress.report("texture", 0.0, "projecting the photo into the texture")
        state.texture = state.backends.texture.bake(
            state.surface, np.asarray(body.faces, np.int64), np.asarray(body.uvs, np.float32),
            np.asarray(body.uv_faces, np.int64), sources, size=size, progress=state.progress)
        return
    progress = state.progress
    # 1. The frame in the rig's rest pose, on the ground as the rig step put it, and the photo's outline.
    frame = _rest_frame(state)
    # The body follows the clothed surface in everything but its outward growth (where the silhouette moved
    # the fitted body in or aside, the body under the clothes moves too); and, since it was fitted to the
    # clothed silhouette, it is taken in by about a cloth's thickness, so the garments keep the photo's
    # silhouette instead of adding to it.
    move = state.rest_surface - frame.vertices
    growth = np.clip(np.einsum("nd,nd->n", move, frame.normals), 0.0, None)
    inset = INSET * smooth_field(frame, (~frame.part_mask("head", "hand", "foot")).astype(float), 2)
    frame = replace(frame, vertices=frame.vertices + move - (growth + inset)[:, None] * frame.normals)
    outline = smooth_field(frame, growth + inset, 2)
    # 2. The garments, inner first, by the registry's garment backend.
    backend = REGISTRY.choose("garments", "auto", state.env)
    dresser: Dresser = REGISTRY.build_backend(backend, env=state.env, frame=frame, outline=outline)
    state.garments_backend = backend.name
    specs = sorted(state.outfit.garments, key=lambda g: LAYER_ORDER.index(g.kind))
    pieces: list[tuple[GarmentSpec, Piece]] = []
    for i, spec in enumerate(specs):
        progress.report("dress", 0.1 + 0.4 * i / len(specs), f"building the {spec.kind}: {spec.style}")
        pieces.append((spec, dresser.dress(spec)))
    # 3. The body: tight under the garments, the clothed surface where it shows.
    covered = np.zeros(len(frame.vertices))
    for _, piece in pieces:
        covered[piece.hides] = 1.0
    shows = 1.0 - np.clip(smooth_field(frame, covered, 3), 0.0, 1.0)
    state.rest_surface = (frame.vertices + (state.rest_surface - frame.vertices) * shows[:, None]).astype(np.float32)
    # 4. Everything in the photo's pose, and which layer each photo pixel shows.
    skins = [_garment_skin(state, piece) for _, piece in pieces]
    posed = [_posed(state, state.rest_surface, state.skin)] + [_posed(state, p.vertices, s)
                                                                for (_, p), s in zip(pieces, skins, strict=True)]
    faces = [np.asarray(body.faces, np.int64)] + [p.faces for _, p in pieces]
    progress.report("dress", 0.55, "sharing the photo's pixels between the layers")
    owners = [_layer_map(state, posed, faces, view) for view in sources]
    # 5. Textures: the body over painted skin of the person's tone, each garment in its own atlas.
    progress.report("dress", 0.6, "projecting the photo onto the body")
    base = body.skin_texture(tone=state.outfit.skin_rgb, size=min(size, SKIN_BASE_MAX))
    state.texture = state.backends.texture.bake(
        posed[0], faces[0], np.asarray(body.uvs, np.float32), np.asarray(body.uv_faces, np.int64),
        _layer_views(sources, owners, 0), size=size, base=base, progress=progress)
    state.garment_layers = []
    bare = [skin_like(view.image, state.outfit.skin_rgb) for view in sources]
    for i, ((spec, piece), skin) in enumerate(zip(pieces, skins, strict=True), start=1):
        progress.report("dress", 0.6 + 0.4 * i / len(pieces), f"texturing the {spec.kind}")
        views = _layer_views(sources, owners, i)
        if not _skin_coloured(spec.color, state.outfit.skin_rgb):
            # A hand on a knee, an arm across the chest: skin the layer map gives a garment (the posed
            # body is never exactly the photo's) is the body's, not the cloth's.
            views = [replace(v, mask=np.where(b, 0.0, v.mask).astype(np.float32)) for v, b in zip(views, bare,
                                                                                                    strict=True)]
        state.garment_layers.append(_garment_layer(state, spec, piece, skin, posed[i], views, i))
    # 6. The whole on the ground again (shoes reach below the clothed surface's soles), in both poses.
    _reground(state, posed)


# --------------------------------------------------------------------------- helpers


def _reground(state: ReconstructionState, posed: list[np.ndarray]) -> None:
    """Stand the layered human on the ground and centre it, as the single-layer path leaves its surface: the
    rest meshes and skeleton lifted to min z = 0; the posed whole (what the photo camera sees) centred at
    x = y = 0 with min z = 0, the camera and the body's translation moved with it; the pose re-derived."""
    assert state.rig is not None and state.posed_world is not None and state.rest_surface is not None
    rest_low = min([float(state.rest_surface[:, 2].min())]
                   + [float(g.mesh.vertices[:, 2].min()) for g in state.garment_layers])
    lift = np.array([0.0, 0.0, -rest_low])
    everything = np.concatenate(posed)
    lo, hi = everything.min(0), everything.max(0)
    shift = np.array([-(lo[0] + hi[0]) / 2, -(lo[1] + hi[1]) / 2, -lo[2]])
    state.rest_surface = (state.rest_surface + lift).astype(np.float32)
    for layer in state.garment_layers:
        layer.mesh.vertices = (layer.mesh.vertices + lift).astype(np.float32)
    old_rest = state.rig.rest.astype(np.float64)
    rest = old_rest.copy()
    rest[:, :3, 3] += lift
    state.posed_world = state.posed_world.copy()
    state.posed_world[:, :3, 3] += shift
    # Both skeletons moved by a translation: every joint's local pose stays, only the roots' translations
    # change (re-deriving the pose from the world matrices would re-round every joint's rotation).
    pose = np.asarray(state.rig.pose, np.float64).copy()
    for root in np.flatnonzero(np.asarray(state.rig.parents) < 0):
        pose[root, :3, 3] += old_rest[root, :3, :3].T @ (shift - lift)
    state.rig = replace(state.rig, rest=rest.astype(np.float32), pose=pose.astype(np.float32))
    if state.photo_camera is not None:
        state.photo_camera = replace(state.photo_camera,
                                     center=np.asarray(state.photo_camera.center, np.float64) + shift)
    if state.rig_translation is not None:
        state.rig_translation = (np.asarray(state.rig_translation) + shift).astype(np.float32)


def _rest_frame(state: ReconstructionState) -> BodyFrame:
    """The fitting body's frame in the rest pose (its part labels need the fitting rig's joint map), lifted
    as the rig step lifted the rest surface. Every anny rig shares its mesh and rest pose (within 2 mm), so
    the same frame serves whichever rig the human gets; the garments' weights come from that rig
    (:func:`_garment_skin`)."""
    from ..garments.frame import body_frame

    assert state.fit is not None and state.body is not None
    frame = state.frame
    if frame is None:
        rest_pose = str(state.params.get("rest_pose", "A"))
        frame = body_frame(state.body, state.fit.shape, state.body.pose_preset(rest_pose, state.fit.shape))
    return frame.moved(np.array([0.0, 0.0, state.rest_lift]))


def _garment_skin(state: ReconstructionState, piece: Piece) -> Skin:
    """The piece's own weights on the fitting rig; on another rig, the body layer's weights carried to it
    from the closest points of the rest body."""
    from ..body.skinning import transfer_weights

    assert state.skin is not None and state.rest_surface is not None and state.backends is not None
    if state.rig_body is None or state.rig_body is state.body:
        return Skin(joints=piece.joints.astype(np.uint16), weights=piece.weights.astype(np.float32))
    faces = np.asarray(state.rig_body.faces, np.int64)
    joints, weights = transfer_weights(state.rest_surface, faces, state.skin.joints, state.skin.weights,
                                       piece.vertices)
    return Skin(joints=joints.astype(np.uint16), weights=weights.astype(np.float32))


def _posed(state: ReconstructionState, rest: np.ndarray, skin: Skin | None) -> np.ndarray:
    """Rest-pose vertices in the photo's pose (the rig's own skinning: what Blender will show)."""
    from ..body.skinning import pose_vertices

    assert state.rig is not None and state.posed_world is not None and skin is not None
    return pose_vertices(rest, skin.joints, skin.weights, state.rig.rest, state.posed_world).astype(np.float32)


def _sources(state: ReconstructionState) -> list[View]:
    """The images the layers are coloured from, with their cameras in the posed world: the original photo
    (through the photo camera) on the photo path, every view on the views paths."""
    if state.carved:
        return [v for v in state.views if v.camera is not None]
    assert state.loaded is not None and state.person is not None and state.photo_camera is not None
    return [View("photo", np.ascontiguousarray(state.loaded.rgba[..., :3]), np.asarray(state.person.mask, np.float32),
                 camera=state.photo_camera, exact_mask=state.person.backend == "alpha")]


def _layer_map(state: ReconstructionState, posed: list[np.ndarray], faces: list[np.ndarray], view: View) -> np.ndarray:
    """(H, W) int8 over ``view``'s image: the layer in front at each pixel (-1 where none)."""
    import torch

    from ..render import get_rasterizer
    from ..render.camera import camera_for_size

    assert view.camera is not None
    h, w = view.image.shape[:2]
    k = min(1.0, LAYER_MAP_MAX / max(h, w))
    mh, mw = max(1, round(h * k)), max(1, round(w * k))
    cam, _, _ = camera_for_size(view.camera, (mh, mw))
    offsets = np.cumsum([0] + [len(v) for v in posed])
    face_layer = np.concatenate([np.full(len(f), i, np.int8) for i, f in enumerate(faces)])
    all_faces = np.concatenate([f + offsets[i] for i, f in enumerate(faces)])
    rast = get_rasterizer(env=state.env, cache=state.cache)
    screen = np.asarray(cam.to_screen(np.concatenate(posed).astype(np.float64)), np.float32)
    with torch.no_grad():
        frags = rast.rasterize(torch.as_tensor(screen, device=rast.device),
                               torch.as_tensor(all_faces, device=rast.device), mh, mw, perspective=cam.is_perspective)
    tri = frags.tri_id.cpu().numpy()
    small = np.where(tri >= 0, face_layer[np.maximum(tri, 0)], -1).astype(np.int8)
    rows = np.minimum((np.arange(h) * k).astype(int), mh - 1)
    cols = np.minimum((np.arange(w) * k).astype(int), mw - 1)
    return small[rows[:, None], cols[None, :]]


def _skin_coloured(colour: tuple[int, int, int], skin_rgb: tuple[int, int, int]) -> bool:
    """Whether a garment's colour passes for the person's skin (then its skin-coloured pixels are its own)."""
    from ..reconstruct.wardrobe import skin_like

    return bool(skin_like(np.asarray(colour, np.uint8).reshape(1, 1, 3), skin_rgb)[0, 0])


def _layer_views(sources: list[View], owners: list[np.ndarray], layer: int) -> list[View]:
    """Each source as a view of one layer: its mask kept only where that layer is in front."""
    return [replace(view, mask=np.where(owner == layer, np.asarray(view.mask, np.float32), 0.0).astype(np.float32))
            for view, owner in zip(sources, owners, strict=True)]


def _garment_layer(state: ReconstructionState, spec: GarmentSpec, piece: Piece, skin: Skin, posed: np.ndarray,
                   views: list[View], index: int) -> Layer:
    """One garment as an asset layer: rest mesh with its own atlas, the photo's texture (``views``: the
    sources masked to it), skin, what it hides."""
    from ..cache import ModelCache
    from ..garments.fabric import fabric_texture, hair_shade
    from ..reconstruct.uv import unwrap

    assert state.backends is not None
    size = min(state.backends.texture_size, GARMENT_TEXTURE_MAX)
    uvs, uv_faces = unwrap(piece.vertices, piece.faces, size=size)
    seen = [view for view in views if int((view.mask > 0.5).sum()) >= MIN_PIXELS]
    if not seen:  # hidden in the photo (hair behind a hood): its fabric
        texture = fabric_texture(spec.color, spec.fabric, size, seed=index)
    else:
        texture = state.backends.texture.bake(posed, piece.faces, uvs, uv_faces.astype(np.int64), seen, size=size,
                                              cache=ModelCache())  # a one-off layout: not the body's cache slot
    if spec.kind == "hair":  # the photo's colours with strands down from the crown (its own light: no sheen)
        shade = hair_shade(piece.vertices, piece.faces, uvs, uv_faces, size, seed=index, sheen=0.0)
        texture = np.clip(texture.astype(np.float32) * shade[..., None], 0, 255).astype(np.uint8)
    mesh = Mesh(vertices=piece.vertices.astype(np.float32), faces=piece.faces.astype(np.uint32),
                uvs=uvs.astype(np.float32), uv_faces=uv_faces.astype(np.uint32))
    return Layer(spec.title, spec.kind, mesh, texture=png_texture(texture), skin=skin,
                 hides_body=np.flatnonzero(piece.hides).astype(np.uint32))
