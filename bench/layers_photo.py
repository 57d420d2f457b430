"""Layers from a photo: decisions, silhouette and time of the layered reconstruction.

Synthetic dressed people (`core/pipelines/synthetic_dressed.py`: random outfits and colours, posed, on clutter,
their garments known) go through the whole `reconstruct` pipeline (warm models, two threads) twice: with
``layers`` on, and with it off, the single clothed surface a user could pick instead (the reference). For each:
the share of the outfit's labels the decisions get right (`wardrobe.labels`: top / coat / dress, sleeves,
bottom, shoes, hair length), the front-view IoU of the posed result (every layer together) against the
photo's mask, and the time. Goals (issue 11): agreement >= 90 %, IoU >= 0.93, layered <= 10 s warm.
Ends with one ``BENCH layers_photo ...`` line.

    .venv/bin/python bench/layers_photo.py [N]
"""

from __future__ import annotations

import sys
import time

import numpy as np


def front_iou(asset: object, mask: np.ndarray) -> float:
    from strata.core.imaging.masks import mask_iou
    from strata.core.reconstruct.evaluate import posed_layers, render_mask, textured_union
    from strata.core.render.camera import camera_from_dict

    vertices, faces, *_ = textured_union(asset, posed_layers(asset))
    camera = camera_from_dict(asset.body.extra["camera"])  # type: ignore[attr-defined]
    return mask_iou(render_mask(vertices, faces, camera.resized(mask.shape[1], mask.shape[0])), mask > 0.5)


def main(n: int) -> None:
    import torch

    from strata.core.body import get_body_model
    from strata.core.pipelines.reconstruct import reconstruct, warm_up
    from strata.core.pipelines.synthetic_dressed import make_dressed_person, outfit_labels

    torch.set_num_threads(2)
    model = get_body_model("anny")
    warm_up()
    rows = []
    for seed in range(n):
        person = make_dressed_person(model, 100 + seed)
        mask = person.cutout[..., 3] / 255.0
        row = {}
        for layers in (True, False):
            start = time.perf_counter()
            asset = reconstruct(person.png_bytes(cutout=False), {"height": person.height_m, "layers": layers})
            row[f"s_{layers}"] = time.perf_counter() - start
            row[f"iou_{layers}"] = front_iou(asset, mask)
            if layers:
                truth, got = outfit_labels(person.layers), asset.body.extra["outfit"]["labels"]
                row["agree"] = sum(got.get(k) == v for k, v in truth.items()) / len(truth)
                row["garments"] = asset.body.extra["outfit"]["garments"]
        rows.append(row)
        print(f"{100 + seed}: {' '.join(person.layers[1:])} -> {row['garments']} | agree {row['agree']:.2f} "
              f"IoU {row['iou_True']:.3f} (one surface {row['iou_False']:.3f}) "
              f"{row['s_True']:.1f} s (one surface {row['s_False']:.1f} s)")

    def stats(key: str) -> str:
        v = np.array([r[key] for r in rows])
        return f"{v.min():.3f}/{np.median(v):.3f}/{v.max():.3f}"

    agree = float(np.mean([r["agree"] for r in rows]))
    print(f"BENCH layers_photo n={n} agreement={agree:.3f} iou_min_med_max={stats('iou_True')} "
          f"iou_one_surface={stats('iou_False')} layered_s={stats('s_True')} one_surface_s={stats('s_False')}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 8)
