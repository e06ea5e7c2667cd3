"""The organizers' downstream protocol (heareval/predictions/task_predictions.py, 2021.1.3) in plain torch.

For each task: the first data split (train/valid/test, or fold rotation 0) trains one predictor per grid
point; the grid point with the best validation score is retrained on every other fold rotation; each
rotation's predictor, at its best validation epoch, is scored on its test split; scores are averaged over
folds (mean and sample std, ddof=1, as pandas computes it in heareval).

Grid: heareval's PARAM_GRID, sklearn.model_selection.ParameterGrid, shuffled with random.Random(42) (heareval
calls seed_everything(42) right before random.shuffle), the first --grid-points (default 8). The task's
task_metadata.json may extend it (evaluation_params.task_specific_param_grid), and dcase2016_task2 validates
every 10 epochs, as in heareval.

Predictor: hidden_layers x [Linear(hidden_dim) with Xavier init (gain 1 on the first, sqrt(2) after a ReLU),
BatchNorm1d, Dropout, ReLU], then Linear(n_labels) (Xavier, gain of the preceding activation). No input
normalisation (heareval's embedding_norm is Identity). Multiclass: cross-entropy, softmax outputs; multilabel:
binary cross-entropy on logits, sigmoid outputs. Adam at the grid's learning rate; batches of batch_size rows
in the stored order, not shuffled (heareval's training loader is not shuffled either: it only shuffles a
split named "train" given as a string, and it is given a list). Rows are ordered as heareval's memmap orders
them: each split's files shuffled with one random.Random(0) across the task's splits in metadata order, the
frames of a file in time order.

Early stopping: every check_val_every_n_epoch epochs the validation split is scored with the task's first
score (validation loss instead when task_metadata.json sets use_scoring_for_early_stopping false); a strictly
better score keeps that epoch's weights; training stops after `patience` checks without improvement, at
max_epochs, or at a non-finite score (pytorch-lightning's EarlyStopping does the same). For event tasks each
check also picks the event postprocessing (hear_dual.evaluation.events) that scores best on validation; the
test split is decoded with the one picked at the best epoch.
"""

from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass, field

import numpy as np

from hear_dual.evaluation import events as ev
from hear_dual.evaluation import scores as sc

PARAM_GRID = {
    "hidden_layers": [1, 2], "hidden_dim": [1024], "dropout": [0.1], "lr": [3.2e-3, 1e-3, 3.2e-4, 1e-4],
    "patience": [20], "max_epochs": [500], "check_val_every_n_epoch": [3], "batch_size": [1024],
    "hidden_norm": ["BatchNorm1d"], "norm_after_activation": [False], "embedding_norm": ["Identity"],
    "initialization": ["xavier_uniform_", "xavier_normal_"], "optim": ["Adam"],
}
GRIDS = {
    "default": PARAM_GRID,
    "fast": PARAM_GRID | {"max_epochs": [10, 50], "check_val_every_n_epoch": [3, 10]},
    "faster": PARAM_GRID | {"hidden_layers": [0, 1], "hidden_dim": [64, 128], "patience": [1, 3], "max_epochs": [10],
                            "check_val_every_n_epoch": [1]},
}
TASK_SPECIFIC_PARAM_GRID = {"dcase2016_task2": {"check_val_every_n_epoch": [10]}}
GRID_SEED = 42            # heareval: seed_everything(42) before random.shuffle(confs)
ROW_ORDER_SEED = 0        # heareval: random.Random(0) shuffles the embedding files of each split
TORCH_HINT = "the HEAR downstream protocol trains a torch MLP: pip install torch (or pip install 'hear-dual[torch]')"


def grid_points(metadata: dict, grid: str = "default", n: int = 8) -> list[dict]:
    from sklearn.model_selection import ParameterGrid

    if grid not in GRIDS:
        raise ValueError(f"unknown grid {grid!r}; expected one of {', '.join(GRIDS)}")
    final = dict(GRIDS[grid])
    final.update(TASK_SPECIFIC_PARAM_GRID.get(metadata["task_name"], {}))
    final.update(metadata.get("evaluation_params", {}).get("task_specific_param_grid", {}))
    confs = list(ParameterGrid(final))
    random.Random(GRID_SEED).shuffle(confs)
    return confs[:n]


