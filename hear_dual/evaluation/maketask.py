"""`hear-dual make-task`: a labelled folder, or a folder of audio plus an events CSV, as a HEAR task folder.

    hear-dual make-task SRC OUT                                 labels from SRC's first sub-folders
    hear-dual make-task SRC OUT --label-pattern '^(\\d)_'        labels from a regex group on file names
    hear-dual make-task SRC OUT --labels labels.csv             CSV file,label; several rows of a file: multilabel
    hear-dual make-task SRC OUT --events events.csv             CSV file,label,onset,offset (seconds): event task

The result follows hearpreprocess's layout (hear_dual.evaluation.tasks). Audio is read with soundfile, mixed
to mono, resampled with soxr ("HQ", as hearpreprocess asks ffmpeg for soxr), cut or zero-padded to
--duration seconds when given (hearpreprocess's sample_duration), and written as 16-bit PCM WAV (the format
hearpreprocess writes) under OUT/<rate>/<split>/ for each --sample-rate. Events starting at or after
--duration are dropped and longer ones cut, as hearpreprocess does. Files are named by their path under SRC
with "/" turned into "__".

Splits, as hearpreprocess makes them: k-fold (new_split_kfold, --folds, default 5) sorts the split keys,
shuffles them with random.Random("split_k_folds") and cuts them into k near-equal folds (numpy.array_split);
trainvaltest (--valid and --test fractions) shuffles them with random.Random("split_train_test_val"). The
split key is the file unless --group-pattern names a regex group (e.g. the speaker), so that one group never
spans two splits.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from hear_dual.evaluation.tasks import TaskFolderError

DEFAULT_SCORES = {("scene", "multiclass"): ["top1_acc"], ("scene", "multilabel"): ["mAP", "d_prime", "aucroc"],
                  ("event", "multilabel"): ["event_onset_200ms_fms", "segment_1s_er"]}
EVENT_COLUMNS = ("file", "label", "onset", "offset")


def _audio_files(root: Path) -> list[Path]:
    from hear_dual.datasets import audio_extensions

    extensions = audio_extensions()
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and not p.name.startswith(".") and p.suffix[1:].lower() in extensions)


def _read_csv(path: Path, columns: tuple[str, ...]) -> list[dict]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: expected the columns {', '.join(columns)}; got {reader.fieldnames} "
                             f"(missing {', '.join(missing)})")
        return list(reader)


def collect_labels(src: Path, label_pattern: str | None = None, labels_csv=None, events_csv=None) -> dict:
    """{relative path: [labels]} (scene) or {relative path: [{"label", "start", "end"} ms]} (events)."""
    files = {p.relative_to(src).as_posix(): p for p in _audio_files(src)}
    if not files:
        raise FileNotFoundError(f"no audio files under {src}")
    out = defaultdict(list)
    if events_csv or labels_csv:
        columns = EVENT_COLUMNS if events_csv else ("file", "label")
        for n, row in enumerate(_read_csv(Path(events_csv or labels_csv), columns), start=2):
            if row["file"] not in files:
                raise ValueError(f"{events_csv or labels_csv} line {n}: {row['file']!r} is not an audio file under "
                                 f"{src} (paths are relative to it, with '/')")
            if events_csv:
                onset, offset = float(row["onset"]), float(row["offset"])
                if offset < onset:
                    raise ValueError(f"{events_csv} line {n}: offset {offset} is before onset {onset}")
                out[row["file"]].append({"label": row["label"], "start": round(1000.0 * onset, 6),
                                        "end": round(1000.0 * offset, 6)})
            elif row["label"] not in out[row["file"]]:
                out[row["file"]].append(row["label"])
        if events_csv:       # audio without events is part of an event task (nothing happens in it)
            return {name: out.get(name, []) for name in files}
        return dict(out)
    if label_pattern:
        pattern = re.compile(label_pattern)
        for name in files:
            match = pattern.search(Path(name).name)
            if match:
                out[name] = [match[1] if pattern.groups else match[0]]
    else:
        for name in files:
            parts = name.split("/")
            if len(parts) > 1:
                out[name] = [parts[0]]
    if not out:
        how = f"file names matching {label_pattern!r}" if label_pattern else "audio files in sub-folders"
        raise FileNotFoundError(f"no {how} under {src}")
    return dict(out)


def assign_splits(names: list[str], folds: int | None, valid: float, test: float,
                  group_pattern: str | None = None) -> dict[str, str]:
    """{name: split} with hearpreprocess's deterministic shuffles (see the module docstring)."""
    if group_pattern:
        pattern = re.compile(group_pattern)
        keys = {}
        for name in names:
            match = pattern.search(Path(name).name)
            if not match:
                raise ValueError(f"--group-pattern {group_pattern!r} does not match {name!r}")
            keys[name] = match[1] if pattern.groups else match[0]
    else:
        keys = {name: name for name in names}
    unique = sorted(set(keys.values()))
    if folds:
        if len(unique) < folds:
            raise ValueError(f"{folds} folds need at least {folds} split keys, got {len(unique)}")
        random.Random("split_k_folds").shuffle(unique)
        fold_of = {k: f"fold{j:02d}" for j, part in enumerate(np.array_split(np.array(unique, object), folds))
                   for k in part}
        return {name: fold_of[keys[name]] for name in names}
    random.Random("split_train_test_val").shuffle(unique)
    n_valid, n_test = round(valid * len(unique)), round(test * len(unique))
    if min(n_valid, n_test, len(unique) - n_valid - n_test) < 1:
        raise ValueError(f"{len(unique)} split keys cannot fill train, valid ({valid:g}) and test ({test:g})")
    split_of = {k: "valid" if i < n_valid else "test" if i < n_valid + n_test else "train"
                for i, k in enumerate(unique)}
    return {name: split_of[keys[name]] for name in names}


