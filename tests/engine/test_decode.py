"""Decoding real image files of every format and pixel mode users carry, and refusing bad ones clearly."""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.engine.data import decode_image, image_header, open_image
from workbench.engine.data.decode import TRANSPARENT_BACKGROUND
from workbench.engine.errors import BadImageError

WHITE = TRANSPARENT_BACKGROUND
# decode.py silences Pillow's warnings at import; pytest restores the filters it imported under.
pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")


def pixels(path, size, channels) -> np.ndarray:
    """Decoded as (H, W, C) int array, for readable assertions."""
    tensor = decode_image(path, size, channels)
    assert tensor.dtype == torch.uint8 and tuple(tensor.shape) == (channels, size, size)
    return tensor.permute(1, 2, 0).numpy().astype(int)


def test_grey_png_decodes_to_one_or_three_equal_channels(tmp_path):
    path = tmp_path / "grey.png"
    Image.new("L", (8, 8), 77).save(path)
    assert open_image(path).mode == "L"
    assert (pixels(path, 8, 1) == 77).all()
    assert (pixels(path, 8, 3) == 77).all()


def test_rgb_colours_are_kept_and_converted_to_grey_by_luma(tmp_path):
    path = tmp_path / "red.png"
    Image.new("RGB", (8, 8), (255, 0, 0)).save(path)
    assert (pixels(path, 8, 3) == [255, 0, 0]).all()
    assert (pixels(path, 8, 1) == 76).all()  # ITU-R 601 luma of pure red: 0.299 * 255


def test_la_transparency_is_composited_on_white(tmp_path):
    path = tmp_path / "la.png"
    image = Image.new("LA", (8, 8), (0, 0))  # black, fully transparent
    image.paste((40, 255), (0, 0, 4, 8))  # left half: grey 40, opaque
    image.save(path)
    out = pixels(path, 8, 1)
    assert open_image(path).mode == "L"
    assert (out[:, :4] == 40).all() and (out[:, 4:] == WHITE).all()


def test_rgba_transparency_is_composited_on_white_and_half_alpha_blends(tmp_path):
    path = tmp_path / "rgba.png"
    image = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    image.paste((0, 0, 255, 255), (0, 0, 4, 4))  # opaque blue
    image.paste((0, 0, 0, 128), (4, 4, 8, 8))  # half-transparent black
    image.save(path)
    out = pixels(path, 8, 3)
    assert (out[:4, :4] == [0, 0, 255]).all()
    assert (out[:4, 4:] == WHITE).all()  # fully transparent
    assert (np.abs(out[4:, 4:] - 127) <= 1).all()  # black at 50% over white


def test_palette_image_with_a_transparent_colour(tmp_path):
    path = tmp_path / "p.png"
    image = Image.new("P", (8, 8), 0)
    image.putpalette([0, 0, 0, 10, 200, 30] + [0, 0, 0] * 254)
    image.paste(1, (0, 0, 8, 4))  # top half: palette entry 1, opaque
    image.info["transparency"] = 0  # entry 0 (bottom half) is transparent
    image.save(path, transparency=0)
    out = pixels(path, 8, 3)
    assert (out[:4] == [10, 200, 30]).all()
    assert (out[4:] == WHITE).all()


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, quality=95)  # cyan-free, i.e. red
    assert Image.open(path).mode == "CMYK"
    out = pixels(path, 16, 3)
    assert (np.abs(out - [255, 0, 0]) <= 8).all()


def test_sixteen_bit_grey_png_is_scaled_to_eight_bits(tmp_path):
    path = tmp_path / "deep.png"
    values = np.array([[0, 128 * 257, 65535, 65535]] * 4, dtype=np.uint16)
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")
    assert open_image(path).mode == "L"
    out = pixels(path, 4, 1)[..., 0]
    assert out[0].tolist() == [0, 128, 255, 255]


def test_gif_decodes_its_first_frame(tmp_path):
    path = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (8, 8), (255, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 255))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(path).n_frames == 2
    out = pixels(path, 8, 3)
    assert (np.abs(out - [255, 0, 0]) <= 4).all()


