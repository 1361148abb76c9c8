"""The desktop app's layout: one sub-package per tab plus `window/` and a shared `qt/`, no import cycles, no
import that points up or across.

Every import of every module under workbench/app is read with `ast` (including those inside functions and
`if TYPE_CHECKING:` blocks: a deferred import is still an arrow a reader must follow, and a cycle through one
is still a cycle). Allowed arrows: `qt/` → `qt/`; a tab package → itself and `qt/`; `window/` → anything;
the engine is outside the app and always allowed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "workbench" / "app"
APP_PACKAGE = "workbench.app"
SHARED = "qt"
WINDOW = "window"
TABS = ("dataset", "model", "training", "evaluation", "predictions", "inspector", "runs")


def module_name(path: Path, app_root: Path) -> str:
    parts = list(path.relative_to(app_root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([APP_PACKAGE, *parts])


def app_modules(app_root: Path) -> dict[str, Path]:
    return {module_name(path, app_root): path for path in sorted(app_root.rglob("*.py"))}


def imported_names(path: Path, name: str) -> set[str]:
    """Every module `path` imports, anywhere in the file; `from a import b` counts as `a.b` (a module or not:
    the caller keeps what exists)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in node.names)
    return found


def import_graph(app_root: Path) -> dict[str, set[str]]:
    """app module -> the app modules it imports (packages count as their __init__)."""
    modules = app_modules(app_root)
    return {
        name: {target for target in imported_names(path, name) if target in modules and target != name}
        for name, path in modules.items()
    }


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def layer_of(module: str) -> str:
    """The sub-package a module lives in ('' for a module directly under workbench/app)."""
    rest = module[len(APP_PACKAGE) :].lstrip(".")
    return rest.split(".")[0] if "." in rest or rest in (SHARED, WINDOW, *TABS) else ""


def forbidden_imports(graph: dict[str, set[str]]) -> list[str]:
    """'a -> b' for each import that points up (qt/ into a tab or the window, a tab into the window) or across
    (one tab into another)."""
    wrong = []
    for source, targets in sorted(graph.items()):
        here = layer_of(source)
        if here == WINDOW:
            continue  # the window composes the tabs: it may import any of them
        allowed = {here, SHARED} if here in TABS else {SHARED} if here == SHARED else set()
        wrong += [f"{source} -> {target}" for target in sorted(targets) if layer_of(target) not in allowed]
    return wrong


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def format_lines(lines: Iterable[object]) -> str:
    return "\n".join(str(line) for line in lines)


# ---- the app as it is ---------------------------------------------------------------------------------------


def test_the_app_has_no_import_cycles():
    cycles = import_cycles(import_graph(APP))
    assert not cycles, "import cycles between app modules:\n" + format_lines(cycles)


def test_qt_imports_nothing_else_of_the_app_and_tabs_import_no_other_tab():
    wrong = forbidden_imports(import_graph(APP))
    assert not wrong, "imports that point up or across the app's sub-packages:\n" + format_lines(wrong)


def test_every_app_module_lives_in_a_sub_package_named_for_its_tab_or_role():
    expected = {SHARED, WINDOW, *TABS}
    packages = {path.name for path in APP.iterdir() if (path / "__init__.py").is_file()}
    assert packages == expected
    loose = sorted(p.name for p in APP.glob("*.py") if p.name != "__init__.py")
    assert not loose, f"modules directly under workbench/app: {loose}"
    for package in sorted(expected):
        doc = ast.get_docstring(ast.parse((APP / package / "__init__.py").read_text(encoding="utf-8")))
        assert doc and len(doc) > 80, (
            f"workbench/app/{package}/__init__.py needs a docstring saying what is there"
        )


def test_the_app_package_itself_imports_nothing():
    """`import workbench.app` (done by every `workbench.app.x` import) must stay free: no Qt, no torch."""
    assert import_graph(APP)[APP_PACKAGE] == set()
    tree = ast.parse((APP / "__init__.py").read_text(encoding="utf-8"))
    assert not [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]


@pytest.mark.parametrize("folder", ["tests", "benchmarks", "packaging"])
def test_code_outside_the_app_imports_app_modules_that_exist(folder):
    modules = app_modules(APP)
    missing = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for name in imported_names(path, "outside"):
            if not name.startswith(APP_PACKAGE + "."):
                continue
            parent = name.rpartition(".")[0]
            # `from workbench.app.x.y import Name`: the module is `parent`; `import workbench.app.x.y`: `name`.
            if name not in modules and parent not in modules:
                missing.append(f"{path.relative_to(ROOT)}: {name}")
    assert not missing, "imports of app modules that do not exist:\n" + format_lines(missing)


# ---- the checks themselves catch what they are for -----------------------------------------------------------


def test_a_cycle_through_a_type_checking_import_or_a_function_is_found(tmp_path):
    """The flat tree had main_window ↔ menus (menus imported the window for its type hints) and
    training_panel ↔ training_lr_finder; arrows hidden in TYPE_CHECKING blocks and functions count."""
    app = write_tree(
        tmp_path / "app",
        {
            "__init__.py": "",
            "window/__init__.py": "",
            "window/main_window.py": "from workbench.app.window.menus import build_menus\n",
            "window/menus.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from workbench.app.window.main_window import MainWindow\n"
            ),
            "training/__init__.py": "",
            "training/panel.py": "from workbench.app.training import lr_finder\n",
            "training/lr_finder.py": "def make():\n    from .panel import TrainingPanel\n",
        },
    )
    cycles = import_cycles(import_graph(app))
    assert cycles == [
        ["workbench.app.training.lr_finder", "workbench.app.training.panel"],
        ["workbench.app.window.main_window", "workbench.app.window.menus"],
    ]


def test_an_import_up_from_qt_or_across_tabs_is_found(tmp_path):
    app = write_tree(
        tmp_path / "app",
        {
            "__init__.py": "",
            "qt/__init__.py": "",
            "qt/workers.py": "def f():\n    from workbench.app.training.panel import TrainingPanel\n",
            "training/__init__.py": "",
            "training/panel.py": "from workbench.app.qt import workers\nfrom workbench.engine import paths\n",
            "inspector/__init__.py": "",
            "inspector/image_chooser.py": "from workbench.app.predictions.view import IMAGE_FILTER\n",
            "predictions/__init__.py": "",
            "predictions/view.py": "IMAGE_FILTER = ''\n",
            "window/__init__.py": "",
            "window/main_window.py": "from workbench.app.training.panel import TrainingPanel\n",
        },
    )
    assert forbidden_imports(import_graph(app)) == [
        "workbench.app.inspector.image_chooser -> workbench.app.predictions.view",
        "workbench.app.qt.workers -> workbench.app.training.panel",
    ]
