"""The HumanAsset schema, its validated frame codec, the `.strata` file, the glTF writer and its mesh
helpers (geometry.py).

This package depends on numpy and msgpack only, and imports its siblings relatively, because the
Blender add-on carries a copy of it (build_addon.py): one definition for server, CLI and add-on.
"""

from .codec import AssetError, decode, encode
from .container import from_bytes, load, save, to_bytes
from .gltf import to_glb, write_glb
from .schema import (
    LAYER_KINDS,
    REST_POSES,
    SCHEMA_VERSION,
    SUPPORTED_SCHEMA_VERSIONS,
    BodyParams,
    HumanAsset,
    Layer,
    Mesh,
    Provenance,
    Rig,
    Skin,
    Texture,
)

__all__ = [
    "LAYER_KINDS", "REST_POSES", "SCHEMA_VERSION", "SUPPORTED_SCHEMA_VERSIONS", "AssetError", "BodyParams",
    "HumanAsset", "Layer", "Mesh", "Provenance", "Rig", "Skin", "Texture", "decode", "encode", "from_bytes", "load",
    "save", "to_bytes", "to_glb", "write_glb",
]
