"""Shallow-probe evaluation of any HEAR 2021 module on a labelled folder: `hear-dual evaluate MODULE DATA --task T`.

    hear-dual evaluate hear_dual.torch_impl fsdd --task fsdd-digit --task fsdd-speaker \\
        --reference logmel-stats --reference randproj
    hear-dual evaluate some_hear_module my_sounds/ --task my-task --label-from folder --folds 5

MODULE is a HEAR 2021 module by import name (ours in any backend, hear_dual.torch_impl / tf_impl / onnx_impl,
or any other installed one; --weights is passed to its load_model), or one of the reference names below.
Every audio file is read with soundfile, mixed to mono and resampled to model.sample_rate with soxr "HQ"
(hear_dual.datasets.read_clip). Scene embeddings come from the module's own get_scene_embeddings, called
the way heareval calls it (a torch tensor for a torch model, a TF tensor for a TF model). Files are sorted
by length and embedded in batches of at most --batch-size clips (and --batch-seconds of padded audio), each
zero-padded to the longest clip of its batch, so a clip's embedding sees a little trailing silence;
--batch-size 1 embeds every clip alone, exactly.

Tasks. Built in, on the Free Spoken Digit Dataset (DATA "fsdd" finds it, see hear_dual.datasets.fsdd_dir):

    fsdd-digit     label = digit from {digit}_{speaker}_{index}.wav; grouped folds, each speaker held out in
                   turn (6 folds): digits spoken by a voice the probe never heard
    fsdd-speaker   label = speaker; 5-fold stratified, shuffled with --seed

Any other task name is a generic task on DATA: labels from the first sub-folder under DATA (--label-from
folder, the default) or from a regular expression on the file name (--label-pattern RE --label-group N,
optionally --group-group M for a group to hold out with --grouped); --folds K (default 5). Grouped with
--folds omitted (or equal to the number of groups) means each group held out in turn; otherwise GroupKFold.

Probe, refit from scratch on each fold's training part:

    logreg   StandardScaler + LogisticRegression (lbfgs, C=1, max_iter 5000)           (default)
             when the embeddings are wider than the training set, fit in the span of the standardised
             training rows (RowSpace: the same L2 problem, much cheaper for wide, low-rank embeddings)
    mlp      StandardScaler + MLPClassifier, close to heareval's shallow MLP: one hidden layer of 1024 ReLU
             units, Adam (learning rate 1e-3), batch 1024, at most 500 epochs, early stopping on a 10%
             validation split with patience 20 epochs, L2 1e-4. heareval also uses dropout 0.1 and picks
             the learning rate and a few other settings from a grid on a validation split; sklearn has no
             dropout and there is no grid here.

Reported: per-fold accuracies, their mean and std (population std, ddof=0). Seeds are fixed (--seed), so
the numbers are reproducible on one machine.

References, evaluated in the same run with the same files, folds and probe (--reference, repeatable):

    seeded-random  hear_dual.torch_impl with the shipped hear-dual-base-seeded checkpoint (untrained weights)
    seeded-compact hear_dual.torch_impl with the shipped hear-dual-compact-seeded checkpoint (untrained weights)
    logmel-stats   hear_dual.baselines: mean and std over time of the hear-dual-base log-mel, no learning
    randproj       hear_dual.torch_impl with the shipped hear-dual-randproj checkpoint: a random linear
                   projection of log-mel frames to 4096 dims, mean over time (after hearbaseline.naive)

Cache: scene embeddings are stored as .npz (no pickle) in --cache-dir (default $HEAR_DUAL_CACHE, else
~/.cache/hear-dual/embeddings), keyed by the sha256 of the module name, the weights (the file's sha256, the
model's checkpoint_sha256 for default weights, else "default"), the sorted file list with sizes and
modification times, the sample rate and the batching. Tasks on the same files share one entry.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hear_dual import datasets, hear_module
from hear_dual.evaluation.models import Loaded, ModelRef, default_cache_dir, load, model_ref
from hear_dual.extras import require

CACHE_FORMAT = "2"   # bump when hear_dual code changes embeddings (2: float64 scene mean, conv kernels)
DEFAULT_BATCH_SIZE = 64
DEFAULT_BATCH_SECONDS = 240.0
DEFAULT_FOLDS = 5
PROBES = ("logreg", "mlp")



# ---------------------------------------------------------------- tasks and labels

@dataclass(frozen=True)
class Task:
    name: str
    description: str
    label_from: str = "folder"          # "folder" or "pattern"
    pattern: str | None = None          # matched against the file name (not the path)
    label_group: int = 1
    group_group: int | None = None
    folds: int | None = DEFAULT_FOLDS   # grouped and None: each group held out in turn
    grouped: bool = False
    preset: bool = False

    @property
    def protocol(self) -> str:
        if self.grouped:
            if self.folds is None:
                return "each group held out in turn"
            return f"{self.folds}-fold grouped (GroupKFold)"
        return f"{self.folds}-fold stratified, shuffled"


FSDD_PATTERN = datasets.FSDD_NAME.pattern
PRESETS = {
    "fsdd-digit": Task("fsdd-digit", "FSDD spoken digit, each speaker held out in turn", "pattern", FSDD_PATTERN,
                       label_group=1, group_group=2, folds=None, grouped=True, preset=True),
    "fsdd-speaker": Task("fsdd-speaker", "FSDD speaker identification, 5-fold stratified", "pattern", FSDD_PATTERN,
                         label_group=2, folds=5, grouped=False, preset=True),
}


@dataclass
class Dataset:
    root: Path
    files: list[Path]                   # sorted
    labels: np.ndarray                  # str
    groups: np.ndarray | None           # str, or None
    skipped: int = 0                    # audio files under root the task could not label

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels.tolist()))


def generic_task(name: str, label_from: str | None = None, label_pattern: str | None = None, label_group: int = 1,
                 group_group: int | None = None, folds: int | None = None, grouped: bool = False) -> Task:
    """A task on a user folder; labels from sub-folders (default) or from a file-name pattern."""
    if label_pattern is not None and label_from not in (None, "pattern"):
        raise ValueError("give either --label-from folder or --label-pattern, not both")
    mode = "pattern" if label_pattern is not None else (label_from or "folder")
    if mode not in ("folder", "pattern"):
        raise ValueError(f"--label-from must be 'folder' (or use --label-pattern), got {label_from!r}")
    if mode == "pattern":
        try:
            compiled = re.compile(label_pattern)
        except re.error as e:
            raise ValueError(f"--label-pattern {label_pattern!r} is not a valid regular expression: {e}") from None
        for what, number in (("--label-group", label_group), ("--group-group", group_group)):
            if number is not None and not 0 <= number <= compiled.groups:
                raise ValueError(f"{what} {number} but --label-pattern has {compiled.groups} group(s)")
    if grouped and (mode != "pattern" or group_group is None):
        raise ValueError("--grouped needs --label-pattern with --group-group (the group to hold out)")
    if folds is not None and folds < 2:
        raise ValueError(f"--folds must be at least 2, got {folds}")
    if not grouped and folds is None:
        folds = DEFAULT_FOLDS
    kind = (f"labels from file names ({label_pattern}, group {label_group})" if mode == "pattern"
            else "labels from sub-folders")
    return Task(name, kind, mode, label_pattern, label_group, group_group, folds, grouped)


def resolve_task(name: str, **generic) -> Task:
    """A preset by name, else a generic task built from the --label-* options (see generic_task)."""
    if name in PRESETS:
        return PRESETS[name]
    return generic_task(name, **generic)


def resolve_data(data: str) -> Path:
    """DATA as a folder; "fsdd" means hear_dual.datasets.fsdd_dir() (only when no folder of that name exists)."""
    if data == "fsdd" and not Path(data).is_dir():
        root = datasets.fsdd_dir()
        if root is None:
            raise FileNotFoundError("FSDD not found: put it at ../shared/data/fsdd or set HEAR_DUAL_FSDD")
        return root
    root = Path(data)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder not found: {data}")
    return root


def _audio_files(root: Path) -> list[Path]:
    from hear_dual.datasets import audio_extensions

    extensions = audio_extensions()
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and not p.name.startswith(".") and p.suffix[1:].lower() in extensions)


def load_dataset(task: Task, root) -> Dataset:
    """Every audio file under root that the task can label, with its label (and group), sorted by path."""
    root = Path(root)
    files, labels, groups, skipped = [], [], [], 0
    pattern = re.compile(task.pattern) if task.label_from == "pattern" else None
    for path in _audio_files(root):
        if pattern is not None:
            match = pattern.match(path.name)
            if not match or match[task.label_group] is None:
                skipped += 1
                continue
            label = match[task.label_group]
            group = match[task.group_group] if task.group_group is not None else None
        else:
            parts = path.relative_to(root).parts
            if len(parts) < 2:
                skipped += 1
                continue
            label, group = parts[0], None
        files.append(path)
        labels.append(label)
        groups.append(group)
    if not files:
        how = f"file names matching {task.pattern}" if pattern is not None else "audio files in sub-folders"
        raise FileNotFoundError(f"task {task.name}: no {how} under {root}")
    return Dataset(root, files, np.array(labels, dtype=str),
                   np.array(groups, dtype=str) if task.group_group is not None else None, skipped)


# ---------------------------------------------------------------- folds and probes

def make_folds(task: Task, labels, groups=None, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train indices, test indices) per fold. Grouped folds never put one group on both sides."""
    require("sklearn", "hear-dual evaluate")
    from sklearn.model_selection import GroupKFold, LeaveOneGroupOut, StratifiedKFold

    labels = np.asarray(labels)
    index = np.zeros((len(labels), 1))
    if task.grouped:
        if groups is None:
            raise ValueError(f"task {task.name} is grouped but has no groups")
        groups = np.asarray(groups)
        n_groups = len(set(groups.tolist()))
        if n_groups < 2:
            raise ValueError(f"task {task.name}: holding out a group needs at least 2 groups, got {n_groups}")
        if task.folds is None or task.folds == n_groups:
            splitter = LeaveOneGroupOut()
        elif task.folds > n_groups:
            raise ValueError(f"task {task.name}: {task.folds} grouped folds but only {n_groups} groups")
        else:
            splitter = GroupKFold(n_splits=task.folds)
        return list(splitter.split(index, labels, groups))
    counts = {c: int(np.sum(labels == c)) for c in set(labels.tolist())}
    if len(counts) < 2:
        raise ValueError(f"task {task.name}: need at least 2 classes, got {sorted(counts)}")
    rarest = min(counts, key=counts.get)
    if counts[rarest] < task.folds:
        raise ValueError(f"task {task.name}: class {rarest!r} has {counts[rarest]} file(s), fewer than the "
                         f"{task.folds} stratified folds")
    splitter = StratifiedKFold(n_splits=task.folds, shuffle=True, random_state=seed)
    return list(splitter.split(index, labels))


