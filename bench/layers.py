"""Layered generation: time per human and interpenetration in the rest pose and the test poses.

For ten layer choices (every style at least once) on seeded bodies, `generate_layered` (the `generate` job's
pipeline, warm body model) is timed, and the share of each garment layer's vertices inside the body or a
lower layer by more than 2 mm is measured in the rest pose and with the armature in the walking, sitting and
arms-up test poses (linear blend skinning, as Blender's Armature modifier), both as a whole and beyond the
body's own folds (garment vertices over skin that the body's skinning has itself folded inside the body, as
the lap when sitting: see ``core/garments/metrics.py``), and in the rest pose with each shape slider at 1
(``shape_keys_pct``: the garments' keys follow the body's). The reference a user could pick is the body job alone
on the same body (what the layers add to it). Goals (issue 11): 0 in the rest pose, <= 0.5 % in the test
poses. Ends with one ``BENCH layers ...`` line.

    .venv/bin/python bench/layers.py
"""

from __future__ import annotations

import time

import numpy as np

CHOICES = [
    ["bottom:trousers", "top:tshirt", "shoes:sneakers", "hair:bob"],
    ["bottom:skirt", "top:longsleeve", "shoes:boots", "hair:long"],
    ["bottom:shorts", "top:hoodie", "shoes:sneakers", "hair:ponytail"],
    ["top:dress", "shoes:flats", "hair:bun"],
    ["bottom:trousers", "top:coat", "shoes:boots", "hair:short"],
    ["bottom:trousers", "top:jacket", "shoes:sneakers", "hair:short"],
    ["bottom:skirt", "top:tshirt", "shoes:flats", "hair:ponytail"],
    ["bottom:shorts", "top:tshirt", "shoes:sneakers"],
    ["bottom:trousers", "top:longsleeve", "shoes:boots", "hair:bun"],
    ["top:dress", "shoes:boots", "hair:long"],
]


def main() -> None:
    import torch

    from strata.core.body import get_body_model
    from strata.core.garments.metrics import TEST_POSES, layer_penetration, pose_penetration, test_pose
    from strata.core.pipelines import generate
    from strata.core.pipelines.body import build_body
    from strata.core.pipelines.generate import generate_layered
    from strata.exchange.wire.jobs import JOB_SPECS

    torch.set_num_threads(2)
    model = get_body_model("anny")
    key_seconds: list[float] = []
    add_keys = generate.add_shape_keys

    def timed_keys(*args, **kwargs):  # what the shape sliders cost within each human's time
        start = time.perf_counter()
        bones = add_keys(*args, **kwargs)
        key_seconds.append(time.perf_counter() - start)
        return bones

    generate.add_shape_keys = timed_keys
    spec = JOB_SPECS["generate"]
    generate_layered(model, spec.validate({"layers": ["top:tshirt"], "texture_size": 512}))  # warm
    seconds, body_seconds, rest, keyed = [], [], [], []
    posed = {name: [] for name in TEST_POSES}
    beyond = {name: [] for name in TEST_POSES}
    for seed, layers in enumerate(CHOICES):
        params = spec.validate({"layers": ["body", *layers], "seed": seed, "texture_size": 1024})
        start = time.perf_counter()
        asset = generate_layered(model, params)
        seconds.append(time.perf_counter() - start)
        shape, bind = asset.body.shape, asset.body.pose
        start = time.perf_counter()
        build_body(model, {"height": 1.7, "texture_size": 1024})
        body_seconds.append(time.perf_counter() - start)
        meshes = [(np.asarray(lay.mesh.vertices, np.float64), np.asarray(lay.mesh.faces, np.int64),
                   np.asarray(lay.skin.joints, np.int64), np.asarray(lay.skin.weights)) for lay in asset.layers]
        from strata.core.garments.frame import skin_surface

        faces, _ = skin_surface(meshes[0][1], len(meshes[0][0]))  # the body's skin (no eyes, no tongue)
        meshes[0] = (meshes[0][0], faces, meshes[0][2], meshes[0][3])
        rest.append(max(layer_penetration([(v, f) for v, f, _, _ in meshes])))
        for k in range(len(asset.layers[0].mesh.shape_key_names)):  # each shape slider at 1: clothes follow?
            keyed.append(max(layer_penetration([(v + np.asarray(lay.mesh.shape_keys[k], np.float64), f)
                                                for (v, f, _, _), lay in zip(meshes, asset.layers, strict=True)])))
        shift = asset.body.translation
        for name in TEST_POSES:
            pose = test_pose(model, shape, bind, name)
            raw, unfolded = pose_penetration(model, shape, bind, pose, [(v - shift, f, j, w) for v, f, j, w in meshes])
            posed[name].append(max(raw))
            beyond[name].append(max(unfolded))
        print(f"{'+'.join(layers):55s} {seconds[-1]:5.1f} s  rest {100 * rest[-1]:.2f} %  "
              + "  ".join(f"{n} {100 * posed[n][-1]:.2f} % ({100 * beyond[n][-1]:.2f} % beyond folds)"
                          for n in TEST_POSES))
    worst = {n: 100 * max(v) for n, v in posed.items()}
    worst_beyond = {n: 100 * max(v) for n, v in beyond.items()}
    print(f"generate: min {min(seconds):.1f} s, median {np.median(seconds):.1f} s, max {max(seconds):.1f} s; "
          f"the body job alone: median {np.median(body_seconds):.1f} s")
    print(f"BENCH layers humans={len(CHOICES)} median_s={np.median(seconds):.2f} "
          f"body_only_s={np.median(body_seconds):.2f} rest_pct={100 * max(rest):.2f} "
          f"shape_keys_s={np.median(key_seconds[1:]):.2f} shape_keys_pct={100 * max(keyed):.2f} "
          + " ".join(f"{n}_pct={v:.2f}" for n, v in worst.items()) + " "
          + " ".join(f"{n}_beyond_folds_pct={v:.2f}" for n, v in worst_beyond.items()))


if __name__ == "__main__":
    main()
