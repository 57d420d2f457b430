"""Reconstruction quality against the issue's targets, on seeded synthetic people with known geometry.

Runs the whole `reconstruct` job (photo bytes in, asset out) on N synthetic anny people, each as an RGB
photo on clutter and as an RGBA cut-out, with the true height given, and prints per-case metrics and
the means next to the targets: input-view IoU >= 0.93, side-view IoU >= 0.8, keypoint error <= 2 % of
the image height, mean vertex error <= 3 cm, and the vertex error by body part (head, torso, arms,
hands, legs) to show where it comes from. Ends with one `BENCH reconstruct_quality ...` line.

    .venv/bin/python bench/reconstruct_quality.py [--people 4]
"""

from __future__ import annotations

import argparse

import numpy as np

from strata.core.body import get_body_model
from strata.core.pipelines.reconstruct import reconstruct
from strata.core.reconstruct.evaluate import evaluate_asset
from strata.core.reconstruct.synthetic import make_person
from strata.exchange.asset import decode, encode
from strata.exchange.wire import job_spec

TARGETS = {"iou_front": (">=", 0.93), "iou_side": (">=", 0.8), "keypoint_error_pct": ("<=", 2.0),
           "vertex_error_cm": ("<=", 3.0)}


def _part_keys(metrics: dict[str, float]) -> list[str]:
    """The per-part vertex errors of :func:`~strata.core.reconstruct.evaluate.vertex_parts` in a metrics dict."""
    return [k for k in metrics if k.endswith("_error_cm") and k != "vertex_error_cm"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=4)
    args = parser.parse_args()
    body = get_body_model("anny")
    rows = []
    for seed in range(args.people):
        person = make_person(body, seed, texture_size=1024)
        params = job_spec("reconstruct").validate({"height": round(float(person.height_m), 4), "texture_size": 1024})
        for source in ("photo", "cutout"):
            asset = decode(encode(reconstruct(person.png_bytes(cutout=source == "cutout"), params)))
            m = evaluate_asset(asset, body, person).as_dict()
            rows.append(m)
            by_part = " ".join(f"{k[:-9]}={m[k]:.1f}" for k in _part_keys(m))
            targets = " ".join(f"{k}={m[k]:.3f}" for k in TARGETS)
            print(f"seed {seed} {source:6s} {targets}   by part (cm): {by_part}")
    means = {k: float(np.mean([r[k] for r in rows])) for k in TARGETS}
    met = {k: (means[k] >= t if op == ">=" else means[k] <= t) for k, (op, t) in TARGETS.items()}
    for k, (op, t) in TARGETS.items():
        print(f"mean {k:20s} {means[k]:7.3f}   target {op} {t}   {'met' if met[k] else 'NOT MET'}")
    print("mean vertex error by part (cm): "
          + " ".join(f"{k[:-9]}={np.mean([r[k] for r in rows]):.1f}" for k in _part_keys(rows[0])))
    passing = sum(all((r[k] >= t if op == ">=" else r[k] <= t) for k, (op, t) in TARGETS.items()) for r in rows)
    print(f"BENCH reconstruct_quality cases={len(rows)} cases_meeting_all={passing} "
          f"iou_front={means['iou_front']:.3f} iou_side={means['iou_side']:.3f} "
          f"keypoint_error_pct={means['keypoint_error_pct']:.2f} vertex_error_cm={means['vertex_error_cm']:.2f}")


if __name__ == "__main__":
    main()
