"""Sensitivity analysis: partial dependence/ICE/ALE, adversarial example search, random attacks."""
