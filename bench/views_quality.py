"""The views path's quality against the issue's targets, on synthetic clothed people with known geometry.

Each person (`core/reconstruct/synthetic_clothed.py`: loose shirt and trousers, a skirt, a hood, as real
geometry) is rendered into its six true views in the folder convention (docs/views.md), zipped as the CLI
sends them, and reconstructed through the views path (`VIEW_STEPS`: body prior on all views, carving, UV
atlas, texture, rig). The posed result is measured against the true outer surface: mean Chamfer distance
(target <= 1.0 cm), normal consistency (>= 0.90) and side-view IoU (>= 0.95); and the time on this machine
(target for the fast preset on two CPU cores: <= 3 minutes). Ends with one ``BENCH views_quality ...`` line.

    .venv/bin/python bench/views_quality.py [--size 512] [--quality fast]
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

CASES = [(5, ("shirt", "trousers")), (3, ("shirt", "skirt", "hood")), (2, ("shirt", "skirt")),
         (7, ("shirt", "skirt", "hood"))]
TARGETS = {"chamfer_cm": ("<=", 1.0), "normal_consistency": (">=", 0.90), "iou_side": (">=", 0.95),
           "seconds": ("<=", 180.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--quality", default="fast", choices=("fast", "balanced", "high"))
    args = parser.parse_args()

    from strata.core.body import get_body_model
    from strata.core.imaging.masks import mask_iou
    from strata.core.pipelines.reconstruct import VIEW_STEPS, reconstruct
    from strata.core.reconstruct.evaluate import posed_vertices, render_mask, surface_metrics
    from strata.core.reconstruct.synthetic_clothed import make_clothed_person, outer_mesh, render_views
    from strata.core.render.views_io import write_views

    body = get_body_model("anny")
    rows = []
    for seed, garments in CASES:
        person = make_clothed_person(body, seed, garments=garments)
        views = render_views(person, size=args.size)
        with tempfile.TemporaryDirectory() as folder:
            write_views(folder, views, cameras=False)
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as archive:
                for path in sorted(Path(folder).glob("*.png")):
                    archive.write(path, path.name)
        params = {"height": round(float(person.height_m), 3), "quality": args.quality, "texture_size": 1024}
        start = time.perf_counter()
        asset = reconstruct(buf.getvalue(), params, steps=VIEW_STEPS)
        seconds = time.perf_counter() - start
        result = posed_vertices(asset)
        faces = asset.layers[0].mesh.faces.astype(np.int64)
        truth_v, truth_f = outer_mesh(person)
        m = surface_metrics(result, faces, truth_v, truth_f)
        side = views[2].camera
        m["iou_side"] = mask_iou(render_mask(result, faces, side), render_mask(truth_v, truth_f, side))
        m["seconds"] = seconds
        m["faces"] = len(faces)
        rows.append(m)
        print(f"seed {seed} {'+'.join(garments):20s} " + " ".join(f"{k}={v:.3f}" for k, v in m.items())
              + "  steps: " + " ".join(f"{k}={v:.1f}" for k, v in asset.provenance.timings.items()))
    means = {k: float(np.mean([r[k] for r in rows])) for k in TARGETS}
    for k, (op, t) in TARGETS.items():
        met = means[k] <= t if op == "<=" else means[k] >= t
        print(f"mean {k:20s} {means[k]:8.3f}   target {op} {t}   {'met' if met else 'NOT MET'}")
    print(f"BENCH views_quality cases={len(rows)} " + " ".join(f"{k}={means[k]:.3f}" for k in TARGETS)
          + f" faces={int(np.mean([r['faces'] for r in rows]))}")


if __name__ == "__main__":
    main()
