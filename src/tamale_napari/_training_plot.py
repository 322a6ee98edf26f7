"""A small live plot of training: loss above, validation scores below (QPainter, no deps).

:class:`TrainingPlot` takes the ``metrics`` of the training loop's progress events
(:meth:`TrainingPlot.add`), keeps one series per quantity and repaints: the training loss
(log scale) in the upper panel, validation F1@0.5, PQ and semantic IoU (0 to 1) in the
lower one, each with its latest value written beside it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from magicgui.widgets import Container
from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QPainter, QPainterPath, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget

__all__ = ["SERIES", "TrainingPlot", "plot_container"]

SERIES: dict[str, tuple[str, str]] = {
    "loss": ("loss", "#e0e0e0"),
    "val_f1": ("F1", "#4fc3f7"),
    "val_pq": ("PQ", "#ffb74d"),
    "val_iou": ("IoU", "#81c784"),
}


class TrainingPlot(QWidget):
    """Loss and validation curves against iterations."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.series: dict[str, list[tuple[float, float]]] = {k: [] for k in SERIES}
        self.total: int | None = None
        self.setMinimumHeight(170)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip(
            "Training loss (top, log scale) and validation F1 at IoU 0.5, PQ and semantic IoU "
            "(bottom, 0-1) "
            "against iterations"
        )

    def clear(self, total: int | None = None) -> None:
        """Forget every point (a new run of ``total`` iterations)."""
        for values in self.series.values():
            values.clear()
        self.total = total
        self.update()

    def add(self, metrics: Mapping[str, float], total: int | None = None) -> None:
        """Add the values of one progress event (those it has)."""
        if "iteration" not in metrics:
            return
        it = float(metrics["iteration"])
        if total:
            self.total = total
        changed = False
        for key, values in self.series.items():
            v = metrics.get(key)
            if v is None or not math.isfinite(float(v)):
                continue
            if values and values[-1][0] == it:
                values[-1] = (it, float(v))
            else:
                values.append((it, float(v)))
            changed = True
        if changed:
            self.update()

    # -- drawing -------------------------------------------------------------------------
    def paintEvent(self, _event: object) -> None:
        painter = QPainter(self)
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            w, h = self.width(), self.height()
            painter.fillRect(0, 0, w, h, QColor("#262930"))
            top = QRectF(36, 8, w - 118, h * 0.5 - 16)
            bottom = QRectF(36, h * 0.5 + 4, w - 118, h * 0.5 - 24)
            x_max = float(self.total or max([p[0] for p in self.series["loss"]] or [1.0]))
            self._frame(painter, top, "loss")
            self._frame(painter, bottom, "val")
            loss = [(x, math.log10(max(y, 1e-8))) for x, y in self.series["loss"]]
            if loss:
                ys = [y for _, y in loss]
                lo, hi = min(ys), max(ys)
                if hi - lo < 1e-6:
                    lo, hi = lo - 0.5, hi + 0.5
                self._curve(painter, top, loss, x_max, lo, hi, SERIES["loss"][1])
                self._label(painter, top, 0, f"loss {self.series['loss'][-1][1]:.3g}", "loss")
            row = 0
            for key in ("val_f1", "val_pq", "val_iou"):
                pts = self.series[key]
                if not pts:
                    continue
                self._curve(painter, bottom, pts, x_max, 0.0, 1.0, SERIES[key][1], dots=True)
                self._label(painter, bottom, row, f"{SERIES[key][0]} {pts[-1][1]:.3f}", key)
                row += 1
            painter.setPen(QColor("#9e9e9e"))
            painter.drawText(QRectF(36, h - 18, w - 118, 16), Qt.AlignmentFlag.AlignRight,
                             f"iteration {int(x_max)}")  # fmt: skip
        finally:
            painter.end()

    def _frame(self, painter: QPainter, rect: QRectF, title: str) -> None:
        painter.setPen(QPen(QColor("#5a5f6a"), 1))
        painter.drawRect(rect)
        painter.setPen(QColor("#9e9e9e"))
        painter.drawText(QRectF(0, rect.top(), 32, 14), Qt.AlignmentFlag.AlignRight, title)

    def _curve(
        self,
        painter: QPainter,
        rect: QRectF,
        points: list[tuple[float, float]],
        x_max: float,
        lo: float,
        hi: float,
        color: str,
        dots: bool = False,
    ) -> None:
        def at(x: float, y: float) -> QPointF:
            fx = min(max(x / max(x_max, 1.0), 0.0), 1.0)
            fy = min(max((y - lo) / (hi - lo), 0.0), 1.0)
            return QPointF(rect.left() + fx * rect.width(), rect.bottom() - fy * rect.height())

        path = QPainterPath(at(*points[0]))
        for x, y in points[1:]:
            path.lineTo(at(x, y))
        painter.setPen(QPen(QColor(color), 1.5))
        painter.drawPath(path)
        if dots:
            painter.setBrush(QColor(color))
            for x, y in points:
                painter.drawEllipse(at(x, y), 2.5, 2.5)
            painter.setBrush(Qt.BrushStyle.NoBrush)

    def _label(self, painter: QPainter, rect: QRectF, row: int, text: str, key: str) -> None:
        painter.setPen(QColor(SERIES[key][1]))
        painter.drawText(QRectF(rect.right() + 6, rect.top() + 16 * row, 112, 16), text)


def plot_container(plot: TrainingPlot) -> Container:
    """``plot`` inside a magicgui container (to place it among a dock's widgets)."""
    box = Container(labels=False)
    box.margins = (0, 0, 0, 0)
    box.native.layout().addWidget(plot)
    return box
