"""Theme and settings: highlight colours that read in light and dark, settings without secrets."""

from __future__ import annotations

from PySide6.QtCore import QSettings
from PySide6.QtGui import QPalette


def _contrast(a, b) -> int:
    return abs(a.lightness() - b.lightness()) + abs(a.hue() - b.hue()) // 4


def test_changed_and_finding_cells_stand_out_in_light_and_dark(qapp):
    from desktop.ui.theme import changed_cell_brush, dark_palette, finding_cell_brush

    for palette in (QPalette(qapp.style().standardPalette()), dark_palette()):
        base = palette.color(QPalette.ColorRole.Base)
        text = palette.color(QPalette.ColorRole.Text)
        changed, finding = changed_cell_brush(palette), finding_cell_brush(palette)
        for colour in (changed, finding):
            assert colour != base and _contrast(colour, base) >= 10
            # Text stays readable on the highlight: it keeps the text/base lightness order.
            assert (colour.lightness() > text.lightness()) == (base.lightness() > text.lightness())
        assert changed != finding


def test_dark_theme_is_applied_from_the_environment(qapp, monkeypatch):
    from desktop.ui.theme import wants_dark

    monkeypatch.setenv("PATHSHARE_THEME", "dark")
    assert wants_dark()
    monkeypatch.setenv("PATHSHARE_THEME", "light")
    assert not wants_dark()


def test_settings_remember_folders_and_geometry_only(tmp_path):
    from PySide6.QtCore import QByteArray

    from desktop.ui.settings import VERSION, Settings

    path = tmp_path / "s.ini"
    settings = Settings(QSettings(str(path), QSettings.Format.IniFormat))
    assert settings.folder("extract") == str(__import__("deid").documents_folder())
    (tmp_path / "exports").mkdir()
    settings.set_folder("extract", tmp_path / "exports" / "sis.csv")
    settings.set_geometry(QByteArray(b"\x01\x02"))
    settings.sync()
    again = Settings(QSettings(str(path), QSettings.Format.IniFormat))
    assert again.folder("extract") == str(tmp_path / "exports")
    assert again.geometry() == QByteArray(b"\x01\x02")
    text = path.read_text()
    assert f"settings_version={VERSION}" in text
    # A folder that has gone falls back to Documents (or home) rather than a dead path.
    (tmp_path / "exports").rmdir()
    assert again.folder("extract") == str(__import__("deid").documents_folder())
