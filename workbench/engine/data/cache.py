"""Decode once: a split's images as one uint8 tensor at the training size, cached on disk between runs.

The first load of a split decodes every image (in a thread pool) straight into one preallocated
(N, C, S, S) array; later loads — in this process or a new one — copy the pixels from the disk cache
(`pack_store`: one pack per source folder) and decode only files that are new or changed. Epochs never
decode: the trainer indexes the tensor.

Threads, not processes: Pillow releases the GIL while decoding and resizing, and on this project's 2-core
test machine a thread pool matched a warmed-up process pool (28×28 PNG: ~10,000 vs ~13,000 images/s;
500×375 JPEG → 224: ~380 vs ~360 images/s) without the process pool's ~3.5 s start-up (each worker
imports torch), pickling, or the pitfalls of forking a Qt app.

When a split would not fit comfortably in RAM (`memory_budget()`), the tensor is backed by an unlinked
memory-mapped file in the cache folder instead (see `memory`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from workbench.engine import paths
from workbench.engine.data.decode import decode_array, image_header
from workbench.engine.data.index import Problem, Sample
from workbench.engine.data.memory import allocate_images, array_nbytes, memory_budget
from workbench.engine.data.pack_store import Pack, PackStore
from workbench.engine.errors import BadImageError, WorkbenchError

CACHE_VERSION = 1  # bump whenever decoding changes pixels (resize filter, mode rules): old packs are ignored
_CHUNK = 64  # images per pool task: amortizes scheduling, keeps stop/progress responsive
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"})


class DecodeCancelled(WorkbenchError):
    """The caller's `should_stop()` returned True while images were being decoded."""


@dataclass
class DecodedSplit:
    images: torch.Tensor  # uint8 (N, C, S, S); files that failed to decode are left out
    labels: torch.Tensor  # int64 (N,)
    paths: list[str]
    problems: list[Problem] = field(default_factory=list)
    on_disk: bool = False  # images are backed by a memory-mapped file, not RAM


