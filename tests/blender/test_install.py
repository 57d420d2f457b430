"""The built zip installs as a Blender extension, registers everything, and carries the right files."""

from __future__ import annotations

import filecmp
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import bpy

from .conftest import MODULE, REPO

OPERATORS = ("reconstruct", "generate", "body", "cancel", "import_asset", "start_server", "stop_server",
             "connect", "release", "run_job")
PANELS = ("STRATA_PT_main", "STRATA_PT_garments", "STRATA_PT_shape", "STRATA_PT_parameters", "STRATA_PT_server")


def test_zip_layout_and_manifest(addon_zip: Path) -> None:
    with zipfile.ZipFile(addon_zip) as zf:
        names = set(zf.namelist())
        manifest = tomllib.loads(zf.read("blender_manifest.toml").decode())
    assert manifest["id"] == "strata" and manifest["type"] == "add-on"
    assert manifest["blender_version_min"] == "4.2.0"
    assert manifest["license"] == ["SPDX:GPL-3.0-or-later"]
    assert manifest["platforms"] == ["linux-x64"]
    assert set(manifest["permissions"]) == {"network", "files"}
    wheels = [w.removeprefix("./") for w in manifest["wheels"]]
    assert set(wheels) <= names
    for package in ("pyzmq", "msgpack"):
        tags = {w.split("-")[2] for w in wheels if w.startswith(f"wheels/{package}-")}
        assert tags & {"cp311"}, f"{package}: no wheel for Python 3.11 ({tags})"
        assert tags & {"cp313", "cp312"}, f"{package}: no wheel for Python 3.13 ({tags})"
    for vendored in ("_lib/asset/codec.py", "_lib/wire/protocol.py", "_lib/client.py", "_lib/__init__.py"):
        assert vendored in names


def test_wheels_are_unmodified(addon_zip: Path) -> None:
    cache = REPO / "build" / "wheels-cache" / "linux-x64"
    with zipfile.ZipFile(addon_zip) as zf:
        for name in (n for n in zf.namelist() if n.startswith("wheels/")):
            cached = next(cache.rglob(Path(name).name))
            assert zf.read(name) == cached.read_bytes(), name


def test_blenders_own_validator_accepts_the_zip(addon_zip: Path) -> None:
    tool = Path(bpy.utils.resource_path("LOCAL")) / "scripts" / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    done = subprocess.run([sys.executable, str(tool), "validate", str(addon_zip)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_vendored_modules_match_the_repository(addon) -> None:
    installed = Path(addon.__file__).parent / "_lib"
    for rel in ("asset/schema.py", "asset/codec.py", "asset/container.py", "wire/jobs.py", "wire/protocol.py",
                "client.py", "__init__.py"):
        assert filecmp.cmp(installed / rel, REPO / "exchange" / rel, shallow=False), rel


def test_enabled_and_registered(addon) -> None:
    assert MODULE in bpy.context.preferences.addons
    for op in OPERATORS:
        assert hasattr(bpy.ops.strata, op), op
        assert getattr(bpy.ops.strata, op).idname() == f"STRATA_OT_{op}"
    for panel in PANELS:
        assert hasattr(bpy.types, panel), panel
        assert getattr(bpy.types, panel).bl_category == "Strata"
    assert "UNDO" in bpy.types.STRATA_OT_import_asset.bl_options
    prefs = bpy.context.preferences.addons[MODULE].preferences
    assert prefs.address == "tcp://127.0.0.1:5555"


def test_bundled_wheels_import(addon) -> None:
    import msgpack
    import zmq

    assert zmq.zmq_version_info() >= (4, 3)
    assert msgpack.unpackb(msgpack.packb({"a": 1})) == {"a": 1}


def test_properties_follow_the_job_specs(addon, lib) -> None:
    """One source of truth: defaults and limits of the panel come from core/wire/jobs.py."""
    settings = bpy.context.scene.strata
    for kind, group in (("body", settings.body), ("reconstruct", settings.reconstruct)):
        for spec in lib.jobs.JOB_SPECS[kind].params:
            prop = group.bl_rna.properties[spec.name]
            if spec.choices is not None:
                items = {item.identifier for item in prop.enum_items}
                assert set(map(str, spec.choices)) <= items
                if spec.name != "quality":
                    assert prop.default == str(spec.default)
            elif spec.type is float:
                assert abs(prop.default - spec.default) < 1e-6, spec.name
                if spec.min is not None:
                    assert abs(prop.hard_min - spec.min) < 1e-6
                if spec.max is not None:
                    assert abs(prop.hard_max - spec.max) < 1e-6
            elif spec.type is int:
                assert prop.default == spec.default and prop.hard_min == spec.min and prop.hard_max == spec.max


def test_timer_callback_is_a_plain_function(runtime) -> None:
    """Tests (and background mode) drive the timer by calling it; without a connection it asks to be
    unregistered, and in background mode it is never registered (bpy 4.5 would hang at exit)."""
    saved, runtime.RUNTIME.connection = runtime.RUNTIME.connection, None
    try:
        assert runtime.tick() is None
    finally:
        runtime.RUNTIME.connection = saved
    runtime.start_timer()
    assert not bpy.app.timers.is_registered(runtime.tick)
