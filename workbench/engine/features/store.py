"""The embedding cache: feature vectors of image files, on disk, so a second run embeds nothing.

Vectors are filed under the embedder's key (architecture, weights digest, size, channels) and each image's
file identity (absolute path, byte size, modification time): an edited or replaced file is embedded again,
another weights file never shares vectors. One safetensors file per key holds every image embedded with
it (and, where flips make sense, its mirror's vector), with a digest of the tensors in its header: a file
that is damaged, truncated or written for other weights is set aside and rebuilt, never trusted.

Vectors are kept in half precision (float32 only where a value would not fit): a tapped EfficientNet-Lite0
gives 15,136 features per image, 121 KB with its mirror's in float32, and the head fitted on them is
standardized and penalized, so 3 significant digits change nothing (the head was chosen on float16 features
and scored the same in the engine).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from workbench.engine import paths
from workbench.engine.atomic import atomic_path
from workbench.engine.features.embedder import Embedder

STORE_FORMAT = "cnn-workbench-embeddings/1"


def embeddings_folder() -> Path:
    """Where the embedding cache lives: beside the decoded-image cache, safe to delete like it."""
    return paths.cache_dir() / "embeddings"


def file_identity(path: str) -> str:
    """What makes a file the same file: its absolute path, byte size and modification time."""
    st = os.stat(path)
    return f"{os.path.abspath(path)}\0{st.st_size}\0{st.st_mtime_ns}"


def _digest(tensors: dict[str, torch.Tensor], keys: list[str]) -> str:
    h = hashlib.sha256("\n".join(keys).encode("utf-8", "surrogateescape"))
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class EmbeddingStore:
    """Embeddings of one embedder (`key`) in `folder`; `lookup` returns vectors, computing only what's new."""

    def __init__(self, folder: Path, key: str):
        self.path = Path(folder) / f"{key}.safetensors"
        self.key = key
        self.rebuilt_reason: str | None = None  # why an existing file was not trusted, for the user
        self._rows: dict[str, int] = {}
        self._tensors: dict[str, torch.Tensor] = {}
        self._load()

    def _load(self) -> None:
        if not self.path.is_file():
            return
        from safetensors import safe_open

        try:
            with safe_open(str(self.path), framework="pt") as f:
                meta = f.metadata() or {}
                tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 (not a dict)
            keys = json.loads(meta.get("keys", "[]"))
            ok = (
                meta.get("format") == STORE_FORMAT
                and meta.get("embedder") == self.key
                and meta.get("digest") == _digest(tensors, keys)
                and all(len(t) == len(keys) for t in tensors.values())
            )
        except Exception as exc:  # safetensors raises its own kinds on garbage
            ok, why = False, f"unreadable ({str(exc)[:120]})"
        else:
            why = "its contents do not match its digest or its weights"
        if not ok:
            self.rebuilt_reason = f"embedding cache {self.path.name} was {why}: rebuilt"
            with contextlib.suppress(OSError):
                os.replace(self.path, self.path.with_suffix(".damaged"))
            return
        self._tensors = tensors
        self._rows = {k: i for i, k in enumerate(keys)}

    def lookup(
        self,
        paths: Sequence[str],
        images: torch.Tensor,
        embedder: Embedder,
        normalize: Callable[[torch.Tensor], torch.Tensor],
        *,
        mirrored: bool,
        progress: Callable[[int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, int]:
        """(features, mirrored features or None, how many images had to be embedded) for `images`,
        whose files are `paths` (same order)."""
        keys = [file_identity(p) for p in paths]
        wanted = ["features", "mirrored"] if mirrored else ["features"]
        if any(name not in self._tensors for name in wanted):  # a kind this file never held: start afresh
            self._rows, self._tensors = {}, {}
        names = sorted(set(wanted) | set(self._tensors))  # new rows get every kind the file holds
        missing = [i for i, k in enumerate(keys) if k not in self._rows]
        if missing:
            fresh = {
                name: embedder.embed(
                    images[missing],
                    normalize,
                    mirrored=name == "mirrored",
                    progress=progress,
                    should_stop=should_stop,
                )  # fmt: skip
                for name in names
            }
            # New files are appended after the old rows (row order is the dict's insertion order).
            self._write(
                [*self._rows, *(keys[i] for i in missing)],
                {name: torch.cat([self._tensors[name], fresh[name]]) if self._rows else fresh[name]
                 for name in names},
            )  # fmt: skip
        return *self._vectors(keys, mirrored), len(missing)

    def cached(
        self, paths: Sequence[str], *, mirrored: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        """(features, mirrored features or None) of the files `paths` when every one is in the cache (with its
        mirror's vector where asked), else None; computes nothing."""
        if "features" not in self._tensors or (mirrored and "mirrored" not in self._tensors):
            return None
        try:
            return self._vectors([file_identity(p) for p in paths], mirrored)
        except (KeyError, OSError):  # not embedded yet, or changed or gone since
            return None

    def _vectors(self, keys: list[str], mirrored: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """float32 (features, mirrored features or None) of the files with these identities, all in the cache."""
        rows = torch.tensor([self._rows[k] for k in keys], dtype=torch.long)
        flipped = self._tensors["mirrored"][rows].float() if mirrored else None
        return self._tensors["features"][rows].float(), flipped

    def _write(self, keys: list[str], tensors: dict[str, torch.Tensor]) -> None:
        from safetensors.torch import save_file

        tensors = {name: _compact(t).contiguous() for name, t in tensors.items()}
        self._tensors, self._rows = tensors, {k: i for i, k in enumerate(keys)}
        meta = {
            "format": STORE_FORMAT,
            "embedder": self.key,
            "keys": json.dumps(keys),
            "digest": _digest(tensors, keys),
        }
        # A cache that cannot be written only costs time next run.
        with contextlib.suppress(OSError), atomic_path(self.path) as tmp:
            save_file(tensors, str(tmp), metadata=meta)


def _compact(vectors: torch.Tensor) -> torch.Tensor:
    """`vectors` in float16 unless a finite value would overflow there, else in float32."""
    half = vectors.half()
    overflowed = torch.isfinite(vectors) & ~torch.isfinite(half)
    return vectors.float() if overflowed.any() else half
