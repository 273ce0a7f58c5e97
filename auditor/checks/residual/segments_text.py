"""The texts, metrics and rule of a weak-segment finding and the rows of its evidence table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...analysis.segments import Interval, SegmentSearch, SliceMetrics, WeakSegment
from ...findings import Rule, Severity
from ...wording import finite, level, num

if TYPE_CHECKING:
    from .segments import WeakSegmentsCheck

def _iv(x: Interval | None) -> Interval:
    """A metric the task always fills (accuracy and log loss for classification, MAE, RMSE and
    bias for regression)."""
    assert x is not None
    return x


def _ci(iv: Interval | None) -> str:
    """An interval in a table cell: ``0.612 - 0.734`` (3 significant digits)."""
    return f"{num(iv.low, 3)} - {num(iv.high, 3)}" if iv is not None and finite(iv.low) else ""


def classification_performance(s: WeakSegment, search: SegmentSearch, n_classes: int,
                               confidence: float) -> tuple[str, str, dict[str, Any]]:
    """The segment's accuracy, log loss and AUC against overall: sentence, headline, metrics."""
    o, t = search.overall, s.test
    acc, oacc, ll, oll = _iv(t.accuracy), _iv(o.accuracy), _iv(t.log_loss), _iv(o.log_loss)
    kc = f"{n_classes}-class " if n_classes > 2 else ""
    perf = (f"{kc}accuracy {acc.value:.1%} ({level(confidence)} CI {acc.low:.1%}-{acc.high:.1%}) vs "
            f"{oacc.value:.1%} overall; {kc}log loss {ll.value:.3f} vs {oll.value:.3f}")
    if t.auc is not None:
        perf += f"; AUC {t.auc.value:.3f} (CI {t.auc.low:.3f}-{t.auc.high:.3f})"
        if o.auc is not None:
            perf += f" vs {o.auc.value:.3f}"
    perf += f"; majority-class rate in the segment {t.majority_rate:.1%}"
    headline = f"accuracy {acc.value:.0%} vs {oacc.value:.0%} overall"
    metrics = {"accuracy": acc.value, "accuracy_overall": oacc.value, "log_loss": ll.value,
               "log_loss_overall": oll.value, "majority_rate": t.majority_rate,
               "auc": t.auc.value if t.auc is not None else None,
               "auc_overall": o.auc.value if o.auc is not None else None}
    return perf, headline, metrics


def regression_performance(s: WeakSegment, search: SegmentSearch,
                           confidence: float) -> tuple[str, str, dict[str, Any]]:
    """The segment's MAE, RMSE and mean residual against overall: sentence, headline, metrics."""
    o, t = search.overall, s.test
    mae, omae, rmse, ormse, bias = _iv(t.mae), _iv(o.mae), _iv(t.rmse), _iv(o.rmse), _iv(t.bias)
    ratio = mae.value / omae.value if omae.value > 0 else float("inf")
    perf = (f"MAE {mae.value:.4g} ({level(confidence)} CI {mae.low:.4g}-{mae.high:.4g}) vs {omae.value:.4g} overall "
            f"({ratio:.1f}x); RMSE {rmse.value:.4g} vs {ormse.value:.4g}; mean residual {bias.value:+.4g}")
    metrics = {"mae": mae.value, "mae_overall": omae.value, "mae_ratio": ratio, "rmse": rmse.value,
               "rmse_overall": ormse.value, "mean_residual": bias.value}
    return perf, f"MAE {ratio:.1f}x overall", metrics


def _loss(x: SliceMetrics, cls: bool) -> float:
    return _iv(x.log_loss).value if cls else _iv(x.mae).value


def train_view(s: WeakSegment, search: SegmentSearch, metrics: dict[str, Any]) -> tuple[str, list[str]]:
    """How the segment looks in train: a sentence and the remediation it suggests; adds the train
    share and loss ratio to ``metrics``."""
    cls = search.task == "classification"
    train_txt = ""
    remediation: list[str] = []
    if s.share_train is not None:
        metrics["share_train"] = s.share_train
        train_txt = f" In train the segment is {s.share_train:.1%} of rows ({s.n_train}) vs {s.share:.1%} of test"
        train_txt += " (under-represented)." if s.underrepresented else "."
        if s.underrepresented:
            remediation.append(f"Collect more representative training data for `{s.definition}` (or up-weight "
                               f"it): it is {s.share_train:.1%} of train but {s.share:.1%} of test.")
    tr, otr = s.train, search.overall_train
    if tr is not None and otr is not None and s.n_train and s.n_train >= 30:
        tr_ratio = _loss(tr, cls) / _loss(otr, cls) if _loss(otr, cls) > 0 else float("inf")
        metrics["train_loss_ratio"] = tr_ratio
        if tr_ratio < 1.25:
            remediation.append("On train the model does about as well on this segment as elsewhere, but not on "
                               "test: check for drift or label changes in the segment between train and test, "
                               "and for over-fitting.")
        else:
            remediation.append("The model is also weak on this segment in train: add a feature or interaction "
                               "that captures what differs here, or fit a separate model for the segment.")
    if not any("separate model" in r for r in remediation):
        remediation.append("If the segment behaves differently by nature, add a segment-specific feature or "
                           "consider a separate model for it; monitor its error after deployment.")
    return train_txt, remediation


