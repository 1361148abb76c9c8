"""Issue #12, dataset-naming faults — on real files:

4. relabel follows the scan's own class rule (nested same-name folders, split folders, one class per root);
7. names that are not UTF-8 (class folders, the dataset root, file names) go through scan, training,
   checkpoint, evaluation and every stored or shown text;
14. decoding that drops every training image (or every image of a class) says which files and why;
16. class names meet in NFC: a model from NFC folders evaluates an NFD folder;
3 (part). `dataset_roots`: one str is one root, never split on os.pathsep.

New engine names are imported inside the tests, so that on code without them each test fails on its own
point rather than the module failing to import.
"""

from __future__ import annotations

import json
import os
import shutil
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.engine.data import load_decoded, scan_dataset
from workbench.engine.errors import DatasetError
from workbench.engine.training.config import TrainConfig
from workbench.engine.training.events import Message, RunFinished, RunStarted
from workbench.engine.training.trainer import Trainer

CAFE_LATIN1 = b"caf\xe9"  # "café" written by an old Latin-1 system: not UTF-8


def write_png(path: str | bytes | Path, value: int = 0, size: int = 12) -> None:
    """A real PNG; `path` may be bytes (a name that is not UTF-8). Pixels vary by `value` so classes differ."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = np.random.default_rng(value)
    pixels = (rng.integers(0, 60, (size, size, 3)) + (value % 4) * 60).astype(np.uint8)
    with open(path, "wb") as f:
        Image.fromarray(pixels).save(f, "PNG")


def write_garbage(path: str | bytes | Path) -> None:
    """A file named like an image that is not one: the scan keeps it (non-empty), decoding drops it."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"this is not a PNG at all")


def class_of_each_file(root: str | Path | list[str], **scan_options) -> dict[str, str]:
    index = scan_dataset(root, val_fraction=0.0, **scan_options)
    return {s.path: index.classes[s.label] for s in index.samples}


def drain(generator):
    """Run an event generator to its end: (events, returned value)."""
    events = []
    while True:
        try:
            events.append(next(generator))
        except StopIteration as stop:
            return events, stop.value


def tiny_run(data: str | list[str], **options) -> tuple[list, RunFinished]:
    config = TrainConfig(data=data, model="course_cnn", epochs=1, batch_size=16, seed=0, **options)
    events = list(Trainer(config).run())
    return events, events[-1]


# ------------------------------------------------------------------------------------ 4. relabel by rule


def _two_classes(root: Path, nested: Path) -> Path:
    """`root`/cat and `root`/dog with three images each, plus one image at `nested` (below `root`/cat)."""
    for i in range(3):
        write_png(root / "cat" / f"c{i}.png", i)
        write_png(root / "dog" / f"d{i}.png", 10 + i)
    write_png(nested, 99)
    return nested


def test_relabel_of_a_file_in_a_nested_same_name_folder_moves_it_to_the_class_the_scan_reads(tmp_path):
    from workbench.engine.data.curation import Curator

    root = tmp_path / "pets"
    image = _two_classes(root, root / "cat" / "2019" / "cat" / "x.png")
    assert class_of_each_file(root)[str(image)] == "cat"

    move = Curator().relabel(image, "cat", "dog")  # no roots given: worked out from the file

    assert move.destination == root / "dog" / "2019" / "cat" / "x.png"
    assert not (root / "cat" / "2019" / "dog").exists()
    assert class_of_each_file(root)[str(move.destination)] == "dog"