class RowSpace:
    """Rotate onto the span of the (standardised) training embeddings: a lossless step before an L2 probe.

    The L2-regularised logistic regression optimum w lies in the span of its training rows (any other component
    leaves the loss unchanged and adds to the penalty), so projecting training and test rows onto an orthonormal
    basis of that span poses the same problem; directions whose singular value is below RANK_TOL of the largest
    (float32 noise) are dropped. What changes is the cost: 4096-d randproj embeddings have rank about 50, so an
    lbfgs iteration is ~80x cheaper (a whole FSDD fold fits about 4x faster: lbfgs stops on a tolerance that is
    not rotation invariant and takes more iterations here). Because of that tolerance, on ill-conditioned
    embeddings the two routes stop at slightly different points (randproj, one FSDD fold: 98% identical test
    predictions, accuracy 0.206 vs 0.204). Applied only when the embeddings have more dimensions than there are
    training rows; otherwise the identity.
    """

    RANK_TOL = 1e-6

    def fit(self, x, y=None):
        x = np.asarray(x, np.float64)
        n, d = x.shape
        self.basis_ = None
        if d > n:                  # only wide embeddings (more dimensions than training rows) gain anything
            values, vectors = np.linalg.eigh(x @ x.T)          # from the Gram matrix XX': V = X'U / s
            keep = values > (self.RANK_TOL ** 2) * values.max()
            self.basis_ = (x.T @ vectors[:, keep]) / np.sqrt(values[keep])
        return self

    def transform(self, x):
        x = np.asarray(x, np.float64)
        return x if self.basis_ is None else x @ self.basis_

    def fit_transform(self, x, y=None):
        return self.fit(x, y).transform(x)

    def get_params(self, deep=True):
        return {}

    def set_params(self, **params):
        return self


