"""What the fairness checks share: the grouping options and base class, the gate that keeps
intersectional findings to the cases that add something, and the wording of groups and tests."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ...analysis.group_metrics import Grouping, GroupingPlan, make_groupings
from ...findings import Severity
from ...wording import finite, interval, p_value
from ..base import Check, setting, threshold

if TYPE_CHECKING:
    from ...config import AuditConfig
    from ...context import AuditContext, FavorableOutcome

MAX_TABLE_ROWS = 60  # rows of a group table in the report
FIGURE_BARS = 36  # groups drawn in the adverse impact ratio and SMD figures (the rest: in the table)
FIGURE_GROUPS = 16  # groups drawn in the error-rate figure
FIGURE_TOP = 8  # features per protected attribute in the proxy figure


# ---- wording ---------------------------------------------------------------------------------------

def who(g: Grouping, group: str) -> str:
    """'sex = female' or 'sex = female and age_band = under 25'."""
    return " and ".join(f"{c} = {v}" for c, v in g.part_pairs(group))


def finding_id(check_id: str, g: Grouping, group: str, suffix: str = "") -> str:
    """``<check>/sex=female&age=band1of4``: column and level, or a quantile band's position, whose
    cut points move with the sample (issue 10: the same disparity keeps its id at a new version)."""
    return f"{check_id}/" + "&".join(f"{c}={v}" for c, v in g.id_pairs(group)) + suffix


def group_note(g: Grouping, group: str, count: int, min_size: int, ref_count: int) -> str:
    """The note column of a group table: reference, or too small for a finding."""
    if group == g.reference:
        return "reference" + (" (too few rows)" if ref_count < min_size else "")
    return f"below {min_size} rows: no finding" if count < min_size else ""


def bracketed(lo: float, hi: float, digits: int = 2) -> str:
    """An interval as ``[0.61, 0.93]``."""
    return f"[{interval(lo, hi, digits=digits, sep=', ')}]"


def p_both(p: float, adjusted: float, n_tests: int) -> str:
    """The raw p-value, and the Holm-adjusted one when the family has more than one test."""
    if n_tests <= 1 or not finite(adjusted):
        return p_value(p)
    return (f"{p_value(p)}; {p_value(adjusted).replace('p ', 'p_adj ')} after Holm's correction for {n_tests} "
            "comparisons")


def rule_number(x: Any) -> float | None:
    """A number for ``Rule`` (NaN -> None, so an unknown p-value is left out of findings.json)."""
    return float(x) if finite(x) else None


def decision_text(o: FavorableOutcome) -> str:
    """How the favorable decision is made, in words."""
    if o.multiclass:
        return (f"Favorable decision: the predicted class, the most probable of the model's {o.n_classes} "
                f"classes (argmax), is {o.favorable}; P(favorable) is the model's probability of that class.")
    side = "at or above" if o.favorable_is_positive else "below"
    return (f"Favorable decision: predicted {o.label}, i.e. P({o.target} = {o.positive}) {side} the "
            f"threshold {o.threshold:g}.")


# ---- judgement -------------------------------------------------------------------------------------

def near_zero(lo: float, hi: float) -> float:
    """|end of an interval nearer zero|; 0 when the interval contains zero, NaN when unknown."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return float("nan")
    if lo <= 0 <= hi:
        return 0.0
    return min(abs(lo), abs(hi))


def singles_first(result: Any) -> bool:
    """Sort key: single-column groupings before intersections (the gate needs them first)."""
    return bool(result.grouping.is_intersection)


class Gate:
    """Single-column findings first; an intersectional group only when more severe than both of
    its groups alone."""

    def __init__(self) -> None:
        self.rank: dict[tuple[str, str], int] = {}

    def admit(self, g: Grouping, group: str, severity: Severity) -> bool:
        pairs = g.part_pairs(group)
        if not g.is_intersection:
            self.rank[pairs[0]] = max(self.rank.get(pairs[0], -1), severity.rank)
            return True
        return severity.rank > max(self.rank.get(p, -1) for p in pairs)


# ---- the grouped check -------------------------------------------------------------------------------

M = TypeVar("M")


@dataclass
class GroupedCheck(Check[M]):
    """Options every fairness check shares (how rows are grouped, significance and intervals)."""

    min_group_size: int = threshold(30, "rows a group (and its reference) needs to get a finding; smaller "
                                        "groups are shown in the tables only")
    max_levels: int = setting(10, "a numeric protected column with more distinct values is banded")
    numeric_bins: int = setting(4, "quantile bands of such a column (unless bands gives its cut points)")
    bands: dict[str, list[float]] = setting({}, "fixed cut points per protected column, e.g. { age = [25, 40, 60] }")
    intersections: bool = setting(True, "also analyse the pairs of protected columns")
    max_intersection_groups: int = setting(20, "a pair of protected columns with more non-empty groups is "
                                               "not analysed")
    alpha: float = threshold(0.05, "significance level, applied to Holm-adjusted p-values")
    confidence: float = setting(0.95, "level of the intervals (adverse impact ratio, gaps) the severity rules use")

    @classmethod
    def validate_options(cls, options: dict[str, Any], config: AuditConfig) -> None:
        super().validate_options(options, config)
        bands = options.get("bands", {})
        for col, cuts in bands.items():
            if col not in config.data.protected:
                raise ValueError(f"option 'bands.{col}' names a column that is not in [data] protected "
                                 f"({', '.join(config.data.protected) or 'none declared'})")
            if not isinstance(cuts, (list, tuple)) or not cuts or \
                    not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in cuts):
                raise ValueError(f"option 'bands.{col}' must be a list of cut points (numbers), e.g. [25, 40, 60]; "
                                 f"got {cuts!r}")
            if list(cuts) != sorted(set(cuts)):
                raise ValueError(f"option 'bands.{col}' must list increasing cut points; got {list(cuts)!r}")

    def skip_reason(self, ctx: AuditContext) -> str | None:
        if not ctx.protected:
            return "no protected columns declared ([data] protected)"
        return None

    def plan(self, ctx: AuditContext) -> GroupingPlan:
        """The groupings of the test rows by each protected column (and pairs of them)."""
        return make_groupings(ctx.frame("test"), ctx.protected, reference=ctx.config.data.reference,
                              max_levels=self.max_levels, n_bins=self.numeric_bins, bands=self.bands,
                              min_group_size=self.min_group_size, intersections=self.intersections,
                              max_intersection_groups=self.max_intersection_groups)
