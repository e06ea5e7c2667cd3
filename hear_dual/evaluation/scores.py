"""heareval's scores (heareval/score.py, 2021.1.3), by name as task_metadata.json's "evaluation" lists them.

Scene scores take predictions (n, C) (softmax or sigmoid outputs) and multi-hot targets (n, C):
top1_acc / pitch_acc (argmax equal), chroma_acc (argmax equal modulo 12), mAP (macro average precision),
d_prime (per-class ROC AUC -> sqrt(2) * Phi^-1(AUC), then the mean), aucroc (macro ROC AUC); d_prime and
aucroc are NaN when a class has no positive or no negative example, as in heareval.

Event scores take {file: [{"label", "start", "end"} in ms]} for predictions and targets and follow sed_eval
0.2.1, which heareval calls: event-based metrics (evaluate_onset, evaluate_offset, t_collar,
percentage_of_length) match reference and estimated events of the same label whose onsets differ by at most
t_collar (and, with offsets, whose offsets differ by at most max(t_collar, percentage_of_length * reference
length)); a maximum bipartite matching gives the true positives (sed_eval's "optimal" matching), counted over
all files: F = 2 TP / (N_sys + N_ref). Segment-based error rate: per file, events become an activity roll of
time_resolution segments (onset floored, offset ceiled) as long as the later of the last reference and
estimated offset; per segment S = min(N_ref, N_sys) - TP, D = max(0, N_ref - N_sys), I = max(0, N_sys - N_ref);
ER = (S + D + I) / N_ref over all segments. Only files that appear in the predictions are scored (heareval
loops over the predicted files; every test file is there, with an empty list when nothing was detected).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

EPS = np.spacing(1)      # sed_eval's guard against dividing by zero


def top1_acc(predictions, targets) -> float:
    return float(np.mean(np.argmax(predictions, 1) == np.argmax(targets, 1)))


def chroma_acc(predictions, targets) -> float:
    return float(np.mean(np.argmax(predictions, 1) % 12 == np.argmax(targets, 1) % 12))


def mean_average_precision(predictions, targets) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(targets, predictions, average="macro"))


def aucroc(predictions, targets) -> float:
    from sklearn.metrics import roc_auc_score

    try:
        return float(roc_auc_score(targets, predictions, average="macro"))
    except ValueError:
        return math.nan


def d_prime(predictions, targets) -> float:
    from scipy.stats import norm
    from sklearn.metrics import roc_auc_score

    try:
        auc = roc_auc_score(targets, predictions, average=None)
    except ValueError:
        return math.nan
    return float(np.mean(norm.ppf(auc) * np.sqrt(2.0)))


def _by_file(events: dict, files) -> dict:
    return {f: [(str(e["label"]), e["start"] / 1000.0, e["end"] / 1000.0) for e in events.get(f, [])] for f in files}


def event_based(predicted: dict, target: dict, t_collar: float, evaluate_offset: bool = False,
                percentage_of_length: float = 0.5) -> dict:
    """{"f_measure", "precision", "recall"}, onset (and offset) matched within a collar; see the module docstring."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import maximum_bipartite_matching

    n_tp = n_sys = n_ref = 0
    ref_by_file, est_by_file = _by_file(target, predicted), _by_file(predicted, predicted)
    for name in predicted:
        ref, est = ref_by_file[name], est_by_file[name]
        n_ref, n_sys = n_ref + len(ref), n_sys + len(est)
        if not ref or not est:
            continue
        hits = np.zeros((len(ref), len(est)), bool)
        for i, (r_label, r_on, r_off) in enumerate(ref):
            for j, (e_label, e_on, e_off) in enumerate(est):
                hit = r_label == e_label and abs(r_on - e_on) <= t_collar
                if evaluate_offset:
                    hit = hit and abs(r_off - e_off) <= max(t_collar, percentage_of_length * (r_off - r_on))
                hits[i, j] = hit
        matched = maximum_bipartite_matching(csr_matrix(hits), perm_type="column")
        n_tp += int(np.sum(matched >= 0))
    precision, recall = n_tp / (n_sys + EPS), n_tp / (n_ref + EPS)
    return {"f_measure": float(2 * precision * recall / (precision + recall + EPS)), "precision": float(precision),
            "recall": float(recall)}


def _roll(events, labels: list[str], resolution: float, length: int) -> np.ndarray:
    roll = np.zeros((length, len(labels)), np.int64)
    for label, onset, offset in events:
        roll[int(np.floor(onset / resolution)): int(np.ceil(offset / resolution)), labels.index(label)] = 1
    return roll


def segment_based(predicted: dict, target: dict, labels: list[str], time_resolution: float = 1.0) -> dict:
    """{"error_rate"} over time_resolution segments; see the module docstring."""
    s = d = i = n_ref = 0
    ref_by_file, est_by_file = _by_file(target, predicted), _by_file(predicted, predicted)
    for name in predicted:
        ref, est = ref_by_file[name], est_by_file[name]
        last = max([off for _, _, off in ref + est], default=0.0)
        length = int(math.ceil(last / time_resolution))
        r, e = _roll(ref, labels, time_resolution, length), _roll(est, labels, time_resolution, length)
        tp, nr, ns = np.sum(r & e, 1), r.sum(1), e.sum(1)
        s += int(np.sum(np.minimum(nr, ns) - tp))
        d += int(np.sum(np.maximum(0, nr - ns)))
        i += int(np.sum(np.maximum(0, ns - nr)))
        n_ref += int(nr.sum())
    return {"error_rate": float((s + d + i) / (n_ref + EPS))}


@dataclass(frozen=True)
class Score:
    kind: str                # "scene" or "event"
    compute: object          # scene: (predictions, targets); event: (predicted, target, labels)
    maximize: bool = True
    primary: str = ""        # event scores return several numbers; this one is the score


SCORES = {
    "top1_acc": Score("scene", top1_acc),
    "pitch_acc": Score("scene", top1_acc),
    "chroma_acc": Score("scene", chroma_acc),
    "mAP": Score("scene", mean_average_precision),
    "d_prime": Score("scene", d_prime),
    "aucroc": Score("scene", aucroc),
    "event_onset_200ms_fms": Score("event", lambda p, t, labels: event_based(p, t, 0.2), primary="f_measure"),
    "event_onset_50ms_fms": Score("event", lambda p, t, labels: event_based(p, t, 0.05), primary="f_measure"),
    "event_onset_offset_50ms_20perc_fms": Score(
        "event", lambda p, t, labels: event_based(p, t, 0.05, True, 0.2), primary="f_measure"),
    "segment_1s_er": Score("event", lambda p, t, labels: segment_based(p, t, labels, 1.0), maximize=False,
                           primary="error_rate"),
}


def compute(name: str, predictions, targets, labels: list[str] | None = None) -> tuple[float, dict]:
    """(the score, all its numbers) for a score named as in task_metadata.json."""
    score = SCORES[name]
    if score.kind == "scene":
        value = score.compute(predictions, targets)
        return value, {name: value}
    parts = score.compute(predictions, targets, labels)
    return parts[score.primary], {f"{name}_{k}": v for k, v in parts.items()}
