"""A dashboard's tables and charts: the table is the truth (the page shows it, CSV exports it, the
tests read it); a chart is drawn from the same rows by static/analytics/dashboards.js.

Cells keep their raw value (CSV: ratios as fractions to 4 places, hours and seconds to 1 place,
none as empty) and are shown formatted (a ratio as a percentage, none as a dash).
"""

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from typing import Any

INT, RATIO, HOURS, SECONDS, TEXT, SHARE = "int", "ratio", "hours", "seconds", "text", "share"
NONE_SHOWN = "\u2013"  # an en dash


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = INT  # INT, RATIO, HOURS, SECONDS, TEXT; SHARE: a ratio shown as a heat-map cell


@dataclass(frozen=True)
class Chart:
    """Which columns to draw: `x` labels the points, each of `series` is one dataset. Series
    differ by point style and dash pattern as well as colour (dashboards.js)."""

    x: str
    series: tuple[str, ...]
    kind: str = "bar"  # "bar" or "line"
    description: str = ""  # the canvas's aria-label


@dataclass(frozen=True)
class Cell:
    text: str
    css: str = ""


def _raw(value: Any, kind: str) -> Any:
    if value is None:
        return ""
    if kind in (RATIO, SHARE):
        return round(float(value), 4)
    if kind in (HOURS, SECONDS):
        return round(float(value), 1)
    if isinstance(value, date):
        return value.isoformat()
    return value


def shown(value: Any, kind: str) -> str:
    """How a value reads on the page."""
    if value is None:
        return NONE_SHOWN
    if kind in (RATIO, SHARE):
        return f"{float(value) * 100:.1f}%"
    if kind == HOURS:
        return f"{float(value):.1f} h"
    if kind == SECONDS:
        return _duration(float(value))
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def shade(value: Any) -> str:
    """The heat-map class of a share: shade-0 (under 10%) ... shade-9 (90% and over)."""
    if value is None:
        return "shade-none"
    return f"shade-{min(9, max(0, int(float(value) * 10)))}"


@dataclass
class Table:
    key: str  # ?export=<key>; unique within its dashboard
    title: str
    columns: list[Column]
    rows: list[list[Any]]
    chart: Chart | None = None
    note: str = ""
    links: list[str | None] = field(default_factory=list)  # per row: where its first cell leads

    @property
    def chart_json_id(self) -> str:
        return f"chart-data-{self.key}"

    def cells(self) -> list[list[Cell]]:
        return [
            [
                Cell(shown(value, column.kind), shade(value) if column.kind == SHARE else "")
                for column, value in zip(self.columns, row, strict=True)
            ]
            for row in self.rows
        ]

    def body(self) -> list[tuple[str | None, list[Cell]]]:
        links = self.links or [None] * len(self.rows)
        return list(zip(links, self.cells(), strict=True))

    def chart_data(self) -> dict | None:
        """The chart's data for json_script: labels and one dataset per series column."""
        if self.chart is None:
            return None
        index = {column.key: number for number, column in enumerate(self.columns)}
        kinds = {column.key: column.kind for column in self.columns}
        percent = all(kinds[name] in (RATIO, SHARE) for name in self.chart.series)
        return {
            "type": self.chart.kind,
            "percent": percent,
            "labels": [shown(row[index[self.chart.x]], kinds[self.chart.x]) for row in self.rows],
            "datasets": [
                {
                    "label": next(column.label for column in self.columns if column.key == name),
                    "data": [
                        None if row[index[name]] is None else _chart_value(row[index[name]], percent)
                        for row in self.rows
                    ],
                }
                for name in self.chart.series
            ],
        }

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([column.label for column in self.columns])
        for row in self.rows:
            writer.writerow(
                [_raw(value, column.kind) for column, value in zip(self.columns, row, strict=True)]
            )
        return out.getvalue()


def _chart_value(value: Any, percent: bool) -> float:
    return round(float(value) * 100, 2) if percent else round(float(value), 2)
