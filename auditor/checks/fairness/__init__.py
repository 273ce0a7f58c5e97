"""Fairness checks: disparate impact, error-rate parity, and proxies for protected attributes.

The disparate impact analysis of the model-debugging method (Hall et al.): outcome rates by group
against a reference group with practical (adverse impact ratio, standardized mean difference) and
statistical significance (``disparate_impact``); error rates and calibration by group
(``error_parity``); and features that let the model reconstruct a protected attribute it is not
given (``proxy``). Each check measures with ``auditor.analysis.group_metrics`` /
``auditor.analysis.proxy`` and judges the measurement with its thresholds (dataclass fields);
``judge`` is a pure function of the measurement. ``common`` holds what they share.

Common rules: protected columns come from ``[data] protected``; missing values form the group
``(missing)``; numeric columns with many values are banded (see ``make_groupings``); groups with
fewer than ``min_group_size`` rows are shown in the tables but get no finding; pairs of protected
columns are analysed as intersections, and an intersectional group gets a finding only when it is
more severe than each of its two groups alone (otherwise the single-column finding says it all).
The favorable decision of each test row comes from the context (``ctx.favorable_outcome()``).
"""
