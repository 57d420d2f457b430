"""Per-stage times of the `reconstruct` job for a 768 px photo on a warm pipeline.

    .venv/bin/python bench/reconstruct.py [--photo PATH] [--repeat 3] [--quality balanced] [--threads N]

Models (anny, the MediaPipe graph, the rasterizer) are loaded once and one untimed run warms the caches, as
on a running server; then the job runs ``--repeat`` times and the fastest run's stages are reported (the
machine is shared, so the minimum is its capability; the median is printed too). Default photo: a
synthetic person (768 px tall, cluttered background, RGB: the segmentation path); ``--photo`` takes any
image, resized so its long side is 768 px. Ends with one line::

    BENCH reconstruct total_s=... load_models_s=... load_photo_s=... find_person_s=... detect_pose_s=... \
        fit_body_s=... fit_surface_s=... bake_texture_s=... rig_human_s=...

(one line in the output; wrapped here): the steps of :data:`strata.core.pipelines.reconstruct.STEPS`.
Goal: total <= 20 s on two cores.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path


def synthetic_photo() -> bytes:
    from strata.core.body import get_body_model
    from strata.core.reconstruct.synthetic import make_person

    person = make_person(get_body_model("anny"), 7, size=(768, 576), texture_size=1024)
    return person.png_bytes()


def resized_photo(path: Path, long_side: int = 768) -> bytes:
    from PIL import Image

    im = Image.open(path)
    scale = long_side / max(im.size)
    im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quality", default="balanced", choices=("fast", "balanced", "high"))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the CPU server's default: 1)")
    args = parser.parse_args()

    from strata.core.compute import ComputeEnv
    from strata.core.pipelines.reconstruct import STEPS, reconstruct, warm_up
    from strata.exchange.wire import job_spec

    stage_names = [step.__name__ for step in STEPS]

    env = ComputeEnv(threads=args.threads)
    t = time.perf_counter()
    warm_up(env)
    print(f"models loaded in {time.perf_counter() - t:.1f} s")
    data = resized_photo(args.photo) if args.photo else synthetic_photo()
    params = job_spec("reconstruct").validate({"quality": args.quality})
    reconstruct(data, params, env=env)  # warm-up run: first-call costs (UV layout caches, allocator) are not the job's

    runs = []
    for i in range(max(1, args.repeat)):
        t = time.perf_counter()
        asset = reconstruct(data, params, env=env)
        total = time.perf_counter() - t
        stages = dict(asset.provenance.timings)
        runs.append((total, stages))
        print(f"run {i + 1}: total {total:.2f} s  " + "  ".join(f"{k} {stages.get(k, 0.0):.2f}" for k in stage_names))
    totals = [r[0] for r in runs]
    best_total, best = min(runs, key=lambda r: r[0])
    print(f"median total {statistics.median(totals):.2f} s over {len(runs)} runs")
    fields = " ".join(f"{k}_s={best.get(k, 0.0):.2f}" for k in stage_names)
    print(f"BENCH reconstruct total_s={best_total:.2f} {fields}")


if __name__ == "__main__":
    main()
