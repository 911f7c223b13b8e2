"""ONE renderer for every table a reader sees (:class:`Table`: markdown in Jupyter and in ``print``,
wrapped text in a terminal), and the percent unit of accuracies."""
from __future__ import annotations

import math
import textwrap
from typing import Any, Mapping, Sequence


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
                   digits: int = 1) -> str:
    """A markdown table of ``rows`` (dicts); ``columns`` picks and orders the keys."""
    if not rows:
        return "(no rows)"
    if columns is None:
        columns = []
        for row in rows:
            columns += [k for k in row if k not in columns]
    head = "| " + " | ".join(columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(_fmt(row.get(c), digits) for c in columns) + " |" for row in rows]
    return "\n".join([head, rule, *body])


TERMINAL_WIDTH = 100          # the terminal `python -m fptlib results` fits by default
COLUMN_GAP = "  "


def _fit_widths(natural: Sequence[int], room: int) -> list[int]:
    """Column widths that sum to at most ``room`` (each at least 4): every column keeps its natural
    width when all fit, else the narrow ones keep theirs and the wide ones share what is left."""
    widths = list(natural)
    order = sorted(range(len(widths)), key=widths.__getitem__)
    left = room
    for done, i in enumerate(order):
        share = max(4, left // (len(order) - done))
        widths[i] = min(widths[i], share)
        left -= widths[i]
    return widths


def _wrap_row(cells: Sequence[str], widths: Sequence[int]) -> list[str]:
    """One table row as lines: each cell wrapped to its column's width, the columns side by side."""
    wrapped = [textwrap.wrap(c, w, break_on_hyphens=False) or [""] for c, w in zip(cells, widths)]
    height = max(map(len, wrapped))
    return [COLUMN_GAP.join(col[i].ljust(w) if i < len(col) else " " * w for col, w in zip(wrapped, widths)).rstrip()
            for i in range(height)]


class Table:
    """A table that shows as markdown in Jupyter and as aligned text in ``print`` / nbval.

    Its ``text/plain`` form is the same markdown, so nbval compares something readable.
    ``notes``: lines printed under the table (sources, captions).
    """

    def __init__(self, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
                 title: str | None = None, digits: int = 1, notes: Sequence[str] = ()):
        self.rows = [dict(r) for r in rows]
        self.columns = list(columns) if columns else None
        self.title = title
        self.digits = digits
        self.notes = list(notes)

    def markdown(self) -> str:
        text = markdown_table(self.rows, self.columns, self.digits)
        text = f"**{self.title}**\n\n{text}" if self.title else text
        return "\n".join([text, "", *self.notes]) if self.notes else text

    def text(self, width: int = TERMINAL_WIDTH) -> str:
        """The table as plain text for a terminal of ``width`` columns: each cell wrapped
        (``textwrap``) so that no line is longer than ``width``; the title and notes wrapped too."""
        columns = self.columns or list(dict.fromkeys(k for row in self.rows for k in row))
        cells = [[_fmt(row.get(c), self.digits) for c in columns] for row in self.rows]
        widths = _fit_widths([max([*map(len, c.split()), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)],
                             width - len(COLUMN_GAP) * (len(columns) - 1))
        lines = [*_wrap_row(columns, widths), COLUMN_GAP.join("-" * w for w in widths)]
        for row in cells:
            lines += _wrap_row(row, widths)
        out = [*textwrap.wrap(self.title.replace("**", ""), width), ""] if self.title else []
        out += lines if self.rows else ["(no rows)"]
        if self.notes:
            out.append("")
            out += [wrapped for note in self.notes
                    for wrapped in textwrap.wrap(note.replace("**", ""), width, subsequent_indent="  ")]
        return "\n".join(out)

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def __repr__(self) -> str:
        return self.markdown()

    __str__ = __repr__


def as_percent(x: float | None) -> float | None:
    """Accuracy as a percentage (the paper's unit); fractions in [0, 1] are scaled by 100."""
    if x is None:
        return None
    x = float(x)
    return x * 100.0 if x <= 1.0 else x