def make_probe(kind: str = "logreg", seed: int = 0):
    """A fresh, unfitted sklearn pipeline (see the module docstring for the settings)."""
    require("sklearn", "hear-dual evaluate")
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "logreg":
        return make_pipeline(StandardScaler(), RowSpace(),
                             LogisticRegression(C=1.0, max_iter=5000, random_state=seed))
    if kind == "mlp":
        return make_pipeline(StandardScaler(), MLPClassifier(
            hidden_layer_sizes=(1024,), activation="relu", solver="adam", learning_rate_init=1e-3, batch_size=1024,
            alpha=1e-4, max_iter=500, early_stopping=True, validation_fraction=0.1, n_iter_no_change=20,
            random_state=seed))
    raise ValueError(f"unknown probe {kind!r}; expected one of {PROBES}")


PROBE_DESCRIPTIONS = {
    "logreg": "StandardScaler + LogisticRegression(C=1, lbfgs, max_iter=5000; in the row space when D > n_train)",
    "mlp": "StandardScaler + MLPClassifier(1024 ReLU, Adam 1e-3, batch 1024, early stopping 10%/20 epochs)",
}


def cross_validate(embeddings, labels, folds, probe: str = "logreg", seed: int = 0,
                   bottleneck: int | None = None) -> dict:
    """Fit a fresh probe on each fold's training part; accuracy on its test part. Python types only.

    bottleneck=k first standardises and projects onto the top k principal components of the fold's training
    part (a diagnostic of how much k dimensions keep: training/pca_ceiling.py); evaluate never sets it."""
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    x = np.asarray(embeddings, np.float64)
    labels = np.asarray(labels)
    accuracies, not_converged = [], 0
    # logreg on one BLAS thread: its matrices are small, extra threads only contend (tens of times slower on a
    # busy machine) and make the summation order, hence lbfgs's path, depend on the thread count.
    with threadpool_limits(limits=1 if probe == "logreg" else None, user_api="blas"):
        for train, test in folds:
            model = make_probe(probe, seed)
            if bottleneck is not None:
                from sklearn.decomposition import PCA
                from sklearn.pipeline import make_pipeline
                from sklearn.preprocessing import StandardScaler

                model = make_pipeline(StandardScaler(), PCA(bottleneck, random_state=seed),
                                      *(step for _, step in model.steps))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                model.fit(x[train], labels[train])
            not_converged += any(issubclass(w.category, ConvergenceWarning) for w in caught)
            accuracies.append(float(np.mean(model.predict(x[test]) == labels[test])))
    return {"fold_accuracies": accuracies, "mean": float(np.mean(accuracies)), "std": float(np.std(accuracies)),
            "folds_not_converged": int(not_converged)}


