"""Property-based tests of the decoder: whatever bytes a file holds, decoding gives a `BadImageError` or a
uint8 tensor of the requested shape — never another exception; valid images of every pixel mode and format
come out with the right shape and the right pixel values.

Files are written to a module-scoped folder (hypothesis re-runs a test body many times; a function-scoped
tmp_path would be shared between examples anyway). The pixel limit is lowered while fuzzing so that a
mutated header claiming tens of megapixels is refused in microseconds instead of allocating hundreds of MB.
"""

from __future__ import annotations

import io
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from workbench.engine.data import decode as decode_module
from workbench.engine.data import decode_image, image_header, open_image
from workbench.engine.errors import BadImageError

# decode.py silences Pillow's damaged-file warnings at import; pytest restores the filters it imported under.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL")

FUZZ_PIXEL_LIMIT = 1_000_000
FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,  # no .hypothesis/ folder in the repository; a failure prints its example
    suppress_health_check=[HealthCheck.too_slow],
)

# (format, mode, save options): every pairing Pillow writes that users meet in the wild.
VALID_KINDS = [
    ("PNG", "1", {}),
    ("PNG", "L", {}),
    ("PNG", "LA", {}),
    ("PNG", "P", {}),
    ("PNG", "RGB", {}),
    ("PNG", "RGBA", {}),
    ("PNG", "I;16", {}),
    ("JPEG", "L", {"quality": 90}),
    ("JPEG", "RGB", {"quality": 90}),
    ("JPEG", "CMYK", {"quality": 90}),
    ("GIF", "P", {}),
    ("GIF", "L", {}),
    ("BMP", "1", {}),
    ("BMP", "L", {}),
    ("BMP", "P", {}),
    ("BMP", "RGB", {}),
    ("BMP", "RGBA", {}),
    ("TIFF", "1", {}),
    ("TIFF", "L", {}),
    ("TIFF", "LA", {}),
    ("TIFF", "RGB", {}),
    ("TIFF", "RGBA", {}),
    ("TIFF", "CMYK", {}),
    ("TIFF", "YCbCr", {}),
    ("TIFF", "LAB", {}),
    ("TIFF", "I;16", {}),
    ("TIFF", "I;16B", {}),
    ("TIFF", "I", {}),
    ("TIFF", "F", {}),
    ("WEBP", "RGB", {"lossless": True}),
    ("WEBP", "RGBA", {"lossless": True}),
]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("decode-properties")


def _encode(image: Image.Image, fmt: str, options: dict) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _random_image(mode: str, width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    if mode in ("I;16", "I;16B"):
        return Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16)).convert(mode)
    if mode == "I":
        return Image.fromarray(rng.integers(0, 65536, (height, width)).astype(np.int32), "I")
    if mode == "F":
        return Image.fromarray(rng.random((height, width), dtype=np.float32), "F")
    rgba = Image.fromarray(rng.integers(0, 256, (height, width, 4), dtype=np.uint8), "RGBA")
    return rgba.convert(mode) if mode not in ("LAB", "YCbCr") else rgba.convert("RGB").convert(mode)


def _seed_files() -> list[bytes]:
    """One valid file per kind: the material the mutation fuzzer damages."""
    return [
        _encode(_random_image(mode, 13, 9, i), fmt, opts) for i, (fmt, mode, opts) in enumerate(VALID_KINDS)
    ]


SEED_FILES = _seed_files()


def _decode_or_refuse(path, size: int, channels: int) -> None:
    """The property: a BadImageError naming the file, or a tensor of the requested shape and dtype."""
    with mock.patch.object(decode_module, "MAX_PIXELS", FUZZ_PIXEL_LIMIT):
        try:
            tensor = decode_image(path, size, channels)
        except BadImageError as exc:
            assert exc.path == str(path) and exc.reason
            return
    assert tensor.dtype == torch.uint8
    assert tuple(tensor.shape) == (channels, size, size)


@FUZZ
@given(data=st.binary(max_size=4096), size=st.integers(1, 48), channels=st.sampled_from([1, 3]))
@example(data=b"", size=8, channels=3)
@example(data=b"\x89PNG\r\n\x1a\n", size=8, channels=1)
@example(data=b"\xff\xd8\xff\xe0" + b"\0" * 64, size=8, channels=3)
def test_random_bytes_decode_or_raise_bad_image_error(scratch, data, size, channels):
    path = scratch / "random.jpg"
    path.write_bytes(data)
    _decode_or_refuse(path, size, channels)


