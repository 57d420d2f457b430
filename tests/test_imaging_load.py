"""Photo loading: formats, modes, EXIF rotation, and one typed error per kind of bad file.

Every bad file is made by hand here (no fixtures on disk), so each test states exactly what it feeds in.
"""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from strata.core.imaging import (
    ERROR_CODES,
    CorruptImageError,
    ImageNotFoundError,
    ImageTooLargeError,
    ImageTooSmallError,
    NotAnImageError,
    PhotoError,
    TruncatedImageError,
    UnsupportedFormatError,
    load_image,
)


def _encode(arr_or_im, fmt: str, **kw) -> bytes:
    im = arr_or_im if isinstance(arr_or_im, Image.Image) else Image.fromarray(arr_or_im)
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _noise(h: int = 240, w: int = 160, c: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_with_header(width: int, height: int) -> bytes:
    """A tiny, well-formed PNG header that claims ``width`` x ``height`` RGB pixels (a pixel bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


# --- good files ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_rgb_formats_load_as_opaque_rgba(fmt):
    src = _noise()
    kw = {"lossless": True} if fmt == "WEBP" else {}
    img = load_image(_encode(src, fmt, **kw))
    assert img.rgba.shape == (240, 160, 4) and img.rgba.dtype == np.uint8
    assert img.format == fmt
    assert not img.has_cutout
    assert (img.alpha == 255).all()
    if fmt != "JPEG":
        np.testing.assert_array_equal(img.rgba[..., :3], src)


def test_rgba_cutout_is_detected_and_alpha_kept():
    rgba = np.zeros((200, 150, 4), np.uint8)
    rgba[..., :3] = 90
    rgba[40:160, 50:100, 3] = 255  # a "person" in the middle, transparent around
    for fmt, kw in (("PNG", {}), ("WEBP", {"lossless": True})):
        img = load_image(_encode(rgba, fmt, **kw))
        assert img.has_cutout, fmt
        np.testing.assert_array_equal(img.alpha, rgba[..., 3])


def test_nearly_opaque_alpha_is_not_a_cutout():
    """Rounded screenshot corners are transparency but not a cut-out; alpha is then forced opaque."""
    rgba = np.full((200, 200, 4), 200, np.uint8)
    rgba[..., 3] = 255
    rgba[:6, :6, 3] = 0
    rgba[-6:, -6:, 3] = 0
    img = load_image(_encode(rgba, "PNG"))
    assert not img.has_cutout
    assert (img.alpha == 255).all()


def test_fully_transparent_is_not_a_cutout():
    rgba = np.zeros((200, 200, 4), np.uint8)
    assert not load_image(_encode(rgba, "PNG")).has_cutout


def test_sixteen_bit_grayscale_png_is_scaled_not_clipped():
    """Pillow reads it as mode I;16 and its convert('L') would clip everything above 255 to white."""
    gray16 = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (130, 1))
    data = _encode(Image.fromarray(gray16), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    img = load_image(data)
    assert img.source_mode.startswith("I")
    row = img.rgba[0, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255
    assert abs(row[128] - 128) <= 1  # mid-gray stays mid-gray
    assert np.all(np.diff(row) >= 0)
    np.testing.assert_array_equal(img.rgba[..., 0], img.rgba[..., 2])


def test_sixteen_bit_rgba_png():
    cv2 = pytest.importorskip("cv2")
    bgra16 = np.zeros((150, 150, 4), np.uint16)
    bgra16[..., 2] = 65535  # red (cv2 is BGR)
    bgra16[..., 1] = 257 * 100
    bgra16[..., 3] = 0
    bgra16[30:120, 40:110, 3] = 65535
    ok, enc = cv2.imencode(".png", bgra16)
    assert ok
    img = load_image(enc.tobytes())
    assert img.has_cutout
    assert tuple(img.rgba[75, 75]) == (255, 100, 0, 255)
    assert img.rgba[0, 0, 3] == 0


def test_grayscale_jpeg_becomes_gray_rgb():
    gray = np.tile(np.arange(0, 256, 2, dtype=np.uint8), (140, 1))
    data = _encode(Image.fromarray(gray, mode="L"), "JPEG", quality=95)
    img = load_image(data)
    assert img.source_mode == "L"
    assert img.rgba.shape == (140, 128, 4)
    np.testing.assert_array_equal(img.rgba[..., 0], img.rgba[..., 1])
    np.testing.assert_array_equal(img.rgba[..., 1], img.rgba[..., 2])
    assert abs(int(img.rgba[70, 64, 0]) - 128) <= 4


def test_palette_png_with_transparency():
    im = Image.new("P", (160, 160), 0)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * (254 * 3))
    im.paste(1, (40, 20, 120, 150))
    data = _encode(im, "PNG", transparency=0)
    img = load_image(data)
    assert img.source_mode == "P"
    assert img.has_cutout
    assert tuple(img.rgba[80, 80]) == (255, 0, 0, 255)
    assert img.rgba[5, 5, 3] == 0


def test_cmyk_jpeg_becomes_rgb():
    im = Image.new("CMYK", (140, 140), (0, 255, 255, 0))  # pure red in CMYK
    img = load_image(_encode(im, "JPEG", quality=95))
    r, g, b, _ = (int(v) for v in img.rgba[70, 70])
    assert r > 200 and g < 60 and b < 60


def _quadrant_image() -> np.ndarray:
    """Portrait 300x200 (H x W): red top-left quadrant, blue bottom-right, grey elsewhere."""
    arr = np.full((300, 200, 3), 128, np.uint8)
    arr[:150, :100] = (255, 0, 0)
    arr[150:, 100:] = (0, 0, 255)
    return arr


# EXIF orientation -> how the *stored* pixels relate to the upright picture (PIL transpose of the upright).
_STORED_FROM_UPRIGHT = {
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_90,  # stored rotated 90 deg counter-clockwise; viewer rotates it back CW
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_rotation_is_applied(orientation):
    upright = _quadrant_image()
    stored = Image.fromarray(upright).transpose(_STORED_FROM_UPRIGHT[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _encode(stored, "JPEG", quality=95, exif=exif.tobytes())
    assert Image.open(io.BytesIO(data)).size == stored.size  # the file really stores rotated pixels
    img = load_image(data)
    assert img.exif_orientation == orientation
    assert img.rgba.shape[:2] == (300, 200)
    tl = img.rgba[40, 40, :3].astype(int)
    br = img.rgba[260, 160, :3].astype(int)
    assert tl[0] > 200 and tl[2] < 60, tl  # red is back at the top-left
    assert br[2] > 200 and br[0] < 60, br  # blue at the bottom-right


def test_path_and_buffer_sources(tmp_path):
    data = _encode(_noise(), "PNG")
    p = tmp_path / "photo.png"
    p.write_bytes(data)
    ref = load_image(data).rgba
    for src in (str(p), p, bytearray(data), memoryview(data)):
        np.testing.assert_array_equal(load_image(src).rgba, ref)


# --- bad files -------------------------------------------------------------------------------------------


def _raises(code: str, source, **kw) -> PhotoError:
    with pytest.raises(PhotoError) as info:
        load_image(source, **kw)
    err = info.value
    assert err.code == code, f"expected {code}, got {err.code}: {err}"
    assert code in ERROR_CODES
    assert err.message and err.hint and str(err)
    assert err.to_dict()["code"] == code
    return err


def test_random_bytes_are_not_an_image():
    err = _raises("not_an_image", np.random.default_rng(1).bytes(5000))
    assert isinstance(err, NotAnImageError)


def test_empty_and_text_are_not_an_image():
    _raises("not_an_image", b"")
    _raises("not_an_image", b"hello, this is a text file\n" * 20)


def test_png_cut_in_half_is_truncated():
    data = _encode(_noise(), "PNG")
    assert isinstance(_raises("truncated_image", data[: len(data) // 2]), TruncatedImageError)


def test_png_cut_inside_header_is_truncated_not_garbage():
    data = _encode(_noise(), "PNG")
    _raises("truncated_image", data[:30])


def test_jpeg_and_webp_cut_in_half_are_truncated():
    jpg = _encode(_noise(), "JPEG")
    _raises("truncated_image", jpg[: len(jpg) // 2])
    webp = _encode(_noise(), "WEBP")
    _raises("truncated_image", webp[: len(webp) // 2])


def test_png_with_damaged_data_is_corrupt():
    data = bytearray(_encode(_noise(), "PNG"))
    mid = len(data) // 2
    data[mid : mid + 64] = bytes(64)  # IEND still present: damaged, not cut
    assert isinstance(_raises("corrupt_image", bytes(data)), CorruptImageError)


def test_pixel_bomb_is_refused_before_decoding():
    """A 100-byte PNG claiming 60000 x 60000 pixels: refused from the header, in milliseconds."""
    data = _png_with_header(60000, 60000)
    assert len(data) < 200
    t0 = time.perf_counter()
    err = _raises("image_too_large", data)
    assert time.perf_counter() - t0 < 0.5
    assert isinstance(err, ImageTooLargeError)


def test_configurable_pixel_limit_uses_header_size():
    data = _encode(_noise(400, 300), "PNG")
    err = _raises("image_too_large", data, max_pixels=100_000)
    assert err.details["width"] == 300 and err.details["height"] == 400
    assert load_image(data, max_pixels=120_000).width == 300


def test_pillow_decompression_bomb_error_is_mapped():
    """With our limit raised past Pillow's own, Pillow's DecompressionBombError must still map cleanly."""
    _raises("image_too_large", _png_with_header(200_000, 200_000), max_pixels=10**12)


def test_byte_limit(tmp_path):
    data = _encode(_noise(), "PNG")
    _raises("image_too_large", data, max_bytes=1000)
    p = tmp_path / "big.png"
    p.write_bytes(data)
    _raises("image_too_large", p, max_bytes=1000)


def test_too_small():
    err = _raises("image_too_small", _encode(_noise(60, 300), "PNG"))
    assert isinstance(err, ImageTooSmallError)
    assert load_image(_encode(_noise(60, 300), "PNG"), min_side=32).height == 60


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_other_pillow_formats_are_unsupported(fmt):
    err = _raises("unsupported_format", _encode(_noise(), fmt))
    assert isinstance(err, UnsupportedFormatError)
    assert "PNG" in err.message


def test_heic_signature_is_unsupported_not_garbage():
    fake_heic = struct.pack(">I", 24) + b"ftypheic" + b"\x00" * 4000
    err = _raises("unsupported_format", fake_heic)
    assert err.details["format"] == "HEIF"


def test_missing_file(tmp_path):
    err = _raises("file_not_found", tmp_path / "nope.jpg")
    assert isinstance(err, ImageNotFoundError)
    _raises("file_not_found", tmp_path)  # a folder