def load_decoded(
    samples: Sequence[Sample],
    size: int,
    channels: int,
    *,
    cache_root: Path | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> DecodedSplit:
    """Decode `samples` at `size`×`size` with `channels` (1 or 3), reusing and refreshing the disk cache.

    `progress(done, total)` is called as images arrive; `should_stop()` is checked between chunks and
    raises `DecodeCancelled` (what was decoded so far is still cached). Bad files never raise: they are
    dropped and listed in `problems`.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, not {channels}")
    if size < 1:
        raise ValueError(f"size must be positive, not {size}")
    root = Path(cache_root) if cache_root is not None else paths.cache_dir() / "decoded"
    total = len(samples)
    shape = (total, channels, size, size)
    on_disk = array_nbytes(shape) > memory_budget()
    images = allocate_images(shape, root if on_disk else None)
    failed: dict[int, str] = {}
    store = PackStore(root / f"v{CACHE_VERSION}-{size}px-{channels}ch", channels, size)

    # 1. Copy every unchanged, already-decoded file out of its folder's pack.
    groups: dict[str, list[int]] = {}
    for i, sample in enumerate(samples):
        groups.setdefault(os.path.dirname(sample.path), []).append(i)
    stats: dict[int, tuple[int, int]] = {}
    todo: list[int] = []
    packs: dict[str, Pack] = {}
    for folder, indices in groups.items():
        pack = packs[folder] = store.read(folder)
        hits: list[tuple[int, int]] = []
        for i in indices:
            path = samples[i].path
            try:
                st = os.stat(path)
            except OSError as exc:
                failed[i] = (
                    "file not found"
                    if isinstance(exc, FileNotFoundError)
                    else f"cannot read: {exc.strerror or exc}"
                )
                continue
            stats[i] = (st.st_size, st.st_mtime_ns)
            entry = pack.entries.get(os.path.basename(path))
            if entry is None or (entry.size, entry.mtime_ns) != stats[i]:
                todo.append(i)
            elif entry.row < 0:
                failed[i] = entry.reason
            else:
                hits.append((i, entry.row))
        pack.copy_rows(hits, images)
    done = total - len(todo)
    if progress is not None:
        progress(done, total)

    # 2. Decode the rest in parallel, each worker writing straight into its rows of `images`.
    decoded: list[int] = []
    try:
        for chunk_ok, chunk_failed in _decode_parallel(
            samples, todo, images, size, channels, workers, should_stop
        ):
            decoded.extend(chunk_ok)
            failed.update(chunk_failed)
            done += len(chunk_ok) + len(chunk_failed)
            if progress is not None:
                progress(done, total)
    finally:
        # 3. Remember what was learnt, even when cancelled half-way, so the next load resumes there.
        changed = set(decoded) | {i for i in todo if i in failed}
        for folder, indices in groups.items():
            fresh = [i for i in indices if i in changed]
            if fresh:
                store.write(packs[folder], fresh, samples, stats, images, failed)

    # 4. Close the gaps left by bad files, in place (no second copy of the split).
    keep = [i for i in range(total) if i not in failed]
    tensor = torch.from_numpy(images)
    if len(keep) < total:
        _compact(tensor, torch.tensor(keep, dtype=torch.long))
        tensor = tensor[: len(keep)]
    problems = [Problem(samples[i].path, reason) for i, reason in sorted(failed.items())]
    return DecodedSplit(
        images=tensor,
        labels=torch.tensor([samples[i].label for i in keep], dtype=torch.int64),
        paths=[samples[i].path for i in keep],
        problems=problems,
        on_disk=on_disk,
    )


def guess_image_geometry(samples: Sequence[Sample], k: int = 32) -> tuple[int, int]:
    """(typical shorter side, channels) from the headers of up to `k` evenly spread samples.

    Channels is 1 when every header read is greyscale, else 3. With no readable header: (224, 3).
    """
    if not samples:
        return 224, 3
    picks = sorted({round(x) for x in np.linspace(0, len(samples) - 1, min(k, len(samples)))})
    sides: list[int] = []
    grey = True
    for i in picks:
        try:
            width, height, mode = image_header(samples[i].path)
        except BadImageError:
            continue
        sides.append(min(width, height))
        grey = grey and mode in _GREY_MODES
    if not sides:
        return 224, 3
    return int(np.median(sides)), 1 if grey else 3


# ---------------------------------------------------------------------------------------------- decoding


def _decode_parallel(
    samples: Sequence[Sample],
    todo: list[int],
    images: np.ndarray,
    size: int,
    channels: int,
    workers: int | None,
    should_stop: Callable[[], bool] | None,
):
    """Yield (decoded indices, {index: reason}) per finished chunk; raise DecodeCancelled on request."""
    if not todo:
        return

    def decode_chunk(indices: list[int]) -> tuple[list[int], dict[int, str]]:
        ok: list[int] = []
        bad: dict[int, str] = {}
        for i in indices:
            try:
                images[i] = decode_array(samples[i].path, size, channels)
                ok.append(i)
            except BadImageError as exc:
                bad[i] = exc.reason
        return ok, bad

    chunks = [todo[start : start + _CHUNK] for start in range(0, len(todo), _CHUNK)]
    n_workers = max(1, min(workers or min(8, os.cpu_count() or 1), len(chunks)))
    with ThreadPoolExecutor(n_workers, thread_name_prefix="workbench-decode") as pool:
        # A bounded window of tasks in flight: stopping then only waits for those.
        pending: set[Future] = set()
        queue = iter(chunks)
        try:
            while True:
                while len(pending) < 2 * n_workers and (chunk := next(queue, None)) is not None:
                    pending.add(pool.submit(decode_chunk, chunk))
                if not pending:
                    return
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield future.result()
                if should_stop is not None and should_stop():
                    for future in pending:
                        yield future.result()  # the rows are written: keep them for the cache
                    raise DecodeCancelled("image decoding cancelled")
        finally:
            for future in pending:
                future.cancel()


def _compact(images: torch.Tensor, keep: torch.Tensor, chunk: int = 1024) -> None:
    """Move rows `keep` (ascending) to the front. Each chunk is gathered before it is written, and its
    sources lie at or after its destinations, so no row is overwritten before it is read."""
    for start in range(0, len(keep), chunk):
        rows = keep[start : start + chunk]
        images[start : start + len(rows)] = images[rows]
