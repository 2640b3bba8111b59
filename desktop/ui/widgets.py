"""Small widgets every screen uses: an inline message bar, a drop zone, a progress panel, headings."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QPalette
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLayout,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from desktop.tasks import emit
from desktop.ui.theme import heading_font


def shown(text: str) -> str:
    """Text as the app shows it: control, bidi-override and invisible characters written as their escapes
    (deid.display_text, the rule the command line applies to everything it prints), so a partner's name
    or title cannot reverse or hide what is around it. Line breaks and tabs are kept."""
    from deid import display_text

    return display_text(text, keep="\n\t")


def heading(text: str, scale: float = 1.45) -> QLabel:
    """A screen title."""
    label = QLabel(shown(text))
    label.setFont(heading_font(label.font(), scale))
    label.setWordWrap(True)
    label.setAccessibleName(text)
    return label


class WrapLabel(QLabel):
    """A word-wrapped label exactly as tall as its text at its current width.

    (A plain wrapped QLabel is sized for a guessed width, which leaves big gaps above and below it.)
    """

    def __init__(self, text: str = "") -> None:
        super().__init__(shown(text))
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    def _fit(self) -> None:
        height = self.heightForWidth(max(1, self.width()))
        if height > 0 and height != self.height():
            self.setFixedHeight(height)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._fit()

    def setText(self, text: str) -> None:
        super().setText(shown(text))
        self._fit()


def paragraph(text: str = "") -> QLabel:
    """Wrapped body text (selectable, so a clerk can copy it)."""
    label = WrapLabel(text)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class MessageBar(QFrame):
    """An inline message (error, warning or information) shown in the window, never a traceback."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.setSpacing(2)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setAccessibleName("Message")
        layout.addWidget(self.label, 1)
        # What to do about it, under the sentence and apart from it (the error's hint).
        self.hint_label = QLabel()
        self.hint_label.setWordWrap(True)
        self.hint_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.hint_label.setAccessibleName("What to do")
        self.hint_label.hide()
        layout.addWidget(self.hint_label)
        self.hide()

    def show_error(self, text: str, hint: str | None = None) -> None:
        """Show one sentence as an error (and what to do about it on its own line)."""
        self._show(text, error=True, hint=hint)

    def show_problem(self, error: BaseException) -> None:
        """Show what went wrong — the one way every page shows a refusal (desktop/ui/problems.py decides
        the sentence): the sentence as an error, and what to do about it on its own line below."""
        from desktop.ui.problems import problem_of

        problem = problem_of(error)
        self._show(problem.message, error=True, hint=problem.hint)

    def hint(self) -> str:
        """The hint shown under the message ('' when none)."""
        return self.hint_label.text() if not self.hint_label.isHidden() else ""

    def show_info(self, text: str, hint: str | None = None) -> None:
        """Show one sentence as information (and what to do next on its own line)."""
        self._show(text, error=False, hint=hint)

    def _show(self, text: str, *, error: bool, hint: str | None = None) -> None:
        palette = self.palette()
        base = QApplicationPalette()
        if error:
            # Tinted from the theme (works light and dark): BrightText-ish red over the window colour.
            window = base.color(QPalette.ColorRole.Window)
            tint = (200, 40, 40)
            a = 0.22
            from PySide6.QtGui import QColor

            palette.setColor(
                QPalette.ColorRole.Window,
                QColor(*(round(t * a + c * (1 - a)) for t, c in zip(tint, window.getRgb()[:3], strict=True))),
            )
        else:
            palette.setColor(QPalette.ColorRole.Window, base.color(QPalette.ColorRole.AlternateBase))
        self.setPalette(palette)
        text = shown(text)
        self.label.setText(text)
        self.hint_label.setText(shown(hint or ""))
        self.hint_label.setVisible(bool(hint))
        self.setAccessibleDescription(f"{text} {self.hint_label.text()}".strip())
        self.show()

    def clear(self) -> None:
        """Hide the message."""
        self.label.clear()
        self.hint_label.clear()
        self.hint_label.hide()
        self.hide()

    def text(self) -> str:
        """The message shown ('' when hidden)."""
        return self.label.text() if self.isVisible() or not self.isHidden() else ""


