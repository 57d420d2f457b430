"""Build the Strata Blender extension: one zip per platform, ready for Blender 4.2+ "Install from Disk".

    python build_addon.py                       # dist/strata-<version>-<platform>.zip for every platform
    python build_addon.py --platform linux-x64  # just one
    python build_addon.py --offline             # use only wheels already in the cache

Each zip holds:

* the add-on (blender_addon/*.py) with a manifest whose `platforms` and `wheels` fit that platform;
* `_lib/`: a copy of the shared package `exchange/` (wire protocol, asset format, client), so the
  add-on speaks exactly the protocol and asset format the server does (its relative imports resolve
  inside the add-on: `_lib/client.py` does `from .wire import ...`);
* `wheels/`: the pyzmq and msgpack wheels from PyPI, UNMODIFIED, for CPython 3.11 (Blender 4.2-5.0)
  and 3.13 (Blender 5.1+). They are downloaded once with `pip download` into a cache folder and
  reused offline afterwards.

The build checks that every module in the zip imports only what Blender has (bpy, numpy, the
standard library), the bundled wheels (zmq, msgpack) and its own relative modules, and validates the
manifest. `stage()` is also used by client/blender_export.py to run the Blender-side batch script.
"""

from __future__ import annotations

import argparse
import ast
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent
ADDON = ROOT / "blender_addon"
MANIFEST = ADDON / "blender_manifest.toml"

WHEELS = {"pyzmq": "27.3.0", "msgpack": "1.2.4"}
"""Bundled packages and their pinned versions (pure-Python dependencies: none; both wheels are self-contained)."""
PYTHONS = ("3.11", "3.13")
"""CPython of Blender 4.2-5.0 and of Blender 5.1+."""
PLATFORMS: dict[str, tuple[str, ...]] = {
    "linux-x64": ("manylinux_2_28_x86_64", "manylinux_2_26_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"),
    "windows-x64": ("win_amd64",),
    "macos-arm64": ("macosx_11_0_arm64",),
}
"""Blender platform -> pip platform tags (pip also accepts older/universal2 wheels for a macOS tag)."""

SHARED = ROOT / "exchange"
"""The shared package (wire protocol, asset format, client), vendored whole as the add-on's `_lib/`: its
modules import only numpy, msgpack, zmq, the standard library and their siblings (relatively)."""
SHARED_EXCLUDED = ("asset/synthetic.py",)
"""Test fixtures of the shared package that the add-on does not need."""

ALLOWED_IMPORTS = frozenset({"bpy", "bpy_extras", "mathutils", "addon_utils", "blf", "numpy", "zmq", "msgpack"})
"""Top-level modules the add-on may import besides the standard library and its own relative modules."""

REQUIRED_MANIFEST_KEYS = ("schema_version", "id", "version", "name", "tagline", "maintainer", "type",
                          "blender_version_min", "license")
PERMISSIONS = frozenset({"files", "network", "clipboard", "camera", "microphone"})


class BuildError(RuntimeError):
    pass


def manifest() -> dict:
    with open(MANIFEST, "rb") as fh:
        return tomllib.load(fh)


def version() -> str:
    return manifest()["version"]


# ---------------------------------------------------------------------------------------------
# wheels


def wheel_cache(cache: Path, platform: str, python: str) -> Path:
    return cache / platform / f"cp{python.replace('.', '')}"


def fetch_wheels(platform: str, cache: Path, *, offline: bool = False) -> list[Path]:
    """The platform's wheels for every Python in PYTHONS, downloading missing ones into `cache`."""
    found: dict[str, Path] = {}
    for python in PYTHONS:
        folder = wheel_cache(cache, platform, python)
        for package, pinned in WHEELS.items():
            prefix = f"{package.replace('-', '_')}-{pinned}-"
            have = sorted(folder.glob(f"{prefix}*.whl"))
            if not have:
                if offline:
                    raise BuildError(f"{package} {pinned} for {platform} / Python {python} is not in {folder} "
                                     f"and --offline was given")
                folder.mkdir(parents=True, exist_ok=True)
                cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                       "--only-binary=:all:", "--no-deps", "--implementation", "cp", "--python-version", python,
                       "--dest", str(folder)]
                for tag in PLATFORMS[platform]:
                    cmd += ["--platform", tag]
                cmd.append(f"{package}=={pinned}")
                print(f"  downloading {package} {pinned} for {platform} / Python {python}")
                done = subprocess.run(cmd, capture_output=True, text=True)
                have = sorted(folder.glob(f"{prefix}*.whl"))
                if done.returncode != 0 or not have:
                    raise BuildError(f"pip download failed for {package} {pinned} ({platform}, Python {python}):\n"
                                     f"{done.stderr.strip() or done.stdout.strip()}")
            for wheel in have:
                found.setdefault(wheel.name, wheel)  # an abi3 wheel may serve several Pythons
    return [found[name] for name in sorted(found)]


