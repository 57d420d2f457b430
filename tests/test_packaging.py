"""The wheel must carry every package: the folder -> strata.* mapping rules out auto-discovery."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_every_python_package_is_listed_in_pyproject():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set()
    for top in ("exchange", "core", "server", "client"):
        name = f"strata.{top}"
        for init in (REPO / top).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / top).parts
            found.add(".".join((name, *rel)))
    assert found == listed, f"missing from pyproject: {sorted(found - listed)}; stale: {sorted(listed - found)}"


def _deps(spec: str) -> str:
    return spec.split(";")[0].split("[")[0].split(">")[0].split("<")[0].split("=")[0].strip().lower()


def test_a_cli_only_install_does_not_pull_torch():
    """`pip install strata` is the client: torch, anny and the vision stack come with the [server] extra."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    base = {_deps(d) for d in project["dependencies"]}
    assert base == {"numpy", "pyzmq", "msgpack"}
    extras = project["optional-dependencies"]
    assert {"torch", "anny"} <= {_deps(d) for d in extras["server"]}
    assert {"diffusers", "transformers", "accelerate", "diffrp-nvdiffrast"} <= {_deps(d) for d in extras["gpu"]}
    assert "train" in extras


def test_the_client_package_imports_without_the_compute_core():
    import subprocess
    import sys

    code = ("import sys, strata.client.cli, strata.client.batch, strata.client.outputs, strata.client.demo\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'anny', 'PIL', 'scipy', 'cv2')"
            " or m.startswith(('strata.core', 'strata.server'))]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)