def row_orders(metadata: dict, files_by_split: dict[str, list[str]]) -> dict[str, list[int]]:
    """split -> indices into its files, in heareval's memmap order."""
    prng = random.Random(ROW_ORDER_SEED)
    orders = {}
    for split in metadata["splits"]:
        order = list(range(len(files_by_split[split])))
        prng.shuffle(order)
        orders[split] = order
    return orders


@dataclass
class SplitData:
    """One task split's rows: x (n, D) float32, y (n, C); event tasks also keep each row's file and timestamp."""
    x: np.ndarray
    y: np.ndarray
    files: list[str] = field(default_factory=list)        # event tasks: the file of each row
    timestamps: np.ndarray | None = None                  # event tasks: the timestamp of each row (ms)
    events: dict | None = None                            # event tasks: target events by file


def split_data(task, split: str, embedded, order: list[int]) -> SplitData:
    """Rows of one split from its SplitEmbeddings, in the given file order."""
    index = {label: i for i, label in enumerate(task.vocabulary)}
    split_labels = task.labels[split]
    if task.embedding_type == "scene":
        y = np.zeros((len(order), len(task.vocabulary)), np.float32)
        for row, i in enumerate(order):
            y[row, [index[str(label)] for label in split_labels[embedded.files[i]]]] = 1.0
        return SplitData(np.stack([embedded.embeddings[i] for i in order]), y)
    files = [embedded.files[i] for i in order]
    ys = [ev.frame_targets(split_labels[embedded.files[i]], embedded.timestamps[i], task.vocabulary) for i in order]
    return SplitData(np.concatenate([embedded.embeddings[i] for i in order]), np.concatenate(ys),
                     [f for f, i in zip(files, order) for _ in range(len(embedded.timestamps[i]))],
                     np.concatenate([embedded.timestamps[i] for i in order]), {f: split_labels[f] for f in files})


def concat(parts: list[SplitData]) -> SplitData:
    if len(parts) == 1:
        return parts[0]
    events = None if parts[0].events is None else {k: v for p in parts for k, v in p.events.items()}
    stamps = None if parts[0].timestamps is None else np.concatenate([p.timestamps for p in parts])
    return SplitData(np.concatenate([p.x for p in parts]), np.concatenate([p.y for p in parts]),
                     [f for p in parts for f in p.files], stamps, events)


# ---------------------------------------------------------------- the predictor

def _torch():
    try:
        import torch
    except ImportError as e:
        raise ImportError(TORCH_HINT) from e
    return torch


def build_predictor(n_features: int, n_labels: int, conf: dict):
    torch = _torch()
    nn = torch.nn
    layers, width, last = [], n_features, "linear"
    init = getattr(nn.init, conf["initialization"])
    norm = getattr(nn, conf["hidden_norm"])
    for _ in range(conf["hidden_layers"]):
        linear = nn.Linear(width, conf["hidden_dim"])
        init(linear.weight, gain=nn.init.calculate_gain(last))
        layers.append(linear)
        if not conf["norm_after_activation"]:
            layers.append(norm(conf["hidden_dim"]))
        layers += [nn.Dropout(conf["dropout"]), nn.ReLU()]
        if conf["norm_after_activation"]:
            layers.append(norm(conf["hidden_dim"]))
        width, last = conf["hidden_dim"], "relu"
    projection = nn.Linear(width, n_labels)
    init(projection.weight, gain=nn.init.calculate_gain(last))
    return nn.Sequential(*layers, projection)


def _loss(prediction_type: str):
    torch = _torch()
    if prediction_type == "multiclass":
        cross_entropy = torch.nn.CrossEntropyLoss()
        return lambda logits, y: cross_entropy(logits, y.argmax(1))
    return torch.nn.BCEWithLogitsLoss()


def probabilities(model, x: np.ndarray, prediction_type: str) -> np.ndarray:
    torch = _torch()
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(x))
        out = torch.softmax(logits, 1) if prediction_type == "multiclass" else torch.sigmoid(logits)
    return out.numpy()


# ---------------------------------------------------------------- scoring one split