def test_relabel_with_the_roots_known_follows_the_scan_rule_in_every_layout(tmp_path):
    from workbench.engine.data.curation import Curator

    # class folders, with the dataset root given as the app knows it
    plain = tmp_path / "plain"
    image = _two_classes(plain, plain / "cat" / "2019" / "cat" / "x.png")
    move = Curator(roots=[plain]).relabel(image, "cat", "dog")
    assert class_of_each_file(plain)[str(move.destination)] == "dog"

    # train/val/test folders: the file keeps its split folder
    split = tmp_path / "split"
    image = _two_classes(split / "train", split / "train" / "cat" / "2019" / "cat" / "x.png")
    _two_classes(split / "test", split / "test" / "cat" / "y.png")
    move = Curator(roots=[split]).relabel(image, "cat", "dog")
    assert move.destination == split / "train" / "dog" / "2019" / "cat" / "x.png"
    index = scan_dataset(split)
    moved = next(s for s in index.samples if s.path == str(move.destination))
    assert (index.classes[moved.label], moved.split) == ("dog", "train")

    # several dropped folders, each one class: the roots themselves are the class folders
    cats, dogs = tmp_path / "a" / "cat", tmp_path / "b" / "dog"
    write_png(cats / "c.png", 1)
    write_png(dogs / "d.png", 2)
    write_png(cats / "2019" / "cat" / "x.png", 3)
    move = Curator(roots=[cats, dogs]).relabel(cats / "2019" / "cat" / "x.png", "cat", "dog")
    assert move.destination == dogs / "2019" / "cat" / "x.png"
    assert class_of_each_file([str(cats), str(dogs)])[str(move.destination)] == "dog"


def test_relabel_refuses_a_destination_the_scan_would_not_read_as_the_new_class(tmp_path):
    from workbench.engine.data.curation import Curator

    root = tmp_path / "pets"
    image = _two_classes(root, root / "cat" / "x.png")
    curator = Curator(roots=[root])
    # A class folder named "train" would make the whole root a train/val/test dataset.
    with pytest.raises(DatasetError, match="train/val/test"):
        curator.relabel(image, "cat", "train")
    with pytest.raises(DatasetError, match="cannot be a class folder's name"):
        curator.relabel(image, "cat", ".hidden")
    with pytest.raises(DatasetError, match="puts it in class 'cat', not 'dog'"):
        curator.relabel(image, "dog", "cat")  # the view's class is stale: refuse, move nothing
    assert image.is_file() and not curator.history


def test_a_move_the_scan_would_not_read_as_the_new_class_is_put_back(tmp_path, monkeypatch):
    import workbench.engine.data.curation as curation

    root = tmp_path / "pets"
    image = _two_classes(root, root / "cat" / "x.png")
    # Stand-in for any way a destination can go wrong between the check and the move.
    monkeypatch.setattr(
        curation, "destination_for", lambda _roots, path, _new: Path(path).parent / "2019" / "x.png"
    )
    curator = curation.Curator(roots=[root])
    with pytest.raises(DatasetError, match="not moved: .* a scan would read it as class 'cat', not 'dog'"):
        curator.relabel(image, "cat", "dog")
    assert image.is_file() and not (root / "cat" / "2019" / "x.png").exists() and not curator.history


def test_the_scan_and_class_folder_of_agree_on_every_file_of_every_layout(tmp_path):
    from workbench.engine.data import class_folder_of

    plain = tmp_path / "plain"
    _two_classes(plain, plain / "cat" / "2019" / "cat" / "x.png")
    split = tmp_path / "split"
    _two_classes(split / "train", split / "train" / "cat" / "dog" / "x.png")
    _two_classes(split / "Valid", split / "Valid" / "dog" / "cat" / "y.png")
    roots = [str(tmp_path / "one" / "cat"), str(tmp_path / "two" / "dog")]
    write_png(Path(roots[0]) / "cat" / "a.png", 1)
    write_png(Path(roots[1]) / "b.png", 2)
    for data in (plain, split, roots):
        index = scan_dataset(data)
        for sample in index.samples:
            assert class_folder_of(index.roots, sample.path).class_name == index.classes[sample.label]


def test_exclude_in_a_nested_same_name_folder_leaves_training(tmp_path):
    from workbench.engine.data.curation import EXCLUDED_FOLDER, Curator

    root = tmp_path / "pets"
    image = _two_classes(root, root / "cat" / "2019" / "cat" / "x.png")
    move = Curator(roots=[root]).exclude(image, "cat")
    assert move.destination == root / "cat" / EXCLUDED_FOLDER / "2019" / "cat" / "x.png"
    assert str(move.destination) not in class_of_each_file(root)


