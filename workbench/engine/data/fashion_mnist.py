"""Fashion-MNIST as a folder of PNG class folders — the dataset the course (and our tests) start from.

Reads the four IDX files (gzipped or raw) from `--source`, else from Debian's `dataset-fashion-mnist`
package, else from a torchvision download (cached); writes ``DEST/{train,test}/<class>/<index>.png``.
File names are the image's position in the IDX file, so re-running writes the same files (unchanged ones
are left alone) and a subset export (the first N per class) is a prefix of a larger one.

Fashion-MNIST: Zalando Research (Xiao, Rasul & Vollgraf, 2017), MIT licence,
https://github.com/zalandoresearch/fashion-mnist
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from workbench.engine import paths
from workbench.engine.errors import ConfigError, DatasetError

# Label order of the dataset; "T-shirt/top" has a slash, which no folder name may contain.
FASHION_MNIST_CLASSES = [
    "T-shirt_top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
DEBIAN_SOURCE = "/usr/share/datasets/fashion-mnist"
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
WHERE_TO_GET_IT = (
    "install Debian's package (sudo apt-get install dataset-fashion-mnist), or download the four IDX files "
    "from https://github.com/zalandoresearch/fashion-mnist and pass their folder with --source DIR"
)

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An IDX file (gzipped or raw) as an array of its declared type and shape."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
    except OSError as exc:  # also gzip.BadGzipFile and EOFError's OSError cousins
        raise DatasetError(f"{path}: cannot read ({exc})") from None
    except EOFError:
        raise DatasetError(f"{path}: the compressed file is truncated") from None
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in _IDX_TYPES:
        raise DatasetError(f"{path}: not an IDX file (bad magic number)")
    dims = data[3]
    header = 4 + 4 * dims
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=dims, offset=4)) if dims else ()
    dtype = np.dtype(_IDX_TYPES[data[2]])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise DatasetError(f"{path}: truncated or padded IDX file ({len(data)} bytes, expected {expected})")
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def load_fashion_mnist(source: str | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train": (images uint8 (60000, 28, 28), labels uint8 (60000,)), "test": (… 10000 …)}."""
    folder = _find_source(source)
    splits = {}
    for split, (images_name, labels_name) in IDX_FILES.items():
        images = read_idx(_idx_path(folder, images_name))
        labels = read_idx(_idx_path(folder, labels_name))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DatasetError(
                f"{folder}: {split} images {images.shape} and labels {labels.shape} do not match"
            )
        if labels.size and int(labels.max()) >= len(FASHION_MNIST_CLASSES):
            raise DatasetError(f"{folder}: {split} labels go up to {int(labels.max())}; expected 0-9")
        splits[split] = (images.astype(np.uint8, copy=False), labels.astype(np.uint8, copy=False))
    return splits


def export_fashion_mnist(
    dest: str | os.PathLike,
    source: str | None = None,
    per_class: int | Mapping[str, int] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Write the PNG class folders; returns the images per split now in place.

    `per_class`: the first N images of each class in each split, or {"train": N, "test": M}; None = all.
    Files already there with the same content are not rewritten; new ones appear atomically.
    """
    limits = _limits(per_class)
    data = load_fashion_mnist(source)
    chosen = {split: _first_per_class(labels, limits[split]) for split, (_, labels) in data.items()}
    total = sum(len(indices) for indices in chosen.values())
    dest = Path(dest)
    done = 0
    try:
        for split, indices in chosen.items():
            images, labels = data[split]
            for name in FASHION_MNIST_CLASSES:
                (dest / split / name).mkdir(parents=True, exist_ok=True)
            for i in indices:
                target = dest / split / FASHION_MNIST_CLASSES[labels[i]] / f"{i:05d}.png"
                _write_if_changed(target, _png_bytes(images[i]))
                done += 1
                if progress is not None and (done % 500 == 0 or done == total):
                    progress(done, total)
    except OSError as exc:
        raise DatasetError(
            f"{dest}: cannot write the images ({exc.strerror or exc}: {exc.filename})"
        ) from None
    return {split: len(indices) for split, indices in chosen.items()}


# ---------------------------------------------------------------------------------------------- internals


def _find_source(source: str | None) -> Path:
    if source is not None:
        folder = Path(source)
        missing = [name for pair in IDX_FILES.values() for name in pair if _idx_path(folder, name) is None]
        if missing:
            raise DatasetError(
                f"{folder}: Fashion-MNIST files missing ({', '.join(n + '[.gz]' for n in missing)}); "
                + WHERE_TO_GET_IT
            )
        return folder
    if _has_all(Path(DEBIAN_SOURCE)):
        return Path(DEBIAN_SOURCE)
    return _download()


def _download() -> Path:
    """torchvision's copy, downloaded once into the cache folder; a clear error when offline."""
    root = paths.cache_dir() / "fashion-mnist"
    raw = root / "FashionMNIST" / "raw"
    if _has_all(raw):
        return raw
    try:
        from torchvision.datasets import FashionMNIST

        FashionMNIST(str(root), train=True, download=True)
        FashionMNIST(str(root), train=False, download=True)
    except Exception as exc:  # urllib, http and checksum errors all mean "could not download"
        raise DatasetError(
            f"Fashion-MNIST not found: no --source given, {DEBIAN_SOURCE} does not exist, and downloading "
            f"failed ({type(exc).__name__}: {exc}). To get it, {WHERE_TO_GET_IT}"
        ) from None
    if not _has_all(raw):
        raise DatasetError(f"{raw}: the download did not produce the IDX files; {WHERE_TO_GET_IT}")
    return raw


def _has_all(folder: Path) -> bool:
    return all(_idx_path(folder, name) is not None for pair in IDX_FILES.values() for name in pair)


def _idx_path(folder: Path, name: str) -> Path | None:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    return None


def _limits(per_class: int | Mapping[str, int] | None) -> dict[str, int | None]:
    if per_class is None or isinstance(per_class, int):
        limits: dict[str, int | None] = dict.fromkeys(IDX_FILES, per_class)
    else:
        unknown = set(per_class) - set(IDX_FILES)
        if unknown:
            raise ConfigError(f"per-class limits for unknown splits: {', '.join(sorted(unknown))}")
        limits = {split: per_class.get(split) for split in IDX_FILES}
    for split, n in limits.items():
        if n is not None and n < 1:
            raise ConfigError(f"--per-class {n} ({split}): must be at least 1")
    return limits


def _first_per_class(labels: np.ndarray, limit: int | None) -> list[int]:
    """Indices of the first `limit` images of each class, in file order."""
    if limit is None:
        return list(range(len(labels)))
    keep = np.zeros(len(labels), dtype=bool)
    for label in range(len(FASHION_MNIST_CLASSES)):
        keep[np.flatnonzero(labels == label)[:limit]] = True
    return np.flatnonzero(keep).tolist()


def _png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def _write_if_changed(target: Path, data: bytes) -> None:
    """Temp file + rename, skipped when the file already holds `data`.

    Not `atomic.write_bytes_atomic`: its fsync per file would make a 70,000-file export crawl, and an
    export can simply be re-run after a crash — the rename alone keeps half-written PNGs out of sight.
    """
    with contextlib.suppress(OSError):
        if target.stat().st_size == len(data) and target.read_bytes() == data:
            return
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
