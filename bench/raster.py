"""Benchmark the CPU rasterizer on a body-sized mesh (~14k vertices, ~27k triangles).

    .venv/bin/python bench/raster.py [--threads 1 2] [--synthetic] [--repeat 20]

Uses the Anny body model's rest mesh when the `anny` package loads (13.7k vertices,
27.4k triangles, ~15 s to build), else a synthetic body of ellipsoids of the same size.
Reports min and median wall time per call: the min is the machine's capability, the
median shows interference from other processes (on a busy 2-core box, torch's
intra-op threads can stall; compare --threads 1). The reference is OpenCV drawing the same
triangles as a hard mask (``cv2.fillPoly``, no depth, no barycentrics, no gradient): the
cheapest coverage a CPU library gives, which our rasterizer's full fragments are measured
against. Ends with one ``BENCH raster ...`` line (one thread, the fit's setting).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from strata.core.render import framing_camera, get_rasterizer, soft_iou_loss
from strata.core.render.primitives import uv_sphere
from strata.core.render.shade import render_rgba


def synthetic_body() -> tuple[np.ndarray, np.ndarray]:
    """Ellipsoid 'body' (head, torso, pelvis, arms, legs), 1.7 m tall, ~14k vertices."""
    parts = [  # centre (x, y, z), radii (x, y, z), rings, segments
        ((0, 0, 1.58), (0.09, 0.1, 0.12), 40, 60),
        ((0, 0, 1.2), (0.18, 0.11, 0.27), 50, 80),
        ((0, 0, 0.9), (0.17, 0.11, 0.12), 40, 60),
        ((-0.35, 0, 1.2), (0.3, 0.05, 0.05), 30, 48),
        ((0.35, 0, 1.2), (0.3, 0.05, 0.05), 30, 48),
        ((-0.1, 0, 0.45), (0.07, 0.07, 0.45), 40, 56),
        ((0.1, 0, 0.45), (0.07, 0.07, 0.45), 40, 56),
    ]
    verts, faces, off = [], [], 0
    for c, r, rings, seg in parts:
        m = uv_sphere(1.0, rings=rings, segments=seg)
        verts.append(m["verts"] * np.array(r) + np.array(c))
        faces.append(m["faces"] + off)
        off += len(m["verts"])
    return np.concatenate(verts), np.concatenate(faces)


def load_body(synthetic: bool) -> tuple[np.ndarray, np.ndarray, str]:
    if not synthetic:
        try:
            import anny

            model = anny.Anny()
            verts = model()["vertices"][0].detach().double().numpy()
            return verts, np.asarray(model.get_triangular_faces()), "anny rest mesh"
        except Exception as exc:  # pragma: no cover - depends on the environment
            print(f"anny unavailable ({exc!r}); using the synthetic body")
    v, f = synthetic_body()
    return v, f, "synthetic ellipsoid body"


def timeit(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times) * 1e3, statistics.median(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--synthetic", action="store_true")
    args = ap.parse_args()

    v_np, f_np, what = load_body(args.synthetic)
    verts = torch.tensor(v_np, dtype=torch.float32)
    faces = torch.tensor(f_np, dtype=torch.int64)
    rast = get_rasterizer("torch")
    print(f"mesh: {what}: {len(verts)} vertices, {len(faces)} triangles; torch {torch.__version__}")

    summary: dict[str, float] = {}
    for threads in args.threads:
        torch.set_num_threads(threads)
        print(f"\n-- {threads} thread(s): min / median ms over {args.repeat} runs")
        for size in (256, 512):
            cam = framing_camera(verts, 0, width=size, height=size)
            screen = cam.to_screen(verts)
            lo, med = timeit(lambda s=screen, n=size: rast.rasterize(s, faces, n, n), args.repeat)
            print(f"rasterize {size}x{size}: {lo:6.1f} / {med:6.1f}")
            if threads == 1 and size == 512:
                summary["rasterize_512_ms"] = lo
                summary["cv2_mask_512_ms"] = cv2_mask_ms(np.asarray(screen)[:, :2], f_np, size, args.repeat)

        for size in (256, 512):
            cam = framing_camera(verts, 0, width=size, height=size)
            target = rast.silhouette(verts + torch.tensor([0.01, 0.0, 0.005]), faces, cam).detach()
            lo, med = timeit(lambda c=cam: rast.silhouette(verts, faces, c), args.repeat)
            print(f"silhouette fwd {size}x{size}: {lo:6.1f} / {med:6.1f}")

            def step(c=cam, t=target) -> None:
                v = verts.clone().requires_grad_(True)
                soft_iou_loss(rast.silhouette(v, faces, c), t).backward()

            lo, med = timeit(step, args.repeat)
            print(f"silhouette fwd+bwd (IoU loss) {size}x{size}: {lo:6.1f} / {med:6.1f}")
            if threads == 1 and size == 256:
                summary["silhouette_fwd_bwd_256_ms"] = lo

        cam = framing_camera(verts, 0, width=512, height=512)
        lo, med = timeit(lambda c=cam: render_rgba(verts, faces, c, ssaa=1), max(3, args.repeat // 4))
        print(f"render_rgba 512x512 (ssaa 1): {lo:6.1f} / {med:6.1f}")
    if summary:
        print(f"\ncv2.fillPoly hard mask 512x512 (reference, 1 thread): {summary['cv2_mask_512_ms']:6.1f} ms")
        ratio = summary["rasterize_512_ms"] / summary["cv2_mask_512_ms"]
        print("BENCH raster " + " ".join(f"{k}={v:.1f}" for k, v in summary.items()) + f" ratio_vs_cv2={ratio:.2f}")


def cv2_mask_ms(xy: np.ndarray, faces: np.ndarray, size: int, repeat: int) -> float:
    """Min ms for OpenCV to fill every triangle (pixel coordinates ``xy``) into a ``size``² mask."""
    import cv2

    cv2.setNumThreads(1)
    tris = np.round(xy[faces] * 16).astype(np.int32)  # 4 fractional bits, as cv2's shift=4 expects

    def draw() -> None:
        mask = np.zeros((size, size), np.uint8)
        cv2.fillPoly(mask, list(tris), 255, lineType=cv2.LINE_8, shift=4)

    return timeit(draw, repeat)[0]


if __name__ == "__main__":
    main()
