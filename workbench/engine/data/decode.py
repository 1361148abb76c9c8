"""Open any image a user carries and turn it into a uint8 tensor at the training size.

Pillow reads the formats (JPEG, PNG, BMP, GIF — first frame —, TIFF, WebP). Every pixel mode comes out as
"L" or "RGB":

- transparency (LA, P with a transparent colour, RGBA, PA) is composited on white
  (`TRANSPARENT_BACKGROUND`), the way image viewers and browsers show such files on a page;
- 16-bit grey (I;16*) is scaled by 255/65535, so 65535 → 255; 32-bit integer ("I") is taken as 16-bit
  when its values fit, and float ("F") as [0, 1] when they fit, else both are stretched to their range;
- CMYK, YCbCr, LAB and the rest go through Pillow's RGB conversion;
- EXIF orientation is applied, so a phone photo stands the way it was shot.

A file that cannot be used raises `BadImageError` with a short reason; the pixel count is checked from the
header, before any pixel is decoded, so a decompression bomb costs nothing.
"""

from __future__ import annotations

import os
import re
import stat
import warnings

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from workbench.engine.errors import BadImageError

MAX_PIXELS = 100_000_000  # ~10,000 × 10,000; larger files are refused before decoding
TRANSPARENT_BACKGROUND = 255  # white, in every channel

_HIGH_DEPTH_MODES = {"I", "F", "I;16", "I;16L", "I;16B", "I;16N"}

# Pillow warns about damaged metadata (EXIF, TIFF tags) and from 89 Mpixel on; the decoder reports such files
# itself, with the path, so those warnings would only be noise on the console. Set once here rather than with
# `warnings.catch_warnings`, which is not thread-safe and the cache decodes in a thread pool.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")


def open_image(path: str | os.PathLike, max_side: int | None = None) -> Image.Image:
    """The image fully loaded, EXIF-orientated, in mode "L" or "RGB". Raises `BadImageError`.

    `max_side`: shrink (keeping the aspect ratio) so neither side exceeds it — for thumbnails; large
    JPEGs are then decoded at reduced scale, which is several times faster.
    """
    if max_side is None:
        return _load(os.fspath(path))
    image = _load(os.fspath(path), draft=("RGB", max_side))
    image.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    return image


def decode_image(path: str | os.PathLike, size: int, channels: int) -> torch.Tensor:
    """uint8 tensor (channels, size, size): shorter side resized to `size` (antialiased), centre crop."""
    return torch.from_numpy(decode_array(os.fspath(path), size, channels))


