"""Calibrate the landmark <-> anny correspondence (:mod:`.keypoints`) on synthetic people.

    python -m strata.core.reconstruct.calibrate [--people 40] [--data /tmp/kp_calib.npz]

Why: MediaPipe was trained on human-annotated photos; its "hip" or "shoulder" is where annotators click,
not anny's rotation centre, and its "ear" is some point of the ear. On synthetic people the true body is
known, so the best anchor is measurable: MediaPipe runs on each render exactly as the pipeline runs it
(cut-out -> PSHuman framing -> pose on the 768 canvas, landmarks mapped back), then

* for joint anchors, the offset ``o`` in the joint's posed frame minimising the visibility-weighted
  reprojection error is linear least squares (orthographic camera: ``kp - P(head) = s R_2 W o``);
* for vertex anchors, every vertex of the relevant body part is scored by its mean (clipped)
  reprojection error and the best is kept.

The script prints the tables to paste into :mod:`.keypoints` and the error per landmark before/after.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..body.base import BodyModel
from ..pose.keypoints import LANDMARK_NAMES
from .keypoints import JOINT_ANCHORS, VERTEX_ANCHOR_JOINTS, anchor_joint

#: Body parts (anny's face_parts) holding the candidate vertices of each vertex landmark group.
_PARTS = {"head": ("head", "eye_front.L", "eye_front.R"), "hand.L": ("hand.L",), "hand.R": ("hand.R",),
          "foot.L": ("foot.L",), "foot.R": ("foot.R",)}


def _part_of(name: str) -> str:
    if name.startswith(("left_pinky", "left_index", "left_thumb")):
        return "hand.L"
    if name.startswith(("right_pinky", "right_index", "right_thumb")):
        return "hand.R"
    if name in ("left_heel", "left_foot_index"):
        return "foot.L"
    if name in ("right_heel", "right_foot_index"):
        return "foot.R"
    return "head"


def collect(body: BodyModel, people: int, seed0: int = 1000) -> dict[str, np.ndarray]:
    """Render ``people`` synthetic people and detect their landmarks as the pipeline does."""
    from ..imaging.framing import frame_person
    from ..pose import MediaPipePoseEstimator
    from .synthetic import make_person

    est = MediaPipePoseEstimator()
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("kp", "vis", "verts", "joints", "scale", "rot", "centre",
                                                         "principal")}
    for i in range(people):
        p = make_person(body, seed0 + i, texture_size=512)
        framed = frame_person(p.cutout, p.mask)
        kp = est.estimate(framed.rgb)
        rows["kp"].append(framed.transform.to_original(kp.xy))
        rows["vis"].append(kp.visibility)
        rows["verts"].append(p.vertices)
        rows["joints"].append(p.joint_world)
        cam = p.camera
        rows["scale"].append(np.float64(cam.scale))
        rows["rot"].append(np.asarray(cam.rotation, np.float64))
        rows["centre"].append(np.asarray(cam.center, np.float64))
        rows["principal"].append(np.asarray(cam.principal, np.float64))
        print(f"person {i + 1}/{people}: mean visibility {kp.visibility.mean():.2f}", flush=True)
    return {k: np.stack(v) for k, v in rows.items()}


def _project(data: dict[str, np.ndarray], points: np.ndarray) -> np.ndarray:
    """(S, ..., 3) world points -> (S, ..., 2) pixels with each sample's orthographic camera."""
    s = data["scale"].reshape(-1, *([1] * (points.ndim - 1)))
    rel = points - data["centre"].reshape(-1, *([1] * (points.ndim - 2)), 3)
    cam = np.einsum("sij,s...j->s...i", data["rot"][:, :2], rel)
    return cam * s + data["principal"].reshape(-1, *([1] * (points.ndim - 2)), 2)


def solve(body: BodyModel, data: dict[str, np.ndarray], clip_px: float = 40.0) -> tuple[dict, dict, dict]:
    """(joint offsets, vertex indices, {landmark: (error before, error after) in px})."""
    kp, vis = data["kp"], data["vis"]
    w = np.clip(vis, 0.0, 1.0)
    joints = data["joints"]
    offsets: dict[str, tuple[float, float, float]] = {}
    report: dict[str, tuple[float, float]] = {}
    for name in JOINT_ANCHORS:
        i, j = LANDMARK_NAMES.index(name), body.joint_index(anchor_joint(body, name))
        head = joints[:, j, :3, 3]
        r = kp[:, i] - _project(data, head[:, None])[:, 0]  # (S, 2)
        a = data["scale"][:, None, None] * np.einsum("sij,sjk->sik", data["rot"][:, :2], joints[:, j, :3, :3])
        sw = np.sqrt(w[:, i])[:, None, None]
        o, *_ = np.linalg.lstsq((a * sw).reshape(-1, 3), (r[..., None] * sw).reshape(-1), rcond=None)
        after = r - np.einsum("sik,k->si", a, o)
        offsets[name] = tuple(float(round(x, 4)) for x in o)
        report[name] = (_mean_err(r, w[:, i]), _mean_err(after, w[:, i]))

    parts_names, part_index = body.face_parts()
    vertices: dict[str, int] = {}
    for name, jname in VERTEX_ANCHOR_JOINTS.items():
        i = LANDMARK_NAMES.index(name)
        wanted = [parts_names.index(p) for p in _PARTS[_part_of(name)]]
        cand = np.unique(body.faces[np.isin(part_index, wanted)].reshape(-1))
        proj = _project(data, data["verts"][:, cand])  # (S, C, 2)
        err = np.minimum(np.linalg.norm(proj - kp[:, i, None], axis=-1), clip_px)  # (S, C)
        score = (err * w[:, i, None]).sum(0) / max(w[:, i].sum(), 1e-9)
        best = int(cand[np.argmin(score)])
        vertices[name] = best
        j = body.joint_index(jname)
        before = kp[:, i] - _project(data, joints[:, j, :3, 3][:, None])[:, 0]
        after = kp[:, i] - _project(data, data["verts"][:, best][:, None])[:, 0]
        report[name] = (_mean_err(before, w[:, i]), _mean_err(after, w[:, i]))
    return offsets, vertices, report


def _mean_err(r: np.ndarray, w: np.ndarray) -> float:
    return float((np.linalg.norm(r, axis=-1) * w).sum() / max(w.sum(), 1e-9))


def main(argv: list[str] | None = None) -> None:
    from ..body import get_body_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=40)
    parser.add_argument("--data", type=Path, default=None, help="cache the detections in this .npz")
    args = parser.parse_args(argv)
    body = get_body_model("anny")
    if args.data is not None and args.data.exists():
        data = dict(np.load(args.data))
    else:
        data = collect(body, args.people)
        if args.data is not None:
            np.savez(args.data, **data)
    offsets, vertices, report = solve(body, data)
    print("mean reprojection error per landmark, px (anchor at the joint -> calibrated):")
    for name in LANDMARK_NAMES:
        if name in report:
            print(f"  {name:18s} {report[name][0]:6.1f} -> {report[name][1]:6.1f}")
    print("JOINT_ANCHORS = {")
    for name, off in offsets.items():
        role, side = JOINT_ANCHORS[name][0]
        print(f'    "{name}": (("{role}", "{side}"), {off}),')
    print("}\nVERTEX_ANCHORS = {")
    for name, v in vertices.items():
        print(f'    "{name}": {v},')
    print("}")


if __name__ == "__main__":
    main()
