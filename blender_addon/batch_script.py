"""Headless Blender side of `strata batch` and `strata ... --out x.blend|x.fbx`.

Imports `.strata` files with the add-on's importer, each into a fresh empty scene, and saves or
exports every one: .blend, .fbx, .glb/.gltf (Blender's exporter), .obj, .usd/.usdc/.usda. A failed job
is reported and the next one runs. Works with bpy as a Python module and with a Blender binary:

    python batch_script.py -- --job IN.strata OUT.blend [OUT.fbx ...] [--job ...] [--report report.json]
    blender -b --factory-startup -P batch_script.py -- --job IN.strata OUT.blend

and, as the same batch as `strata batch` run entirely inside Blender (jobs go to a running server):

    blender -b -P batch_script.py -- INPUT_DIR --out OUT_DIR [--format blend,glb,fbx] [--server ADDR]

It must run from a built or staged add-on (build_addon.py `stage()`), which carries the `_lib/`
modules the importer's loader needs; client/blender_export.py does that staging.
"""

import argparse
import importlib
import json
import sys
import time
import traceback
from pathlib import Path

EXPORTS = (".blend", ".fbx", ".glb", ".gltf", ".obj", ".usd", ".usdc", ".usda")


PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def _parse_folder(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="batch_script.py", description="photos and *.json job files in a folder "
                                     "-> one job each on the Strata server -> one saved file per format")
    parser.add_argument("input_dir", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--format", default="blend", help="comma-separated: blend, fbx, glb, obj, usd")
    parser.add_argument("--server", default="tcp://127.0.0.1:5555")
    parser.add_argument("--height", type=float, default=None, help="height in metres for every photo")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the server to answer")
    return parser.parse_args(argv)


def run_folder(args: argparse.Namespace) -> list[dict]:
    """The batch inside Blender: each input becomes a job on the server (photos -> reconstruct, job
    files -> their kind), each result is imported into a fresh scene and written in every format. A
    failed input is reported and the next one runs."""
    import bpy

    package = _addon_package()
    importer = importlib.import_module(f"{package}.importer")
    client_mod = importlib.import_module(f"{package}._lib.client")
    formats = [f.strip().lstrip(".").lower() for f in args.format.split(",") if f.strip()]
    inputs = sorted(p for p in Path(args.input_dir).iterdir()
                    if p.is_file() and p.suffix.lower() in (*PHOTO_SUFFIXES, ".json"))
    if not inputs:
        raise SystemExit(f"{args.input_dir} holds no photos ({', '.join(PHOTO_SUFFIXES)}) or *.json job files")
    results = []
    with client_mod.Client(args.server, timeout=args.timeout) as client:
        client.ping()  # fail early, with the client's message on how to start a server
        for path in inputs:
            start = time.perf_counter()
            entry: dict = {"input": str(path), "outputs": [], "ok": False, "error": ""}
            try:
                if path.suffix.lower() == ".json":
                    spec = json.loads(path.read_text())
                    if not isinstance(spec, dict) or not isinstance(spec.get("kind"), str):
                        raise ValueError('a job file is {"kind": "...", "params": {...}}')
                    kind, params, image, name = spec["kind"], spec.get("params") or {}, None, spec.get("name")
                else:
                    kind, image, name = "reconstruct", path.read_bytes(), None
                    params = {} if args.height is None else {"height": args.height}
                asset = client.run(kind, params, image=image)
                bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
                stem = name or path.stem
                importer.import_asset(asset, bpy.context, name=stem)
                for fmt in formats:
                    out = Path(args.out) / f"{stem}.{fmt}"
                    _export(bpy, out)
                    entry["outputs"].append(str(out))
                entry["ok"] = True
            except client_mod.ServerUnavailable:
                raise
            except Exception as exc:  # one bad input never stops the batch
                code = getattr(exc, "code", "")
                entry["error"] = f"[{code}] {exc}" if code else f"{type(exc).__name__}: {exc}"
            entry["seconds"] = round(time.perf_counter() - start, 3)
            print(f"strata-batch: {'ok' if entry['ok'] else 'FAILED'} {path.name} -> "
                  f"{', '.join(entry['outputs']) or entry['error']}", flush=True)
            results.append(entry)
    ok = sum(r["ok"] for r in results)
    print(f"strata-batch: {ok} succeeded, {len(results) - ok} failed; results in {args.out}", flush=True)
    return results


def _parse(argv: list[str]) -> argparse.Namespace:
    if "--" in argv:
        argv = argv[argv.index("--") + 1:]
    parser = argparse.ArgumentParser(prog="batch_script.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--job", nargs="+", action="append", metavar=("ASSET", "OUT"), required=True,
                        help="a .strata file and the files to write from it")
    parser.add_argument("--report", type=Path, help="write a JSON report of every job here")
    return parser.parse_args(argv)


def _addon_package():
    """Import this folder as a package (any name), so the add-on's relative imports work."""
    here = Path(__file__).resolve().parent
    if not (here / "_lib").is_dir():
        raise SystemExit(f"{here} is not a built add-on (no _lib/): run this script through "
                         f"client/blender_export.py or from a zip made by build_addon.py")
    try:
        import msgpack  # noqa: F401 - bpy-as-a-module environments have it
    except ImportError:
        # A plain Blender binary: use the bundled wheel (msgpack falls back to pure Python from a zip).
        sys.path.extend(str(w) for w in sorted((here / "wheels").glob("msgpack-*.whl")))
    sys.path.insert(0, str(here.parent))
    return here.name


def _export(bpy, path: Path) -> None:
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".blend":
        bpy.ops.wm.save_as_mainfile(filepath=str(path), compress=True)
    elif suffix == ".fbx":
        # Modifiers off: the body keeps the vertices its garments mask (the asset never deletes them).
        bpy.ops.export_scene.fbx(filepath=str(path), use_mesh_modifiers=False, add_leaf_bones=False,
                                 path_mode="COPY", embed_textures=True, bake_anim=False)
    elif suffix in (".glb", ".gltf"):
        bpy.ops.export_scene.gltf(filepath=str(path), export_format="GLB" if suffix == ".glb" else "GLTF_SEPARATE")
    elif suffix == ".obj":
        bpy.ops.wm.obj_export(filepath=str(path))
    elif suffix in (".usd", ".usdc", ".usda"):
        bpy.ops.wm.usd_export(filepath=str(path))
    else:
        raise ValueError(f"cannot write {path.name}: use one of {', '.join(EXPORTS)}")
    if not path.is_file():
        raise RuntimeError(f"Blender did not write {path}")


def run(jobs: list[list[str]]) -> list[dict]:
    import bpy

    package = _addon_package()
    importer = importlib.import_module(f"{package}.importer")
    container = importlib.import_module(f"{package}._lib.asset.container")
    results = []
    for source, *outputs in jobs:
        start = time.perf_counter()
        entry: dict = {"input": source, "outputs": [], "ok": False, "error": ""}
        try:
            if not outputs:
                raise ValueError("no output files given")
            bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
            asset = container.load(source)
            # Named after the output (the user's choice), not the input, which may be a staged temp file.
            result = importer.import_asset(asset, bpy.context, name=Path(outputs[0]).stem)
            entry["collection"] = result.collection.name
            entry["objects"] = sorted(result.objects)
            for out in outputs:
                _export(bpy, Path(out))
                entry["outputs"].append(out)
            entry["ok"] = True
        except Exception as exc:  # one bad job never stops the batch
            entry["error"] = f"{type(exc).__name__}: {exc}"
            entry["traceback"] = traceback.format_exc(limit=4)
        entry["seconds"] = round(time.perf_counter() - start, 3)
        print(f"strata-batch: {'ok' if entry['ok'] else 'FAILED'} {source} -> "
              f"{', '.join(entry['outputs']) or entry['error']}", flush=True)
        results.append(entry)
    return results


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    rest = argv[argv.index("--") + 1:] if "--" in argv else argv[1:]
    if rest and not rest[0].startswith("-"):
        results = run_folder(_parse_folder(rest))
        return 0 if all(r["ok"] for r in results) else 1
    args = _parse(argv)
    results = run(args.job)
    if args.report:
        args.report.write_text(json.dumps(results, indent=2))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())  # a Blender binary running `-b -P` exits with this code too
