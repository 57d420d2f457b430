"""Import speed: `strata.import_asset` against Blender's own glTF importer, on the same human.

    .venv/bin/python bench/import_speed.py [--vertices 76000] [--joints 55] [--repeat 5] [--compare-weights]

Builds a 4-layer rigged asset (core.asset.synthetic: >= 300k vertices in all, a 2048x2048 texture per
layer, 4 weights per vertex, vertex colours, garment masks; no normals, like every asset Strata's
pipelines make, whose normals are Blender's own smooth ones: see docs/asset-format.md), saves it as
.strata and .glb (core.asset.gltf), then in ONE Blender run (.venv-blender's bpy, the add-on zip
installed into a throw-away user folder) imports it `--repeat` times with `bpy.ops.strata.import_asset`
and with `bpy.ops.import_scene.gltf`, each into an empty scene. The first import in a fresh Blender
is slower (its memory is touched for the first time) and is printed apart; `ours_s` is the median
of all of them. The last line is machine-readable:

    BENCH import ours_s=<median> gltf_s=<time> speedup=<gltf/ours>

`--compare-weights` also times the ways of writing skin weights into vertex groups that were tried
for the importer (see blender_addon/importer.py `write_weights`), on the bench's weights and on
all-distinct random weights.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BLENDER_PYTHON = REPO / ".venv-blender" / "bin" / "python"
MODULE = "bl_ext.user_default.strata"


# ---------------------------------------------------------------------------------------------
# main environment side


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vertices", type=int, default=76000, help="vertices per layer (4 layers)")
    parser.add_argument("--joints", type=int, default=55, help="rig joints (55 = SMPL-X size)")
    parser.add_argument("--texture", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=5, help="imports with ours (median reported)")
    parser.add_argument("--gltf-repeat", type=int, default=1)
    parser.add_argument("--compare-weights", action="store_true")
    args = parser.parse_args()
    if not BLENDER_PYTHON.is_file():
        print(f"bench: {BLENDER_PYTHON} is missing (bpy)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(REPO))
    import build_addon
    from strata.exchange.asset import container, gltf, synthetic

    with tempfile.TemporaryDirectory(prefix="strata-bench-") as tmp:
        tmp_path = Path(tmp)
        t = time.perf_counter()
        asset = synthetic.make_asset(4, args.vertices, args.texture, n_joints=args.joints, with_normals=False)
        n_vertices = sum(layer.mesh.n_vertices for layer in asset.layers)
        strata_path, glb_path = tmp_path / "bench.strata", tmp_path / "bench.glb"
        container.save(asset, strata_path)
        gltf.write_glb(asset, glb_path)
        print(f"asset: 4 layers, {n_vertices} vertices, {sum(la.mesh.n_faces for la in asset.layers)} triangles, "
              f"{args.texture}^2 textures, {args.joints} joints, 4 weights/vertex; .strata "
              f"{strata_path.stat().st_size / 1e6:.1f} MB, .glb {glb_path.stat().st_size / 1e6:.1f} MB "
              f"(built in {time.perf_counter() - t:.1f} s)", flush=True)
        zip_path = build_addon.build("linux-x64", tmp_path / "dist", REPO / "build" / "wheels-cache")
        env = {**os.environ, "HOME": str(tmp_path / "home"), "BLENDER_USER_RESOURCES": str(tmp_path / "home" / "b")}
        cmd = [str(BLENDER_PYTHON), __file__, "--blender-side", str(zip_path), str(strata_path), str(glb_path),
               str(args.repeat), str(args.gltf_repeat), "1" if args.compare_weights else "0"]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        lines = [line for line in done.stdout.splitlines() if line.startswith(("RESULT ", "  ", "weights"))]
        result = next((json.loads(line[7:]) for line in lines if line.startswith("RESULT ")), None)
        for line in lines:
            if not line.startswith("RESULT "):
                print(line)
        if done.returncode != 0 or result is None:
            print(done.stdout[-3000:], done.stderr[-3000:], file=sys.stderr)
            return 1
    ours, gltf_s = result["ours"], result["gltf"]
    print(f"ours (strata.import_asset, load + build): {', '.join(f'{x:.3f}' for x in ours)} s "
          f"(the first in a fresh Blender: {ours[0]:.3f} s)")
    print("  stages of one import: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in result["stages"].items()))
    print(f"Blender glTF importer: {', '.join(f'{x:.3f}' for x in gltf_s)} s")
    print(f"CPU time (less sensitive to other processes): ours {statistics.median(result['ours_cpu']):.3f} s, "
          f"glTF {min(result['gltf_cpu']):.3f} s; load average during the run {result['load']:.1f} "
          f"on {os.cpu_count()} cores")
    median = statistics.median(ours)
    print(f"BENCH import ours_s={median:.3f} gltf_s={min(gltf_s):.3f} speedup={min(gltf_s) / median:.1f}")
    return 0


# ---------------------------------------------------------------------------------------------
# Blender side (runs in .venv-blender)


def blender_side(zip_path: str, strata_path: str, glb_path: str, repeat: int, gltf_repeat: int,
                 compare: bool) -> None:
    import importlib

    import bpy

    assert bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                                    enable_on_install=True) == {"FINISHED"}
    importer = importlib.import_module(f"{MODULE}.importer")
    container = importlib.import_module(f"{MODULE}._lib.asset.container")

    def fresh() -> None:
        bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)

    ours, ours_cpu = [], []
    for _ in range(repeat):
        fresh()
        t, c = time.perf_counter(), time.process_time()
        assert bpy.ops.strata.import_asset(filepath=strata_path) == {"FINISHED"}
        ours.append(time.perf_counter() - t)
        ours_cpu.append(time.process_time() - c)
    fresh()
    t = time.perf_counter()
    asset = container.load(strata_path)
    load_s = time.perf_counter() - t
    stages = {"load": load_s, **importer.import_asset(asset, bpy.context, name="stages").timings}
    gltf, gltf_cpu = [], []
    for _ in range(gltf_repeat):
        fresh()
        t, c = time.perf_counter(), time.process_time()
        assert bpy.ops.import_scene.gltf(filepath=glb_path) == {"FINISHED"}
        gltf.append(time.perf_counter() - t)
        gltf_cpu.append(time.process_time() - c)
    if compare:
        fresh()
        compare_weights(importer, container.load(strata_path))
    result = {"ours": ours, "ours_cpu": ours_cpu, "gltf": gltf, "gltf_cpu": gltf_cpu, "stages": stages,
              "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else -1.0}
    print("RESULT " + json.dumps(result), flush=True)
    bpy.ops.preferences.addon_disable(module=MODULE)


def compare_weights(importer, asset) -> None:
    """Time each way of writing one layer's skin weights into vertex groups; check exactness."""
    import bpy
    import numpy as np

    layer = asset.layers[0]
    names = asset.rig.joint_names
    joints = np.asarray(layer.skin.joints)
    bench_w = np.asarray(layer.skin.weights, dtype=np.float32)
    rng = np.random.default_rng(0)
    random_w = rng.random(bench_w.shape).astype(np.float32) + 0.01
    random_w /= random_w.sum(1, keepdims=True)
    n, k = joints.shape

    def fresh_object():
        mesh = importer.build_mesh("w", layer.mesh)
        obj = bpy.data.objects.new("w", mesh)
        bpy.context.scene.collection.objects.link(obj)
        return obj

    def per_vertex(obj, w, limit):  # Blender's glTF importer: one add() per (vertex, joint)
        groups = [obj.vertex_groups.new(name=nm) for nm in names]
        for i in range(limit):
            for s in range(k):
                if w[i, s] > 0:
                    groups[joints[i, s]].add((i,), float(w[i, s]), "REPLACE")
        return limit * k

    def quantised(obj, w, levels):  # rounds weights: not exact
        groups = [obj.vertex_groups.new(name=nm) for nm in names]
        q = np.round(w * levels).astype(np.int64)
        key = joints.T.reshape(-1).astype(np.int64) * (levels + 1) + q.T.reshape(-1)
        vid = np.tile(np.arange(n), k)
        order = np.argsort(key, kind="stable")
        key, vid = key[order], vid[order].tolist()
        starts = np.concatenate(([0], np.flatnonzero(key[1:] != key[:-1]) + 1))
        ends = np.concatenate((starts[1:], [len(key)]))
        for s, e, kk in zip(starts.tolist(), ends.tolist(), key[starts].tolist(), strict=True):
            if kk % (levels + 1):
                groups[kk // (levels + 1)].add(vid[s:e], (kk % (levels + 1)) / levels, "REPLACE")
        return len(starts)

    def convert(obj, w):  # one float attribute per joint + geometry.attribute_convert(VERTEX_GROUP)
        dense = np.zeros((len(names), n), np.float32)
        np.add.at(dense, (joints.T.reshape(-1), np.tile(np.arange(n), k)), w.T.reshape(-1))
        used = np.flatnonzero(dense.any(1))
        with bpy.context.temp_override(object=obj, active_object=obj):
            for j in used.tolist():
                attr = obj.data.attributes.new(names[j], "FLOAT", "POINT")
                attr.data.foreach_set("value", dense[j])
                obj.data.attributes.active = attr
                bpy.ops.geometry.attribute_convert(mode="VERTEX_GROUP")
        return len(used)

    def max_error(obj, w):
        index = {g.index: names.index(g.name) for g in obj.vertex_groups}
        err = 0.0
        for i in range(0, n, max(1, n // 500)):
            got = {index[g.group]: g.weight for g in obj.data.vertices[i].groups}
            for s in range(k):
                err = max(err, abs(got.get(int(joints[i, s]), 0.0) - float(w[i, s])))
        return err

    print(f"weights: one layer, {n} vertices x {k} weights, {len(names)} joints")
    for label, w in (("bench weights", bench_w), ("all-distinct weights", random_w)):
        methods = [
            ("per-vertex add() (glTF importer), timed on 10%", lambda o, w=w: per_vertex(o, w, n // 10), 10.0),
            ("ours (write_weights: runs / groups / convert)",
             lambda o, w=w: importer.write_weights(o, joints, w, names, bpy.context), 1.0),
            ("exact (joint, weight) groups, add() each", lambda o, w=w: importer.write_weights(o, joints, w, names),
             1.0),
            ("quantised to 1/1024, grouped add()", lambda o, w=w: quantised(o, w, 1024), 1.0),
            ("attribute_convert per joint", lambda o, w=w: convert(o, w), 1.0),
        ]
        for name, fn, scale in methods:
            obj = fresh_object()
            t = time.perf_counter()
            calls = fn(obj)
            seconds = (time.perf_counter() - t) * scale
            error = "" if scale != 1.0 else f", max error {max_error(obj, w):.1e}"
            print(f"  {label:21s} {name:48s} {seconds * 1000:8.1f} ms ({calls} calls{error})", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--blender-side":
        zip_path, strata_path, glb_path, repeat, gltf_repeat, compare = sys.argv[2:8]
        blender_side(zip_path, strata_path, glb_path, int(repeat), int(gltf_repeat), compare == "1")
    else:
        sys.exit(main())
