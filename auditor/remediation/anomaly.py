"""The anomaly detector (issue 11, section 3): an isolation forest on the training inputs, saved with
skops under ``remediation/``, measured on the test rows, on the adversarial examples the search found
and on the random attack's out-of-domain inputs.

Its threshold is set on the training rows (``alarm_rate`` of them are flagged); the test rows'
alarm rate then says what it would cost in production, and the share of the adversarial examples
(the search's flips within its small distance) and of the random attack's out-of-domain inputs it
flags says what it would catch. Before the detector nothing is flagged (0 in ``before``). It
addresses the adversarial findings only when it flags at least ``min_detection`` of the examples:
an adversarial example is built to look like ordinary data, and an isolation forest mostly cannot
tell it from one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..analysis.anomaly import AnomalyDetector, DetectorScores, detector_scores, fit_detector
from ..analysis.input_guard import adversarial_examples
from ..findings import Evidence, Figure, Table
from ..wording import pct, plural
from .base import Artifact, Remediation, Remedy, RemedyInputs, RemedyOutput, artifact_path, budget, setting, threshold
from .files import stable_skops
from .guard import ADVERSARIAL, PDP, RANDOM_ATTACK, audit_probes

DETECTOR_FILE = artifact_path("anomaly_detector.skops")
#: the types ``skops.io.get_untrusted_types`` lists for the detector: a numpy dtype and the forest's
#: tree arrays (auditor loads an untrusted model with these after its own tree bounds check)
EXPECTED_UNTRUSTED = frozenset({"numpy.dtype", "sklearn.tree._tree.Tree"})
_RELOAD_ROWS = 500  # test rows the reloaded file is compared on with the fitted detector


@dataclass(frozen=True, eq=False)
class _Groups:
    """The rows the detector is measured on, each with its scores."""

    train: DetectorScores
    test: DetectorScores
    adversarial: DetectorScores | None
    starts: DetectorScores | None  # the adversarial examples' starting rows
    attack: DetectorScores | None
    attack_families: tuple[str, ...] = ()


@dataclass
class AnomalyDetectorRemedy(Remedy):
    """Fits, saves and measures the detector (see the module docstring)."""

    id: ClassVar[str] = "anomaly_detector"
    title: ClassVar[str] = "Anomaly detector"
    order: ClassVar[int] = 41
    kinds: ClassVar[tuple[str, ...]] = ("anomaly_detector",)
    reads: ClassVar[tuple[str, ...] | None] = (ADVERSARIAL, RANDOM_ATTACK, PDP)  # PDP: through audit_probes

    alarm_rate: float = threshold(0.01, "share of the training rows the detector flags (sets its threshold; in (0, "
                                        "0.5])")
    min_detection: float = threshold(0.5, "share of the adversarial examples it must flag to address the "
                                          "adversarial findings")
    small_only: bool = setting(True, "adversarial examples are the search's flips within its small distance (false: "
                                     "every flip it found)")
    max_rows: int = budget(10_000, "training rows the isolation forest is fitted on (a seeded sample when more)")
    n_estimators: int = budget(50, "trees of the isolation forest")

    def skip_reason(self, inputs: RemedyInputs) -> str | None:
        ctx = inputs.ctx
        if not ctx.features:
            return "the model has no input columns"
        if not ctx.has_train:
            return ("no training data was given ([data] train): the detector is fitted on the training inputs, and "
                    "fitting it on the test rows would measure its alarm rate on its own fitting rows")
        return None

    def run(self, inputs: RemedyInputs) -> RemedyOutput:
        import zipfile

        import skops.io as sio

        ctx = inputs.ctx
        train = ctx.X("train")
        pos = ctx.sample_index(len(train), int(self.max_rows), f"remediation.{self.id}:train")
        fit_rows = train.iloc[pos]
        det = fit_detector(fit_rows, numeric=ctx.numeric, categorical=ctx.categorical,
                           alarm_rate=float(self.alarm_rate), n_estimators=int(self.n_estimators),
                           seed=int(ctx.rng(f"remediation.{self.id}").integers(0, 2**31 - 1)))
        data = stable_skops(sio.dumps(det.pipeline, compression=zipfile.ZIP_DEFLATED))
        untrusted = sorted(sio.get_untrusted_types(data=data))
        trusted = [t for t in untrusted if t in EXPECTED_UNTRUSTED]
        try:  # loaded trusting only the expected types: anything else makes skops refuse it
            loaded = sio.loads(data, trusted=trusted)
        except Exception:  # noqa: BLE001 - a file that does not load back is reported, not fatal
            loaded = None
        groups, n_examples, n_flips, reloads = self._groups(inputs, det, loaded, fit_rows)
        rem = self._remediation(inputs, det, groups, n_examples, n_flips, untrusted, reloads)
        notes = (f"Fitted on {det.fit_rows:,} of the {len(train):,} training rows"
                 + (" (a seeded sample)" if det.fit_rows < len(train) else "")
                 + f", {det.n_estimators} trees; measured on all {groups.test.n_scored:,} scored test rows.",
                 f"The file loads back with skops.io.loads(data, trusted=[{', '.join(trusted)}]) and "
                 + ("scores the test rows as the fitted detector does." if reloads else
                    "does not reproduce the fitted detector's scores (see the caveats).")
                 if loaded is not None else "The file does not load back with skops trusting only "
                 f"{', '.join(sorted(EXPECTED_UNTRUSTED))}.")
        artifact = Artifact(DETECTOR_FILE, data, title="Anomaly detector (skops; scikit-learn pipeline)")
        return RemedyOutput(remediations=(rem,), artifacts=(artifact,), notes=notes)

    def _groups(self, inputs: RemedyInputs, det: AnomalyDetector, loaded: Any | None,
                fit_rows: pd.DataFrame) -> tuple[_Groups, int, int, bool]:
        """Every group of rows scored in one call by the reloaded file (what a deployment runs), and
        whether the fitted detector scores the first rows the same."""
        ctx = inputs.ctx
        X = ctx.X("test")
        parts: dict[str, pd.DataFrame] = {"train": fit_rows, "test": X}
        adv = inputs.measurement(ADVERSARIAL)
        n_flips = 0
        if adv is not None:
            n_flips = sum(r.flip is not None for r in adv.result.rows)
            limit = adv.result.small_distance if self.small_only else None
            changed, start = adversarial_examples(adv.result, X, max_distance=limit)
            if len(changed):
                parts["adversarial"], parts["starts"] = changed, start
        families: tuple[str, ...] = ()
        if inputs.measurement(RANDOM_ATTACK) is not None:
            probes = audit_probes(inputs)
            outside = probes.where(np.array([p.source == "random_attack" and not p.in_domain
                                             for p in probes.probes], dtype=bool))
            if len(outside):
                parts["attack"] = outside.frame
                families = tuple(p.family for p in outside.probes)
        cols = list(ctx.features)
        frame = pd.concat([f[cols].astype(object) for f in parts.values()], ignore_index=True)
        scores = detector_scores(det, frame, loaded)  # None: the fitted detector itself
        out: dict[str, DetectorScores] = {}
        at = 0
        for name, f in parts.items():
            out[name] = scores.part(at, at + len(f))
            at += len(f)
        n = min(len(X), _RELOAD_ROWS)
        reloads = loaded is not None and bool(np.allclose(detector_scores(det, X.iloc[:n]).score,
                                                          out["test"].score[:n], equal_nan=True))
        groups = _Groups(out["train"], out["test"], out.get("adversarial"), out.get("starts"), out.get("attack"),
                         families)
        return groups, len(parts.get("adversarial", ())), n_flips, reloads

    def _remediation(self, inputs: RemedyInputs, det: AnomalyDetector, g: _Groups, n_examples: int, n_flips: int,
                     untrusted: list[str], reloads: bool) -> Remediation:
        before: dict[str, Any] = {"test_rows_flagged_share": 0.0}
        after: dict[str, Any] = {"test_rows_flagged_share": g.test.flagged_share}
        if g.adversarial is not None:
            before["adversarial_examples_flagged_share"] = 0.0
            after["adversarial_examples_flagged_share"] = g.adversarial.flagged_share
        if g.attack is not None and g.attack.n_scored:
            before["random_attack_inputs_flagged_share"] = 0.0
            after["random_attack_inputs_flagged_share"] = g.attack.flagged_share
        caught = g.adversarial is not None and g.adversarial.flagged_share >= self.min_detection
        addresses = sorted(f.id for f in inputs.findings_of(ADVERSARIAL, "low")
                           if f.id.split("/")[-1] in ("flip", "swing") and caught)
        params: dict[str, Any] = {
            "file": DETECTOR_FILE, "alarm_rate": det.alarm_rate, "train_rows_flagged_share": g.train.flagged_share,
            "fit_rows": det.fit_rows, "trees": det.n_estimators, "test_rows": g.test.n_scored,
            "adversarial_examples": n_examples, "adversarial_flips_found": n_flips,
            "random_attack_inputs": 0 if g.attack is None else len(g.attack.scoreable),
            "random_attack_inputs_scoreable": 0 if g.attack is None else g.attack.n_scored,
            "skops_trusted_types": ", ".join(untrusted) or "none", "reloads_identically": reloads}
        if g.starts is not None:
            params["adversarial_start_rows_flagged_share"] = g.starts.flagged_share
        unexpected = sorted(set(untrusted) - EXPECTED_UNTRUSTED)
        return Remediation(
            id="anomaly_detector", kind="anomaly_detector", addresses=tuple(addresses),
            title="Anomaly detector: flag inputs unlike the training data",
            summary=self._summary(det, g, n_examples, n_flips, caught), before=before, after=after,
            verified=g.test.n_scored > 0 and reloads and not unexpected, parameters=params,
            caveats=self._caveats(g, n_examples, unexpected, reloads), artifacts=(DETECTOR_FILE,),
            evidence=Evidence(tables=(self._table(g),), figures=self._figures(g)))

    def _summary(self, det: AnomalyDetector, g: _Groups, n_examples: int, n_flips: int, caught: bool) -> str:
        parts = [f"An isolation forest fitted on {det.fit_rows:,} training rows ({DETECTOR_FILE}, skops), its "
                 f"threshold set to flag {pct(det.alarm_rate)} of them, flags {pct(g.test.flagged_share)} of the "
                 f"{g.test.n_scored:,} scored test rows: the alarm rate to expect in production while the inputs stay "
                 "like the training data."]
        if g.adversarial is not None:
            base = f" (their starting rows: {pct(g.starts.flagged_share)})" if g.starts is not None else ""
            found = plural(n_examples, "adversarial example")
            parts.append(f"It flags {pct(g.adversarial.flagged_share)} of the {found} the search found{base}: "
                         + ("enough to watch for them." if caught else
                            "an adversarial example is a small change that looks like ordinary data, so this detector "
                            "is no defence against it."))
        else:
            parts.append("The adversarial search found no " + ("small " if self.small_only and n_flips else "")
                         + "adversarial example to measure its detection on"
                         + (f" ({plural(n_flips, 'larger flip')} only)" if n_flips else "") + ".")
        if g.attack is not None and g.attack.n_scored:
            parts.append(f"Of the random attack's {plural(g.attack.n_scored, 'out-of-domain input')} it can score "
                         f"(extreme values, unseen levels, missing values) it flags {pct(g.attack.flagged_share)}.")
        return " ".join(parts)

    def _caveats(self, g: _Groups, n_examples: int, unexpected: list[str], reloads: bool) -> tuple[str, ...]:
        out = ["The detector expects rows of the right types: text in a numeric column or infinity is the input "
               "guard's to reject (remediation/guard.json); a missing value is imputed with the training median "
               "and then looks ordinary.",
               "An isolation forest scores a value beyond the training range like the most extreme training value "
               "(and an unseen level like a known one), so a single out-of-range value is the guard's to catch; the "
               "detector catches unusual combinations of ordinary values.",
               "The threshold is set on the training rows; an alarm rate on production data well above the test "
               "rows' rate means the inputs have moved away from the training data (see data.drift)."]
        if not n_examples:
            out.append("No adversarial example was found, so only the alarm rates are measured.")
        if unexpected:
            out.append(f"skops lists unexpected types to trust for loading: {', '.join(unexpected)}.")
        if not reloads:
            out.append("The saved file did not load back trusting only the expected types, or did not reproduce the "
                       "fitted detector's scores on the test rows; the figures above are the fitted detector's.")
        return tuple(out)

    def _table(self, g: _Groups) -> Table:
        rows: list[dict[str, Any]] = []

        def add(label: str, s: DetectorScores | None) -> None:
            if s is not None:
                rows.append({"rows": label, "n": len(s.scoreable), "scoreable": s.n_scored,
                             "flagged": int(s.flagged.sum()), "flagged_share": s.flagged_share})

        add("training rows (fitted)", g.train)
        add("test rows", g.test)
        add("adversarial examples", g.adversarial)
        add("their starting test rows", g.starts)
        if g.attack is not None:
            fams = np.array(g.attack_families)
            for fam in dict.fromkeys(g.attack_families):
                keep = fams == fam
                add(f"random attack: {fam} (out of domain)", g.attack.where(keep))
        return Table.from_records(
            "anomaly_rates", "Rows the anomaly detector flags", rows,
            columns=("rows", "n", "scoreable", "flagged", "flagged_share"),
            caption="Scoreable: every numeric value missing or a finite number (the rest is the input guard's to "
                    "reject); the share is over the scoreable rows.")

    def _figures(self, g: _Groups) -> tuple[Figure, ...]:
        groups = [("test rows", g.test)]
        if g.adversarial is not None:
            groups.append(("adversarial examples", g.adversarial))
        if g.attack is not None and g.attack.n_scored:
            groups.append(("random attack (out of domain)", g.attack))
        data = [{"label": label, "scores": tuple(float(v) for v in s.score[s.scoreable])} for label, s in groups]
        return (Figure("anomaly_scores", "Anomaly scores", plot="remedy_guard.anomaly_scores_figure",
                       data={"groups": data},
                       caption="The isolation forest's decision function (below 0: flagged); the threshold flags "
                               "the set share of the training rows."),)

