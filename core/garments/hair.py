"""Hair as volume: a thick cap over the scalp, and for longer styles a curtain, a ponytail or a bun.

Why volume and not a recoloured scalp: in a render, hair has to stand off the head, hang past the ears and
cast its own silhouette. Each style is closed thick pieces (a shell over the scalp above a hairline that is
high at the forehead and low at the nape; lofted curtains that leave the face open; a tapered tube; an
ellipsoid), skinned to the head (the curtain's lower part follows the neck and upper back).
"""

from __future__ import annotations

import numpy as np

from .frame import BodyFrame
from .loft import build_loft
from .piece import Piece, dense_weights, outward, top4
from .shell import build_shell, smooth_field

#: Angle (radians) around the head's vertical axis measured from the face direction (-Y).
FACE = -np.pi / 2
#: Metres inside the hairline over which the hair's volume and thickness grow from the skin.
HAIRLINE_FADE = 0.03


def scalp(frame: BodyFrame, forehead: float = 0.075, nape: float = 0.02) -> np.ndarray:
    """(N,) bool: head skin above the hairline: ``forehead`` metres below the crown at the front, down to
    ``nape`` metres above the neck joint at the back, in between by the cosine of the angle from the face."""
    v = frame.vertices
    head, crown, neck = frame.landmarks["head"], frame.landmarks["crown"], frame.landmarks["neck"]
    phi = np.arctan2(v[:, 1] - head[1], v[:, 0] - head[0]) - FACE
    front = (1 + np.cos(phi)) / 2  # 1 at the face, 0 at the back
    line = front * (crown[2] - forehead) + (1 - front) * (neck[2] + nape)
    # Skin facing away from the head's centre: not the mouth's inside (joined to the lips, so part of the skin).
    outward = np.einsum("nd,nd->n", frame.normals, v - head) > 0
    return frame.skin & outward & frame.part_mask("head", "neck") & (v[:, 2] > line)


def cap(frame: BodyFrame, occupied: np.ndarray, thickness: float, lift: float,
        reach: np.ndarray | None = None) -> Piece | None:
    """The scalp shell: ``lift`` metres off the skin (over whatever is there, and out to ``reach`` (N,) where
    a photo's outline stands), ``thickness`` thick, both tapering to the skin over the last few rings at the
    hairline: hair grows out of the skin there, it does not stand off it like a helmet's rim."""
    cover = scalp(frame)
    full = np.maximum(occupied, reach if reach is not None else occupied) + lift
    # 1. How deep inside the hairline each scalp vertex is: 0 at the border, 1 from HAIRLINE_FADE metres in.
    depth = _inside_by(frame, cover, HAIRLINE_FADE)
    # 2. Volume and thickness fade towards the hairline.
    floor = occupied + 0.002
    inner = floor + depth * np.maximum(full - floor, 0.0)
    inner = smooth_field(frame, np.where(cover, inner, 0.0), 2)
    piece = build_shell(frame, cover, np.maximum(inner, floor), thickness * (0.25 + 0.75 * depth))
    if piece is not None:
        piece.joints, piece.weights = head_weights(frame, len(piece.vertices))
        piece.hides &= depth > 0.5  # where the hair lies on the skin, the skin shows round its edge
    return piece


def _inside_by(frame: BodyFrame, cover: np.ndarray, fade: float) -> np.ndarray:
    """(N,) 0 at ``cover``'s border (and outside it) rising smoothly to 1 at ``fade`` metres inside."""
    from scipy.spatial import cKDTree

    f = frame.faces
    on_border = np.zeros(len(cover), bool)
    mixed = cover[f].any(axis=1) & ~cover[f].all(axis=1)
    on_border[f[mixed].reshape(-1)] = True
    on_border &= cover
    out = np.zeros(len(cover))
    if not on_border.any():
        out[cover] = 1.0
        return out
    distance, _ = cKDTree(frame.vertices[on_border]).query(frame.vertices[cover])
    t = np.clip(distance / fade, 0.0, 1.0)
    out[cover] = t * t * (3 - 2 * t)
    return out


def curtain(frame: BodyFrame, obstacles: np.ndarray, top: float, hem: float, open_face: float,
            thickness: float, ease: float, curl: float = 0.0) -> Piece:
    """Hair hanging from ``top`` to ``hem`` around the head, leaving ``open_face`` radians free in front,
    its ends turned in by ``curl`` metres."""
    head = frame.landmarks["head"]
    start, end = FACE + open_face / 2, FACE + 2 * np.pi - open_face / 2
    piece = build_loft(frame, obstacles, head, top, hem, ease=ease, flare=0.05, thickness=thickness,
                       arc=(start, end), segments=48, rows=16, weight_window=0.0, hide_below=0.0, curl=curl)
    # Clumps and uneven ends, so it reads as hair and not as a helmet: a radial wave around the head that
    # grows towards the ends, and ends that hang down by different amounts (the same for both sheets).
    v = piece.vertices
    theta = np.arctan2(v[:, 1] - head[1], v[:, 0] - head[0])
    drop = np.clip((top - v[:, 2]) / max(top - hem, 1e-6), 0.0, 1.0)
    radial = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    wave = 0.5 * thickness * (np.sin(7 * theta + 0.3) + 0.5 * np.sin(13 * theta + 1.7)) * drop
    v[:, :2] += radial * wave[:, None]
    v[:, 2] -= 0.4 * thickness * (1 + np.sin(11 * theta + 0.9)) * drop**4
    # The top sinks into the cap (no ledge where the curtain starts), and the edges beside the face thin to
    # a strand's width instead of ending as a slab: the outer sheet comes in towards the inner one.
    v[:, :2] -= radial * ((ease + thickness) * np.clip(1 - drop / 0.3, 0.0, 1.0) ** 2)[:, None]
    n = len(v) // 2
    edge = np.clip(1 - np.minimum(theta_from(v[:n, :2] - head[:2], start), theta_from(v[:n, :2] - head[:2], end,
                                                                                         -1)) / 0.3, 0.0, 1.0)
    v[:n, :2] -= radial[:n] * (0.8 * thickness * edge)[:, None]
    # The top follows the head; lower down the neck and upper back (the loft's nearest-skin weights).
    h = np.clip((piece.vertices[:, 2] - hem) / max(top - hem, 1e-6), 0.0, 1.0)[:, None]
    j_head, w_head = head_weights(frame, len(piece.vertices))
    n_joints = int(max(frame.joints.max(), j_head.max())) + 1
    dense = h * dense_weights(j_head, w_head, n_joints) + (1 - h) * dense_weights(piece.joints, piece.weights,
                                                                                  n_joints)
    piece.joints, piece.weights = top4(dense)
    piece.hides[:] = False
    return piece