def QApplicationPalette() -> QPalette:
    from PySide6.QtWidgets import QApplication

    return QApplication.palette()


class DropZone(QFrame):
    """A framed area that accepts files dropped on it (by extension) and offers a "Choose…" button."""

    file_dropped = Signal(str)
    choose_clicked = Signal()

    def __init__(
        self, prompt: str, extensions: Iterable[str], button_text: str, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.extensions = tuple(e.lower() for e in extensions)
        self.setAcceptDrops(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setFrameShadow(QFrame.Shadow.Sunken)
        self.setMinimumHeight(150)
        layout = QVBoxLayout(self)
        layout.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.prompt = QLabel(prompt)
        self.prompt.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.prompt.setWordWrap(False)
        self.button = QPushButton(button_text)
        self.button.setAccessibleName(button_text.replace("&", "").rstrip("…"))
        self.button.clicked.connect(self.choose_clicked)
        layout.addWidget(self.prompt)
        layout.addWidget(self.button, 0, Qt.AlignmentFlag.AlignCenter)
        self.setAccessibleName("Drop area")
        self.setAccessibleDescription(prompt)

    def _accepted(self, event: QDragEnterEvent | QDropEvent) -> str | None:
        mime = event.mimeData()
        if not mime.hasUrls():
            return None
        for url in mime.urls():
            if url.isLocalFile() and Path(url.toLocalFile()).suffix.lower() in self.extensions:
                return url.toLocalFile()
        return None

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._accepted(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        if self._accepted(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        path = self._accepted(event)
        if path:
            event.acceptProposedAction()
            emit(self.file_dropped, path)
        else:
            event.ignore()


class ProgressPanel(QFrame):
    """Progress of a long job: a stage line, a bar and a Cancel button (Esc cancels)."""

    cancel_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        self.stage = QLabel("Working…")
        self.stage.setMinimumWidth(220)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(True)
        self.bar.setFormat("%p%")
        self.bar.setAccessibleName("Progress")
        self.cancel = QPushButton("Cancel")
        self.cancel.setAccessibleName("Cancel the running job")
        self.cancel.setShortcut(Qt.Key.Key_Escape)
        self.cancel.clicked.connect(self.cancel_clicked)
        layout.addWidget(self.stage)
        layout.addWidget(self.bar, 1)
        layout.addWidget(self.cancel)
        self.hide()

    def start(self, title: str) -> None:
        """Show the panel for a job called ``title``."""
        self.stage.setText(f"{title}…")
        self.bar.setValue(0)
        self.cancel.setEnabled(True)
        self.show()

    def update_progress(self, fraction: float, stage: str) -> None:
        """Move the bar to ``fraction`` (0..1) and show ``stage``."""
        self.bar.setValue(round(max(0.0, min(1.0, fraction)) * 1000))
        if stage:
            self.stage.setText(stage[:1].upper() + stage[1:])

    def finish(self) -> None:
        """Hide the panel."""
        self.hide()


def scrolling(body: QWidget) -> QScrollArea:
    """``body`` in a frameless scroll area that resizes it: how a page stays usable in a small window."""
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QScrollArea.Shape.NoFrame)
    scroll.setWidget(body)
    return scroll


def button(text: str, accessible: str | None = None, default: bool = False) -> QPushButton:
    """A push button with an accessible name (the text without mnemonics and ellipsis)."""
    b = QPushButton(text)
    b.setAccessibleName(accessible or text.replace("&", "").rstrip("…").strip())
    if default:
        b.setDefault(True)
        b.setAutoDefault(True)
    return b


def group_fingerprint(fingerprint: str) -> str:
    """Spread a fingerprint's groups out for reading aloud (``ABCDE-FGHIJ`` → ``ABCDE  FGHIJ``)."""
    groups = [g for g in fingerprint.replace(" ", "-").split("-") if g]
    lines = ["   ".join(groups[i : i + 4]) for i in range(0, len(groups), 4)]
    return "\n".join(lines)


class _WheelGuard(QObject):
    """Ignores mouse-wheel events aimed at a combo box or spin box that does not have keyboard focus.

    Scrolling down a long form would otherwise change whichever choice passed under the pointer (the
    agreement's legal basis switched to another citation while the form still said "complete"). The
    event is ignored, not eaten, so it goes on to the scroll area around the form."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            event.type() == QEvent.Type.Wheel
            and isinstance(watched, QComboBox | QAbstractSpinBox)
            and not watched.hasFocus()
        ):
            event.ignore()
            return True
        return False


_wheel_guard: _WheelGuard | None = None


def install_wheel_guard() -> None:
    """Install the application-wide wheel guard once (every window, dialog and page gets it)."""
    global _wheel_guard
    app = QApplication.instance()
    if app is None or _wheel_guard is not None:
        return
    _wheel_guard = _WheelGuard(app)
    app.installEventFilter(_wheel_guard)


class FlowLayout(QLayout):
    """Lays widgets left to right and wraps onto the next line when the row is full, like words in a
    paragraph: a row of buttons stays readable at 800×600 and at 200% scaling instead of clipping
    ("ew agreement"). ``addStretch`` has no meaning here; ``add_right`` keeps a widget at the far end
    of the last line when there is room."""

    def __init__(self, parent: QWidget | None = None, spacing: int = 6) -> None:
        super().__init__(parent)
        self._items: list[Any] = []
        self._right: set[int] = set()
        self.setSpacing(spacing)
        self.setContentsMargins(0, 0, 0, 0)

    def add_right(self, widget: QWidget) -> None:
        self.addWidget(widget)
        self._right.add(id(self._items[-1]))

    # -- QLayout --------------------------------------------------------------------------------
    def addItem(self, item: Any) -> None:
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> Any:
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> Any:
        if 0 <= index < len(self._items):
            item = self._items.pop(index)
            self._right.discard(id(item))
            return item
        return None

    def expandingDirections(self) -> Qt.Orientation:
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return self._arrange(QRect(0, 0, width, 0), apply=False)

    def setGeometry(self, rect: QRect) -> None:
        super().setGeometry(rect)
        self._arrange(rect, apply=True)

    def sizeHint(self) -> QSize:
        return self.minimumSize()

    def minimumSize(self) -> QSize:
        # As narrow as the widest single widget: everything else can wrap.
        size = QSize()
        for item in self._visible():
            size = size.expandedTo(item.minimumSize().expandedTo(item.sizeHint()))
        m = self.contentsMargins()
        return size + QSize(m.left() + m.right(), m.top() + m.bottom())

    def _visible(self) -> list[Any]:
        return [i for i in self._items if not (i.widget() is not None and i.widget().isHidden())]

    def _arrange(self, rect: QRect, *, apply: bool) -> int:
        m = self.contentsMargins()
        area = rect.adjusted(m.left(), m.top(), -m.right(), -m.bottom())
        gap = self.spacing()
        lines: list[list[Any]] = [[]]
        x = 0
        for item in self._visible():
            w = item.sizeHint().width()
            if lines[-1] and x + w > area.width():
                lines.append([])
                x = 0
            lines[-1].append(item)
            x += w + gap
        y = area.y()
        for line in lines:
            height = max((i.sizeHint().height() for i in line), default=0)
            left = [i for i in line if id(i) not in self._right]
            right = [i for i in line if id(i) in self._right]
            x = area.x()
            for item in left:
                if apply:
                    item.setGeometry(QRect(QPoint(x, y), item.sizeHint()))
                x += item.sizeHint().width() + gap
            x = area.right() + 1
            for item in reversed(right):
                x -= item.sizeHint().width()
                if apply:
                    item.setGeometry(QRect(QPoint(x, y), item.sizeHint()))
                x -= gap
            y += height + gap
        return y - gap - area.y() + m.top() + m.bottom() if lines[0] else m.top() + m.bottom()
