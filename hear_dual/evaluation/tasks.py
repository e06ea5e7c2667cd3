"""HEAR task folders as hearpreprocess writes them, read and checked.

    <task>/task_metadata.json      task_name, embedding_type (scene|event), prediction_type (multiclass|multilabel),
                                   split_mode (trainvaltest|new_split_kfold|presplit_kfold), splits, evaluation, ...
    <task>/labelvocabulary.csv     idx,label
    <task>/<split>.json            scene: {"file.wav": ["label", ...]}
                                   event: {"file.wav": [{"label": ..., "start": ms, "end": ms}, ...]}
    <task>/<sample_rate>/<split>/file.wav

Splits into train/valid/test as heareval does (heareval.predictions.task_predictions.get_splits_from_metadata):
trainvaltest is one split; k-fold tasks rotate, sorted folds: test = fold i, valid = fold i+1 (mod k), train =
the rest.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import jsonschema

KFOLD = ("new_split_kfold", "presplit_kfold")
METADATA_SCHEMA = {
    "type": "object",
    "required": ["task_name", "embedding_type", "prediction_type", "split_mode", "splits", "evaluation"],
    "properties": {
        "task_name": {"type": "string", "minLength": 1},
        "embedding_type": {"enum": ["scene", "event"]},
        "prediction_type": {"enum": ["multiclass", "multilabel"]},
        "split_mode": {"enum": ["trainvaltest", *KFOLD]},
        "splits": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1, "uniqueItems": True},
        "evaluation": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "sample_duration": {"type": ["number", "null"]},
        "evaluation_params": {"type": "object"},
    },
}
EVENT_SCHEMA = {"type": "object", "required": ["label", "start", "end"],
                "properties": {"start": {"type": "number"}, "end": {"type": "number"}}}
LAYOUT = ("task_metadata.json, labelvocabulary.csv, <split>.json for every split, "
          "<sample_rate>/<split>/*.wav (the layout hearpreprocess writes)")


class TaskFolderError(ValueError):
    """A folder that is not a well-formed HEAR task."""


@dataclass
class HearTask:
    root: Path
    metadata: dict
    vocabulary: list[str]                  # label of index i at position i
    labels: dict[str, dict[str, list]]     # split -> file name -> labels (scene) or events (event), as in the json

    @property
    def name(self) -> str:
        return self.metadata["task_name"]

    @property
    def embedding_type(self) -> str:
        return self.metadata["embedding_type"]

    @property
    def prediction_type(self) -> str:
        return self.metadata["prediction_type"]

    @property
    def scores(self) -> list[str]:
        return list(self.metadata["evaluation"])

    def audio_dir(self, sample_rate: int, split: str) -> Path:
        folder = self.root / str(sample_rate) / split
        if not folder.is_dir():
            rates = sorted(p.name for p in self.root.iterdir() if p.is_dir() and p.name.isdigit())
            raise TaskFolderError(f"{self.root}: the model runs at {sample_rate} Hz but there is no folder "
                                  f"{sample_rate}/{split}; the task has audio at {', '.join(rates) or 'no'} Hz "
                                  f"(hear-dual make-task --sample-rate {sample_rate} writes one)")
        return folder

    def data_splits(self) -> list[dict[str, list[str]]]:
        """[{"train": [...], "valid": [...], "test": [...]}], one per fold (heareval's get_splits_from_metadata)."""
        if self.metadata["split_mode"] == "trainvaltest":
            return [{"train": ["train"], "valid": ["valid"], "test": ["test"]}]
        folds = sorted(self.metadata["splits"])
        k = len(folds)
        return [{"train": [f for f in folds if f not in (folds[i], folds[(i + 1) % k])],
                 "valid": [folds[(i + 1) % k]], "test": [folds[i]]} for i in range(k)]


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise TaskFolderError(f"{path}: {what} is not valid JSON ({e})") from None


def read_vocabulary(path: Path) -> list[str]:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or set(rows[0]) != {"idx", "label"}:
        raise TaskFolderError(f"{path}: expected a CSV with the header idx,label and one row per label")
    by_index = {}
    for row in rows:
        try:
            by_index[int(row["idx"])] = row["label"]
        except ValueError:
            raise TaskFolderError(f"{path}: idx must be an integer, got {row['idx']!r}") from None
    if sorted(by_index) != list(range(len(rows))):
        raise TaskFolderError(f"{path}: idx must be 0..{len(rows) - 1}, each once; got {sorted(by_index)}")
    return [by_index[i] for i in range(len(rows))]


def _check_labels(task: HearTask, split: str, path: Path) -> None:
    known = set(task.vocabulary)
    for name, entries in task.labels[split].items():
        if not isinstance(entries, list):
            raise TaskFolderError(f"{path}: {name!r} must map to a list, got {type(entries).__name__}")
        if task.embedding_type == "event":
            for event in entries:
                try:
                    jsonschema.validate(event, EVENT_SCHEMA)
                except jsonschema.ValidationError as e:
                    raise TaskFolderError(f"{path}: {name!r}: event {event!r}: {e.message} "
                                          "(expected label, start and end in ms)") from None
                if event["end"] < event["start"]:
                    raise TaskFolderError(f"{path}: {name!r}: event ends before it starts: {event!r}")
            labels = [str(event["label"]) for event in entries]
        else:
            labels = [str(label) for label in entries]
            if task.prediction_type == "multiclass" and len(labels) != 1:
                raise TaskFolderError(f"{path}: {name!r} has {len(labels)} labels {labels}; a multiclass task "
                                      "needs exactly one per file")
        for label in labels:
            if label not in known:
                raise TaskFolderError(f"{path}: {name!r} has label {label!r}, which is not in labelvocabulary.csv "
                                      f"({len(known)} labels: {', '.join(sorted(known)[:10])}"
                                      f"{', ...' if len(known) > 10 else ''})")


def read_task(root) -> HearTask:
    """Read and check a HEAR task folder; TaskFolderError names what was expected and what was found."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"task folder not found: {root}")
    meta_path = root / "task_metadata.json"
    if not meta_path.is_file():
        raise TaskFolderError(f"{root} is not a HEAR task folder: no task_metadata.json (expected {LAYOUT})")
    metadata = _read_json(meta_path, "task_metadata.json")
    try:
        jsonschema.validate(metadata, METADATA_SCHEMA)
    except jsonschema.ValidationError as e:
        where = "/".join(map(str, e.absolute_path)) or "top level"
        raise TaskFolderError(f"{meta_path}: {where}: {e.message}") from None
    if metadata["split_mode"] == "trainvaltest" and sorted(metadata["splits"]) != ["test", "train", "valid"]:
        raise TaskFolderError(f"{meta_path}: split_mode trainvaltest needs splits train, valid, test; "
                              f"got {metadata['splits']}")
    if metadata["split_mode"] in KFOLD and len(metadata["splits"]) < 3:
        raise TaskFolderError(f"{meta_path}: a k-fold task needs at least 3 folds, got {metadata['splits']}")
    from hear_dual.evaluation.scores import SCORES

    unknown = [s for s in metadata["evaluation"] if s not in SCORES]
    if unknown:
        raise TaskFolderError(f"{meta_path}: unknown score(s) {unknown}; known: {', '.join(SCORES)}")
    wrong = [s for s in metadata["evaluation"] if SCORES[s].kind != metadata["embedding_type"]]
    if wrong:
        raise TaskFolderError(f"{meta_path}: score(s) {wrong} do not apply to {metadata['embedding_type']} tasks")
    vocab_path = root / "labelvocabulary.csv"
    if not vocab_path.is_file():
        raise TaskFolderError(f"{root}: no labelvocabulary.csv (expected {LAYOUT})")
    task = HearTask(root, metadata, read_vocabulary(vocab_path), {})
    for split in metadata["splits"]:
        path = root / f"{split}.json"
        if not path.is_file():
            raise TaskFolderError(f"{root}: split {split!r} is listed in task_metadata.json but {path.name} is "
                                  "missing")
        labels = _read_json(path, f"split {split}")
        if not isinstance(labels, dict) or not labels:
            raise TaskFolderError(f"{path}: expected a non-empty object mapping file names to labels")
        task.labels[split] = labels
        _check_labels(task, split, path)
    return task


def find_tasks(paths) -> list[Path]:
    """Task folders among paths: a task folder itself, or a folder whose sub-folders are task folders."""
    found = []
    for path in map(Path, paths):
        if (path / "task_metadata.json").is_file() or not path.is_dir():
            found.append(path)
            continue
        children = sorted(p for p in path.iterdir() if (p / "task_metadata.json").is_file())
        found += children or [path]      # no tasks below: read_task(path) says what is missing
    return found
