"""Thumbnails decode lazily off the UI thread, land in the memory and disk caches, and broken files show as such."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from PySide6.QtCore import Qt

from workbench.app.dataset.thumbnail_filter import ThumbnailFilter
from workbench.app.dataset.thumbnails import ThumbItem, ThumbnailModel, open_for_display
from workbench.engine import paths


def _write_images(folder: Path) -> list[ThumbItem]:
    folder.mkdir(parents=True)
    Image.new("RGB", (400, 200), (200, 30, 30)).save(folder / "wide.jpg", quality=90)
    Image.new("L", (28, 28), 128).save(folder / "grey.png")
    Image.new("RGBA", (50, 50), (0, 0, 255, 128)).save(folder / "alpha.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return [
        ThumbItem(str(folder / "wide.jpg"), "red", "train"),
        ThumbItem(str(folder / "grey.png"), "grey", "train"),
        ThumbItem(str(folder / "alpha.png"), "grey", "val"),
        ThumbItem(str(folder / "broken.png"), "red", "val"),
    ]


def test_thumbnails_load_lazily_and_are_cached(qtbot, tmp_path):
    items = _write_images(tmp_path / "imgs")
    model = ThumbnailModel()
    model.set_items(items)
    assert model.rowCount() == 4
    assert model.cached_count() == 0  # nothing decoded until a view asks

    for row in range(4):
        model.data(model.index(row), Qt.ItemDataRole.DecorationRole)
    qtbot.waitUntil(lambda: model.cached_count() == 3 and len(model._broken) == 1, timeout=10_000)

    wide = model.data(model.index(0), Qt.ItemDataRole.DecorationRole)
    assert (wide.width(), wide.height()) == (model.loader.side, model.loader.side // 2)  # aspect kept
    assert "broken.png" in next(iter(model._broken))
    assert "⚠" in model.data(model.index(3), Qt.ItemDataRole.ToolTipRole)
    disk = list((paths.cache_dir() / "thumbnails").rglob("*.png"))
    assert len(disk) == 3

    # A second model (a new session) is served from the disk cache: same pixels.
    again = ThumbnailModel()
    again.set_items(items[:1])
    again.data(again.index(0), Qt.ItemDataRole.DecorationRole)
    qtbot.waitUntil(lambda: again.cached_count() == 1, timeout=10_000)
    first = wide.toImage().pixelColor(10, 10)
    second = again.data(again.index(0), Qt.ItemDataRole.DecorationRole).toImage().pixelColor(10, 10)
    assert (first.red(), first.green(), first.blue()) == (second.red(), second.green(), second.blue())
    model.loader.pool.waitForDone(5000)
    again.loader.pool.waitForDone(5000)


def test_filter_by_class_and_split(qapp, tmp_path):
    items = _write_images(tmp_path / "imgs")
    model = ThumbnailModel()
    model.set_items(items)
    proxy = ThumbnailFilter()
    proxy.setSourceModel(model)
    assert proxy.rowCount() == 4
    proxy.set_filter("grey")
    assert proxy.rowCount() == 2
    proxy.set_filter("grey", "val")
    assert proxy.rowCount() == 1
    assert proxy.index(0, 0).data(Qt.ItemDataRole.UserRole + 3).endswith("alpha.png")


def test_filter_maps_rows_both_ways_and_follows_the_source(qtbot, tmp_path):
    """The grid's selection, curation and late-arriving thumbnails all go through this mapping."""
    items = _write_images(tmp_path / "imgs")
    model = ThumbnailModel()
    model.set_items(items)
    proxy = ThumbnailFilter()
    proxy.setSourceModel(model)
    proxy.set_filter(split="val")  # source rows 2 and 3
    assert [proxy.mapToSource(proxy.index(r, 0)).row() for r in range(proxy.rowCount())] == [2, 3]
    assert proxy.mapFromSource(model.index(3)).row() == 1
    assert not proxy.mapFromSource(model.index(0)).isValid()  # filtered out
    assert not proxy.index(2, 0).isValid()

    # a thumbnail decoded for a visible row repaints that row of the proxy, not another one
    with qtbot.waitSignal(proxy.dataChanged, timeout=10_000) as changed:
        proxy.index(0, 0).data(Qt.ItemDataRole.DecorationRole)  # alpha.png: source row 2
    assert changed.args[0].row() == 0

    # a new folder in the source resets the proxy with the same filter
    model.set_items([*items, ThumbItem(str(tmp_path / "more.png"), "red", "val")])
    assert proxy.rowCount() == 3
    assert proxy.mapToSource(proxy.index(2, 0)).row() == 4
    model.loader.pool.waitForDone(5000)


def test_open_for_display_reports_size_and_mode(tmp_path):
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (640, 480), (10, 200, 10)).save(path)
    image, info = open_for_display(str(path), 320)
    assert info == {"width": 640, "height": 480, "mode": "RGB", "format": "JPEG"}
    assert max(image.width(), image.height()) <= 320


def test_unusual_modes_display_as_the_engine_decodes_them(tmp_path):
    deep = tmp_path / "deep.png"
    Image.new("I;16", (30, 20), 65535).save(deep)  # 16-bit white
    cmyk = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (30, 20), (0, 255, 255, 0)).save(cmyk)  # red in CMYK
    image, info = open_for_display(str(deep), 64)
    assert info["mode"] == "I;16" and (info["width"], info["height"]) == (30, 20)
    assert image.pixelColor(5, 5).red() == 255
    image, info = open_for_display(str(cmyk), 64)
    assert info["mode"] == "CMYK"
    colour = image.pixelColor(5, 5)
    assert colour.red() > 200 and colour.green() < 60 and colour.blue() < 60


def test_a_decode_that_finishes_after_its_window_closed_ends_quietly(qapp, tmp_path):
    """A worker still decoding when the window (and the loader's signal object) is gone must not raise
    "Signal source has been deleted" from its thread: the thumbnail is simply not wanted any more."""
    import shiboken6

    from workbench.app.dataset.thumbnails import ThumbnailLoader

    items = _write_images(tmp_path / "imgs")
    loader = ThumbnailLoader(use_disk_cache=False)
    loader._stack.extend(item.path for item in items)  # what a worker thread would find waiting
    loader._draining = 1
    shiboken6.delete(loader._signals)  # as when the window is destroyed mid-decode
    loader._drain()  # raised RuntimeError before
    assert loader._stack == [item.path for item in items[:-1]]  # it stopped at once: nothing more decoded