def rule(c: WeakSegmentsCheck, s: WeakSegment, search: SegmentSearch, sev: Severity, *, multi: bool,
         loss_name: str) -> tuple[Rule, str]:
    """What set the severity, and (for a k-class high) the sentence the summary ends with."""
    if sev == Severity.HIGH and multi:
        acc, oacc = _iv(s.test.accuracy), _iv(search.overall.accuracy)
        rule_txt = (f" High: the segment holds at least {c.high_min_share:.0%} of rows, its accuracy's upper "
                    f"{level(c.confidence)} bound {acc.high:.1%} is at most its majority-class rate "
                    f"{s.test.majority_rate:.1%}, and overall accuracy's lower bound {oacc.low:.1%} beats the "
                    f"overall majority rate by at least {c.good_accuracy_lift:.0%}.")
        return (Rule("accuracy_ci_high", acc.high, "<=", s.test.majority_rate, interval=(acc.low, acc.high),
                     p_value=s.p_adjusted, text=rule_txt.strip()), rule_txt)
    return (Rule("p_adjusted", s.p_adjusted, "<", c.alpha, p_value=s.p_adjusted,
                 text=(f"Reported when the BH-adjusted one-sided Welch p-value of the excess {loss_name} is "
                       f"below {c.alpha} and the excess is at least {c.min_excess:.0%} of the mean; "
                       f"severity {sev.value}.")), "")


# ---- evidence --------------------------------------------------------------------------------------

def overall_metrics(search: SegmentSearch) -> dict[str, Any]:
    o = search.overall
    out: dict[str, Any] = {"rows": search.n, "segments_tested": search.n_tested,
                           "segments_significant": search.n_significant,
                           "segments_reported": len(search.segments), "min_support": search.min_support}
    if search.task == "classification":
        out.update({"accuracy": _iv(o.accuracy).value, "log_loss": _iv(o.log_loss).value,
                    "auc": o.auc.value if o.auc is not None else None})
    else:
        out.update({"mae": _iv(o.mae).value, "rmse": _iv(o.rmse).value})
    return out


def overall_text(search: SegmentSearch) -> str:
    o = search.overall
    if search.task == "classification":
        return (f"overall accuracy {_iv(o.accuracy).value:.3f}, log loss {_iv(o.log_loss).value:.3f}"
                + (f", AUC {o.auc.value:.3f}" if o.auc is not None else ""))
    return f"overall MAE {_iv(o.mae).value:.4g}, RMSE {_iv(o.rmse).value:.4g}"


def segment_record(s: WeakSegment, cls: bool) -> dict[str, Any]:
    """One row of the weak-segments table."""
    t = s.test
    rec: dict[str, Any] = {"segment": s.definition, "rows": s.n, "share_test": s.share, "share_train": s.share_train}
    if cls:
        rec.update({"accuracy": _iv(t.accuracy).value, "accuracy_ci": _ci(t.accuracy),
                    "auc": t.auc.value if t.auc is not None else None, "log_loss": _iv(t.log_loss).value})
    else:
        rec.update({"mae": _iv(t.mae).value, "mae_ci": _ci(t.mae), "rmse": _iv(t.rmse).value,
                    "mean_residual": _iv(t.bias).value})
    rec.update({"excess": s.relative_excess, "p_adjusted": s.p_adjusted})
    return rec


def notes(search: SegmentSearch, n_total: int, n_classes: int) -> tuple[str, ...]:
    cls = search.task == "classification"
    if not cls:
        tested = "absolute error"
    elif n_classes > 2:
        tested = ("k-class log loss -log p(true class) minus its expectation under the predicted distribution (its "
                  "entropy); prediction bins by the predicted class's probability")
    else:
        tested = "log loss minus its expectation under the predicted probability"
    out = [
        f"{search.n:,} test rows" + (f" (a seeded sample of {n_total:,})" if search.n < n_total else "")
        + f"; {search.n_single_tested} single-feature segments ({search.bins} quantile bins or levels) and "
          f"{search.n_pair_tested} pair segments ({search.pair_bins} bins, {len(search.pair_features)} features) "
          f"with at least {search.min_support} rows tested; {search.n_significant} significant at FDR "
          f"{search.alpha}, {len(search.segments)} reported after removing nested and overlapping ones.",
        f"Tested quantity: per-row {tested}, centred within {search.prediction_bins} prediction quantile bins, so "
        "segments are compared with rows that got similar predictions.",
        "Confidence intervals: Wilson (accuracy), Hanley-McNeil (AUC), t (mean losses)."]
    if n_classes > 2:
        out.append(f"{n_classes}-class model: accuracy is that of the most probable class, log loss the "
                   "k-class log loss; no per-segment AUC.")
    return tuple(out)
