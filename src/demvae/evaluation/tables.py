"""GitHub-markdown tables for results, and side-by-side comparison with the paper.

Cells: floats use ``floatfmt``; a ``(mean, spread)`` tuple prints as
``mean ± spread``; ``None``, NaN or a missing key prints as an en dash "–".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Integral, Real

from demvae.metrics import heading

__all__ = ["format_table", "side_by_side", "side_by_side_cells", "format_cell", "MISSING"]

MISSING = "–"


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, Real) and not isinstance(value, Integral) and math.isnan(value))


def format_cell(value, floatfmt: str = ".2f") -> str:
    """One table cell: number, ``mean ± spread`` for a 2-tuple, text, or "–" if missing."""
    if _is_missing(value):
        return MISSING
    if isinstance(value, tuple) and len(value) == 2:
        mean, spread = value
        if _is_missing(mean):
            return MISSING
        if _is_missing(spread):
            return format_cell(mean, floatfmt)
        return f"{format(mean, floatfmt)} ± {format(spread, floatfmt)}"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Real):
        return format(float(value), floatfmt)
    return str(value).replace("|", "\\|").replace("\n", " ")


def _markdown(header: Sequence[str], body: Sequence[Sequence[str]], title: str | None) -> str:
    lines = []
    if title:
        lines += [f"**{title}**", ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def format_table(
    rows: list[dict],
    columns: list[str],
    title: str | None = None,
    floatfmt: str = ".2f",
    header: list[str] | None = None,
) -> str:
    """A markdown table with one line per dict in ``rows`` and the given ``columns``.

    Missing keys and ``None``/NaN values print as "–"; a ``(mean, std)`` tuple
    prints as ``mean ± std``. ``title`` (optional) is printed in bold above;
    ``header``: the columns' printed names (default: the columns).
    """
    body = [[format_cell(row.get(col), floatfmt) for col in columns] for row in rows]
    return _markdown([format_cell(c) for c in header or columns], body, title)


def _mean(value):
    if isinstance(value, tuple):
        return value[0] if value else None
    return value


def side_by_side(
    ours: Mapping[str, Mapping[str, float | tuple[float, float]]],
    paper: Mapping[str, Mapping[str, float]],
    metrics: list[str],
    title: str | None = None,
    floatfmt: str = ".2f",
) -> str:
    """Compare our numbers with the paper's: per metric the columns ``paper``, ``ours``, ``Δ``.

    Rows are the paper's row names in order, then rows only we have. ``ours``
    values may be ``(mean, std)`` tuples (printed ``mean ± std``); ``Δ`` is
    ``ours_mean − paper`` and is "–" when either side is missing.
    """
    return _markdown(*side_by_side_cells(ours, paper, metrics, floatfmt), title)


def side_by_side_cells(
    ours: Mapping[str, Mapping[str, float | tuple[float, float]]],
    paper: Mapping[str, Mapping[str, float]],
    metrics: list[str],
    floatfmt: str = ".2f",
) -> tuple[list[str], list[list[str]]]:
    """The header and formatted rows of :func:`side_by_side` (for other renderers, e.g. HTML)."""
    names = list(paper) + [r for r in ours if r not in paper]
    header = ["model"]
    for m in metrics:
        name = heading(m)  # the registry's title and direction: "BLEU ↑"; an undeclared key as it is
        header += [f"{name} (paper)", f"{name} (ours)", f"{name} Δ"]
    body = []
    for name in names:
        p_row = paper.get(name, {})
        o_row = ours.get(name, {})
        cells = [format_cell(name)]
        for m in metrics:
            p = p_row.get(m)
            o = o_row.get(m)
            o_mean = _mean(o)
            if p is None or _is_missing(p) or _is_missing(o_mean):
                delta = MISSING
            else:
                diff = float(o_mean) - float(p)
                delta = format(diff, floatfmt)
                if float(delta) == 0:
                    delta = format(0.0, floatfmt)  # no "-0.00"
                elif diff > 0:
                    delta = "+" + delta
            cells += [format_cell(p, floatfmt), format_cell(o, floatfmt), delta]
        body.append(cells)
    return header, body