# ---------------------------------------------------------------------------------------------
# staging


def _vendored_files() -> Iterable[tuple[Path, str]]:
    """(file, place in the add-on) for every module of the shared package."""
    files = sorted(p for p in SHARED.rglob("*.py") if "__pycache__" not in p.parts)
    if not files:
        raise BuildError(f"{SHARED} is missing: the add-on vendors it")
    for path in files:
        rel = path.relative_to(SHARED).as_posix()
        if rel not in SHARED_EXCLUDED:
            yield path, f"_lib/{rel}"


def stage(dest: Path, *, platform: str | None = None, wheels: Iterable[Path] = ()) -> Path:
    """Write the add-on tree into `dest` (created; must not exist or be empty): add-on modules,
    `_lib/`, `wheels/` and a manifest for `platform` (all platforms when None)."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(ADDON.glob("*.py")):
        shutil.copy2(path, dest / path.name)
    for source, target in _vendored_files():
        out = dest / target
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, out)
    wheel_names = []
    if wheels:
        (dest / "wheels").mkdir(exist_ok=True)
        for wheel in wheels:
            shutil.copy2(wheel, dest / "wheels" / wheel.name)  # byte-for-byte: Blender requires unmodified wheels
            wheel_names.append(wheel.name)
    text = render_manifest(MANIFEST.read_text(), [platform] if platform else None, wheel_names)
    (dest / "blender_manifest.toml").write_text(text)
    validate_manifest(dest)
    check_imports(dest)
    return dest


def render_manifest(template: str, platforms: list[str] | None, wheel_names: list[str]) -> str:
    """The template with `platforms` narrowed and `wheels` listed (textual edits keep its comments)."""
    text = template
    if platforms is not None:
        text, n = re.subn(r"(?m)^platforms\s*=.*$", "platforms = " + _toml_list(platforms), text)
        if n != 1:
            raise BuildError("the manifest template needs exactly one `platforms = [...]` line")
    text = re.sub(r"(?m)^wheels\s*=.*\n", "", text)
    if wheel_names:
        listing = "wheels = [\n" + "".join(f'    "./wheels/{name}",\n' for name in wheel_names) + "]\n"
        text = re.sub(r"(?m)^(platforms\s*=.*\n)", lambda m: m.group(1) + listing, text, count=1)
    return text


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


def validate_manifest(tree: Path) -> dict:
    """Parse and check the staged manifest against the extension rules Blender enforces."""
    with open(tree / "blender_manifest.toml", "rb") as fh:
        data = tomllib.load(fh)
    problems = [f"missing `{key}`" for key in REQUIRED_MANIFEST_KEYS if key not in data]
    if data.get("schema_version") != "1.0.0":
        problems.append("schema_version must be 1.0.0")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", str(data.get("id", ""))):
        problems.append("id must be a lowercase Python identifier")
    if not re.fullmatch(r"\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?", str(data.get("version", ""))):
        problems.append("version must be semantic (MAJOR.MINOR.PATCH)")
    tagline = str(data.get("tagline", ""))
    if not tagline or len(tagline) > 64 or not _terse_end(tagline):
        problems.append("tagline must be 1-64 characters and not end with punctuation")
    if data.get("type") != "add-on":
        problems.append("type must be add-on")
    minimum = tuple(int(x) for x in str(data.get("blender_version_min", "0.0.0")).split("."))
    if minimum < (4, 2, 0):
        problems.append("blender_version_min must be 4.2.0 or later (extensions)")
    licenses = data.get("license", [])
    if not licenses or not all(isinstance(x, str) and x.startswith("SPDX:") for x in licenses):
        problems.append("license must be a list of SPDX: identifiers")
    unknown = set(data.get("platforms", [])) - set(PLATFORMS) - {"windows-arm64", "macos-x64"}
    if unknown:
        problems.append(f"unknown platforms {sorted(unknown)}")
    for wheel in data.get("wheels", []):
        if not wheel.startswith("./wheels/") or not (tree / wheel).is_file():
            problems.append(f"wheel {wheel} is not a file under ./wheels/")
    for key, reason in data.get("permissions", {}).items():
        if key not in PERMISSIONS:
            problems.append(f"unknown permission {key!r}")
        elif not isinstance(reason, str) or not reason or len(reason) > 64 or not _terse_end(reason):
            problems.append(f"permission {key!r} needs a reason of 1-64 characters not ending in punctuation")
    if problems:
        raise BuildError("blender_manifest.toml: " + "; ".join(problems))
    return data


def _terse_end(text: str) -> bool:
    """Blender's rule for taglines and permission reasons: no final punctuation except brackets."""
    return text[-1].isalnum() or text[-1] in ")]}"


