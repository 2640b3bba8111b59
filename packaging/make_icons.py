"""Render packaging/icons/pathshare.svg into the icon files the builds use (run when the SVG changes).

    .venv/bin/python packaging/make_icons.py

Writes pathshare.png (256 px: Linux, the .desktop entry), pathshare.ico (Windows) and pathshare.icns
(macOS). Qt renders the SVG; the .ico and .icns containers are written here with PNG images inside
(both formats allow that), so no image library beyond Qt is needed.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

ICONS = Path(__file__).resolve().parent / "icons"


def render_png(svg: Path, size: int) -> bytes:
    """The SVG drawn at ``size`` x ``size`` pixels, as PNG bytes."""
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    QSvgRenderer(str(svg)).render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(data.data())


def ico(pngs: dict[int, bytes]) -> bytes:
    """A Windows .ico holding PNG images (size 256 is written as 0, as the format wants)."""
    header = struct.pack("<HHH", 0, 1, len(pngs))
    offset = 6 + 16 * len(pngs)
    entries, blobs = b"", b""
    for size, png in sorted(pngs.items()):
        side = 0 if size >= 256 else size
        entries += struct.pack("<BBBBHHII", side, side, 0, 0, 1, 32, len(png), offset + len(blobs))
        blobs += png
    return header + entries + blobs


def icns(pngs: dict[int, bytes]) -> bytes:
    """A macOS .icns holding PNG images (types ic07/ic08/ic09: 128, 256, 512 px)."""
    kinds = {128: b"ic07", 256: b"ic08", 512: b"ic09"}
    chosen = sorted((s, p) for s, p in pngs.items() if s in kinds)
    body = b"".join(kinds[s] + struct.pack(">I", 8 + len(p)) + p for s, p in chosen)
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def main() -> int:
    """Write the icon files next to the SVG."""
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 (Qt needs one)
    svg = ICONS / "pathshare.svg"
    pngs = {size: render_png(svg, size) for size in (16, 32, 48, 128, 256, 512)}
    (ICONS / "pathshare.png").write_bytes(pngs[256])
    (ICONS / "pathshare.ico").write_bytes(ico({s: pngs[s] for s in (16, 32, 48, 256)}))
    (ICONS / "pathshare.icns").write_bytes(icns(pngs))
    for name in ("pathshare.png", "pathshare.ico", "pathshare.icns"):
        print(f"{name}: {(ICONS / name).stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
