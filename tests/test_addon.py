"""The Blender add-on's test suite runs INSIDE Blender (tests/blender, with .venv-blender's bpy); this
test launches it as a subprocess from the main environment and reports its result here."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BLENDER_PYTHON = REPO / ".venv-blender" / "bin" / "python"


@pytest.mark.blender
def test_blender_suite(tmp_path: Path) -> None:
    if not BLENDER_PYTHON.is_file():
        pytest.skip(f"{BLENDER_PYTHON} is missing: the add-on tests need bpy (create .venv-blender: `make setup`)")
    probe = subprocess.run([str(BLENDER_PYTHON), "-c", "import bpy, pytest"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f".venv-blender cannot import bpy and pytest: {probe.stderr.strip()[-300:]}")
    env = {**os.environ, "STRATA_REAL_HOME": os.environ.get("HOME", ""),
           "STRATA_BLENDER_TEST_HOME": str(tmp_path / "blender-home")}
    cmd = [str(BLENDER_PYTHON), "-m", "pytest", "tests/blender", "-x", "-q", "-rs", "-p", "no:cacheprovider",
           "-W", "ignore::pytest.PytestConfigWarning"]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=540)
    output = (done.stdout + done.stderr).strip()
    print(output[-3000:])
    assert done.returncode == 0, f"tests/blender failed (exit {done.returncode}):\n{output[-6000:]}"


def _build_addon():
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_addon", REPO / "build_addon.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stage_checks_imports_and_manifest(tmp_path: Path) -> None:
    """The build refuses a vendored module that grew a dependency Blender lacks, and a bad manifest."""
    build = _build_addon()
    tree = build.stage(tmp_path / "ok")
    assert (tree / "_lib" / "client.py").is_file()
    assert (tree / "_lib" / "asset" / "gltf.py").is_file()
    assert not (tree / "_lib" / "asset" / "synthetic.py").exists()
    manifest = build.validate_manifest(tree)
    assert manifest["permissions"]["network"] == "Talks to the Strata server (local by default)"
    (tree / "_lib" / "asset" / "extra.py").write_text("import PIL\nfrom .missing import x\n")
    with pytest.raises(build.BuildError, match=r"imports 'PIL'.*\n.*relative import \.missing"):
        build.check_imports(tree)
    text = (tree / "blender_manifest.toml").read_text().replace('tagline = "', 'tagline = "Too long. ' + "x" * 60)
    (tree / "blender_manifest.toml").write_text(text)
    with pytest.raises(build.BuildError, match="tagline"):
        build.validate_manifest(tree)


def test_manifest_per_platform(tmp_path: Path) -> None:
    build = _build_addon()
    text = build.render_manifest(build.MANIFEST.read_text(), ["windows-x64"], ["a-1-cp311-cp311-win_amd64.whl"])
    assert 'platforms = ["windows-x64"]' in text
    assert '"./wheels/a-1-cp311-cp311-win_amd64.whl",' in text
