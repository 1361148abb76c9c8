"""Start the desktop app: `workbench` (no subcommand) calls `main()`.

Only Qt and the window's own modules load before the window is shown; torch and the model zoo are
imported by a worker afterwards. `--startup-time` prints how long the process took to show the window.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

_IMPORTED_AT = time.perf_counter()


def process_age_s() -> float:
    """Seconds since this process was created (Linux /proc), else since this module was imported."""
    try:
        with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
            start_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
            return float(uptime.read().split()[0]) - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _IMPORTED_AT


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="workbench", description="CNN Workbench desktop app")
    parser.add_argument("folders", nargs="*", help="dataset folder(s) to open (several = one class each)")
    parser.add_argument(
        "--startup-time", action="store_true", help="print the time from process start to window shown"
    )
    parser.add_argument(
        "--quit-after-show", action="store_true", help="quit once the window is shown (for measuring)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from PySide6.QtCore import QThreadPool, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("CNN Workbench")
    app.setOrganizationName("cnn-workbench")
    from PySide6.QtGui import QIcon

    from workbench.resources import APP_ID, app_icon_path

    app.setDesktopFileName(APP_ID)  # lets Wayland match the window to the installed .desktop file
    icon = QIcon()
    for size in (16, 32, 48, 64, 128, 256):
        icon.addFile(str(app_icon_path(size)))
    app.setWindowIcon(icon)

    from workbench.app.qt.dialogs import install_exception_hook
    from workbench.app.qt.style import apply_style

    install_exception_hook()  # an exception in any slot reaches the user as an error dialog, not only stderr
    from workbench.app.window.main_window import MainWindow

    apply_style(app)
    folders = [os.path.abspath(f) for f in args.folders]
    window = MainWindow(initial_folders=folders or None)

    def on_shown() -> None:
        if args.startup_time:
            print(f"window shown {process_age_s() * 1000:.0f} ms after process start", flush=True)
        if args.quit_after_show:
            QTimer.singleShot(0, window.close)

    window.shown.connect(on_shown)
    window.show()
    status = app.exec()
    QThreadPool.globalInstance().waitForDone(30000)  # workers must not outlive the objects they report to
    return status


if __name__ == "__main__":
    sys.exit(main())