def check_imports(tree: Path) -> None:
    """Every module may import only the standard library, ALLOWED_IMPORTS and relative modules that
    exist in the tree: catches a vendored module that grew a dependency Blender lacks."""
    problems = []
    stdlib = set(sys.stdlib_module_names)
    for path in sorted(tree.rglob("*.py")):
        rel = path.relative_to(tree)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            elif isinstance(node, ast.ImportFrom):
                base = path.parent
                for _ in range(node.level - 1):
                    base = base.parent
                targets = [base.joinpath(*node.module.split("."))] if node.module else [
                    base / alias.name for alias in node.names]
                for target in targets:
                    if not (target.with_suffix(".py").is_file() or (target / "__init__.py").is_file()):
                        problems.append(f"{rel}:{node.lineno}: relative import {'.' * node.level}"
                                        f"{node.module or target.name} does not resolve inside the add-on")
                continue
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in stdlib and top not in ALLOWED_IMPORTS:
                    problems.append(f"{rel}:{node.lineno}: imports {name!r}, which Blender does not have")
    if problems:
        raise BuildError("import check failed:\n  " + "\n  ".join(problems))


# ---------------------------------------------------------------------------------------------
# zips


def write_zip(tree: Path, out: Path) -> Path:
    """A deterministic zip of `tree` (sorted entries, fixed timestamps); wheels stored, code deflated."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with zipfile.ZipFile(tmp, "w") as zf:
        for path in sorted(p for p in tree.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            info = zipfile.ZipInfo(path.relative_to(tree).as_posix(), date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_STORED if path.suffix == ".whl" else zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    tmp.replace(out)
    return out


def build(platform: str, out_dir: Path, cache: Path, *, offline: bool = False) -> Path:
    wheels = fetch_wheels(platform, cache, offline=offline)
    staging = ROOT / "build" / "addon" / platform
    if staging.exists():
        shutil.rmtree(staging)
    stage(staging, platform=platform, wheels=wheels)
    return write_zip(staging, out_dir / f"strata-{version()}-{platform}.zip")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--platform", action="append", choices=sorted(PLATFORMS),
                        help="build for this platform (repeatable; default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder (default: dist/)")
    parser.add_argument("--cache", type=Path, default=ROOT / "build" / "wheels-cache",
                        help="wheel cache (default: build/wheels-cache/)")
    parser.add_argument("--offline", action="store_true", help="never download; fail if a wheel is not cached")
    args = parser.parse_args(argv)
    try:
        for platform in args.platform or sorted(PLATFORMS):
            out = build(platform, args.out, args.cache, offline=args.offline)
            with zipfile.ZipFile(out) as zf:
                wheels = [n for n in zf.namelist() if n.startswith("wheels/")]
            print(f"{out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}: "
                  f"{out.stat().st_size / 1e6:.1f} MB, {len(wheels)} wheels")
    except BuildError as exc:
        print(f"build_addon: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
