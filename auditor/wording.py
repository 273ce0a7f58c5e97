"""How numbers read in findings, tables and figures: one place for every format.

Checks write their sentences with these helpers, so a share, a p-value or an interval reads the
same in every finding. The confidence level is always passed in (it is a check option), never
written as a literal "95%".
"""

from __future__ import annotations

import math
from typing import Any

NA = "n/a"
MINUS = "−"  # U+2212: a minus sign, not a hyphen, in signed differences


def _is_bool(x: Any) -> bool:
    return isinstance(x, bool) or type(x).__name__ in ("bool", "bool_")  # numpy bools too, without numpy


def _is_number(x: Any) -> bool:
    return not _is_bool(x) and not isinstance(x, str) and (isinstance(x, (int, float)) or hasattr(x, "__float__"))


def finite(x: Any) -> bool:
    """A real, finite number (not None, not NaN, not ±inf, not a bool)."""
    if x is None or isinstance(x, bool):
        return False
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def pct(x: Any, digits: int = 1) -> str:
    """A share as a percentage: ``pct(0.1234) == "12.3%"``; ``n/a`` when not a number."""
    return f"{100 * float(x):.{digits}f}%" if finite(x) else NA


def fixed(x: Any, digits: int = 2) -> str:
    """Fixed decimals: ``fixed(0.7412) == "0.74"``."""
    return f"{float(x):.{digits}f}" if finite(x) else NA


def signed(x: Any, digits: int = 2) -> str:
    """Fixed decimals with a sign, minus as U+2212: ``signed(-0.031) == "−0.03"``."""
    return f"{float(x):+.{digits}f}".replace("-", MINUS) if finite(x) else NA


def num(x: Any, digits: int = 4) -> str:
    """A number in ``digits`` significant digits (``g`` format); integers with thousands separators."""
    if isinstance(x, bool) or x is None:
        return NA if x is None else str(x)
    if isinstance(x, int):
        return f"{x:,}"
    return f"{float(x):.{digits}g}" if finite(x) else NA


def amount(x: Any) -> str:
    """A measured quantity in running text: ``1,235`` from 1,000 on, whole numbers as they are,
    otherwise 3 significant digits (``0.0123``); text unchanged; ``n/a`` when missing or not finite."""
    if x is None:
        return NA
    if not _is_number(x):
        return str(x)
    x = float(x)
    if not math.isfinite(x):
        return NA
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if x == int(x):
        return str(int(x))
    return f"{x:.3g}"


def signed_amount(x: Any) -> str:
    """``amount`` with a ``+`` in front of a positive value (a change, a difference)."""
    return ("+" if finite(x) and float(x) > 0 else "") + amount(x)


def value_text(v: Any) -> str:
    """A feature value as a reader would type it: ``missing`` for None, whole numbers without a
    decimal point, other numbers in 6 significant digits, anything else as text."""
    if v is None:
        return "missing"
    if not _is_number(v):
        return str(v)
    if float(v).is_integer():
        return f"{int(v)}"
    return f"{float(v):.6g}"


def sig(x: Any, digits: int = 3) -> Any:
    """A number rounded to significant digits for a narrow table column (findings keep full
    precision); anything else unchanged."""
    if isinstance(x, bool) or not finite(x):
        return x
    return float(f"{float(x):.{digits}g}")


P_FLOOR = 1e-4


def p_value(p: Any) -> str:
    """``p = 0.023`` in two significant digits, ``p < 0.0001`` below that floor, ``p n/a``."""
    if not finite(p):
        return "p n/a"
    return "p < 0.0001" if float(p) < P_FLOOR else f"p = {float(p):.2g}"


def level(confidence: float) -> str:
    """A confidence level as text: ``level(0.95) == "95%"``, ``level(0.995) == "99.5%"``."""
    return f"{100 * float(confidence):.10g}%"


def interval(lo: Any, hi: Any, *, digits: int = 2, as_pct: bool = False, sep: str = "–") -> str:
    """The two ends of an interval: ``0.60–0.91`` or, ``as_pct``, ``60.0%–91.0%``."""
    fmt = (lambda v: pct(v, digits)) if as_pct else (lambda v: fixed(v, digits))
    return f"{fmt(lo)}{sep}{fmt(hi)}"


def ci(lo: Any, hi: Any, confidence: float, *, digits: int = 2, as_pct: bool = False, what: str = "interval") -> str:
    """An interval with its level: ``95% interval 0.60–0.91``; ``what`` names its kind
    (``"CI"``, ``"Wilson interval"``, ``"bootstrap interval"``)."""
    return f"{level(confidence)} {what} {interval(lo, hi, digits=digits, as_pct=as_pct)}"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``plural(1, "row") == "1 row"``, ``plural(1200, "row") == "1,200 rows"``."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def quoted(name: Any) -> str:
    """A column or level name as it appears in running text: ``'age'``."""
    return f"'{name}'"
