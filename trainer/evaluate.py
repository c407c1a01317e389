"""Binary-classification metrics (numpy only) and temperature scaling.

Conventions: labels are 0/1 with 1 = PNEUMONIA; a score s is called positive when s >= threshold.
Undefined values (AUC of a one-class set, PPV with no predicted positives, ...) are None.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

MAX_ROC_POINTS = 200
CALIBRATION_BINS = 10
BOOTSTRAP_SAMPLES = 1000


def _arrays(y: Sequence[float], s: Sequence[float]) -> Tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    s = np.asarray(s, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length ({y.size} vs {s.size})")
    return y, s


def _auc_of(y: np.ndarray, s: np.ndarray) -> Optional[float]:
    npos = int(y.sum())
    nneg = y.size - npos
    if npos == 0 or nneg == 0:
        return None
    # Mann-Whitney U with average ranks for ties: P(score_pos > score_neg) + 0.5 P(equal).
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    avg_rank = np.cumsum(counts) - (counts - 1) / 2.0
    ranks = avg_rank[inverse]
    return float((ranks[y > 0.5].sum() - npos * (npos + 1) / 2.0) / (npos * nneg))


def roc_auc(y: Sequence[float], s: Sequence[float]) -> Optional[float]:
    return _auc_of(*_arrays(y, s))


def bootstrap_auc_ci(y: Sequence[float], s: Sequence[float], samples: int = BOOTSTRAP_SAMPLES,
                     seed: int = 0, level: float = 0.95) -> Optional[List[float]]:
    """Percentile bootstrap CI of the AUC; resamples that miss a class are skipped."""
    y, s = _arrays(y, s)
    if _auc_of(y, s) is None:
        return None
    rng = np.random.RandomState(seed)
    aucs = []
    for _ in range(samples):
        idx = rng.randint(0, y.size, y.size)
        a = _auc_of(y[idx], s[idx])
        if a is not None:
            aucs.append(a)
    if not aucs:
        return None
    alpha = (1.0 - level) / 2.0
    return [float(np.quantile(aucs, alpha)), float(np.quantile(aucs, 1.0 - alpha))]


def roc_curve(y: Sequence[float], s: Sequence[float]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds), one point per distinct score (descending) after a leading
    (0, 0, +inf) point. Requires both classes."""
    y, s = _arrays(y, s)
    npos, nneg = y.sum(), y.size - y.sum()
    if npos == 0 or nneg == 0:
        raise ValueError("ROC needs both classes")
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last_of_group = np.r_[np.nonzero(np.diff(s_sorted))[0], y.size - 1]
    tps = np.cumsum(y_sorted)[last_of_group]
    fps = (last_of_group + 1) - tps
    fpr = np.r_[0.0, fps / nneg]
    tpr = np.r_[0.0, tps / npos]
    thresholds = np.r_[np.inf, s_sorted[last_of_group]]
    return fpr, tpr, thresholds


def youden_threshold(y: Sequence[float], s: Sequence[float]) -> float:
    """Score maximising sensitivity + specificity - 1; the highest such score on ties."""
    fpr, tpr, thr = roc_curve(y, s)
    j = tpr[1:] - fpr[1:]
    return float(thr[1:][int(np.argmax(j))])


def sensitivity_threshold(y: Sequence[float], s: Sequence[float], target: float) -> float:
    """Highest score whose sensitivity is >= target (so specificity is as high as it can be)."""
    fpr, tpr, thr = roc_curve(y, s)
    hits = np.nonzero(tpr[1:] >= target - 1e-12)[0]
    return float(thr[1:][hits[0]])


ROBUST_TOLERANCE = 0.02


def robust_threshold(y: Sequence[float], views: Sequence[Sequence[float]],
                     tolerance: float = ROBUST_TOLERANCE) -> float:
    """A threshold away from the razor's edge: pool the scores of every view (the clean set and its
    shifted copies, same labels), find every threshold whose pooled Youden J is within `tolerance`
    of the best (the gaps between scores included), and take the middle of that range in logit space."""
    ys = np.concatenate([np.asarray(y, dtype=np.float64)] * len(views))
    ss = np.concatenate([np.asarray(v, dtype=np.float64) for v in views])
    fpr, tpr, thr = roc_curve(ys, ss)
    j = tpr[1:] - fpr[1:]
    scores = thr[1:]  # distinct scores, descending; J at scores[k] holds for t in (scores[k+1], scores[k]]
    below = np.r_[scores[1:], 0.0]
    good = j >= j.max() - tolerance
    eps = 1e-6
    lo, hi = np.clip([below[good].min(), scores[good].max()], eps, 1 - eps)
    mid = (np.log(lo / (1 - lo)) + np.log(hi / (1 - hi))) / 2
    return float(1 / (1 + np.exp(-mid)))