MAGIC_PREFIXES = [
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF89a",
    b"BM",
    b"II*\0",
    b"MM\0*",
    b"RIFF\0\0\0\0WEBPVP8 ",
    b"P6\n",
    b"8BPS",
    b"\0\0\1\0",  # ICO
]


@FUZZ
@given(
    prefix=st.sampled_from(MAGIC_PREFIXES),
    body=st.binary(max_size=1024),
    size=st.integers(1, 48),
    channels=st.sampled_from([1, 3]),
)
def test_random_bytes_behind_a_real_signature_decode_or_raise(scratch, prefix, body, size, channels):
    """Past the signature check, into each format plugin's header parser."""
    path = scratch / "signed.png"
    path.write_bytes(prefix + body)
    _decode_or_refuse(path, size, channels)


@FUZZ
@given(
    source=st.sampled_from(range(len(SEED_FILES))),
    cut=st.floats(0, 1),
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=8),
    size=st.integers(1, 48),
    channels=st.sampled_from([1, 3]),
)
def test_damaged_real_images_decode_or_raise(scratch, source, cut, flips, size, channels):
    """Valid files of every kind, truncated and with bytes overwritten: the damage real files carry."""
    data = bytearray(SEED_FILES[source])
    data = data[: max(1, round(len(data) * cut))] if cut < 1 else data
    for where, value in flips:
        data[int(where * len(data))] = value
    path = scratch / "damaged.img"
    path.write_bytes(bytes(data))
    _decode_or_refuse(path, size, channels)


@settings(max_examples=200, deadline=None, database=None)
@given(
    kind=st.sampled_from(VALID_KINDS),
    width=st.integers(1, 64),
    height=st.integers(1, 64),
    seed=st.integers(0, 2**32 - 1),
    size=st.integers(1, 40),
    channels=st.sampled_from([1, 3]),
)
def test_valid_images_of_any_mode_and_size_decode_to_the_requested_shape(
    scratch, kind, width, height, seed, size, channels
):
    fmt, mode, options = kind
    path = scratch / f"valid.{fmt.lower()}"
    path.write_bytes(_encode(_random_image(mode, width, height, seed), fmt, options))

    tensor = decode_image(path, size, channels)

    assert tensor.dtype == torch.uint8 and tuple(tensor.shape) == (channels, size, size)
    assert image_header(path)[:2] == (width, height)
    shown = open_image(path)
    assert shown.mode in ("L", "RGB") and shown.size == (width, height)


# Solid images of lossless formats: the decoded value is known exactly, whatever the size.
@settings(max_examples=150, deadline=None, database=None)
@given(
    fmt=st.sampled_from(["PNG", "BMP", "TIFF"]),
    grey=st.integers(0, 255),
    width=st.integers(1, 40),
    height=st.integers(1, 40),
    size=st.integers(1, 32),
)
def test_solid_grey_keeps_its_value_in_one_and_three_channels(scratch, fmt, grey, width, height, size):
    path = scratch / f"grey.{fmt.lower()}"
    Image.new("L", (width, height), grey).save(path, fmt)
    assert (decode_image(path, size, 1) == grey).all()
    assert (decode_image(path, size, 3) == grey).all()


@settings(max_examples=150, deadline=None, database=None)
@given(
    fmt=st.sampled_from(["PNG", "TIFF"]),
    value=st.integers(0, 65535),
    width=st.integers(1, 40),
    height=st.integers(1, 40),
    size=st.integers(1, 32),
)
def test_solid_sixteen_bit_grey_is_scaled_to_eight_bits(scratch, fmt, value, width, height, size):
    path = scratch / f"deep.{fmt.lower()}"
    Image.fromarray(np.full((height, width), value, np.uint16)).save(path, fmt)
    assert (decode_image(path, size, 1) == round(value * 255 / 65535)).all()


@settings(max_examples=150, deadline=None, database=None)
@given(
    fmt=st.sampled_from(["PNG", "TIFF", "WEBP"]),
    colour=st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)),
    alpha=st.sampled_from([0, 255]),
    size=st.integers(1, 32),
)
def test_solid_rgba_is_its_colour_when_opaque_and_white_when_transparent(scratch, fmt, colour, alpha, size):
    path = scratch / f"rgba.{fmt.lower()}"
    options = {"lossless": True, "exact": True} if fmt == "WEBP" else {}
    Image.new("RGBA", (10, 7), (*colour, alpha)).save(path, fmt, **options)
    expected = torch.tensor(colour if alpha else (255, 255, 255), dtype=torch.uint8).view(3, 1, 1)
    assert torch.equal(decode_image(path, size, 3), expected.expand(3, size, size))
