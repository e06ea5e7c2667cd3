"""Embedding a HEAR task's splits the way heareval does, cached on disk in chunks so a long job resumes.

heareval (heareval/embeddings/task_embeddings.py): every file of <task>/<model rate>/<split>/ in the order of
<split>.json, read with soundfile as float32 (the file's rate must be the model's), in batches of
max(1, int(0.7 * (120 / sample_duration) * (16000 / sample_rate))) files (1 when sample_duration is null);
scene tasks call get_scene_embeddings, event tasks get_timestamp_embeddings. A batch whose files differ in
length (heareval would fail to stack it) is embedded one file at a time here.

Cache: <cache dir>/<key>/chunk-NNNNN.npz (np.savez, no pickle), key = sha256 of the module, the weights, the
split's files (path, size, modification time), the model rate and the batch size; a chunk is a whole number
of batches (at least CHUNK_FILES files). An interrupted run keeps its finished chunks and the next run starts
after them.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hear_dual import hear_module
from hear_dual.evaluation.models import Loaded, default_cache_dir
from hear_dual.evaluation.tasks import HearTask, TaskFolderError

CACHE_FORMAT = "hear-1"
CHUNK_FILES = 256


@dataclass
class SplitEmbeddings:
    files: list[str]                     # in <split>.json order
    embeddings: list[np.ndarray]         # per file: (D,) for scene tasks, (T, D) for event tasks
    timestamps: list[np.ndarray] | None  # per file (T,) ms, event tasks only
    cached: bool = False


def heareval_batch_size(sample_duration, sample_rate: int) -> int:
    if sample_duration is None:
        return 1
    return max(1, int(0.7 * (120 / sample_duration) * (16000 / sample_rate)))


def read_wav(path: Path, sample_rate: int) -> np.ndarray:
    import soundfile as sf

    audio, rate = sf.read(str(path), dtype="float32")
    if rate != sample_rate:
        raise TaskFolderError(f"{path}: {rate} Hz in the {sample_rate} Hz folder")
    if audio.ndim != 1:
        raise TaskFolderError(f"{path}: {audio.shape[1]} channels; HEAR task audio is mono")
    return audio


def _embed_batch(loaded: Loaded, audios: list[np.ndarray], event: bool):
    """[(embedding, timestamps or None)] per clip; equal lengths go as one batch, as heareval's DataLoader would."""
    if len({len(a) for a in audios}) > 1:
        return [out for a in audios for out in _embed_batch(loaded, [a], event)]
    batch = np.stack(audios)
    if event:
        emb, stamps = hear_module.timestamp_embeddings(loaded.hear, batch)
        return [(np.asarray(e, np.float32), np.asarray(t, np.float64)) for e, t in zip(emb, stamps)]
    return [(np.asarray(e, np.float32), None) for e in hear_module.scene_embeddings(loaded.hear, batch)]


def cache_key(loaded: Loaded, paths: list[Path], batch_size: int) -> str:
    files = [[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in paths]
    payload = {"format": CACHE_FORMAT, "module": loaded.ref.module, "weights": loaded.weights_id, "files": files,
               "sample_rate": loaded.sample_rate, "batch_size": batch_size}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _chunk(loaded: Loaded, paths: list[Path], batch_size: int, event: bool) -> dict:
    outputs = []
    for i in range(0, len(paths), batch_size):
        outputs += _embed_batch(loaded, [read_wav(p, loaded.sample_rate) for p in paths[i: i + batch_size]], event)
    embeddings = [e for e, _ in outputs]
    if not all(np.isfinite(e).all() for e in embeddings):
        raise ValueError(f"{loaded.ref.label}: embeddings contain NaN or infinity")
    if event:
        return {"embeddings": np.concatenate(embeddings), "timestamps": np.concatenate([t for _, t in outputs]),
                "counts": np.array([len(e) for e in embeddings])}
    return {"embeddings": np.stack(embeddings)}


def embed_split(loaded: Loaded, task: HearTask, split: str, cache_dir=None, use_cache: bool = True,
                progress: bool = False) -> SplitEmbeddings:
    from tqdm import tqdm

    from hear_dual.results import write_npz_atomic

    folder = task.audio_dir(loaded.sample_rate, split)
    files = list(task.labels[split])
    paths = [folder / f for f in files]
    missing = [f for f, p in zip(files, paths) if not p.is_file()]
    if missing:
        raise TaskFolderError(f"{folder}: {len(missing)} file(s) listed in {split}.json are missing, e.g. {missing[0]}")
    event = task.embedding_type == "event"
    batch_size = heareval_batch_size(task.metadata.get("sample_duration"), loaded.sample_rate)
    chunk_files = batch_size * -(-CHUNK_FILES // batch_size)
    store = Path(cache_dir or default_cache_dir()) / cache_key(loaded, paths, batch_size)
    chunks, all_cached = [], True
    starts = range(0, len(paths), chunk_files)
    bar = tqdm(starts, desc=f"embed {task.name}/{split}", unit="chunk", disable=not progress, leave=False)
    for n, start in enumerate(bar):
        path = store / f"chunk-{n:05d}.npz"
        if use_cache and path.is_file():
            with np.load(path, allow_pickle=False) as npz:
                chunks.append(dict(npz))
            continue
        all_cached = False
        began = time.perf_counter()
        chunk = _chunk(loaded, paths[start: start + chunk_files], batch_size, event)
        loaded.embed_seconds += time.perf_counter() - began
        if use_cache:
            write_npz_atomic(path, chunk)
        chunks.append(chunk)
    if event:
        embeddings, timestamps = [], []
        for chunk in chunks:
            bounds = np.cumsum(chunk["counts"])[:-1]
            embeddings += np.split(chunk["embeddings"], bounds)
            timestamps += np.split(chunk["timestamps"], bounds)
        return SplitEmbeddings(files, embeddings, timestamps, all_cached)
    return SplitEmbeddings(files, [e for chunk in chunks for e in chunk["embeddings"]], None, all_cached)
