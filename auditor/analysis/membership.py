"""Membership inference: can an attacker tell the model's training rows from unseen rows by
looking only at the model's outputs?

Inputs are the model's outputs on a balanced sample of members (training rows) and non-members
(unseen rows from the same population) with their true targets. Two attacks:

* **threshold** (Yeom et al. 2018): members tend to have lower loss. The attack score is the
  model's probability of the true class (classification) or minus the squared error
  (regression); evaluated on every sampled row.
* **shadow-free learned attack**: ART's ``MembershipInferenceBlackBox`` with a seeded random
  forest (``attack_model_type="rf"``) over the output vector and the true label (regression: the
  loss and the target), trained on one half of the sample and evaluated on the other half.

Each attack reports AUC, the best-threshold advantage (TPR − FPR) and the TPR at low false
positive rates (Carlini et al. 2022), with percentile-bootstrap intervals. Nothing here knows
about severities.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .security import AttackScore, attack_score, quiet_art, seed_of


@dataclass(frozen=True)
class MembershipAttack:
    """One attack's result. ``name``: ``threshold`` or ``learned``; ``n_eval``: rows evaluated."""

    name: str
    label: str
    score: AttackScore
    accuracy: float  # at the attack's own decision rule (learned: p >= 0.5; threshold: best threshold)
    n_train: int  # rows the attack was fitted on (0 for the threshold attack)


@dataclass(frozen=True)
class MembershipResult:
    """Both attacks on one balanced sample; ``best`` is the attack with the highest AUC.

    ``signal_member``/``signal_nonmember`` are the threshold attack's scores (true-class
    probability or minus squared error), kept for plotting and direct checks.
    """

    task: str
    n_member: int
    n_nonmember: int
    attacks: tuple[MembershipAttack, ...]
    signal_member: np.ndarray
    signal_nonmember: np.ndarray
    n_resamples: int
    confidence: float

    @property
    def best(self) -> MembershipAttack:
        return max(self.attacks, key=lambda a: (a.score.auc.value if np.isfinite(a.score.auc.value) else -1.0,
                                                -len(a.name)))

    def attack(self, name: str) -> MembershipAttack:
        return next(a for a in self.attacks if a.name == name)


