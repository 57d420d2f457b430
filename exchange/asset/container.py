"""The `.strata` file: an asset's frames stored one after the other.

Layout (all integers little-endian)::

    magic      8 bytes  b"\\x89STRATA\\n"   (non-ASCII first byte: never mistaken for text)
    version    u32      container version, 1
    count      u32      number of frames
    lengths    count x u64
    padding    zeros up to a multiple of 64 bytes
    frames     each frame's bytes, each padded with zeros to a multiple of 64 bytes

The frames are byte-for-byte the frames the wire protocol sends (`codec.encode`), so the server
can stream a stored result without re-encoding, and readers can map arrays straight out of the
file: the 64-byte alignment makes every array view aligned for any dtype and for SIMD loads.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Sequence
from pathlib import Path

from .codec import AssetError, Buffer, decode, encode
from .schema import HumanAsset

MAGIC = b"\x89STRATA\n"
CONTAINER_VERSION = 1
ALIGN = 64
MAX_FRAMES = 1 << 20


def _pad(n: int) -> int:
    return (-n) % ALIGN


def pack_frames(frames: Sequence[Buffer]) -> list[Buffer]:
    """The pieces of a `.strata` file for `frames`, ready for `writelines` (no copies of data)."""
    lengths = [memoryview(f).nbytes for f in frames]
    head = MAGIC + struct.pack("<II", CONTAINER_VERSION, len(frames)) + struct.pack(f"<{len(frames)}Q", *lengths)
    pieces: list[Buffer] = [head + b"\0" * _pad(len(head))]
    for f, n in zip(frames, lengths, strict=True):
        pieces.append(f)
        if _pad(n):
            pieces.append(b"\0" * _pad(n))
    return pieces


def unpack_frames(data: Buffer) -> list[memoryview]:
    """Zero-copy frame views over the bytes of a `.strata` file; AssetError if it is not one."""
    view = memoryview(data).cast("B")
    if view.nbytes < 16 or bytes(view[:8]) != MAGIC:
        raise AssetError("file", "not a .strata file (bad magic bytes)")
    version, count = struct.unpack_from("<II", view, 8)
    if version != CONTAINER_VERSION:
        raise AssetError("file", f".strata container version {version} is not supported")
    if not 1 <= count <= MAX_FRAMES:
        raise AssetError("file", f"frame count {count} is invalid")
    table_end = 16 + 8 * count
    if view.nbytes < table_end:
        raise AssetError("file", "truncated: the frame table is cut off")
    lengths = struct.unpack_from(f"<{count}Q", view, 16)
    offset = table_end + _pad(table_end)
    frames = []
    for i, n in enumerate(lengths):
        if offset + n > view.nbytes:
            raise AssetError("file", f"truncated: frame {i} needs {n} bytes at offset {offset}, "
                             f"the file has {view.nbytes}")
        frames.append(view[offset: offset + n])
        offset += n + _pad(n)
    return frames


def to_bytes(asset: HumanAsset) -> bytes:
    return b"".join(bytes(p) if isinstance(p, memoryview) else p for p in pack_frames(encode(asset)))


def from_bytes(data: Buffer) -> HumanAsset:
    return decode(unpack_frames(data))


def write_frames(path: str | os.PathLike, frames: Sequence[Buffer]) -> None:
    """Write atomically: a crash mid-write never leaves a half file under the final name."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as fh:
        fh.writelines(pack_frames(frames))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def save(asset: HumanAsset, path: str | os.PathLike) -> None:
    write_frames(path, encode(asset))


def read_frames(path: str | os.PathLike) -> list[memoryview]:
    """Memory-map a `.strata` file and return its frames without reading the arrays into RAM."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            raise AssetError("file", f"{path} is empty")
        mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    return unpack_frames(mapped)


def load(path: str | os.PathLike) -> HumanAsset:
    return decode(read_frames(path))
