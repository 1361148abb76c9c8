"""The engine must import without Qt: the CLI runs on servers with no Qt at all."""

import subprocess
import sys

BLOCK_QT = """
import importlib.abc, sys
class BlockQt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PySide6', 'PyQt5', 'PyQt6', 'pyqtgraph', 'superqt', 'qtpy'):
            raise ImportError(f'Qt module {name} imported by the headless engine')
sys.meta_path.insert(0, BlockQt())
import pkgutil, importlib, workbench.engine, workbench.cli
for module in pkgutil.walk_packages(workbench.engine.__path__, 'workbench.engine.'):
    importlib.import_module(module.name)
for module in pkgutil.walk_packages(workbench.cli.__path__, 'workbench.cli.'):
    importlib.import_module(module.name)
print('imported', len(sys.modules))
"""


def test_engine_and_cli_import_without_qt():
    result = subprocess.run([sys.executable, "-c", BLOCK_QT], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("imported")


def test_qt_blocker_really_blocks():
    """Guard against a blocker that silently lets Qt through (the test above would then prove nothing)."""
    code = BLOCK_QT.split("import pkgutil")[0] + "import PySide6\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "Qt module PySide6" in result.stderr