def _fit_length(audio: np.ndarray, n: int | None) -> np.ndarray:
    if n is None:
        return audio
    return np.pad(audio[:n], (0, max(0, n - len(audio))))


def _trim_events(events: list[dict], duration: float | None) -> list[dict]:
    if duration is None:
        return events
    end = 1000.0 * duration
    return [{**e, "end": min(e["end"], end)} for e in events if e["start"] < end]


def make_task(src, out, name: str, sample_rates=(16000,), duration: float | None = None,
              label_pattern: str | None = None, labels_csv=None, events_csv=None, folds: int | None = None,
              valid: float = 0.1, test: float = 0.1, group_pattern: str | None = None,
              max_per_label: int | None = None, evaluation: list[str] | None = None, seed: int = 0) -> Path:
    import soundfile as sf

    from hear_dual.datasets import read_audio

    src, out = Path(src), Path(out)
    if sum(x is not None for x in (label_pattern, labels_csv, events_csv)) > 1:
        raise ValueError("give at most one of --label-pattern, --labels and --events")
    if (out / "task_metadata.json").exists():
        raise ValueError(f"{out} already holds a task (task_metadata.json); remove it or choose another OUT")
    labels = collect_labels(src, label_pattern, labels_csv, events_csv)
    embedding_type = "event" if events_csv else "scene"
    multilabel = embedding_type == "event" or any(len(v) != 1 for v in labels.values())
    prediction_type = "multilabel" if multilabel else "multiclass"
    if max_per_label:
        if embedding_type != "scene" or multilabel:
            raise ValueError("--max-per-label applies to single-label scene tasks")
        by_label = defaultdict(list)
        for file, (label,) in sorted(labels.items()):
            by_label[label].append(file)
        rng = np.random.default_rng(seed)
        keep = {f for files in by_label.values()
                for f in (files if len(files) <= max_per_label else rng.choice(files, max_per_label, replace=False))}
        labels = {f: v for f, v in labels.items() if f in keep}
    if folds is None and embedding_type == "scene":
        folds = 5
    names = sorted(labels)
    splits = assign_splits(names, folds, valid, test, group_pattern)
    split_names = [f"fold{j:02d}" for j in range(folds)] if folds else ["train", "valid", "test"]
    stems = {f: f.replace("/", "__").rsplit(".", 1)[0] + ".wav" for f in names}
    for rate in sample_rates:
        for split in split_names:
            (out / str(rate) / split).mkdir(parents=True, exist_ok=True)
    for f in names:
        for rate in sample_rates:
            audio = read_audio(src / f, rate)[0]
            n = None if duration is None else int(round(duration * rate))
            sf.write(out / str(rate) / splits[f] / stems[f], _fit_length(audio, n), rate, subtype="PCM_16")
    for split in split_names:
        entries = {stems[f]: (_trim_events(labels[f], duration) if embedding_type == "event" else labels[f])
                   for f in names if splits[f] == split}
        if not entries:
            raise TaskFolderError(f"split {split} is empty: too few files or groups for these splits")
        (out / f"{split}.json").write_text(json.dumps(entries, indent=1))
    vocabulary = sorted({e["label"] if isinstance(e, dict) else e for v in labels.values() for e in v})
    with open(out / "labelvocabulary.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["idx", "label"])
        writer.writerows(enumerate(vocabulary))
    metadata = {"task_name": name, "version": "hear-dual-make-task", "embedding_type": embedding_type,
                "prediction_type": prediction_type, "split_mode": "new_split_kfold" if folds else "trainvaltest",
                "sample_duration": duration, "evaluation": evaluation or DEFAULT_SCORES[(embedding_type,
                                                                                           prediction_type)],
                "splits": split_names, "sample_rates": list(sample_rates), "mode": "full",
                "source": str(src)}
    if folds:
        metadata["nfolds"] = folds
    (out / "task_metadata.json").write_text(json.dumps(metadata, indent=1))
    return out


def cmd_make_task(args) -> int:
    out = make_task(args.src, args.out, args.name or Path(args.out).name, tuple(args.sample_rate or [16000]),
                    args.duration, args.label_pattern, args.labels, args.events, args.folds, args.valid, args.test,
                    args.group_pattern, args.max_per_label, args.evaluation, args.seed)
    from hear_dual.evaluation.tasks import read_task

    task = read_task(out)
    counts = ", ".join(f"{s} {len(v)}" for s, v in task.labels.items())
    print(f"wrote {out}: {task.embedding_type} task {task.name} ({task.prediction_type}, "
          f"{len(task.vocabulary)} labels; files: {counts})")
    return 0


def add_make_task_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "make-task", help="turn a labelled folder (or audio plus an events CSV) into a HEAR task folder",
        description="Write a HEAR task folder (hearpreprocess's layout) from a labelled folder of audio, or from a "
                    "folder of audio with a labels or events CSV.",
        epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", metavar="SRC", help="folder of audio files")
    parser.add_argument("out", metavar="OUT", help="task folder to write (must not hold a task yet)")
    parser.add_argument("--name", help="task_name (default: OUT's folder name)")
    parser.add_argument("--sample-rate", type=int, action="append", metavar="HZ",
                        help="rate folder to write (repeatable; default 16000)")
    parser.add_argument("--duration", type=float, metavar="S", help="cut or pad every file to S seconds")
    parser.add_argument("--label-pattern", metavar="REGEX", help="label = group 1 of REGEX searched in file names")
    parser.add_argument("--labels", metavar="CSV", help="CSV with columns file,label (relative to SRC)")
    parser.add_argument("--events", metavar="CSV", help="CSV with columns file,label,onset,offset in seconds")
    parser.add_argument("--folds", type=int, metavar="K", help="k-fold task (default 5 for scene tasks)")
    parser.add_argument("--valid", type=float, default=0.1, metavar="F",
                        help="train/valid/test: fraction of split keys in valid (0.1)")
    parser.add_argument("--test", type=float, default=0.1, metavar="F", help="fraction in test (0.1)")
    parser.add_argument("--group-pattern", metavar="REGEX", help="split key = group 1 of REGEX (e.g. a speaker)")
    parser.add_argument("--max-per-label", type=int, metavar="N", help="keep a seeded choice of N files per label")
    parser.add_argument("--evaluation", nargs="+", metavar="SCORE",
                        help="scores, primary first (default by task kind; see hear_dual.evaluation.scores)")
    parser.add_argument("--seed", type=int, default=0, help="seed of --max-per-label (0)")
    parser.set_defaults(func=cmd_make_task)
    return parser
