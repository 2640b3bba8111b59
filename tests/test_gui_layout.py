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


@pytest.mark.parametrize(("size", "scale"), [("800x600", "1"), ("960x540", "2")])
def test_no_screen_clips_a_button_or_label(tmp_path, size, scale):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run(
        [sys.executable, "-c", CODE, str(tmp_path), "--size", size, "--scale", scale],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
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