def theta_from(xy: np.ndarray, angle: float, sign: int = 1) -> np.ndarray:
    """(P,) radians from ``angle`` to each point's direction, counter-clockwise (``sign`` -1: clockwise),
    in [0, 2 pi)."""
    return (sign * (np.arctan2(xy[:, 1], xy[:, 0]) - angle)) % (2 * np.pi)


def tube(frame: BodyFrame, path: np.ndarray, radii: np.ndarray, segments: int = 20) -> Piece:
    """A closed tube along ``path`` ((K, 3)) with ``radii`` ((K,)), capped at both ends (a ponytail)."""
    k = len(path)
    tangent = np.gradient(path, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    side = np.cross(tangent, [1.0, 0.0, 0.0])
    side /= np.maximum(np.linalg.norm(side, axis=1, keepdims=True), 1e-9)
    other = np.cross(tangent, side)
    t = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    rings = path[:, None] + radii[:, None, None] * (np.cos(t)[None, :, None] * side[:, None]
                                                    + np.sin(t)[None, :, None] * other[:, None])
    v = np.concatenate([rings.reshape(-1, 3), path[:1], path[-1:]])
    idx = np.arange(k * segments).reshape(k, segments)
    nxt = np.roll(idx, -1, axis=1)
    faces = np.concatenate([np.stack([idx[:-1], nxt[:-1], nxt[1:]], -1).reshape(-1, 3),
                            np.stack([idx[:-1], nxt[1:], idx[1:]], -1).reshape(-1, 3),
                            np.stack([np.full(segments, k * segments), nxt[0], idx[0]], -1),
                            np.stack([np.full(segments, k * segments + 1), idx[-1], nxt[-1]], -1)])
    faces = outward(v, faces)
    uv = np.concatenate([np.stack(np.meshgrid(t / (2 * np.pi), np.linspace(1, 0, k)), -1).reshape(-1, 2),
                         [[0.5, 1.0], [0.5, 0.0]]])
    j, w = head_weights(frame, len(v))
    return Piece(vertices=v, faces=faces, uvs=uv.astype(np.float32), joints=j, weights=w,
                 hides=np.zeros(len(frame.vertices), bool))


def ellipsoid(frame: BodyFrame, centre: np.ndarray, radii: np.ndarray, rows: int = 12, segments: int = 20) -> Piece:
    """A closed ellipsoid (a bun), skinned to the head."""
    theta = np.linspace(0, np.pi, rows + 1)[1:-1]
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    th, ph = np.meshgrid(theta, phi, indexing="ij")
    ring = np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], -1).reshape(-1, 3)
    v = np.concatenate([[[0.0, 0.0, 1.0]], ring, [[0.0, 0.0, -1.0]]]) * radii + centre
    idx = 1 + np.arange(len(ring)).reshape(rows - 1, segments)
    nxt = np.roll(idx, -1, axis=1)
    faces = np.concatenate([np.stack([np.zeros(segments, int), idx[0], nxt[0]], -1),
                            np.stack([idx[:-1], idx[1:], nxt[1:]], -1).reshape(-1, 3),
                            np.stack([idx[:-1], nxt[1:], nxt[:-1]], -1).reshape(-1, 3),
                            np.stack([np.full(segments, len(v) - 1), nxt[-1], idx[-1]], -1)])
    faces = outward(v, faces)
    uv = np.stack([(np.arctan2(v[:, 1] - centre[1], v[:, 0] - centre[0]) / (2 * np.pi)) % 1.0,
                   (v[:, 2] - centre[2]) / (2 * radii[2]) + 0.5], -1)
    j, w = head_weights(frame, len(v))
    return Piece(vertices=v, faces=faces.astype(np.int64), uvs=uv.astype(np.float32), joints=j, weights=w,
                 hides=np.zeros(len(frame.vertices), bool))


def head_weights(frame: BodyFrame, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Every vertex fully on the head's joint (the joint that owns most of the scalp)."""
    cover = scalp(frame)
    dense = dense_weights(frame.joints[cover], frame.weights[cover], int(frame.joints.max()) + 1).sum(axis=0)
    head_joint = int(dense.argmax())
    joints = np.zeros((n, 4), np.int64)
    joints[:, 0] = head_joint
    weights = np.zeros((n, 4), np.float32)
    weights[:, 0] = 1.0
    return joints, weights
