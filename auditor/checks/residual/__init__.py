"""Residual checks: ``residual.analysis`` (residual patterns, surrogate tree, worst rows) and
``residual.segments`` (slices of the data where the error is significantly worse).

One module per check (``analysis``, ``segments``); the findings and evidence of
``residual.analysis`` live in ``analysis_findings`` and ``analysis_evidence``, the texts of a weak
segment in ``segments_text``.
"""

from __future__ import annotations

from .analysis import ResidualAnalysisCheck, ResidualMeasurement
from .segments import SegmentMeasurement, WeakSegmentsCheck

__all__ = ["ResidualAnalysisCheck", "ResidualMeasurement", "SegmentMeasurement", "WeakSegmentsCheck"]
