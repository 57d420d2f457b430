"""Load a user photo into one canonical form: RGBA uint8 (H, W, 4), upright, sRGB-ish, 8 bits.

Everything downstream (segmentation, pose, framing) assumes that one form, so all format quirks are
absorbed here: EXIF rotation (phones store portrait shots as landscape pixels plus a tag), palette and
grayscale modes, 16-bit PNGs (Pillow's own ``convert`` clips 16-bit gray to white instead of scaling it),
CMYK JPEGs, and transparency stored as a palette or colour key.

Input comes from users and over the network, so the loader is also the first line of defence: it checks
the byte size and the pixel count from the header *before* decoding (a 100-byte PNG can claim 100k x 100k
pixels), and turns every decoder failure into a typed :class:`~strata.core.imaging.errors.PhotoError`.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import (
    CorruptImageError,
    ImageNotFoundError,
    ImageTooLargeError,
    ImageTooSmallError,
    NotAnImageError,
    TruncatedImageError,
    UnsupportedFormatError,
)

#: Default pixel budget (width x height). 50 MP covers every phone camera in 2025 (48-50 MP sensors) while
#: keeping the decoded RGBA under 200 MB.
DEFAULT_MAX_PIXELS = 50_000_000
#: Default file-size budget; a 50 MP PNG is rarely above 150 MB.
DEFAULT_MAX_BYTES = 200 * 1024 * 1024
#: Below this on the short side there is not enough detail for pose or texture.
DEFAULT_MIN_SIDE = 128

#: Pillow format names we accept. MPO is what Pillow calls the multi-picture JPEGs many cameras write.
SUPPORTED_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "WEBP": "WEBP"}

# An alpha channel counts as a real cut-out only if it hides a sizeable part of the image and keeps a
# sizeable part: a few transparent pixels (rounded screenshot corners, a 1 px border) are not a cut-out.
_CUTOUT_MIN_TRANSPARENT = 0.05
_CUTOUT_MIN_OPAQUE = 0.005


@dataclass(frozen=True)
class LoadedImage:
    """A decoded photo.

    Attributes:
        rgba: (H, W, 4) uint8, upright (EXIF orientation applied). When ``has_cutout`` is False the alpha
            channel is all 255, so no caller can mistake stray transparency for a subject mask.
        has_cutout: True when the file's alpha is a real cut-out (background removed), so it can serve as
            the segmentation mask directly.
        format: "PNG", "JPEG" or "WEBP".
        source_mode: the Pillow mode of the file before conversion ("RGB", "P", "I;16", ...), for logs.
        exif_orientation: the EXIF orientation tag that was applied (1 = none).
    """

    rgba: np.ndarray
    has_cutout: bool
    format: str
    source_mode: str
    exif_orientation: int = 1

    @property
    def height(self) -> int:
        return int(self.rgba.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgba.shape[1])

    @property
    def alpha(self) -> np.ndarray:
        """(H, W) uint8 alpha channel (a view)."""
        return self.rgba[..., 3]


ImageSource = bytes | bytearray | memoryview | str | os.PathLike


def load_image(
    source: ImageSource,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    min_side: int = DEFAULT_MIN_SIDE,
) -> LoadedImage:
    """Decode a PNG / JPEG / WebP photo from bytes or a file path.

    Args:
        source: the encoded file as bytes (e.g. straight from the wire), or a path.
        max_pixels: refuse images whose header claims more pixels than this (checked before decoding).
        max_bytes: refuse files larger than this many bytes (checked before reading a path).
        min_side: refuse images whose shorter side is below this many pixels.

    Raises:
        ImageNotFoundError, NotAnImageError, UnsupportedFormatError, TruncatedImageError,
        CorruptImageError, ImageTooLargeError, ImageTooSmallError (all :class:`PhotoError`).
    """
    data, label = _read_source(source, max_bytes)
    if len(data) == 0:
        raise NotAnImageError(f"{label} is empty (0 bytes).")

    sniffed = _sniff_format(data)
    try:
        im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        # Pillow's own guard (2x Image.MAX_IMAGE_PIXELS) fires inside open(), before our check can.
        raise ImageTooLargeError(
            f"{label} has far more pixels than the {max_pixels / 1e6:.0f} MP limit.",
            reason=str(exc),
            max_pixels=max_pixels,
        ) from exc
    except UnidentifiedImageError as exc:
        raise _undecodable(data, sniffed, label, exc) from exc
    except Exception as exc:  # Pillow raises OSError/SyntaxError/struct.error on damaged headers
        raise _undecodable(data, sniffed, label, exc) from exc

    with im:
        fmt = SUPPORTED_FORMATS.get(im.format or "")
        if fmt is None:
            raise UnsupportedFormatError(
                f"{label} is a {im.format or 'unknown'} image; only PNG, JPEG and WebP are supported.",
                format=im.format,
            )
        width, height = im.size
        # Header-only checks, before a single pixel is decoded.
        if width * height > max_pixels:
            raise ImageTooLargeError(
                f"{label} is {width}x{height} = {width * height / 1e6:.1f} MP; the limit is {max_pixels / 1e6:.0f} MP.",
                width=width,
                height=height,
                max_pixels=max_pixels,
            )
        if min(width, height) < min_side:
            raise ImageTooSmallError(
                f"{label} is only {width}x{height} pixels; at least {min_side} px on the short side is needed.",
                width=width,
                height=height,
                min_side=min_side,
            )
        source_mode = im.mode
        try:
            im.load()
        except Image.DecompressionBombError as exc:
            raise ImageTooLargeError(f"{label} is too large to decode safely.", reason=str(exc)) from exc
        except Exception as exc:  # OSError "image file is truncated", zlib errors, EOFError, ...
            raise _undecodable(data, fmt, label, exc) from exc

        orientation = _exif_orientation(im)
        try:
            upright = ImageOps.exif_transpose(im) if orientation != 1 else im
        except Exception:  # a malformed EXIF block must not cost the user the photo
            upright, orientation = im, 1
        rgba = _to_rgba_u8(upright)

    has_cutout = _is_real_cutout(rgba[..., 3])
    if not has_cutout:
        rgba[..., 3] = 255
    return LoadedImage(
        rgba=rgba, has_cutout=has_cutout, format=fmt, source_mode=source_mode, exif_orientation=orientation
    )


# --- helpers ---------------------------------------------------------------------------------------------


def _read_source(source: ImageSource, max_bytes: int) -> tuple[bytes, str]:
    """Return the encoded bytes and a short label for messages, enforcing the byte budget early."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        if len(data) > max_bytes:
            raise ImageTooLargeError(
                f"The uploaded file is {len(data) / 2**20:.0f} MiB; the limit is {max_bytes / 2**20:.0f} MiB.",
                bytes=len(data),
                max_bytes=max_bytes,
            )
        return data, "The uploaded file"
    if not isinstance(source, str | os.PathLike):
        raise TypeError(f"load_image expects bytes or a path, not {type(source).__name__}")
    path = Path(source)
    label = f"'{path.name}'"
    if not path.exists():
        raise ImageNotFoundError(f"No file at {path}.", path=str(path))
    if not path.is_file():
        raise ImageNotFoundError(f"{path} is a folder, not a file.", path=str(path))
    size = path.stat().st_size
    if size > max_bytes:
        raise ImageTooLargeError(
            f"{label} is {size / 2**20:.0f} MiB; the limit is {max_bytes / 2**20:.0f} MiB.",
            bytes=size,
            max_bytes=max_bytes,
        )
    return path.read_bytes(), label