def decode_events(task, data: SplitData, probs: np.ndarray, postprocessing) -> dict:
    """{file: [events]} for every file of the split (an empty list when nothing is detected)."""
    files = np.array(data.files)
    out = {}
    for name in dict.fromkeys(data.files):
        rows = files == name
        out[name] = ev.to_events(probs[rows], data.timestamps[rows], task.vocabulary, **dict(postprocessing))
    return out


def score_split(task, data: SplitData, probs: np.ndarray, postprocessing=None) -> tuple[dict, tuple | None]:
    """({score name: value, ...all sub-scores}, postprocessing used). With postprocessing None on an event task,
    every grid point is tried and the one with the best first score is used (heareval's validation step)."""
    if task.embedding_type == "scene":
        numbers = {}
        for name in task.scores:
            numbers.update(sc.compute(name, probs, data.y)[1])
        return numbers, None
    primary = task.scores[0]
    candidates = [postprocessing] if postprocessing is not None else ev.postprocessing_grid(task.metadata)
    decoded = {}
    for point in candidates:
        decoded[point] = decode_events(task, data, probs, point)
    # heareval sorts (score, postprocessing) in reverse and takes the first: the highest score, NaN as 0,
    # ties to the later grid point; it does so even for scores to minimise (segment_1s_er)
    ranked = []
    for point in candidates:
        value = sc.compute(primary, decoded[point], data.events, task.vocabulary)[0]
        ranked.append((0.0 if math.isnan(value) else value, point))
    best = max(ranked)[1]
    numbers = {}
    for name in task.scores:
        value, parts = sc.compute(name, decoded[best], data.events, task.vocabulary)
        numbers[name] = value
        numbers.update(parts)
    return numbers, best


# ---------------------------------------------------------------- training with early stopping

@dataclass
class Fit:
    model: object
    validation_score: float
    epoch: int                    # 0-based epoch of the kept weights
    postprocessing: tuple | None
    epochs_run: int


def fit(task, train: SplitData, valid: SplitData, conf: dict, seed: int) -> Fit:
    torch = _torch()
    torch.manual_seed(seed)
    prediction_type = task.prediction_type
    model = build_predictor(train.x.shape[1], len(task.vocabulary), conf)
    optimizer = torch.optim.Adam(model.parameters(), lr=conf["lr"])
    loss_fn = _loss(prediction_type)
    by_score = task.metadata.get("use_scoring_for_early_stopping", True)
    maximize = sc.SCORES[task.scores[0]].maximize if by_score else False
    x, y = torch.from_numpy(train.x), torch.from_numpy(train.y)
    size = conf["batch_size"]
    # a last batch of one row cannot be batch-normalised in training mode (heareval would stop with an error)
    starts = [s for s in range(0, len(x), size) if not (conf["hidden_layers"] and len(x) - s == 1 and s)]
    best, wait, epoch = None, 0, 0
    for epoch in range(conf["max_epochs"]):
        model.train()
        for start in starts:
            loss = loss_fn(model(x[start: start + size]), y[start: start + size])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if (epoch + 1) % conf["check_val_every_n_epoch"]:
            continue
        probs = probabilities(model, valid.x, prediction_type)
        postprocessing = None
        if by_score:
            numbers, postprocessing = score_split(task, valid, probs)
            value = numbers[task.scores[0]]
        else:
            with torch.no_grad():
                value = float(loss_fn(model(torch.from_numpy(valid.x)), torch.from_numpy(valid.y)))
        if not math.isfinite(value):
            break
        if best is None or (value > best.validation_score if maximize else value < best.validation_score):
            best = Fit(copy.deepcopy(model), value, epoch, postprocessing, epoch + 1)
            wait = 0
        else:
            wait += 1
            if wait >= conf["patience"]:
                break
    if best is None:         # never validated (max_epochs < check interval) or a non-finite first score
        best = Fit(copy.deepcopy(model), math.nan, epoch, ev.postprocessing_grid(task.metadata)[0]
                   if task.embedding_type == "event" else None, epoch + 1)
    best.epochs_run = epoch + 1
    return best


def select(fits: list[Fit], maximize: bool) -> int:
    """Index of the best grid point by validation score (the first on ties, NaN last)."""
    keys = [-math.inf if math.isnan(f.validation_score) else f.validation_score * (1 if maximize else -1)
            for f in fits]
    return max(range(len(fits)), key=lambda i: (keys[i], -i))
