"""Every screen at 800×600 and at 1920×1080 with 200% scaling (960×540 in Qt's units): no button
narrower than its label, no label cut short, no wrapped label given too few lines (issue 17: at 800×600
"ew agreement", "rt signed bun" and a cut wrong-passphrase message).

Each size runs ``desktop.screenshots`` (the same walk that makes docs/screenshots/) in a child process,
because the scale factor must be set before Qt starts and the app's styling is global.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

CODE = (
    "import sys, agreements._vault as v\n"
    "v._TEST_KDF_ITER = 1000\n"  # the layout does not depend on the key derivation's cost
    "from desktop.screenshots import main\n"
    "raise SystemExit(main(sys.argv[1:]))\n"
)


SIZES = [("800x600", "1"), ("960x540", "2")]


@pytest.fixture(scope="module")
def walks(tmp_path_factory) -> dict[tuple[str, str], tuple[subprocess.Popen, object]]:
    """Both walks, started together: each is a child process of its own and mostly waits on Qt's
    drawing, so on two cores the pair takes about as long as one (the walk used to run twice in a row,
    the slowest test of the suite)."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    started = {}
    for size, scale in SIZES:
        folder = tmp_path_factory.mktemp(f"layout-{size}")
        proc = subprocess.Popen(
            [sys.executable, "-c", CODE, str(folder), "--size", size, "--scale", scale],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        started[(size, scale)] = (proc, folder)
    yield started
    for proc, _ in started.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(("size", "scale"), SIZES)
def test_no_screen_clips_a_button_or_label(walks, size, scale):
    proc, tmp_path = walks[(size, scale)]
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
    report = json.loads(stdout)
    # Every screen was visited and drawn (a walk that silently stopped early would pass otherwise).
    assert len(report) >= 20
    assert {f"{name}.png" for name in report} == {p.name for p in tmp_path.glob("*.png")}
    width, height = (int(n) * int(scale) for n in size.split("x"))
    from PySide6.QtGui import QImage

    image = QImage(str(tmp_path / "district-06-agreements.png"))
    assert (image.width(), image.height()) == (width, height)
    problems = {screen: found for screen, found in report.items() if found}
    assert not problems, json.dumps(problems, indent=1)


def test_the_clip_check_sees_a_clipped_button(qtbot):
    """The check itself: a button squeezed below its label's width is reported, a roomy one is not."""
    from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

    from desktop.screenshots import clipped

    root = QWidget()
    qtbot.addWidget(root)
    layout = QHBoxLayout(root)
    squeezed = QPushButton("Export signed bundle…")
    squeezed.setFixedWidth(40)
    roomy = QPushButton("OK")
    label = QLabel("A long label that cannot wrap and is squeezed")
    label.setMaximumWidth(50)
    for w in (squeezed, roomy, label):
        layout.addWidget(w)
    root.show()
    found = clipped(root)
    assert any("Export signed bundle" in f for f in found)
    assert any("A long label" in f for f in found)
    assert not any("'OK'" in f for f in found)


def test_the_overlap_check_sees_widgets_drawn_over_one_another(qtbot):
    """The check itself: a layout squeezed below its widgets' minimum heights draws them over one another
    (the Risk step's choices over its summary); a layout with room does not."""
    from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

    from desktop.screenshots import overlapping

    root = QWidget()
    qtbot.addWidget(root)
    layout = QVBoxLayout(root)
    tall = QLabel("a summary")
    tall.setMinimumHeight(300)
    below = QPushButton("Use this way")
    layout.addWidget(tall)
    layout.addWidget(below)
    root.show()
    root.setFixedSize(300, 500)
    qtbot.waitExposed(root)
    assert overlapping(root) == []
    root.setFixedSize(300, 200)  # smaller than the label's minimum: Qt overlaps the two
    qtbot.wait(20)
    assert len(overlapping(root)) == 1