@pytest.mark.parametrize("name, options", [("x.tif", {}), ("x.webp", {"lossless": True}), ("x.bmp", {})])
def test_tiff_webp_and_bmp(tmp_path, name, options):
    path = tmp_path / name
    Image.new("RGB", (8, 8), (12, 34, 56)).save(path, **options)
    assert (pixels(path, 8, 3) == [12, 34, 56]).all()


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "phone.jpg"
    stored = Image.new("L", (32, 16), 0)
    stored.paste(255, (16, 0, 32, 16))  # as stored: left half black, right half white
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    stored.save(path, exif=exif, quality=95)

    shown = open_image(path)

    assert shown.size == (16, 32)  # portrait once rotated
    top, bottom = np.asarray(shown)[:12].mean(), np.asarray(shown)[20:].mean()
    assert top < 20 and bottom > 235  # the stored left (black) half is now on top
    out = pixels(path, 16, 1)[..., 0]  # shorter side 16: the centre 16 rows of the 16×32 portrait
    assert out[:4].mean() < 30 and out[-4:].mean() > 225


def test_shorter_side_is_resized_then_centre_cropped(tmp_path):
    path = tmp_path / "wide.png"
    image = Image.new("RGB", (60, 20), (255, 0, 0))
    image.paste((0, 255, 0), (20, 0, 40, 20))
    image.paste((0, 0, 255), (40, 0, 60, 20))
    image.save(path)
    out = pixels(path, 10, 3)  # 60×20 → 30×10, centre 10 columns = the green third
    assert (out[:, 2:8] == [0, 255, 0]).all()
    assert out[..., 1].mean() > 200


def test_small_images_are_upscaled(tmp_path):
    path = tmp_path / "tiny.png"
    Image.new("L", (4, 4), 200).save(path)
    assert (pixels(path, 32, 1) == 200).all()


def test_header_is_read_without_decoding(tmp_path):
    path = tmp_path / "h.png"
    Image.new("LA", (30, 20)).save(path)
    assert image_header(path) == (30, 20, "LA")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height but carries almost no data (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def noisy(path, fmt: str) -> bytes:
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((64, 64, 3)) * 255).astype(np.uint8)).save(path, format=fmt)
    return path.read_bytes()


@pytest.mark.parametrize(
    "name, make, reason",
    [
        ("zero.png", lambda p: b"", "zero bytes"),
        ("cut.jpg", lambda p: noisy(p, "JPEG")[: len(noisy(p, "JPEG")) // 2], "truncated"),
        ("cut.png", lambda p: noisy(p, "PNG")[: len(noisy(p, "PNG")) // 2], "truncated"),
        ("notes.png", lambda p: b"this is a text file, not an image", "not an image"),
        ("bomb.png", lambda p: png_header_only(30000, 30000), "image too large: 30000×30000 pixels"),
        ("big.png", lambda p: png_header_only(12000, 9000), "image too large: 12000×9000 pixels"),
    ],
)
def test_bad_files_raise_bad_image_error_with_a_reason(tmp_path, name, make, reason):
    path = tmp_path / name
    path.write_bytes(make(path))

    with pytest.raises(BadImageError) as caught:
        decode_image(path, 8, 3)

    assert reason in caught.value.reason
    assert caught.value.path == str(path) and str(path) in str(caught.value)


def test_missing_file_and_folder_are_bad_images(tmp_path):
    with pytest.raises(BadImageError, match="file not found"):
        open_image(tmp_path / "nope.png")
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(BadImageError, match="folder"):
        open_image(tmp_path / "dir.png")


@pytest.mark.timeout(30)  # opening a pipe would block until a writer comes: it must not be opened at all
def test_pipes_are_refused_without_being_opened(tmp_path):
    pipe = tmp_path / "pipe.png"
    os.mkfifo(pipe)
    with pytest.raises(BadImageError, match="not a regular file"):
        decode_image(pipe, 8, 3)
    with pytest.raises(BadImageError, match="not a regular file"):
        image_header(pipe)


def test_channels_must_be_one_or_three(tmp_path):
    path = tmp_path / "x.png"
    Image.new("L", (4, 4)).save(path)
    with pytest.raises(ValueError, match="channels"):
        decode_image(path, 4, 2)


def test_thumbnails_keep_the_aspect_ratio_and_orientation(tmp_path):
    path = tmp_path / "photo.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown portrait
    Image.new("RGB", (400, 200), (30, 160, 90)).save(path, exif=exif, quality=95)

    thumb = open_image(path, max_side=50)

    assert thumb.mode == "RGB" and thumb.size == (25, 50)
    assert (np.abs(np.asarray(thumb).astype(int) - [30, 160, 90]) <= 6).all()
