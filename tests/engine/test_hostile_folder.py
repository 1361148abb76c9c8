"""A hostile dataset folder — every kind of file issue #7 lists, and a few more — scanned, decoded and trained on
with the real Trainer: good files train, bad ones are reported with their path and reason, nothing crashes.

The corpus is built once per module (`hostile_folder`). Runs go through `as_ordinary_user` so that the
unreadable file and folder (chmod 000) are unreadable whoever runs the tests — root included, as on CI.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_rel_privileges import as_ordinary_user

from workbench.engine.data import load_decoded, scan_dataset
from workbench.engine.training.config import TrainConfig
from workbench.engine.training.events import EpochEnded, FileSkipped, Message, RunFinished, RunStarted
from workbench.engine.training.trainer import Trainer

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL")


@dataclass
class Corpus:
    root: Path
    good_train: set[str] = field(default_factory=set)  # paths (str) that must be trained on
    good_test: set[str] = field(default_factory=set)
    bad: dict[str, str] = field(default_factory=dict)  # path -> what the reason must contain
    kinds: list[str] = field(default_factory=list)  # one line per kind of hostile input, for the report
    sockets: list[socket.socket] = field(default_factory=list)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A complete, valid 1-bit white PNG: 900 megapixels (~900 MB once decoded) in ~150 KB of file —
    deflate cannot squeeze harder than ~1:1000, so "a few KB" is only reachable with a lying header."""
    rows = (b"\0" + b"\xff" * ((width + 7) // 8)) * 1000
    deflate = zlib.compressobj(9)
    idat = b"".join(deflate.compress(rows) for _ in range(height // 1000)) + deflate.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    )


def noise(rng: np.random.Generator, size=(12, 12), mode="RGB", bright=False) -> Image.Image:
    base = 140 if bright else 0
    channels = len(mode)
    pixels = rng.integers(0, 110, (size[1], size[0], channels)) + base
    return Image.fromarray(pixels.astype(np.uint8).squeeze(-1) if channels == 1 else pixels.astype(np.uint8))


@pytest.fixture(scope="module")
def hostile_folder(tmp_path_factory) -> Corpus:
    root = tmp_path_factory.mktemp("hostile") / "photos"
    corpus = Corpus(root)
    rng = np.random.default_rng(7)
    train, test = root / "train", root / "test"

    def good(path: Path, image: Image.Image, split: str = "train", kind: str | None = None, **save) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, **save)
        (corpus.good_train if split == "train" else corpus.good_test).add(str(path))
        if kind:
            corpus.kinds.append(kind)
        return path

    def bad(path: Path, content: bytes | None, reason: str, kind: str) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is not None:
            path.write_bytes(content)
        corpus.bad[str(path)] = reason
        corpus.kinds.append(kind)
        return path

    for name, bright in (("cats", False), ("dogs", True)):
        for i in range(12):
            good(train / name / f"good_{i:02d}.png", noise(rng, bright=bright))
        for i in range(3):
            good(test / name / f"good_{i:02d}.png", noise(rng, bright=bright), split="test")
    cats, dogs = train / "cats", train / "dogs"

    # --- files that cannot be used: reported with their reason -----------------------------------------
    bad(cats / "zero.jpg", b"", "zero bytes", "zero-byte file")
    jpeg = good(cats / "photo.jpg", noise(rng, (64, 48)), quality=90).read_bytes()
    png = (cats / "good_00.png").read_bytes()
    bad(cats / "cut.jpg", jpeg[: len(jpeg) // 2], "truncated", "truncated JPEG")
    bad(cats / "cut.png", png[: len(png) // 2], "truncated", "truncated PNG")
    bad(cats / "notes.jpg", b"shopping list: milk, eggs\n" * 20, "not an image", "text file named .jpg")
    html = b"<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>"
    bad(dogs / "download.png", html, "not an image", "HTML page named .png")
    bad(dogs / "bomb.png", png_bomb(), "image too large: 30000×30000 pixels", "decompression bomb")
    crc = bytearray(png)
    crc[40] ^= 0xFF  # inside IHDR/IDAT: the checksum no longer matches
    bad(dogs / "checksum.png", bytes(crc), "damaged PNG", "PNG with a broken checksum")
    locked = bad(cats / "locked.png", png, "permission denied", "unreadable file (chmod 000)")
    locked.chmod(0)
    locked_folder = dogs / "locked-folder"
    good(locked_folder / "inside.png", noise(rng, bright=True))
    corpus.good_train.discard(str(locked_folder / "inside.png"))
    bad(locked_folder, None, "permission denied", "unreadable folder (chmod 000)")
    locked_folder.chmod(0)
    fifo = bad(cats / "pipe.png", None, "not a regular file (a named pipe)", "named pipe named .png")
    os.mkfifo(fifo)
    sock = bad(dogs / "socket.jpg", None, "not a regular file (a socket)", "socket named .jpg")
    corpus.sockets.append(socket.socket(socket.AF_UNIX))
    here = os.getcwd()
    os.chdir(sock.parent)  # a relative address: socket paths are limited to ~107 bytes, tmp paths are not
    try:
        corpus.sockets[-1].bind(sock.name)
    finally:
        os.chdir(here)
    bad(cats / "loop1.png", None, "link loop", "symlink loop")
    os.symlink("loop2.png", cats / "loop1.png")
    os.symlink("loop1.png", cats / "loop2.png")
    corpus.bad[str(cats / "loop2.png")] = "link loop"
    bad(dogs / "gone.png", None, "broken link", "broken symlink")
    os.symlink(root / "deleted.png", dogs / "gone.png")
    bad(cats / "again", None, "already scanned", "folder link looping back")
    os.symlink(cats, cats / "again")
    too_long = _make_path_beyond_path_max(dogs / "archive")
    bad(Path(too_long), None, "path too long", "path longer than PATH_MAX")
    bad(dogs / "png-folder.png", None, "", "folder named .png")
    corpus.bad.pop(str(dogs / "png-folder.png"))  # an empty folder: simply no images, nothing to report
    (dogs / "png-folder.png").mkdir()

    # --- unusual but valid: trained on ------------------------------------------------------------------
    good(cats / "one_pixel.png", Image.new("RGB", (1, 1), (30, 40, 50)), kind="1×1 image")
    good(cats / "sliver.png", Image.new("L", (1, 500), 20), kind="1×500 sliver")
    deep = np.clip(rng.integers(0, 65536, (12, 12)), 0, 65535).astype(np.uint16)
    good(dogs / "deep16.png", Image.fromarray(deep), kind="16-bit PNG")
    good(dogs / "print.jpg", Image.new("CMYK", (12, 12), (0, 200, 200, 0)), quality=90, kind="CMYK JPEG")
    palette = Image.new("P", (12, 12), 0)
    palette.putpalette([255, 255, 255, 200, 30, 30] + [0, 0, 0] * 254)
    palette.paste(1, (0, 0, 6, 12))
    good(cats / "logo.gif", palette, transparency=0, kind="palette GIF with transparency")
    frames = [noise(rng, bright=True) for _ in range(3)]
    good(
        dogs / "anim.gif",
        frames[0],
        save_all=True,
        append_images=frames[1:],
        duration=50,
        loop=0,
        kind="animated GIF",
    )
    rgba = Image.new("RGBA", (12, 12), (0, 0, 0, 0))
    rgba.paste((250, 200, 10, 255), (0, 0, 6, 6))
    good(dogs / "sticker.png", rgba, kind="RGBA PNG")
    exif = Image.Exif()
    exif[0x0112] = 6
    good(cats / "phone.jpg", noise(rng, (16, 12)), exif=exif, quality=90, kind="EXIF-rotated JPEG")
    good(cats / "disguised.jpg", noise(rng), format="PNG", kind="PNG named .jpg")
    good(cats / "猫の写真.png", noise(rng), kind="non-Latin name (Japanese)")
    good(dogs / "собака.jpg", noise(rng, bright=True), quality=90, kind="non-Latin name (Cyrillic)")
    good(dogs / "🐕 dog.png", noise(rng, bright=True), kind="emoji and space in the name")
    good(cats / "two\nlines.png", noise(rng), kind="newline in the name")
    latin1 = os.fsdecode(os.path.join(os.fsencode(cats), b"caf\xe9-\xff.png"))  # not valid UTF-8
    good(Path(latin1), noise(rng), kind="non-UTF-8 file name")
    deep_folder = cats.joinpath(*[f"level{i}" for i in range(120)])
    good(deep_folder / "bottom.png", noise(rng), kind="120 nested folders")
    good(cats / ".hidden.png", noise(rng))
    corpus.good_train.discard(str(cats / ".hidden.png"))  # hidden files are ignored on purpose
    good(cats / "__MACOSX" / "._good_00.png", Image.new("L", (2, 2)))
    corpus.good_train.discard(str(cats / "__MACOSX" / "._good_00.png"))
    corpus.kinds += ["hidden file", "__MACOSX resource-fork folder"]

    # --- layout and content problems: warnings -----------------------------------------------------------
    (train / "birds").write_text("I should have been a folder of birds")
    corpus.kinds.append('a "class folder" that is a file')
    shutil.copyfile(cats / "good_01.png", test / "cats" / "leaked.png")
    corpus.good_test.add(str(test / "cats" / "leaked.png"))
    corpus.kinds.append("the same image in train and test")
    shutil.copyfile(dogs / "good_02.png", dogs / "good_02 (copy).png")
    corpus.good_train.add(str(dogs / "good_02 (copy).png"))
    corpus.kinds.append("duplicate image within a class")
    yield corpus
    for s in corpus.sockets:
        s.close()
    locked_folder.chmod(0o755)  # so that pytest can clean up
    locked.chmod(0o644)


def _make_path_beyond_path_max(parent: Path) -> str:
    """A chain of folders whose full path exceeds PATH_MAX (4096), holding an image at the bottom: made
    with paths relative to an open folder, the only way to create it."""
    parent.mkdir(parents=True)
    fd = os.open(parent, os.O_RDONLY)
    path = str(parent)
    try:
        while len(path) < 4300:
            name = "n" * 200
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd, path = child, os.path.join(path, name)
        image = os.open("deep.png", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        with os.fdopen(image, "wb") as f:
            Image.new("L", (4, 4), 9).save(f, "PNG")
    finally:
        os.close(fd)
    # The walker can still list the folders above the limit: it is the one that crosses it that fails.
    crossing = str(parent)
    while len(crossing) <= 4096 - 1 - 200:
        crossing = os.path.join(crossing, "n" * 200)
    return os.path.join(crossing, "n" * 200)


def reported(problems) -> dict[str, str]:
    return {p.path: p.reason for p in problems}


def check_bad_files_reported(corpus: Corpus, reasons: dict[str, str]) -> None:
    assert set(reasons) == set(corpus.bad), (
        f"missing: {sorted(set(corpus.bad) - set(reasons))}; unexpected: {sorted(set(reasons) - set(corpus.bad))}"
    )
    for path, fragment in corpus.bad.items():
        assert fragment.lower() in reasons[path].lower(), (path, reasons[path])


def test_scan_and_decode_report_every_bad_file_and_keep_every_good_one(hostile_folder):
    corpus = hostile_folder

    def scan_and_decode():
        index = scan_dataset(corpus.root, val_fraction=0.0)
        splits = {split: load_decoded(index.split(split), 16, 3) for split in ("train", "test")}
        return index, splits

    index, splits = as_ordinary_user(scan_and_decode)

    assert index.layout == "pre-split" and index.classes == ["cats", "dogs"]
    problems = index.problems + splits["train"].problems + splits["test"].problems
    check_bad_files_reported(corpus, reported(problems))
    assert set(splits["train"].paths) == corpus.good_train
    assert set(splits["test"].paths) == corpus.good_test
    for split in splits.values():
        assert split.images.dtype.is_floating_point is False and tuple(split.images.shape[1:]) == (3, 16, 16)
        assert len(split.images) == len(split.labels) == len(split.paths)
    warnings = "\n".join(index.warnings)
    assert "1 test image(s) are identical to train images" in warnings and "test/cats/leaked.png" in warnings
    assert "duplicate image(s) within class 'dogs'" in warnings and "good_02 (copy).png" in warnings
    assert "(birds)" in warnings
    leaked = [g for g in index.duplicates if str(corpus.root / "test" / "cats" / "leaked.png") in g]
    assert leaked == [
        sorted([str(corpus.root / "train/cats/good_01.png"), str(corpus.root / "test/cats/leaked.png")])
    ]


def test_the_real_trainer_trains_on_the_good_files_and_reports_the_bad(hostile_folder):
    corpus = hostile_folder
    config = TrainConfig(
        data=str(corpus.root),
        model="course_cnn",
        epochs=1,
        batch_size=8,
        img_size=16,
        channels=3,
        val_split=0.2,
    )

    events = as_ordinary_user(lambda: list(Trainer(config).run()))

    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.status == "finished", finished
    assert finished.epochs == 1 and finished.test_accuracy is not None
    started = next(e for e in events if isinstance(e, RunStarted))
    assert started.train_images + started.val_images == len(corpus.good_train)
    assert started.test_images == len(corpus.good_test)
    assert len([e for e in events if isinstance(e, EpochEnded)]) == 1
    skipped = {event.path: event.reason for event in events if isinstance(event, FileSkipped)}
    check_bad_files_reported(corpus, skipped)
    warnings = [e.text for e in events if isinstance(e, Message)]
    assert any("identical to train images" in w for w in warnings)
    print(
        f"\nhostile corpus: {len(corpus.kinds)} kinds of input, {len(corpus.bad)} bad files reported, 0 crashes"
    )


def test_the_corpus_covers_every_kind_the_issue_lists(hostile_folder, monkeypatch):
    listed = [
        "zero-byte file", "truncated JPEG", "truncated PNG", "text file named .jpg", "HTML page named .png",
        "1×1 image", "decompression bomb", "16-bit PNG", "CMYK JPEG", "palette GIF with transparency",
        "animated GIF", "RGBA PNG", "EXIF-rotated JPEG", "unreadable file (chmod 000)", "symlink loop",
        "broken symlink", "non-UTF-8 file name", "non-Latin name (Japanese)", "120 nested folders",
        'a "class folder" that is a file', "the same image in train and test", "duplicate image within a class",
    ]  # fmt: skip
    assert set(listed) <= set(hostile_folder.kinds)
    assert len(set(hostile_folder.kinds)) == len(hostile_folder.kinds) >= 35
    bomb = Path(next(p for p, r in hostile_folder.bad.items() if "too large" in r))
    assert bomb.stat().st_size < 200_000
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # Pillow's own guard would refuse to open it
    with Image.open(bomb) as image:  # a real, complete PNG (opening reads the header only)
        assert image.size == (30_000, 30_000) and image.mode == "1"