# --------------------------------------------------------------------------------- 7. non-UTF-8 names


def test_display_name_escapes_bytes_that_are_not_utf8_and_keeps_valid_text():
    from workbench.engine.names import display_name

    name = os.fsdecode(CAFE_LATIN1)  # what os.listdir returns: 'caf\udce9'
    assert display_name(name) == "caf\\xe9"
    assert display_name(name).encode("utf-8")  # printable, storable
    assert display_name("café ☕") == "café ☕"
    assert display_name("bad \ud800 half") == "bad \\ud800 half"  # a lone surrogate from a Windows name


def test_a_non_utf8_class_folder_and_root_scan_split_and_warn_in_printable_text(tmp_path):
    root = os.path.join(os.fsencode(tmp_path), b"data-\xff")
    for i in range(4):
        write_png(os.path.join(root, CAFE_LATIN1, b"img-\xfe%d.png" % i), i)
        write_png(os.path.join(root, b"dog", b"d%d.png" % i), 10 + i)
    index = scan_dataset(os.fsdecode(root), val_fraction=0.25, seed=3)  # the seeded split: Random(str)

    assert index.classes == sorted([os.fsdecode(CAFE_LATIN1), "dog"])
    assert all(os.path.isfile(s.path) for s in index.samples)  # on-disk names: the files open
    assert index.split("val") and index.warnings  # tiny classes earn warnings...
    for warning in index.warnings:
        warning.encode("utf-8")  # ...that print under a UTF-8 locale
    assert any("caf\\xe9" in w for w in index.warnings)
    again = scan_dataset(os.fsdecode(root), val_fraction=0.25, seed=3)
    assert [s.path for s in again.split("val")] == [s.path for s in index.split("val")]


def test_the_app_scan_of_a_non_utf8_folder_works(tmp_path):
    from workbench.app.dataset.scan import scan_for_browser

    root = os.path.join(os.fsencode(tmp_path), b"photos-\xe9")
    for i in range(3):
        write_png(os.path.join(root, CAFE_LATIN1, b"%d.png" % i), i)
        write_png(os.path.join(root, b"tea", b"%d.png" % i), 10 + i)
    summary = scan_for_browser([os.fsdecode(root)], lambda: False, lambda _n: None)  # val 10%, like the app
    assert os.fsdecode(CAFE_LATIN1) in summary.classes and summary.total == 6


def test_a_non_utf8_class_folder_trains_saves_and_evaluates(tmp_path):
    from workbench.engine.evaluation.evaluate import evaluate
    from workbench.engine.training.checkpoint import load_model

    root = tmp_path / "drinks"
    for i in range(8):
        write_png(os.path.join(os.fsencode(root), CAFE_LATIN1, b"\xe9t\xe9-%d.png" % i), 4 * i)
        write_png(root / "tea" / f"t{i}.png", 4 * i + 1)
    events, finished = tiny_run(str(root), val_split=0.25)
    assert finished.status == "finished", finished

    cafe = os.fsdecode(CAFE_LATIN1)
    started = next(e for e in events if isinstance(e, RunStarted))
    assert started.classes == [cafe, "tea"]  # the on-disk names: what evaluation scans again
    assert load_model(finished.checkpoint)[1]["classes"] == [cafe, "tea"]
    run_dir = Path(finished.checkpoint).parent.parent
    for stored in ("dataset.json", "config.json"):
        json.loads((run_dir / stored).read_bytes().decode("utf-8"))  # valid UTF-8 files
    assert json.loads((run_dir / "dataset.json").read_text())["classes"] == [cafe, "tea"]  # round trip

    report, predictions = evaluate(finished.checkpoint, root, split="all")
    assert report.num_images == 16 and report.classes == [cafe, "tea"]
    assert all(os.path.isfile(path) for path in predictions.paths)
    # "auto" finds the run's own held-out images in it (the run's file list matches the non-UTF-8 folder)
    assert evaluate(finished.checkpoint, root)[0].extra["split"] == "val"