# Magic numbers of formats people try to upload. Supported ones let us tell "damaged PNG" from "not an
# image"; unsupported ones get a "convert it" hint instead of the vaguer "not an image".
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1")


def _sniff_format(data: bytes) -> str | None:
    head = data[:32]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIF_BRANDS:
            return "HEIF"
        if brand in (b"avif", b"avis"):
            return "AVIF"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "TIFF"
    if head.startswith(b"BM"):
        return "BMP"
    if head.startswith(b"8BPS"):
        return "PSD"
    if head.startswith(b"%PDF"):
        return "PDF"
    if head.lstrip().startswith((b"<svg", b"<?xml")):
        return "SVG"
    return None


def _undecodable(data: bytes, sniffed: str | None, label: str, exc: BaseException):
    """Pick the most helpful error for a file Pillow could not open or decode."""
    if sniffed is None:
        return NotAnImageError(f"{label} is not an image Strata can read.", reason=str(exc))
    if sniffed not in SUPPORTED_FORMATS.values():
        return UnsupportedFormatError(
            f"{label} is a {sniffed} file; only PNG, JPEG and WebP are supported.", format=sniffed
        )
    if _looks_truncated(data, sniffed):
        return TruncatedImageError(
            f"{label} looks like a {sniffed} file but ends too early ({len(data)} bytes).", reason=str(exc)
        )
    return CorruptImageError(f"{label} looks like a {sniffed} file but cannot be decoded.", reason=str(exc))


def _looks_truncated(data: bytes, fmt: str) -> bool:
    """Format-level end markers, so a cut file is reported as cut rather than as generic damage."""
    if fmt == "PNG":
        return b"IEND" not in data[-32:]
    if fmt == "JPEG":
        # Cameras may append trailers after the EOI marker, so look for it near the end, not at it.
        return b"\xff\xd9" not in data[-4096:]
    if fmt == "WEBP":
        if len(data) < 12:
            return True
        (riff_size,) = struct.unpack("<I", data[4:8])
        return len(data) < riff_size + 8
    return False


def _exif_orientation(im: Image.Image) -> int:
    try:
        value = int(im.getexif().get(0x0112, 1))
    except Exception:
        return 1
    return value if 1 <= value <= 8 else 1


def _to_rgba_u8(im: Image.Image) -> np.ndarray:
    """Convert any Pillow mode we may meet in PNG/JPEG/WebP to a writable (H, W, 4) uint8 array."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit grayscale PNG. Scale 0..65535 -> 0..255 ourselves: Pillow's convert("L") clips.
        gray16 = np.asarray(im).astype(np.uint32)
        gray = ((gray16 * 255 + 32767) // 65535).clip(0, 255).astype(np.uint8)
        alpha = np.full(gray.shape, 255, np.uint8)
        trns = im.info.get("transparency")
        if isinstance(trns, int):
            alpha[gray16 == trns] = 0
        return np.dstack([gray, gray, gray, alpha])
    if mode == "F":
        gray = (np.clip(np.asarray(im), 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
        return np.dstack([gray, gray, gray, np.full(gray.shape, 255, np.uint8)])
    if mode == "CMYK":
        im = im.convert("RGB")
    # "1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBa", "La", "YCbCr": Pillow applies palette and colour-key
    # transparency (info["transparency"]) when converting to RGBA.
    rgba = np.array(im.convert("RGBA"), dtype=np.uint8)
    return np.ascontiguousarray(rgba)


def _is_real_cutout(alpha: np.ndarray) -> bool:
    transparent = float(np.mean(alpha < 128))
    return transparent >= _CUTOUT_MIN_TRANSPARENT and (1.0 - transparent) >= _CUTOUT_MIN_OPAQUE