def loss_signal(task: str, output: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The threshold attack's score: higher means "more likely a member".

    Classification: ``output`` is the (n, k) probability matrix and ``target`` the class index;
    the score is the probability of the true class. Regression: minus the squared error.
    """
    if task == "classification":
        output = np.asarray(output, dtype=float)
        return output[np.arange(len(target)), np.asarray(target, dtype=int)]
    return -(np.asarray(output, dtype=float) - np.asarray(target, dtype=float)) ** 2


def _best_accuracy(score: AttackScore) -> float:
    """Accuracy of the best threshold on the evaluated rows (the advantage's operating point)."""
    P, N = score.n_positive, score.n_negative
    acc = (score.roc_tpr * P + (1.0 - score.roc_fpr) * N) / max(P + N, 1)
    return float(np.nanmax(acc)) if acc.size else float("nan")


def membership_inference(*, task: str, member_output: np.ndarray, member_target: np.ndarray,
                         nonmember_output: np.ndarray, nonmember_target: np.ndarray, n_classes: int = 2,
                         rng: np.random.Generator, low_fpr: Sequence[float] = (0.01, 0.05),
                         n_resamples: int = 200, confidence: float = 0.95, attack_trees: int = 100,
                         attack_min_leaf: int = 5) -> MembershipResult:
    """Run both attacks (see the module docstring) on members and non-members.

    Classification outputs are (n, ``n_classes``) probability matrices and targets class indices;
    regression outputs and targets are 1-d numbers. Samples should be balanced and seeded by
    the caller; the learned attack's split and forest are seeded from ``rng``.
    """
    m_sig = loss_signal(task, member_output, member_target)
    n_sig = loss_signal(task, nonmember_output, nonmember_target)
    y = np.r_[np.ones(len(m_sig), dtype=int), np.zeros(len(n_sig), dtype=int)]
    s = np.r_[m_sig, n_sig]
    thr = attack_score(y, s, low_fpr=low_fpr, n_resamples=n_resamples, confidence=confidence, rng=rng)
    attacks = [MembershipAttack("threshold", "loss-threshold attack on the true-class probability"
                                if task == "classification" else "loss-threshold attack on the squared error",
                                thr, _best_accuracy(thr), 0)]

    learned = _learned_attack(task, member_output, member_target, nonmember_output, nonmember_target,
                              n_classes=n_classes, rng=rng, low_fpr=low_fpr, n_resamples=n_resamples,
                              confidence=confidence, trees=attack_trees, min_leaf=attack_min_leaf)
    if learned is not None:
        attacks.append(learned)
    return MembershipResult(task=task, n_member=len(m_sig), n_nonmember=len(n_sig), attacks=tuple(attacks),
                            signal_member=m_sig, signal_nonmember=n_sig, n_resamples=n_resamples,
                            confidence=confidence)


def _halves(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    perm = rng.permutation(n)
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2:])


def _learned_attack(task: str, m_out: np.ndarray, m_y: np.ndarray, n_out: np.ndarray, n_y: np.ndarray, *,
                    n_classes: int, rng: np.random.Generator, low_fpr: Sequence[float], n_resamples: int,
                    confidence: float, trees: int, min_leaf: int) -> MembershipAttack | None:
    """ART's black-box membership inference with a seeded random-forest attack model."""
    if min(len(m_y), len(n_y)) < 20:
        return None
    from sklearn.ensemble import RandomForestClassifier

    with quiet_art():
        from art.attacks.inference.membership_inference import MembershipInferenceBlackBox

        mtr, mte = _halves(len(m_y), rng)
        ntr, nte = _halves(len(n_y), rng)
        forest = RandomForestClassifier(n_estimators=trees, min_samples_leaf=min_leaf, random_state=seed_of(rng),
                                        n_jobs=1)
        if task == "classification":
            from art.estimators.classification import BlackBoxClassifier

            est = BlackBoxClassifier(_no_queries, input_shape=(1,), nb_classes=n_classes)
            attack = MembershipInferenceBlackBox(est, input_type="prediction", attack_model_type="rf")
            m_pred, n_pred = np.asarray(m_out, dtype=np.float32), np.asarray(n_out, dtype=np.float32)
            m_lab, n_lab = np.asarray(m_y, dtype=int), np.asarray(n_y, dtype=int)
        else:
            from art.estimators.regression import BlackBoxRegressor

            est = BlackBoxRegressor(_no_queries, input_shape=(1,))
            attack = MembershipInferenceBlackBox(est, input_type="loss", attack_model_type="rf")
            m_pred, n_pred = np.asarray(m_out, dtype=np.float32), np.asarray(n_out, dtype=np.float32)
            m_lab, n_lab = np.asarray(m_y, dtype=np.float32), np.asarray(n_y, dtype=np.float32)
        # ART builds an unseeded forest; ours is seeded (ART's own check of a passed-in attack_model
        # calls len() on the unfitted forest, so it is set after construction)
        attack.attack_model = forest
        attack.fit(x=None, y=m_lab[mtr], pred=m_pred[mtr], test_x=None, test_y=n_lab[ntr], test_pred=n_pred[ntr])
        p_m = attack.infer(None, m_lab[mte], pred=m_pred[mte], probabilities=True).reshape(-1)
        p_n = attack.infer(None, n_lab[nte], pred=n_pred[nte], probabilities=True).reshape(-1)
    y = np.r_[np.ones(len(p_m), dtype=int), np.zeros(len(p_n), dtype=int)]
    p = np.r_[p_m, p_n]
    sc = attack_score(y, p, low_fpr=low_fpr, n_resamples=n_resamples, confidence=confidence, rng=rng)
    acc = float(np.mean((p >= 0.5) == (y == 1)))
    return MembershipAttack("learned", "learned attack (ART black-box, random-forest attack model)", sc, acc,
                            len(mtr) + len(ntr))


def _no_queries(x: np.ndarray) -> np.ndarray:
    raise RuntimeError("the membership attack works on recorded outputs and never queries the model")
