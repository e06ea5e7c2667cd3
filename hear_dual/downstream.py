"""Downstream agreement: does a probe trained on one backend's embeddings predict the same on the other's?

Numerical parity (hear_dual.parity) says how far two embeddings are apart; this says whether the distance
matters to the HEAR evaluation, which trains a shallow classifier on top of the embeddings. The probe is
fit on backend A only, then applied to A's and B's embeddings of the same held-out clips.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from hear_dual import datasets
from hear_dual.extras import require


def _sklearn():
    require("sklearn", "the downstream probe (hear-dual parity, compare; or --no-speech)")
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return LogisticRegression, train_test_split, make_pipeline, StandardScaler


def _split(labels: np.ndarray, groups: np.ndarray | None, seed: int, train_test_split):
    """(train indices, test indices, held-out group or None)."""
    index = np.arange(len(labels))
    if groups is not None:
        names = sorted(set(groups.tolist()))
        if len(names) < 2:
            raise ValueError(f"holding out a group needs at least 2 groups, got {names}")
        held_out = names[seed % len(names)]
        test = groups == held_out
        return index[~test], index[test], held_out
    train, test = train_test_split(index, test_size=0.25, stratify=labels, random_state=seed)
    return np.sort(train), np.sort(test), None


def probe_agreement(scene_a, scene_b, labels, groups=None, seed: int = 0) -> dict:
    """Fit StandardScaler + LogisticRegression on A's training embeddings; compare its test predictions on A and B.

    groups given: the test split is one whole group (sorted group names, the one at seed % n_groups), e.g. one
    speaker; otherwise a stratified 75/25 split drawn with seed. Returns python floats and ints only.
    """
    LogisticRegression, train_test_split, make_pipeline, StandardScaler = _sklearn()
    scene_a, scene_b = np.asarray(scene_a, np.float64), np.asarray(scene_b, np.float64)
    labels = np.asarray(labels)
    if scene_a.shape != scene_b.shape or scene_a.ndim != 2 or len(labels) != len(scene_a):
        raise ValueError(f"need two (n, D) scene embeddings and n labels, got {scene_a.shape}, {scene_b.shape}, "
                         f"{labels.shape}")
    groups = None if groups is None else np.asarray(groups)
    train, test, held_out = _split(labels, groups, seed, train_test_split)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probe.fit(scene_a[train], labels[train])
    pred_a, pred_b = probe.predict(scene_a[test]), probe.predict(scene_b[test])
    result = {
        "accuracy_a": float(np.mean(pred_a == labels[test])),
        "accuracy_b": float(np.mean(pred_b == labels[test])),
        "identical_predictions": float(np.mean(pred_a == pred_b)),
        "n_differing_predictions": int(np.sum(pred_a != pred_b)),
        "n_train": int(len(train)),
        "n_test": int(len(test)),
    }
    if held_out is not None:
        result["held_out_group"] = str(held_out)
    return result


def fsdd_subset(sample_rate: int, n_per_digit_speaker: int = 4, seed: int = 0, max_seconds: float = 1.0):
    """A balanced, deterministic FSDD subset: (audio (n, L) float32, digit labels (n,), speakers (n,)) or None.

    n_per_digit_speaker recordings of every (digit, speaker) pair (default 4 x 10 digits x 6 speakers = 240
    clips), chosen with seed; resampled to sample_rate, cropped to max_seconds and zero-padded to the longest.
    None when FSDD is not found (see hear_dual.datasets.fsdd_dir).
    """
    root = datasets.fsdd_dir()
    if root is None:
        return None
    by_pair = defaultdict(list)
    for path in sorted(root.glob("*.wav")):
        match = datasets.FSDD_NAME.match(path.name)
        if match:
            by_pair[(int(match[1]), match[2])].append((int(match[3]), path))
    rng = np.random.default_rng(seed)
    picks = []
    for (digit, speaker), files in sorted(by_pair.items()):
        files = [path for _, path in sorted(files)]
        chosen = rng.choice(len(files), size=min(n_per_digit_speaker, len(files)), replace=False)
        picks += [(files[i], digit, speaker) for i in sorted(chosen)]
    if not picks:
        return None
    limit = max(1, int(round(max_seconds * sample_rate)))
    clips = [datasets.read_clip(path, sample_rate)[:limit] for path, _, _ in picks]
    length = max(len(c) for c in clips)
    audio = np.stack([np.pad(c, (0, length - len(c))) for c in clips]).astype(np.float32)
    labels = np.array([digit for _, digit, _ in picks], dtype=np.int64)
    speakers = np.array([speaker for _, _, speaker in picks])
    return audio, labels, speakers


def backend_probe_agreement(backends: dict, sample_rate: int | None = None) -> dict | None:
    """For every pair of hear_dual.parity.Backend objects: a digit probe fitted on A's FSDD scene embeddings
    classifies B's; each speaker is held out in turn and the predictions pooled. None without FSDD."""
    from itertools import combinations

    names = list(backends)
    rate = sample_rate or backends[names[0]].spec.sample_rate
    subset = fsdd_subset(rate)
    if subset is None:
        return None
    audio, labels, speakers = subset
    scenes = {name: backend.scene(audio) for name, backend in backends.items()}
    report = {}
    for a, b in combinations(names, 2):
        folds = [probe_agreement(scenes[a], scenes[b], labels, speakers, seed=k)
                 for k in range(len(set(speakers)))]
        n_test = sum(f["n_test"] for f in folds)
        report[f"{a} vs {b}"] = {
            "identical_predictions": sum(f["identical_predictions"] * f["n_test"] for f in folds) / n_test,
            "accuracy_a": sum(f["accuracy_a"] * f["n_test"] for f in folds) / n_test,
            "accuracy_b": sum(f["accuracy_b"] * f["n_test"] for f in folds) / n_test,
            "n_test": n_test,
            "protocol": "digit probe, each of the speakers held out in turn, predictions pooled",
        }
    return report
