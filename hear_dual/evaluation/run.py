"""One HEAR module on one HEAR task: embed every split, search the grid, train every fold, score the tests."""

from __future__ import annotations

import platform
import time

import numpy as np

from hear_dual.evaluation import protocol
from hear_dual.evaluation.embeddings import embed_split, heareval_batch_size
from hear_dual.evaluation.models import Loaded
from hear_dual.evaluation.tasks import HearTask

EXAMPLE_CLIPS = 4        # event tasks: test clips whose frame predictions go into the result, for plots


def _examples(task: HearTask, test: protocol.SplitData, probs: np.ndarray, predicted: dict) -> list[dict]:
    files = np.array(test.files)
    examples = []
    for name in sorted(predicted)[:EXAMPLE_CLIPS]:
        rows = files == name
        examples.append({"file": name, "timestamps": test.timestamps[rows].tolist(),
                         "probabilities": np.round(probs[rows], 4).tolist(), "predicted": predicted[name],
                         "target": test.events[name]})
    return examples


def _aggregate(folds: list[dict]) -> dict:
    names = list(folds[0]["test_scores"])
    out = {}
    for name in names:
        values = np.array([f["test_scores"][name] for f in folds], np.float64)
        std = float(np.std(values, ddof=1)) if len(values) > 1 else None
        out[name] = {"mean": float(np.mean(values)), "std": std}
    return out


def evaluate_task(loaded: Loaded, task: HearTask, grid: str = "default", n_grid_points: int = 8, seed: int = 42,
                  cache_dir=None, use_cache: bool = True, progress: bool = False) -> dict:
    from tqdm import tqdm

    started = time.perf_counter()
    embedded = {s: embed_split(loaded, task, s, cache_dir, use_cache, progress) for s in task.metadata["splits"]}
    embed_seconds = time.perf_counter() - started
    orders = protocol.row_orders(task.metadata, {s: e.files for s, e in embedded.items()})
    data = {s: protocol.split_data(task, s, embedded[s], orders[s]) for s in embedded}
    rotations = task.data_splits()
    confs = protocol.grid_points(task.metadata, grid, n_grid_points)

    def part(names):
        return protocol.concat([data[name] for name in names])

    first = rotations[0]
    fits = [protocol.fit(task, part(first["train"]), part(first["valid"]), conf, seed)
            for conf in tqdm(confs, desc=f"grid {task.name}", unit="point", disable=not progress, leave=False)]
    by_score = task.metadata.get("use_scoring_for_early_stopping", True)
    maximize = protocol.sc.SCORES[task.scores[0]].maximize if by_score else False
    best = protocol.select(fits, maximize)
    folds, examples = [], []
    for i, rotation in enumerate(tqdm(rotations, desc=f"folds {task.name}", unit="fold", disable=not progress,
                                      leave=False)):
        fitted = fits[best] if i == 0 else protocol.fit(task, part(rotation["train"]), part(rotation["valid"]),
                                                        confs[best], seed)
        test = part(rotation["test"])
        probs = protocol.probabilities(fitted.model, test.x, task.prediction_type)
        numbers, postprocessing = protocol.score_split(task, test, probs, fitted.postprocessing)
        folds.append({**rotation, "validation_score": fitted.validation_score, "epoch": fitted.epoch,
                      "epochs_run": fitted.epochs_run, "postprocessing": postprocessing and dict(postprocessing),
                      "test_scores": numbers})
        if task.embedding_type == "event" and i == 0:
            examples = _examples(task, test, probs, protocol.decode_events(task, test, probs, postprocessing))
    dim = next(iter(data.values())).x.shape[1]
    return {
        "task": task.name, "task_folder": str(task.root), "embedding_type": task.embedding_type,
        "prediction_type": task.prediction_type, "split_mode": task.metadata["split_mode"],
        "scores": task.scores, "primary_score": task.scores[0],
        "model": {"label": loaded.ref.label, "module": loaded.ref.module, "weights": loaded.ref.weights,
                  "weights_id": loaded.weights_id, "kind": loaded.kind, "sample_rate": loaded.sample_rate},
        "embedding_size": int(dim), "n_files": {s: len(e.files) for s, e in embedded.items()},
        "n_rows": {s: len(d.x) for s, d in data.items()},
        "embedding_batch_size": heareval_batch_size(task.metadata.get("sample_duration"), loaded.sample_rate),
        "embeddings_cached": all(e.cached for e in embedded.values()),
        "protocol": {"grid": grid, "grid_points": len(confs), "seed": seed},
        "grid": [{"conf": conf, "validation_score": f.validation_score, "epoch": f.epoch, "epochs_run": f.epochs_run}
                 for conf, f in zip(confs, fits)],
        "best_conf": confs[best], "folds": folds, "aggregate": _aggregate(folds), "examples": examples,
        "seconds": {"embed": embed_seconds, "total": time.perf_counter() - started},
        "environment": {"python": platform.python_version()},
    }
