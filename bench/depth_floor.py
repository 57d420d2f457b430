"""How close any single-view fit can get on the quality bench's people when it cannot see the legs' depth.

The quality bench (`bench/reconstruct_quality.py`) draws people standing with their thighs swung -5 to
10 deg forwards and their knees bent 0 to 15 deg (:func:`strata.core.reconstruct.synthetic.random_pose`).
A frontal orthographic photo shows such a tilt only as a foreshortening of the bone: 0.4 % at a typical
tilt (5 deg), 2 % at the largest, while MediaPipe's knee landmark alone scatters by 1.8 cm (4 % of a
thigh) on these renders. So without another depth cue the best guess of each leg bone's depth is the
population mean. This script takes each bench person's *true* body, changes nothing but the thigh and shin depth
tilts (set to the population's mean, measured on 200 other people; the image-plane direction kept, the
feet re-levelled as the generator does), and prints the mean vertex error and side-view IoU that this
alone costs, aligned as the quality metrics align (median depth shift). It is a floor: a real fit adds
its arms', hands' and shape's errors on top.

    .venv/bin/python bench/depth_floor.py [--people 16]

Ends with one `BENCH depth_floor ...` line.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from strata.core.body import get_body_model
from strata.core.reconstruct.evaluate import side_view_iou, vertex_parts
from strata.core.reconstruct.posing import Poser
from strata.core.reconstruct.synthetic import random_pose, random_shape

#: Leg bone role -> the role of the joint it points at (names through the body's joint map).
LEG_BONES = {"thigh": "shin", "shin": "foot"}


def person(body: object, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(shape, pose) of the synthetic person of ``seed``, drawn exactly as `make_person` draws them."""
    rng = np.random.default_rng(seed)
    shape, _ = random_shape(body, rng)  # type: ignore[arg-type]
    return shape, random_pose(body, shape, rng)  # type: ignore[arg-type]


def leg_directions(poser: Poser) -> dict[tuple[str, str], np.ndarray]:
    """(role, side) -> the leg bone's current unit direction."""
    jm = poser.joint_map
    return {(a, s): poser.direction(jm.side(a, s), jm.side(b, s)) for s in ("L", "R") for a, b in LEG_BONES.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=16, help="bench people (seeds 0..N-1)")
    args = parser.parse_args()
    body = get_body_model("anny")
    jm = body.joint_map
    parts = vertex_parts(body)
    faces = np.asarray(body.faces, np.int64)

    depth: dict[str, list[float]] = {bone: [] for bone in LEG_BONES}
    for seed in range(2000, 2200):  # the population, disjoint from the bench's seeds
        shape, pose = person(body, seed)
        for (role, _), d in leg_directions(Poser(body.rest_skeleton(shape), pose, body.joint_map)).items():
            depth[role].append(float(d[1]))
    mean = {bone: float(np.mean(v)) for bone, v in depth.items()}
    spread = {bone: float(np.degrees(np.std(np.arcsin(v)))) for bone, v in depth.items()}
    print("leg bones' depth tilt in the population: "
          + ", ".join(f"{b} mean {np.degrees(np.arcsin(mean[b])):+.1f} deg, std {spread[b]:.1f} deg" for b in mean))

    rows = []
    for seed in range(args.people):
        shape, pose = person(body, seed)
        poser = Poser(body.rest_skeleton(shape), pose, body.joint_map)
        targets = {}
        for (role, side), d in leg_directions(poser).items():
            y = mean[role]
            plane = np.array([d[0], 0.0, d[2]])
            aimed = plane / np.linalg.norm(plane) * np.sqrt(1.0 - y * y) + np.array([0.0, y, 0.0])
            targets[jm.side(role, side)] = aimed
        poser.aim_limbs(targets)
        for side in ("L", "R"):
            poser.aim(jm.side("foot", side), jm.side("toe", side), np.array([0.0, -0.92, -0.39]))
        with torch.no_grad():
            truth = body.forward(torch.as_tensor(shape)[None], torch.as_tensor(pose)[None]).vertices[0].numpy()
            guess = body.forward(torch.as_tensor(shape)[None], torch.as_tensor(poser.as_float32())[None])
            guess = guess.vertices[0].numpy()
        guess = guess + np.array([0.0, np.median(truth[:, 1] - guess[:, 1]), 0.0])
        err = np.linalg.norm(guess - truth, axis=1)
        row = {"vertex_error_cm": 100 * float(err.mean()), "legs_error_cm": 100 * float(err[parts == "legs"].mean()),
               "iou_side": side_view_iou(guess, faces, truth, faces)}
        rows.append(row)
        print(f"seed {seed:2d} " + " ".join(f"{k}={v:.3f}" for k, v in row.items()))
    means = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    print(f"BENCH depth_floor people={len(rows)} vertex_error_cm={means['vertex_error_cm']:.2f} "
          f"legs_error_cm={means['legs_error_cm']:.2f} iou_side={means['iou_side']:.3f}")


if __name__ == "__main__":
    main()
