"""Every screen of the app, rendered on the demo's two vaults: the layout check (nothing clipped) and the
pictures in docs/screenshots/.

``python -m desktop.screenshots OUT_DIR [--size 800x600] [--scale 2]`` runs ``pathshare demo`` in a
temporary folder, opens the district's and the college's vaults in the real window, visits each screen,
saves one PNG per screen in OUT_DIR and prints, as JSON, the widgets whose text does not fit (a button
narrower than its label, a label cut short or a wrapped label given too few lines). ``make screenshots``
regenerates docs/screenshots/; tests/test_gui_layout.py runs it at 800×600 and at 1920×1080 with 200%
scaling (960×540 in Qt's units) and fails on any clipped widget.

Tooling for developers and tests: it holds no behaviour of the app.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

PASSPHRASE = "quartz-lantern-meadow-tidal-orbit"


def clipped(root: Any) -> list[str]:
    """Visible buttons and labels under ``root`` whose text does not fit their geometry."""
    from PySide6.QtWidgets import QAbstractButton, QLabel, QWidget

    found = []
    for w in [root, *root.findChildren(QWidget)]:
        if not w.isVisible() or w.objectName().startswith("qt_"):
            continue
        if isinstance(w, QAbstractButton) and w.text():
            hint = w.minimumSizeHint()
            if w.width() < hint.width() or w.height() < hint.height():
                found.append(
                    f"button {w.text()!r}: {w.width()}×{w.height()} < {hint.width()}×{hint.height()}"
                )
        elif isinstance(w, QLabel) and w.text() and w.pixmap().isNull():
            if w.wordWrap():
                need = w.heightForWidth(w.width())
                if need > 0 and w.height() < need:
                    found.append(f"label {w.text()[:50]!r}: {w.height()} px high < {need}")
            elif w.width() < w.minimumSizeHint().width():
                found.append(f"label {w.text()[:50]!r}: {w.width()} px wide < {w.minimumSizeHint().width()}")
    return found + overlapping(root)


def overlapping(root: Any) -> list[str]:
    """Visible widgets one layout places over one another: what a layout does when a window is smaller
    than the minimum heights of what it holds (the Risk step drew its choices over its summary)."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QWidget

    def laid_out(layout: Any) -> list[Any]:  # the widgets of a layout and of the layouts inside it
        out = []
        for i in range(layout.count()):
            item = layout.itemAt(i)
            if item.widget() is not None:
                out.append(item.widget())
            elif item.layout() is not None:
                out += laid_out(item.layout())
        return out

    found = []
    for parent in [root, *root.findChildren(QWidget)]:
        layout = parent.layout()
        if layout is None or not parent.isVisible() or parent.objectName().startswith("qt_"):
            continue
        direct = set(parent.findChildren(QWidget, options=Qt.FindChildOption.FindDirectChildrenOnly))
        kids = [w for w in laid_out(layout) if w in direct and w.isVisible() and not w.isWindow()]
        for i, a in enumerate(kids):
            for b in kids[i + 1 :]:
                both = a.geometry().intersected(b.geometry())
                if both.width() > 1 and both.height() > 1:
                    found.append(
                        f"{type(a).__name__} {a.accessibleName()!r} and {type(b).__name__} "
                        f"{b.accessibleName()!r} overlap by {both.width()}×{both.height()}"
                    )
    return found


def _settle(app: Any) -> None:
    for _ in range(4):
        app.processEvents()