def test_the_decoded_image_cache_keys_survive_a_non_utf8_folder(tmp_path, monkeypatch):
    import workbench.engine.data.cache as cache

    root = os.path.join(os.fsencode(tmp_path), b"r\xff")
    for i in range(3):
        write_png(os.path.join(root, CAFE_LATIN1, b"\xfe%d.png" % i), i)
        write_png(os.path.join(root, b"b", b"%d.png" % i), 5 + i)
    samples = scan_dataset(os.fsdecode(root), val_fraction=0.0).samples
    first = load_decoded(samples, 8, 3)

    def no_decoding(*_args):  # the second load must come from the cache
        raise AssertionError("decoded again")

    monkeypatch.setattr(cache, "decode_array", no_decoding)
    second = load_decoded(samples, 8, 3)
    assert second.paths == first.paths and bool((second.images == first.images).all())


def test_a_non_utf8_dataset_root_trains_and_evaluates(tmp_path):
    from workbench.engine.evaluation.evaluate import evaluate

    root = os.path.join(os.fsencode(tmp_path), b"data-\xff")
    for i in range(8):
        write_png(os.path.join(root, b"cat", b"%d.png" % i), 4 * i)
        write_png(os.path.join(root, CAFE_LATIN1, b"%d.png" % i), 4 * i + 2)
    events, finished = tiny_run(os.fsdecode(root), val_split=0.25)
    assert finished.status == "finished", (
        finished
    )  # the registry's part: tests/engine/test_faults_registry.py
    for event in events:  # every message a client prints is text a UTF-8 terminal takes
        if isinstance(event, Message):
            event.text.encode("utf-8")
    report, _ = evaluate(finished.checkpoint, os.fsdecode(root), split="all")
    assert report.num_images == 16


# ------------------------------------------------------------------------- 14. decoding drops images


def _prepared(index, size: int = 8):
    from workbench.engine.training.data_setup import decode

    return drain(decode(index, size, 3, use_imagenet_stats=False))


def test_when_no_training_image_decodes_the_error_names_the_files_and_why(tmp_path):
    for name in ("ant", "bee"):
        for i in range(4):
            write_garbage(tmp_path / name / f"{name}{i}.png")
    index = scan_dataset(tmp_path, val_fraction=0.0)
    with pytest.raises(DatasetError) as caught:
        _prepared(index)
    message = str(caught.value)
    assert "none of the 8 training images could be decoded" in message
    assert "ant0.png (" in message and "and 3 more" in message  # the first five, each with its reason
    assert "see the skipped files above" not in message


def test_a_class_whose_every_training_image_fails_to_decode_is_a_warning_naming_it(tmp_path):
    for i in range(4):
        write_png(tmp_path / "ant" / f"a{i}.png", i)
        write_png(tmp_path / "bee" / f"b{i}.png", 10 + i)
        write_garbage(tmp_path / "wasp" / f"w{i}.png")
    index = scan_dataset(tmp_path, val_fraction=0.0)
    events, prepared = _prepared(index)
    warnings = [e.text for e in events if isinstance(e, Message) and e.level == "warning"]
    assert len(warnings) == 1 and "class 'wasp' has no usable training image" in warnings[0]
    assert "all 4 could not be decoded" in warnings[0] and "w0.png (" in warnings[0]
    assert sorted(set(prepared.train.labels.tolist())) == [0, 1]


def test_the_trainer_shows_the_lost_class_warning_to_its_clients(tmp_path):
    for i in range(6):
        write_png(tmp_path / "ant" / f"a{i}.png", i)
        write_png(tmp_path / "bee" / f"b{i}.png", 10 + i)
        write_garbage(tmp_path / "wasp" / f"w{i}.png")
    events, finished = tiny_run(str(tmp_path), val_split=0.0)
    assert finished.status == "finished", finished
    texts = [e.text for e in events if isinstance(e, Message)]
    assert any("class 'wasp' has no usable training image" in t for t in texts)


