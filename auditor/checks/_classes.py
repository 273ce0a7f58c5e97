"""Shared guard for k-class checks: every target value must be one of the model's classes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..context import AuditContext


def unknown_class_reason(ctx: AuditContext, *, train: bool = True) -> str | None:
    """Why a k-class check cannot run: target values (test, and train when ``train``) that are not
    among the model's classes have no probability, so their log loss or true-class probability is
    undefined. None when every value is a class (or the model is not a k-class classifier)."""
    if not ctx.is_multiclass:
        return None
    splits = ["test"] + (["train"] if train and ctx.has_train else [])
    for split in splits:
        idx = ctx.y_index(split)  # type: ignore[arg-type]
        if (idx < 0).any():
            values = sorted({str(v) for v in ctx.y(split)[idx < 0]})[:5]  # type: ignore[arg-type]
            return (f"{int((idx < 0).sum())} {split} rows have a target value that is not one of the model's "
                    f"classes ({', '.join(values)}); k-class losses need every value to be a class")
    return None
