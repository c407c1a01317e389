import numpy as np
import pytest

from trainer.evaluate import (bootstrap_auc_ci, calibration, choose_threshold, compute_metrics, confusion,
                              fit_temperature, rates, robust_threshold, roc_auc, roc_curve, roc_points, sensitivity_threshold,
                              sigmoid, youden_threshold)


def brute_auc(y, s):
    pos = [b for a, b in zip(y, s) if a == 1]
    neg = [b for a, b in zip(y, s) if a == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_auc_counts_ties_as_half():
    y = [0, 0, 1, 1]
    assert roc_auc(y, [0.1, 0.4, 0.35, 0.8]) == 0.75
    # pairs (pos, neg): (0.5,0.5) tie, (0.5,0.2) win, (0.9,0.5) win, (0.9,0.2) win -> 3.5 / 4
    assert roc_auc([1, 0, 1, 0], [0.5, 0.5, 0.9, 0.2]) == 0.875
    assert roc_auc([0, 1], [0.3, 0.3]) == 0.5
    assert roc_auc([1, 1], [0.1, 0.2]) is None


def test_auc_matches_brute_force_with_many_ties():
    rng = np.random.RandomState(1)
    y = rng.randint(0, 2, 60)
    s = rng.randint(0, 5, 60) / 4.0
    assert roc_auc(y, s) == pytest.approx(brute_auc(list(y), list(s)))


def test_roc_curve_steps_through_distinct_scores():
    fpr, tpr, thr = roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert list(thr[1:]) == [0.8, 0.4, 0.35, 0.1] and np.isinf(thr[0])
    assert list(tpr) == [0, 0.5, 0.5, 1, 1]
    assert list(fpr) == [0, 0, 0.5, 0.5, 1]
    pts = roc_points([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert pts[0] == {"fpr": 0.0, "tpr": 0.0, "threshold": None} and pts[-1]["tpr"] == 1.0
    many = roc_points(np.arange(1000) % 2, np.linspace(0, 1, 1000))
    assert len(many) <= 200 and many[0]["fpr"] == 0.0 and many[-1] == {"fpr": 1.0, "tpr": 1.0, "threshold": 0.0}


def test_confusion_and_rates_by_hand():
    y = [1, 1, 1, 0, 0, 0, 0]
    s = [0.9, 0.6, 0.2, 0.7, 0.3, 0.1, 0.6]
    c = confusion(y, s, 0.6)  # >= threshold is positive
    assert c == {"tp": 2, "fp": 2, "tn": 2, "fn": 1}
    r = rates(c)
    assert r["sensitivity"] == pytest.approx(2 / 3) and r["specificity"] == 0.5
    assert r["ppv"] == 0.5 and r["npv"] == pytest.approx(2 / 3)
    assert r["accuracy"] == pytest.approx(4 / 7) and r["f1"] == pytest.approx(4 / 7)
    assert rates({"tp": 0, "fp": 0, "tn": 3, "fn": 0})["ppv"] is None


def test_youden_and_sensitivity_thresholds():
    y = [0, 0, 0, 1, 0, 1, 1, 1]
    s = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    # J at 0.6: tpr 3/4, fpr 0 -> 0.75; at 0.4: tpr 1, fpr 1/4 -> 0.75 as well; the higher score wins.
    assert youden_threshold(y, s) == 0.6
    assert sensitivity_threshold(y, s, 0.95) == 0.4
    assert sensitivity_threshold(y, s, 0.5) == 0.7
    assert choose_threshold(y, s, "sensitivity", 1.0) == 0.4


def test_calibration_bins_and_ece():
    cal = calibration([0, 1, 1, 0], [0.05, 0.05, 0.95, 0.95])
    assert len(cal["bins"]) == 10
    assert cal["bins"][0] == {"lo": 0.0, "hi": 0.1, "count": 2, "mean_pred": 0.05, "frac_pos": 0.5}
    assert cal["bins"][9]["count"] == 2 and cal["bins"][5]["mean_pred"] is None
    assert cal["ece"] == pytest.approx(0.45)
    assert calibration([1], [1.0])["bins"][9]["count"] == 1  # p == 1 lands in the last bin


def test_bootstrap_ci_is_seeded_and_brackets_the_auc():
    rng = np.random.RandomState(0)
    y = rng.randint(0, 2, 80)
    s = y * 0.5 + rng.rand(80)
    a, b = bootstrap_auc_ci(y, s, seed=5), bootstrap_auc_ci(y, s, seed=5)
    assert a == b and a[0] < roc_auc(y, s) < a[1]


def test_temperature_fit_recovers_a_known_scale():
    rng = np.random.RandomState(0)
    true_logits = rng.normal(0, 2, 4000)
    y = (rng.rand(4000) < sigmoid(true_logits)).astype(float)
    t = fit_temperature(true_logits * 3.0, y)  # overconfident by 3x
    assert t == pytest.approx(3.0, rel=0.15)
    assert fit_temperature([1.0, 2.0], [1, 1]) == 1.0


def test_compute_metrics_shape():
    m = compute_metrics([0, 1, 0, 1], [0.2, 0.7, 0.6, 0.9], 0.65, "youden", 1.3, seed=1)
    assert m["n"] == 4 and m["positives"] == 2 and m["auc"] == 1.0
    assert m["confusion"] == {"tp": 2, "fp": 0, "tn": 2, "fn": 0} and m["temperature"] == 1.3
    assert set(m) >= {"auc_ci", "accuracy", "sensitivity", "specificity", "ppv", "npv", "f1", "threshold",
                      "threshold_method", "roc", "calibration"}


def test_robust_threshold_is_the_middle_of_the_near_optimal_range():
    # Perfectly separated: every threshold in (0.2, 0.8] has J = 1; the middle in logit space is 0.5.
    y = [0, 0, 0, 1, 1, 1]
    s = [0.1, 0.15, 0.2, 0.8, 0.85, 0.9]
    assert robust_threshold(y, [s]) == pytest.approx(0.5, abs=0.02)
    # Youden sits at the razor's edge (the lowest positive score); the robust threshold does not.
    assert youden_threshold(y, s) == 0.8
    # A shifted view that pushes the negatives up moves the range, and so the threshold.
    up = [0.5, 0.55, 0.6, 0.8, 0.85, 0.9]
    assert robust_threshold(y, [s, up]) > robust_threshold(y, [s])
    assert choose_threshold(y, s, "robust", 0.95, [up]) == robust_threshold(y, [s, up])
