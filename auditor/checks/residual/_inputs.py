"""The target and scores both residual checks read: k classes keep the class index and the n x k
distribution (never positive-vs-rest); otherwise ``ctx.y_task`` and the score."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ...context import AuditContext, Split


def task_target(ctx: AuditContext, split: Split) -> np.ndarray:
    """k classes: each row's class index; otherwise 1/0 for the positive class or the float target."""
    return ctx.y_index(split) if ctx.is_multiclass else ctx.y_task(split)


def task_scores(ctx: AuditContext, split: Split) -> np.ndarray:
    """k classes: the n x k predicted distribution; otherwise P(positive) or the prediction."""
    p = ctx.predictions(split)
    return np.asarray(p.proba, dtype=float) if ctx.is_multiclass else p.score