# ---------------------------------------------------------------- embeddings

def scene_embeddings(loaded: Loaded, audio: np.ndarray) -> np.ndarray:
    """One batch (n, n_samples) float32 -> (n, D) float32 through the module's get_scene_embeddings."""
    scene = np.asarray(hear_module.scene_embeddings(loaded.hear, audio), np.float32)
    if scene.ndim != 2 or scene.shape[0] != len(audio):
        raise ValueError(f"{loaded.ref.module}.get_scene_embeddings returned shape {scene.shape} for "
                         f"{len(audio)} sounds; expected ({len(audio)}, D)")
    return scene


def plan_batches(lengths, batch_size: int = DEFAULT_BATCH_SIZE, batch_seconds: float = DEFAULT_BATCH_SECONDS,
                 sample_rate: int = 16000) -> list[list[int]]:
    """Indices sorted by length, cut into batches of at most batch_size clips and batch_seconds of padded audio."""
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    budget = batch_seconds * sample_rate
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches, current = [], []
    for i in order:
        if current and (len(current) >= batch_size or (len(current) + 1) * lengths[i] > budget):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def embed_clips(loaded: Loaded, clips: list[np.ndarray], batch_size: int = DEFAULT_BATCH_SIZE,
                batch_seconds: float = DEFAULT_BATCH_SECONDS, progress: bool = False) -> np.ndarray:
    """(n, D) float32 scene embeddings of mono clips, batched by similar length and zero-padded per batch."""
    from tqdm import tqdm

    batches = plan_batches([len(c) for c in clips], batch_size, batch_seconds, loaded.sample_rate)
    out = None
    for batch in tqdm(batches, desc=f"embed {loaded.ref.label}", unit="batch", disable=not progress, leave=False):
        length = max(len(clips[i]) for i in batch)
        audio = np.zeros((len(batch), length), np.float32)
        for row, i in enumerate(batch):
            audio[row, : len(clips[i])] = clips[i]
        scene = scene_embeddings(loaded, audio)
        if out is None:
            out = np.empty((len(clips), scene.shape[1]), np.float32)
        out[batch] = scene
    if out is None:
        raise ValueError("no clips to embed")
    if not np.isfinite(out).all():
        raise ValueError(f"{loaded.ref.label}: scene embeddings contain NaN or infinity")
    return out


