"""The paper's qualitative claims about a table, checked by the program on the rows' mean ± std over seeds.

A :class:`Claim` names the (row, metric) cells it reads and a predicate over them that returns a
:class:`Verdict`: ✓ (holds beyond the seeds' spread), ✗ (its opposite holds beyond it), "within noise"
(the difference is not larger than the spread), or "not run" (a row it reads is missing, e.g. a ``--rows``
subset). The predicates are built from three comparisons:

* ``above(a, b, metric)``: a's mean exceeds b's by more than ``std_a + std_b``; with one seed on either side
  there is no spread to judge, so the verdict is "within noise" whatever the difference;
* ``at_most(row, metric, bound)`` / ``exceeds(row, metric, bound)``: the whole interval mean ± std lies below
  (above) a fixed bound; the bound is its own tolerance, so one seed is judged (std 0);
* ``all_of(...)``: ✓ when every part holds, ✗ when one fails, else "within noise".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Cell", "Cells", "Verdict", "Claim", "HOLDS", "FAILS", "NOISE", "NOT_RUN", "above", "below", "highest",
           "at_most", "exceeds", "all_of", "check_claims", "claims_markdown"]

HOLDS, FAILS, NOISE, NOT_RUN = "✓", "✗", "within noise", "not run"


@dataclass(frozen=True)
class Cell:
    """One metric of one table row over the seeds that ran."""

    mean: float
    std: float
    """Sample standard deviation (0 for one seed)."""
    n: int
    """Seeds."""

    def __str__(self) -> str:
        return f"{_num(self.mean)} ± {_num(self.std)}"


Cells = Mapping[str, Mapping[str, Cell]]
"""Row label -> metric -> :class:`Cell`."""


@dataclass(frozen=True)
class Verdict:
    mark: str
    """:data:`HOLDS`, :data:`FAILS`, :data:`NOISE` or :data:`NOT_RUN`."""
    numbers: str
    """The numbers behind the verdict."""


Check = Callable[[Cells], Verdict]


@dataclass(frozen=True)
class Claim:
    name: str
    """The claim in words, as the paper makes it."""
    reads: tuple[tuple[str, str], ...]
    """The (row label, metric) cells the predicate reads."""
    predicate: Check

    def check(self, cells: Cells) -> Verdict:
        missing = [f"{row} {metric}" for row, metric in self.reads if metric not in cells.get(row, {})]
        if missing:
            return Verdict(NOT_RUN, "missing: " + ", ".join(missing))
        return self.predicate(cells)


def _num(x: float) -> str:
    return format(x, ".4g")


def _compare(a: str, b: str, metric: str, sign: int) -> tuple[tuple[tuple[str, str], ...], Check]:
    def check(cells: Cells) -> Verdict:
        x, y = cells[a][metric], cells[b][metric]
        diff, spread = x.mean - y.mean, x.std + y.std
        numbers = f"{a} {metric} {x} vs {b} {y}: difference {diff:+.4g}"
        if min(x.n, y.n) < 2:
            return Verdict(NOISE, numbers + " (one seed: no spread to judge)")
        numbers += f", spread {_num(spread)}"
        if abs(diff) <= spread:
            return Verdict(NOISE, numbers)
        return Verdict(HOLDS if sign * diff > 0 else FAILS, numbers)

    return ((a, metric), (b, metric)), check


def above(a: str, b: str, metric: str, name: str | None = None) -> Claim:
    """Row ``a``'s ``metric`` is higher than row ``b``'s."""
    reads, check = _compare(a, b, metric, +1)
    return Claim(name or f"{a} has a higher {metric} than {b}", reads, check)


def below(a: str, b: str, metric: str, name: str | None = None) -> Claim:
    """Row ``a``'s ``metric`` is lower than row ``b``'s."""
    reads, check = _compare(a, b, metric, -1)
    return Claim(name or f"{a} has a lower {metric} than {b}", reads, check)


def highest(best: Sequence[str], others: Sequence[str], metric: str, name: str | None = None) -> Claim:
    """The best of the ``best`` rows beats the best of the ``others`` on ``metric``."""
    def check(cells: Cells) -> Verdict:
        a = max(best, key=lambda r: cells[r][metric].mean)
        b = max(others, key=lambda r: cells[r][metric].mean)
        return above(a, b, metric).predicate(cells)

    reads = tuple((r, metric) for r in (*best, *others))
    return Claim(name or f"{' / '.join(best)} has the highest {metric}", reads, check)


def _bound(row: str, metric: str, bound: float, upper: bool, name: str | None, words: str) -> Claim:
    def check(cells: Cells) -> Verdict:
        x = cells[row][metric]
        low, high = x.mean - x.std, x.mean + x.std
        numbers = f"{row} {metric} {x} {'≤' if upper else '>'} {_num(bound)}"
        holds, fails = (high <= bound, low > bound) if upper else (low > bound, high <= bound)
        return Verdict(HOLDS if holds else FAILS if fails else NOISE, numbers)

    return Claim(name or f"{row}'s {metric} {words} {_num(bound)}", ((row, metric),), check)


def at_most(row: str, metric: str, bound: float, name: str | None = None) -> Claim:
    """``metric`` of ``row`` is at most ``bound`` (e.g. near zero), the whole interval mean ± std."""
    return _bound(row, metric, bound, True, name, "is at most")


def exceeds(row: str, metric: str, bound: float, name: str | None = None) -> Claim:
    """``metric`` of ``row`` exceeds ``bound``, the whole interval mean ± std."""
    return _bound(row, metric, bound, False, name, "exceeds")


def all_of(name: str, *parts: Claim) -> Claim:
    """Every part holds (✓), one fails (✗), else within noise."""
    def check(cells: Cells) -> Verdict:
        verdicts = [p.predicate(cells) for p in parts]
        marks = {v.mark for v in verdicts}
        mark = FAILS if FAILS in marks else HOLDS if marks == {HOLDS} else NOISE
        return Verdict(mark, "; ".join(v.numbers for v in verdicts))

    reads = tuple(dict.fromkeys(cell for p in parts for cell in p.reads))
    return Claim(name, reads, check)


def check_claims(claims: Sequence[Claim], cells: Cells) -> list[tuple[Claim, Verdict]]:
    return [(c, c.check(cells)) for c in claims]


def claims_markdown(claims: Sequence[Claim], cells: Cells) -> str:
    """The ``## Claims`` section of ``results.md``: one line per claim, its verdict and the numbers."""
    lines = ["## Claims", "",
             "The paper's qualitative claims, checked on mean ± std over seeds: ✓ holds and ✗ fails by more than "
             "the seeds' spread (a comparison: |difference| > std_a + std_b; a bound: the whole interval mean ± "
             "std on one side); within noise otherwise, or for a comparison of one seed; not run: a row is "
             "missing.", ""]
    lines += [f"- **{v.mark}** {c.name}: {v.numbers}" for c, v in check_claims(claims, cells)]
    return "\n".join(lines) + "\n"
