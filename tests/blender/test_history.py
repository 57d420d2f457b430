"""Past results: each imported result leaves a record and a thumbnail beside its .strata file; the History
panel lists them, newest first, and imports one again."""

from __future__ import annotations

import importlib
import json
import time
import types

import bpy
import numpy as np
import pytest

from .asset_builder import make_test_asset
from .conftest import MODULE
from .test_panel import FakeLayout


@pytest.fixture()
def history(addon):
    return importlib.import_module(f"{MODULE}.history")


def _saved(lib, folder, job_id: str):
    asset = make_test_asset(lib.schema)
    path = folder / f"{job_id}.strata"
    lib.container.save(asset, path)
    return asset, path


def test_front_view_shows_the_human_on_a_clear_ground(lib, history) -> None:
    """The drawn thumbnail: the human's layers opaque in the middle, clear around, nearer parts lighter."""
    image = history.front_view(make_test_asset(lib.schema), size=64)
    alpha = image[..., 3]
    assert image.shape == (64, 64, 4) and alpha[0, 0] == 0 and alpha[:, 0].max() == 0
    assert 0.05 < alpha.mean() < 0.9
    assert image[alpha > 0, :3].max() > 0.2


def test_records_are_kept_newest_first_with_thumbnails(lib, history, tmp_path) -> None:
    asset, first = _saved(lib, tmp_path, "job-1")
    history.remember(first, asset, name="Ann", kind="generate", job_id="job-1")
    time.sleep(0.01)
    # A reconstruction's thumbnail is its photo (200 x 100: fitted in the square, clear above and below).
    photo = bpy.data.images.new("photo", 200, 100)
    photo.pixels.foreach_set(np.tile([0.9, 0.2, 0.1, 1.0], 200 * 100).astype(np.float32))
    photo.filepath_raw, photo.file_format = str(tmp_path / "photo.png"), "PNG"
    photo.save()
    _, second = _saved(lib, tmp_path, "job-2")
    history.remember(second, asset, name="Bob", kind="reconstruct", job_id="job-2",
                     source_image=str(tmp_path / "photo.png"))
    past = history.records(tmp_path)
    assert [r.name for r in past] == ["Bob", "Ann"] and [r.kind for r in past] == ["reconstruct", "generate"]
    assert json.loads(second.with_suffix(".json").read_text())["source_image"].endswith("photo.png")
    thumb = bpy.data.images.load(str(past[0].thumbnail))
    pixels = np.empty(thumb.size[0] * thumb.size[1] * 4, np.float32)
    thumb.pixels.foreach_get(pixels)
    pixels = pixels.reshape(thumb.size[1], thumb.size[0], 4)
    middle, top = pixels[thumb.size[1] // 2, thumb.size[0] // 2], pixels[-1, thumb.size[0] // 2]
    assert middle[0] > 0.8 and middle[1] < 0.3 and top[3] == 0.0
    # A result whose file was deleted leaves the history.
    first.unlink()
    assert [r.name for r in history.records(tmp_path)] == ["Bob"]


def test_the_history_panel_imports_a_result_again(lib, history, runtime, fresh_scene, monkeypatch, tmp_path) -> None:
    """The panel lists the records with their thumbnails and an Import Again button that runs without a file
    browser; the import makes a new collection named as the record."""
    asset, path = _saved(lib, tmp_path, "job-3")
    history.remember(path, asset, name="Cleo", kind="body", job_id="job-3")
    assert history.records(tmp_path)[0].thumbnail.exists()
    monkeypatch.setattr(runtime, "user_dir", lambda *parts: tmp_path)
    # Background Blender makes no preview icons (a window does: docs/media/history.png shows them).
    panel = importlib.import_module(f"{MODULE}.panel")
    monkeypatch.setattr(panel, "photo_icon", lambda path: 42 if path.endswith("job-3.png") else 0)
    log: list = []
    bpy.types.STRATA_PT_history.draw(types.SimpleNamespace(layout=FakeLayout(log)), bpy.context)
    assert [kwargs.get("icon_value") for name, _, kwargs in log if name == "template_icon"] == [42]
    assert [args[0] for name, args, _ in log if name == "operator"] == ["strata.import_asset"]
    assert any(kwargs.get("text") == "Body, " + history.records(tmp_path)[0].when for name, _, kwargs in log
               if name == "label")
    assert bpy.ops.strata.import_asset("EXEC_DEFAULT", filepath=str(path), name="Cleo") == {"FINISHED"}
    assert "Cleo" in bpy.data.collections