def choose_threshold(y: Sequence[float], s: Sequence[float], method: str, target_sensitivity: float,
                     shifted: Optional[Sequence[Sequence[float]]] = None) -> float:
    if method == "robust":
        return robust_threshold(y, [s, *(shifted or [])])
    if method == "youden":
        return youden_threshold(y, s)
    if method == "sensitivity":
        return sensitivity_threshold(y, s, target_sensitivity)
    raise ValueError(f"unknown threshold method {method!r}")


def confusion(y: Sequence[float], s: Sequence[float], threshold: float) -> Dict[str, int]:
    y, s = _arrays(y, s)
    pred = s >= threshold
    pos = y > 0.5
    return {
        "tp": int(np.sum(pred & pos)),
        "fp": int(np.sum(pred & ~pos)),
        "tn": int(np.sum(~pred & ~pos)),
        "fn": int(np.sum(~pred & pos)),
    }


def _ratio(a: float, b: float) -> Optional[float]:
    return float(a / b) if b > 0 else None


def rates(c: Dict[str, int]) -> Dict[str, Optional[float]]:
    tp, fp, tn, fn = c["tp"], c["fp"], c["tn"], c["fn"]
    sens, ppv = _ratio(tp, tp + fn), _ratio(tp, tp + fp)
    return {
        "accuracy": _ratio(tp + tn, tp + fp + tn + fn),
        "sensitivity": sens,
        "specificity": _ratio(tn, tn + fp),
        "ppv": ppv,
        "npv": _ratio(tn, tn + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }


def calibration(y: Sequence[float], p: Sequence[float], bins: int = CALIBRATION_BINS) -> Dict[str, Any]:
    """Equal-width reliability bins over [0,1] and the expected calibration error."""
    y, p = _arrays(y, p)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    out, ece = [], 0.0
    for b in range(bins):
        m = which == b
        count = int(m.sum())
        mean_pred = float(p[m].mean()) if count else None
        frac_pos = float(y[m].mean()) if count else None
        if count:
            ece += count / y.size * abs(mean_pred - frac_pos)
        out.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "count": count,
                    "mean_pred": mean_pred, "frac_pos": frac_pos})
    return {"ece": float(ece) if y.size else None, "bins": out}


def roc_points(y: Sequence[float], s: Sequence[float], max_points: int = MAX_ROC_POINTS) -> List[Dict[str, Any]]:
    """The ROC curve thinned to <= max_points (first and last kept); the first point's threshold
    is null, meaning 'above every score'."""
    fpr, tpr, thr = roc_curve(y, s)
    idx = np.arange(fpr.size)
    if fpr.size > max_points:
        idx = np.unique(np.round(np.linspace(0, fpr.size - 1, max_points)).astype(int))
    return [{"fpr": float(fpr[i]), "tpr": float(tpr[i]),
             "threshold": None if not np.isfinite(thr[i]) else float(thr[i])} for i in idx]


def sigmoid(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic


def fit_temperature(logits: Sequence[float], labels: Sequence[float], max_iter: int = 100) -> float:
    """Temperature T > 0 minimising the NLL of sigmoid(logit / T) (LBFGS on log T)."""
    z = torch.as_tensor(np.asarray(logits, dtype=np.float64)).reshape(-1)
    y = torch.as_tensor(np.asarray(labels, dtype=np.float64)).reshape(-1)
    if z.numel() == 0 or float(y.min()) == float(y.max()):
        return 1.0
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    t = float(log_t.detach().exp().item())
    return float(min(max(t, 0.05), 20.0)) if np.isfinite(t) else 1.0


def compute_metrics(labels: Sequence[float], probs: Sequence[float], threshold: float, threshold_method: str,
                    temperature: float, seed: int = 0) -> Dict[str, Any]:
    """The full `evaluation` metrics object of the protocol (see README.md)."""
    y, p = _arrays(labels, probs)
    c = confusion(y, p, threshold)
    both = 0 < y.sum() < y.size
    return {
        "n": int(y.size),
        "positives": int(y.sum()),
        "auc": _auc_of(y, p),
        "auc_ci": bootstrap_auc_ci(y, p, seed=seed) if both else None,
        **rates(c),
        "threshold": float(threshold),
        "threshold_method": threshold_method,
        "confusion": c,
        "roc": roc_points(y, p) if both else [],
        "calibration": calibration(y, p),
        "temperature": float(temperature),
    }
