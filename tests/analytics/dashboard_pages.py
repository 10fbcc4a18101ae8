"""Reading a dashboard page as a person sees it: its tables' cells, and its CSV exports."""

import csv
import io
from html.parser import HTMLParser


class _Tables(HTMLParser):
    """The text of every cell of every <table data-table="key"> of a page, by key."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._key: str | None = None
        self._in_body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "table" and "data-table" in attributes:
            self._key = attributes["data-table"]
            self.tables[self._key] = []
        elif self._key and tag == "tbody":
            self._in_body = True
        elif self._key and self._in_body and tag == "tr":
            self.tables[self._key].append([])
        elif self._key and self._in_body and tag == "td":
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.tables[self._key][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "table":
            self._key = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def page_tables(html: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def csv_rows(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode())))


def as_shown(raw: str, kind: str) -> str | None:
    """How the page writes a CSV value of a column of `kind`; None where the page rounds it
    otherwise (durations)."""
    if raw == "":
        return "\N{EN DASH}"
    if kind in ("seconds", "hours"):
        return None
    return raw


def assert_csv_equals_page(client, url: str, params: dict, page) -> None:
    """Every table of the page, exported as CSV, holds the same rows and values as shown."""
    shown = page_tables(page.content.decode())
    for table in page.context["tables"]:
        rows = csv_rows(client.get(url, {**params, "export": table.key}))
        assert rows[0] == [column.label for column in table.columns]
        on_page = [row for row in shown[table.key] if len(row) == len(table.columns)]
        assert len(rows) - 1 == len(on_page) == len(table.rows), table.key
        for exported, cells in zip(rows[1:], on_page, strict=True):
            for column, raw, cell in zip(table.columns, exported, cells, strict=True):
                if column.kind in ("ratio", "share") and raw:
                    # The CSV keeps 4 places of the fraction, the page 1 of the percentage.
                    assert abs(float(raw) * 100 - float(cell.rstrip("%"))) <= 0.051, (table.key, raw, cell)
                    continue
                expected = as_shown(raw, column.kind)
                assert expected is None or expected == cell, (table.key, column.key, raw, cell)