def walk(
    out: Path, size: tuple[int, int], say: Callable[[str], None] = lambda _m: None
) -> dict[str, list[str]]:
    """Render every screen at ``size``; save PNGs in ``out``; return {screen: clipped widgets}."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from agreements import run_demo
    from desktop.tasks import SyncRunner
    from desktop.ui.main_window import MainWindow, Session
    from desktop.ui.settings import Settings
    from desktop.ui.theme import apply_theme

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationDisplayName("PathShare")
    apply_theme(app)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="pathshare-screens-") as tmp:
        work = Path(tmp)
        say("Running the demo exchange for realistic screens…")
        # 400 rows: with 200 the demo's small cohort cannot reach k = 11 under the disclosure control.
        run_demo(work / "demo", rows=400, passphrase=PASSPHRASE, say=lambda _m: None)

        def window_on(vault: Path | None) -> Any:
            qs = QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat)
            session = Session(
                vault_path=vault or work / "new.vault", settings=Settings(qs), runner=SyncRunner(),
                synchronous=True,
            )
            window = MainWindow(session)
            window.show()
            window.resize(*size)
            _settle(app)
            return window

        def shot(name: str, window: Any) -> None:
            _settle(app)
            report[name] = clipped(window)
            window.grab().save(str(out / f"{name}.png"))

        # First run: the four pages.
        window = window_on(None)
        fr = window.first_run
        for i, name in enumerate(("01-welcome", "02-passphrase", "03-organization")):
            fr.pages.setCurrentIndex(i)
            shot(name, window)
        window.close()

        for org in ("district", "college"):
            vault = work / "demo" / f"{org}.vault"
            window = window_on(vault)
            if org == "district":
                window.unlock.passphrase.setText("not the passphrase")
                window.unlock.unlock.click()
                shot("05-unlock-wrong-passphrase", window)
            window.unlock.passphrase.setText(PASSPHRASE)
            window.unlock.unlock.click()
            ws = window.workspace
            for row in range(ws.sidebar.count()):
                ws.sidebar.setCurrentRow(row)
                title = ws.sidebar.item(row).text().lower().replace("'", "").replace(" ", "-")
                shot(f"{org}-{row + 1:02d}-{title}", window)
            if org == "district":
                row = ws.row_of("Agreements")
                agreements = ws.stack.widget(row)
                ws.sidebar.setCurrentRow(row)
                agreements.table.selectRow(0)
                shot(f"district-{row + 1:02d}-agreements-selected", window)
                agreements.new_agreement()
                agreements.form.add_library_elements(["birth_date", "race", "sex", "zip"])
                shot(f"district-{row + 1:02d}-agreement-form", window)
                form = agreements.form
                box = form.elements.parentWidget()
                top = box.mapTo(form.scroll.widget(), box.rect().topLeft()).y()
                form.scroll.verticalScrollBar().setValue(top)
                shot(f"district-{row + 1:02d}-agreement-form-elements", window)
                dialog = form.settings_dialog(form.element_names().index("birth_date"))
                dialog.show()
                shot(f"district-{row + 1:02d}-agreement-settings", dialog)
                dialog.close()
                agreements.show_list()
                prepare_walk(ws, work, lambda name, w=window: shot(name, w), app)
            else:
                receive_walk(ws, work, lambda name, w=window: shot(name, w), app)
            window.close()
    return report


def _until(app: Any, condition: Callable[[], bool], seconds: float = 60.0) -> bool:
    import time

    end = time.monotonic() + seconds
    while not condition() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.005)
    return condition()


def prepare_walk(ws: Any, work: Path, shot: Callable[[str], None], app: Any) -> None:
    """The clerk's Prepare steps on the demo's extract, one picture per step, sealed into
    ``work/screens.age`` (for the college's Receive pictures). Stops where a step does not advance."""
    prep = ws.prepare
    ws.sidebar.setCurrentRow(ws.row_of("Prepare a package"))
    prep.go_next()
    shot("district-prepare-2-extract")
    prep.choose_extract(str(work / "demo" / "district-extract.csv"))
    names = {2: "mapping", 3: "validation", 4: "preview", 5: "risk", 6: "seal"}
    for step in range(2, 7):
        if not _until(app, lambda step=step: prep.steps.currentIndex() == step or prep.message.isVisible()):
            break
        if prep.steps.currentIndex() != step:
            shot(f"district-prepare-{step}-stopped")
            return
        shot(f"district-prepare-{step + 1}-{names[step]}")
        if step == 5:  # the ways to share side by side, in their own tab
            prep.risk_tabs.setCurrentIndex(prep.risk_tabs.indexOf(prep.choices.parentWidget()))
            shot("district-prepare-6-risk-ways-to-share")
            prep.risk_tabs.setCurrentIndex(0)
        if step < 6:
            prep.go_next()
    prep.seal(str(work / "screens.age"))
    _until(app, lambda: prep.steps.currentIndex() == 7 or prep.message.isVisible())
    shot("district-prepare-8-done")


def receive_walk(ws: Any, work: Path, shot: Callable[[str], None], app: Any) -> None:
    """The college opens the package the Prepare walk sealed (when it did)."""
    package = work / "screens.age"
    if not package.is_file():
        return
    ws.sidebar.setCurrentRow(ws.row_of("Receive a package"))
    ws.receive.choose_package(str(package))
    ws.receive.out_dir.setText(str(work / "college-inbox"))
    ws.receive.receipt_path.setText(str(work / "college-receipt.json"))  # new: no replace question
    shot("college-receive-1-chosen")
    ws.receive.open_package()
    _until(app, lambda: ws.receive.result is not None or ws.receive.message.isVisible())
    shot("college-receive-2-opened")
    ws.sidebar.setCurrentRow(ws.row_of("Packages"))
    ws.packages.table.selectRow(0)
    shot("college-packages-selected")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m desktop.screenshots", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", default="1100x740", help="window size in Qt's units, WIDTHxHEIGHT")
    parser.add_argument("--scale", default="1", help="display scaling (2 = 200%%); set before Qt starts")
    args = parser.parse_args(argv)
    os.environ["QT_SCALE_FACTOR"] = args.scale
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    width, height = (int(n) for n in args.size.lower().split("x"))
    report = walk(args.out, (width, height), say=lambda m: print(m, file=sys.stderr))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