def decode_array(path: str, size: int, channels: int) -> np.ndarray:
    """`decode_image` as a NumPy array (channels, size, size); what the cache loader's workers call."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, not {channels}")
    mode = "L" if channels == 1 else "RGB"
    image = _load(path, draft=(mode, size))
    if image.mode != mode:
        image = image.convert(mode)
    # Resizing the crop box only (what ImageOps.fit does) is the "resize shorter side, centre-crop" of
    # torchvision's Resize + CenterCrop, without resampling pixels that are cropped away.
    image = ImageOps.fit(image, (size, size), method=Image.Resampling.BILINEAR)
    array = np.asarray(image)  # read-only view of Pillow's buffer: both branches copy it out
    return array[None].copy() if channels == 1 else np.array(array.transpose(2, 0, 1), order="C")


def image_header(path: str | os.PathLike) -> tuple[int, int, str]:
    """(width, height, mode) read from the header only. Raises `BadImageError`."""
    with _open(os.fspath(path)) as image:
        return image.width, image.height, image.mode


# ---------------------------------------------------------------------------------------------- internals


def _open(path: str) -> Image.Image:
    """Image.open with every failure turned into a `BadImageError`; the pixel data is not read yet."""
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise BadImageError(path, "is a folder, not an image file")
        if not stat.S_ISREG(st.st_mode):  # opening a named pipe would wait for a writer forever
            raise BadImageError(path, "not a regular file (a pipe, socket or device)")
        if st.st_size == 0:
            raise BadImageError(path, "zero bytes")
    except FileNotFoundError:
        raise BadImageError(path, "file not found") from None
    except PermissionError:
        raise BadImageError(path, "permission denied") from None
    except OSError as exc:
        raise BadImageError(path, f"cannot read: {exc.strerror or exc}") from None
    try:
        image = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise BadImageError(
            path, f"image too large: {_bomb_size(path, exc)} pixels (limit {MAX_PIXELS:,})"
        ) from None
    except UnidentifiedImageError:
        kind = _signature(path)
        reason = (
            f"truncated or damaged {kind} file (the header cannot be read)"
            if kind
            else "not an image (or a format that cannot be read)"
        )
        raise BadImageError(path, reason) from None
    except IsADirectoryError:
        raise BadImageError(path, "is a folder, not an image file") from None
    except OSError as exc:
        raise BadImageError(path, f"cannot read: {exc.strerror or exc}") from None
    except Exception as exc:  # Pillow's format plugins raise assorted types on corrupt headers
        raise BadImageError(path, f"corrupt image header ({type(exc).__name__}: {exc})") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        image.close()
        raise BadImageError(path, f"image too large: {width}×{height} pixels (limit {MAX_PIXELS:,})")
    if width == 0 or height == 0:
        image.close()
        raise BadImageError(path, f"empty image ({width}×{height} pixels)")
    return image


def _load(path: str, draft: tuple[str, int] | None = None) -> Image.Image:
    image = _open(path)
    try:
        if draft is not None and image.format == "JPEG":
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when the target is that much smaller: a
            # 4000×3000 photo headed for 224 pixels never gets decoded at full size.
            mode, size = draft
            image.draft(mode, (size, size))
        try:
            image.load()
        except Exception as exc:  # truncated data, bad checksums, broken codecs: all "cannot decode"
            raise BadImageError(path, _load_failure(exc)) from None
        try:
            result = _to_l_or_rgb(_upright(image))
        except ValueError as exc:
            raise BadImageError(path, f"unsupported pixel format {image.mode} ({exc})") from None
        if result is image and getattr(image, "fp", None) is not None:
            # Multi-frame files (GIF, TIFF, WebP) keep their file open after load(); a copy lets it close.
            result = image.copy()
    except BaseException:
        image.close()
        raise
    if result is not image:
        image.close()
    return result


def _load_failure(exc: Exception) -> str:
    text = str(exc)
    if "truncated" in text.lower() or isinstance(exc, EOFError):
        return "truncated file (the image data ends early)"
    return f"corrupt image data ({type(exc).__name__}: {text})" if text else "corrupt image data"


def _upright(image: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image) or image
    except Exception:  # a damaged EXIF block should not cost the user a decodable image: keep it as stored
        return image


def _to_l_or_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode in _HIGH_DEPTH_MODES:
        return Image.fromarray(_to_uint8(np.asarray(image), mode))
    if "transparency" in image.info and mode in ("1", "L", "RGB", "P"):
        image = image.convert("RGBA" if mode in ("RGB", "P") else "LA")
    elif mode == "P":
        image = image.convert("RGB")
    elif mode in ("La", "RGBa", "PA"):
        image = image.convert("LA" if mode == "La" else "RGBA")
    if image.mode in ("LA", "RGBA"):
        return _composite(image)
    if image.mode in ("L", "RGB"):
        return image
    return image.convert("L" if image.mode == "1" else "RGB")


def _composite(image: Image.Image) -> Image.Image:
    """Flatten an image with alpha onto the background colour."""
    base_mode = "L" if image.mode == "LA" else "RGB"
    flat = Image.new(base_mode, image.size, (TRANSPARENT_BACKGROUND,) * len(base_mode))
    flat.paste(image.convert(base_mode), mask=image.getchannel("A"))
    return flat


def _to_uint8(array: np.ndarray, mode: str) -> np.ndarray:
    """Scale 16-bit, 32-bit integer or float grey pixels to 0..255."""
    if mode.startswith("I;16"):
        return ((array.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    values = array.astype(np.float64)
    low, high = float(values.min()), float(values.max())
    if mode == "I" and low >= 0 and high <= 255:
        scaled = values
    elif mode == "I" and low >= 0 and high <= 65535:
        scaled = values * (255 / 65535)
    elif mode == "F" and low >= 0 and high <= 1:
        scaled = values * 255
    else:  # an unknown range: stretch what is there
        scaled = (values - low) * (255 / (high - low)) if high > low else np.zeros_like(values)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


_SIGNATURES = {
    b"\x89PNG": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF8": "GIF",
    b"BM": "BMP",
    b"II*\0": "TIFF",
    b"MM\0*": "TIFF",
    b"RIFF": "WebP",
}


def _signature(path: str) -> str | None:
    """The format a file's first bytes announce, to tell a damaged image from something else."""
    try:
        with open(path, "rb") as f:
            prefix = f.read(8)
    except OSError:
        return None
    return next((kind for magic, kind in _SIGNATURES.items() if prefix.startswith(magic)), None)


def _bomb_size(path: str, exc: Exception) -> str:
    """W×H of a file Pillow refused as a decompression bomb (it reports only the pixel count)."""
    Image.init()
    try:
        with open(path, "rb") as f:
            prefix = f.read(16)
            for factory, accept in Image.OPEN.values():
                if accept is not None and not accept(prefix):
                    continue
                try:
                    f.seek(0)
                    width, height = factory(f, path).size
                    return f"{width}×{height}"
                except Exception:  # not this plugin's format: try the next
                    continue
    except OSError:
        pass
    found = re.search(r"\((\d+) pixels\)", str(exc))
    return f"{int(found.group(1)):,}" if found else "too many"