def cache_key(loaded: Loaded, files, batch_size: int, batch_seconds: float) -> str:
    entries = []
    for path in sorted(Path(p).resolve() for p in files):
        stat = path.stat()
        entries.append([str(path), stat.st_size, stat.st_mtime_ns])
    payload = {"format": CACHE_FORMAT, "module": loaded.ref.module, "weights": loaded.weights_id,
               "files": entries, "sample_rate": loaded.sample_rate,
               "batching": {"batch_size": batch_size, "batch_seconds": batch_seconds, "padding": "zeros, end"}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _read_cache(path: Path, key: str, files) -> np.ndarray | None:
    try:
        with np.load(path, allow_pickle=False) as npz:
            if str(npz["key"]) != key or len(npz["files"]) != len(files):
                return None
            by_file = dict(zip(npz["files"].tolist(), range(len(files))))
            rows = [by_file.get(str(Path(f).resolve())) for f in files]
            if any(r is None for r in rows):
                return None
            return npz["embeddings"][rows].astype(np.float32)
    except (OSError, KeyError, ValueError):
        return None


def get_embeddings(loaded: Loaded, files, cache_dir=None, use_cache: bool = True,
                   batch_size: int = DEFAULT_BATCH_SIZE, batch_seconds: float = DEFAULT_BATCH_SECONDS,
                   progress: bool = False, memo: dict | None = None) -> tuple[np.ndarray, bool]:
    """(embeddings in the order of files, whether they came from the cache)."""
    from hear_dual.datasets import read_clip
    from hear_dual.results import write_npz_atomic

    key = cache_key(loaded, files, batch_size, batch_seconds)
    if memo is not None and key in memo:
        return memo[key], True
    path = Path(cache_dir or default_cache_dir()) / f"{key}.npz"
    if use_cache and path.is_file():
        cached = _read_cache(path, key, files)
        if cached is not None:
            if memo is not None:
                memo[key] = cached
            return cached, True
    start = time.perf_counter()
    clips = [read_clip(f, loaded.sample_rate) for f in files]
    embeddings = embed_clips(loaded, clips, batch_size=batch_size, batch_seconds=batch_seconds, progress=progress)
    loaded.embed_seconds += time.perf_counter() - start
    if use_cache:
        meta = {"module": loaded.ref.module, "weights": loaded.ref.weights, "weights_id": loaded.weights_id,
                "sample_rate": loaded.sample_rate, "n_files": len(files)}
        write_npz_atomic(path, {"key": np.array(key), "meta": np.array(json.dumps(meta)),
                                "files": np.array([str(Path(f).resolve()) for f in files]),
                                "embeddings": embeddings})
    if memo is not None:
        memo[key] = embeddings
    return embeddings, False


# ---------------------------------------------------------------- the evaluation

def evaluate(models, tasks, data, probe: str = "logreg", seed: int = 0, cache_dir=None, use_cache: bool = True,
             batch_size: int = DEFAULT_BATCH_SIZE, batch_seconds: float = DEFAULT_BATCH_SECONDS,
             shuffle_labels: bool = False, progress: bool = False) -> dict:
    """Evaluate every model (ModelRef or name) on every task (Task or preset name) on DATA; a report dict."""
    if probe not in PROBES:
        raise ValueError(f"unknown probe {probe!r}; expected one of {PROBES}")
    started = time.perf_counter()
    refs = [m if isinstance(m, ModelRef) else model_ref(m) for m in models]
    tasks = [t if isinstance(t, Task) else resolve_task(t) for t in tasks]
    root = resolve_data(data)
    datasets = {t.name: load_dataset(t, root) for t in tasks}

    loaded_models: list[Loaded] = []
    seen = {}
    for ref in refs:
        loaded = load(ref)
        identity = (ref.module, loaded.weights_id)
        if identity in seen:      # e.g. hear_dual.torch_impl with --weights the seeded file, and seeded-random
            seen[identity].ref.label += f" = {ref.label}"
            continue
        seen[identity] = loaded
        loaded_models.append(loaded)

    report = {"data": str(root), "probe": probe, "probe_settings": PROBE_DESCRIPTIONS[probe], "seed": seed,
              "shuffled_labels": shuffle_labels, "batch_size": batch_size, "tasks": {}, "models": []}
    folds_by_task = {}
    for task in tasks:
        ds = datasets[task.name]
        labels = ds.labels
        if shuffle_labels:
            labels = np.random.default_rng(seed).permutation(labels)
        folds = make_folds(task, labels, ds.groups, seed)
        folds_by_task[task.name] = (labels, folds)
        info = {"description": task.description, "protocol": task.protocol, "n_files": len(ds.files),
                "n_skipped": ds.skipped, "classes": ds.classes, "n_folds": len(folds),
                "fold_sizes": [int(len(test)) for _, test in folds]}
        if task.grouped:
            info["held_out_groups"] = [sorted(set(ds.groups[test].tolist())) for _, test in folds]
        report["tasks"][task.name] = info

    memo: dict = {}
    for loaded in loaded_models:
        row = {"name": loaded.ref.label, "module": loaded.ref.module, "weights": loaded.ref.weights,
               "reference": loaded.ref.reference, "description": loaded.ref.description, "kind": loaded.kind,
               "sample_rate": loaded.sample_rate, "weights_id": loaded.weights_id, "scene_embedding_size": None,
               "results": {}, "cached": {}, "probe_seconds": {}}
        for task in tasks:
            ds = datasets[task.name]
            x, cached = get_embeddings(loaded, ds.files, cache_dir, use_cache, batch_size, batch_seconds,
                                       progress, memo)
            row["scene_embedding_size"] = int(x.shape[1])
            row["cached"][task.name] = cached
            labels, folds = folds_by_task[task.name]
            start = time.perf_counter()
            row["results"][task.name] = cross_validate(x, labels, folds, probe, seed)
            row["probe_seconds"][task.name] = time.perf_counter() - start
        row["load_seconds"], row["embed_seconds"] = loaded.load_seconds, loaded.embed_seconds
        report["models"].append(row)
    report["wall_seconds"] = time.perf_counter() - started
    return report


# ---------------------------------------------------------------- output

def format_table(report: dict, details: bool = True) -> str:
    tasks = list(report["tasks"])
    header = ["model", "dim", *tasks]
    rows = []
    for m in report["models"]:
        cells = [m["name"], str(m["scene_embedding_size"])]
        for t in tasks:
            r = m["results"][t]
            cells.append(f"{r['mean']:.3f} ± {r['std']:.3f}")
        rows.append(cells)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = "  ".join(f"{h:<{w}}" if i == 0 else f"{h:>{w}}" for i, (h, w) in enumerate(zip(header, widths)))
    shuffled = " (CONTROL: labels shuffled)" if report["shuffled_labels"] else ""
    lines = [f"accuracy, mean ± std over folds{shuffled}; probe {report['probe']}: {report['probe_settings']}",
             f"data: {report['data']}", "", line, "-" * len(line)]
    for cells in rows:
        lines.append("  ".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}"
                               for i, (c, w) in enumerate(zip(cells, widths))))
    lines.append("")
    for name, info in report["tasks"].items():
        held = ""
        if "held_out_groups" in info:
            held = " (" + ", ".join("+".join(g) for g in info["held_out_groups"]) + ")"
        skipped = f", {info['n_skipped']} unlabelled files skipped" if info["n_skipped"] else ""
        lines.append(f"{name}: {info['description']}; {info['n_files']} files, {len(info['classes'])} classes, "
                     f"{info['n_folds']} folds, {info['protocol']}{held}{skipped}")
    if details:
        lines.append("")
        lines.append("per-fold accuracy:")
        for m in report["models"]:
            for t in tasks:
                r = m["results"][t]
                folds = " ".join(f"{a:.3f}" for a in r["fold_accuracies"])
                warn = f"  ({r['folds_not_converged']} fold(s) hit max_iter)" if r["folds_not_converged"] else ""
                lines.append(f"  {m['name']:<{widths[0]}}  {t:<{max(map(len, tasks))}}  {folds}{warn}")
        lines.append("")
        for m in report["models"]:
            cached = [t for t, c in m["cached"].items() if c]
            source = "read from the cache" if len(cached) == len(tasks) else f"computed in {m['embed_seconds']:.1f} s"
            probe_s = sum(m["probe_seconds"].values())
            lines.append(f"  {m['name']}: {m['description']} ({m['kind']}, {m['sample_rate']} Hz); embeddings "
                         f"{source}; probes {probe_s:.1f} s")
    lines.append(f"wall time {report['wall_seconds']:.1f} s")
    return "\n".join(lines)