def test_decoding_that_leaves_one_class_is_an_error_naming_both(tmp_path):
    for i in range(4):
        write_png(tmp_path / "ant" / f"a{i}.png", i)
        write_garbage(tmp_path / "bee" / f"b{i}.png")
    index = scan_dataset(tmp_path, val_fraction=0.0)
    with pytest.raises(DatasetError, match=r"only class ant has .*bee lost all .* at least two classes"):
        _prepared(index)


# --------------------------------------------------------------------------------------- 16. NFC / NFD


def test_a_model_trained_on_nfc_names_evaluates_an_nfd_folder(tmp_path):
    from workbench.engine.evaluation.evaluate import evaluate

    nfc_root, nfd_root = tmp_path / "nfc", tmp_path / "nfd"
    names = [unicodedata.normalize("NFC", n) for n in ("café", "thé")]
    for k, name in enumerate(names):
        for i in range(6):
            write_png(nfc_root / name / f"{i}.png", 4 * i + 2 * k)
    for name in names:  # the same images, as a Mac's HFS+ would hand the folder names back
        shutil.copytree(nfc_root / name, nfd_root / unicodedata.normalize("NFD", name))
    assert scan_dataset(nfd_root).classes != names  # really the other spelling on disk

    _events, finished = tiny_run(str(nfc_root), val_split=0.0)
    assert finished.status == "finished", finished
    on_nfc, _ = evaluate(finished.checkpoint, nfc_root, tta=False)
    on_nfd, _ = evaluate(finished.checkpoint, nfd_root, tta=False)
    assert on_nfd.num_images == 12 and on_nfd.accuracy == on_nfc.accuracy


def test_match_classes_compares_in_nfc():
    from workbench.engine.names import match_classes

    model = [unicodedata.normalize("NFC", "café"), "tea"]
    indices, unknown = match_classes(model, ["tea", unicodedata.normalize("NFD", "café"), "milk"])
    assert indices == [1, 0] and unknown == ["milk"]


def test_relabel_to_a_class_named_in_nfc_uses_the_existing_nfd_folder(tmp_path):
    from workbench.engine.data.curation import Curator

    nfd = unicodedata.normalize("NFD", "thé")
    write_png(tmp_path / "cafe" / "a.png", 1)
    write_png(tmp_path / "cafe" / "c.png", 3)
    write_png(tmp_path / nfd / "b.png", 2)
    move = Curator(roots=[tmp_path]).relabel(tmp_path / "cafe" / "a.png", "cafe", "thé")  # the model's NFC
    assert move.destination == tmp_path / nfd / "a.png"
    assert scan_dataset(tmp_path, val_fraction=0.0).classes == ["cafe", nfd]  # no second "thé" folder


# ---------------------------------------------------------------------------------- 3. dataset roots


def test_dataset_roots_never_splits_one_folder_on_pathsep(tmp_path):
    from workbench.engine.training.config import dataset_roots
    from workbench.engine.training.data_setup import scan

    odd = tmp_path / f"ti{os.pathsep}me"
    for i in range(3):
        write_png(odd / "a" / f"{i}.png", i)
        write_png(odd / "b" / f"{i}.png", 10 + i)
    assert dataset_roots(str(odd)) == [str(odd)]
    assert dataset_roots(odd) == [str(odd)]
    assert dataset_roots(("x", "y")) == ["x", "y"]
    with pytest.raises(DatasetError, match="no dataset given"):
        drain(scan(TrainConfig(data=[])))
    _events, index = drain(scan(TrainConfig(data=str(odd), val_split=0.0)))
    assert index.classes == ["a", "b"] and index.roots == [str(odd)]
    _events, index = drain(scan(TrainConfig(data=[str(odd / "a"), str(odd / "b")], val_split=0.0)))
    assert index.layout == "folders-as-classes" and index.classes == ["a", "b"]
