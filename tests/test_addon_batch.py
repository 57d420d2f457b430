"""`strata batch` (client/batch.py) and client/blender_export.py: real server, real Blender (bpy)."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from strata.client import blender_export
from strata.client.batch import add_batch_parser
from strata.exchange.asset import container, synthetic

REPO = Path(__file__).resolve().parents[1]
HAS_BLENDER = (REPO / ".venv-blender" / "bin" / "python").is_file()
needs_blender = pytest.mark.skipif(not HAS_BLENDER, reason=".venv-blender (bpy) is missing")


def _batch(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="strata")
    parser.add_argument("-q", "--quiet", action="store_true")
    add_batch_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def _is_blend(path: Path) -> bool:
    head = path.read_bytes()[:7]
    return head == b"BLENDER" or head[:4] == b"\x28\xb5\x2f\xfd"  # plain, or zstd-compressed (Blender 4.x)


@pytest.mark.blender
@needs_blender
def test_batch_mixed_inputs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a_echo.json").write_text(json.dumps({"kind": "echo", "params": {"hold": 0.2}}))
    (inputs / "b_named.json").write_text(json.dumps({"kind": "echo", "params": {}, "name": "second"}))
    (inputs / "c_fails.json").write_text(json.dumps({"kind": "echo", "params": {"fail": "no_person"}}))
    (inputs / "d_bad.json").write_text("{not json")
    (inputs / "e_broken.png").write_bytes(b"this is not a png")
    (inputs / "notes.txt").write_text("ignored")
    out = tmp_path / "out"
    code = _batch(["batch", str(inputs), "--out", str(out), "--format", "strata,glb,blend,fbx", "--start-server"])
    printed = capsys.readouterr().out
    assert code == 1, printed
    assert "2 succeeded, 3 failed" in printed
    for name in ("a_echo", "second"):
        assert container.load(out / f"{name}.strata").layers
        assert (out / f"{name}.glb").read_bytes()[:4] == b"glTF"
        assert _is_blend(out / f"{name}.blend")
        assert (out / f"{name}.fbx").read_bytes()[:18] == b"Kaydara FBX Binary"
    assert "c_fails.json: [no_person]" in printed
    assert "d_bad.json: bad job file" in printed
    assert "e_broken.png: [" in printed  # invalid_input, or unavailable on a server without the pipeline
    assert not (out / "c_fails.blend").exists()


def test_batch_usage_errors(tmp_path: Path) -> None:
    assert _batch(["batch", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert _batch(["batch", str(tmp_path), "--out", str(tmp_path / "o"), "--format", "xyz"]) == 2
    assert _batch(["batch", str(tmp_path), "--out", str(tmp_path / "o")]) == 2  # no inputs


@pytest.mark.blender
@needs_blender
def test_export_one_asset(tmp_path: Path) -> None:
    asset_path = tmp_path / "a.strata"
    container.save(synthetic.make_asset(2, 300, 32), asset_path)
    assert _is_blend(blender_export.export(asset_path, tmp_path / "a.blend"))
    assert (blender_export.export(asset_path, tmp_path / "a.fbx")).read_bytes()[:18] == b"Kaydara FBX Binary"
    with pytest.raises(blender_export.ExportError, match="formats"):
        blender_export.export(asset_path, tmp_path / "a.xyz")
    bad = tmp_path / "bad.strata"
    shutil.copyfile(__file__, bad)
    with pytest.raises(blender_export.ExportError, match="not a .strata file"):
        blender_export.export(bad, tmp_path / "bad.blend")


@pytest.mark.blender
@needs_blender
def test_batch_script_runs_the_folder_batch_inside_blender(tmp_path: Path) -> None:
    """`blender -b -P batch_script.py -- INPUT_DIR --out OUT_DIR`: the same batch, driven from Blender."""
    import subprocess

    from strata.client.demo import start_server, stop_server

    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a_body.json").write_text(json.dumps({"kind": "body", "params": {"texture_size": 256}}))
    (inputs / "b_bad.json").write_text("{not json")
    (inputs / "c_broken.png").write_bytes(b"this is not a png")
    addon = blender_export.stage_addon(tmp_path / "addon")
    proc, address = start_server(tmp_path / "data", tmp_path / "server.log")
    try:
        run = subprocess.run([str(REPO / ".venv-blender" / "bin" / "python"), str(addon / "batch_script.py"), "--",
                              str(inputs), "--out", str(tmp_path / "out"), "--format", "blend,glb",
                              "--server", address], capture_output=True, text=True, timeout=300)
    finally:
        stop_server(proc)
    printed = run.stdout + run.stderr
    assert run.returncode == 1, printed
    assert "1 succeeded, 2 failed" in printed
    assert _is_blend(tmp_path / "out" / "a_body.blend")
    assert (tmp_path / "out" / "a_body.glb").read_bytes()[:4] == b"glTF"
    assert "b_bad.json" in printed and "c_broken.png -> [not_an_image]" in printed
