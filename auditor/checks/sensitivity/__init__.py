"""Sensitivity analysis: partial dependence/ICE/ALE, adversarial example search, random attacks."""

from __future__ import annotations

from .adversarial import CHECKS as _ADVERSARIAL
from .partial_dependence import CHECKS as _PDP
from .random_attack import CHECKS as _RANDOM

CHECKS = (*_PDP, *_ADVERSARIAL, *_RANDOM)
