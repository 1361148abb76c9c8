"""Identical image files in a dataset: test images that are also training images (leakage), one picture
filed under two classes, and copies within a class.

Comparison is by file content (BLAKE2 of the bytes). It is cheap: a file is read only when another file of
the dataset has exactly the same byte size, and a scan already knows every size. Re-encoded or resized
copies are not found; byte-identical copies — what copying folders around produces — are.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence

_EXAMPLES = 2  # pairs quoted per warning: enough to find the pattern, short enough to read


def find_identical_files(
    paths: Iterable[str],
    sizes: Mapping[str, int] | None = None,
    *,
    should_stop: Callable[[], bool] | None = None,
) -> list[list[str]]:
    """Groups (each sorted, two or more paths) of files with identical bytes, sorted by first path.

    `sizes` (path → bytes) saves a `stat` per file when the caller has them. Unreadable files are left out:
    whoever reads them next reports why. `should_stop()` is checked between files; when it returns True
    the groups found so far are returned.
    """
    by_size: dict[int, list[str]] = defaultdict(list)
    for path in paths:
        size = sizes.get(path) if sizes is not None else None
        if size is None:
            try:
                size = os.stat(path).st_size
            except OSError:
                continue
        by_size[size].append(path)

    by_digest: dict[tuple[int, bytes], list[str]] = defaultdict(list)
    for size, same_size in by_size.items():
        if len(same_size) < 2 or size == 0:
            continue
        for path in same_size:
            if should_stop is not None and should_stop():
                return _groups(by_digest)
            digest = _digest(path)
            if digest is not None:
                by_digest[size, digest].append(path)
    return _groups(by_digest)


def describe_duplicates(
    groups: Sequence[Sequence[str]],
    split_of: Mapping[str, str],
    class_of: Mapping[str, str],
    root: str | None = None,
) -> list[str]:
    """Warnings for the user: leakage between splits, conflicting labels, then copies within a class.

    `split_of` and `class_of` map each path to its split and class name; paths are shown relative to `root`.
    """

    def show(path: str) -> str:
        return os.path.relpath(path, root) if root else path

    leaks: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    conflicts: list[tuple[str, str]] = []
    copies: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for group in groups:
        # Compare every copy with the one in the earliest split: a test copy of a training image is the
        # leak, whichever path sorts first.
        first, *others = sorted(group, key=lambda path: (_SPLIT_ORDER.index(split_of[path]), path))
        for other in others:
            pair = (first, other)
            if split_of[first] != split_of[other]:
                leaks[split_of[first], split_of[other]].append(pair)
            elif class_of[first] != class_of[other]:
                conflicts.append(pair)
            else:
                copies[class_of[first]].append(pair)

    def examples(pairs: list[tuple[str, str]]) -> str:
        return "; ".join(f"{show(a)} = {show(b)}" for a, b in pairs[:_EXAMPLES])

    warnings = [
        f"{len(pairs)} {later} image(s) are identical to {earlier} images (e.g. {examples(pairs)}): "
        f"{later} accuracy counts them although the model has seen them; remove the copies"
        for (earlier, later), pairs in sorted(leaks.items())
    ]
    if conflicts:
        warnings.append(
            f"{len(conflicts)} image(s) appear under two different classes (e.g. {examples(conflicts)}): "
            "the model is taught both labels for the same picture"
        )
    warnings.extend(
        f"{len(pairs)} duplicate image(s) within class '{name}' (e.g. {examples(pairs)}): "
        "each copy weighs in again"
        for name, pairs in sorted(copies.items())
    )
    return warnings


_SPLIT_ORDER = ("train", "val", "test")


def _digest(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "blake2b").digest()
    except OSError:
        return None


def _groups(by_digest: Mapping[tuple[int, bytes], list[str]]) -> list[list[str]]:
    return sorted((sorted(paths) for paths in by_digest.values() if len(paths) > 1), key=lambda g: g[0])
