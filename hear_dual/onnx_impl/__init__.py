"""The HEAR 2021 API on ONNX Runtime: numpy in, numpy out. Needs neither torch nor TensorFlow.

It runs the model's ONNX graph (hear_dual.onnx_graph), rebuilt at load time from the checkpoint's spec and
weights as the other backends rebuild theirs; or, on request, the checkpoint's stored graph as it is; or any graph
that maps the spec's padded audio chunk to timestamp embeddings (tf_impl exported with tf2onnx, hear_dual.tf_export).
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from hear_dual.audio import Plan, embedding_plan, timestamps_ms
from hear_dual.checkpoint import CheckpointError, read_checkpoint
from hear_dual.extras import require
from hear_dual.inputs import check_finite_embeddings, check_numpy_audio, check_pairwise
from hear_dual.quiet import onnxruntime_log_level
from hear_dual.spec import Spec
from hear_dual.weights import resolve

__all__ = ["OnnxModel", "load_model", "get_timestamp_embeddings", "get_scene_embeddings", "pairwise_distance"]


def omp_threads() -> int:
    """The first level of the user's OMP_NUM_THREADS ("4" or "4,2"), or 0 where it is unset or unreadable."""
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(value) if value.isdigit() else 0


def cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container or taskset narrows)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class OnnxModel:
    """Same attributes as the torch and TF models; `encode` maps a padded chunk to embeddings.

    On the CPU, a call's rows and chunks run side by side, one single-threaded run per core (`encode_all`): ONNX
    Runtime splits each op across its threads, and on small ops its threads wait for each other longer than they
    work. Split, every model ran faster on 2 cores (CREPE tiny 1.5x, VGG 2x, base 1.2x to 1.3x; docs/speed.md). A
    call with one row and one chunk runs whole, on every thread. Each row's output is the same bits either way: the
    kernels split work across threads by output, not inside a sum (tests/test_threads.py checks every family).
    `split=False` keeps every run on one session with `threads` threads."""

    def __init__(self, spec: Spec, graph: bytes, providers=None, chunk_timestamps: int | None = None,
                 threads: int | None = None, split: bool = True):
        ort = require("onnxruntime", "hear_dual.onnx_impl")

        self.spec = spec
        self.sample_rate = spec.sample_rate
        self.timestamp_embedding_size = spec.timestamp_embedding_size
        self.scene_embedding_size = spec.scene_embedding_size
        self.chunk_timestamps = chunk_timestamps
        options = ort.SessionOptions()
        options.log_severity_level = onnxruntime_log_level()
        # ONNX Runtime's default is one thread per physical core; a user who caps OpenMP (OMP_NUM_THREADS), as
        # torch and TensorFlow read it, caps this backend too.
        threads = threads or omp_threads()
        if threads > 0:
            options.intra_op_num_threads = threads
        providers = providers or ["CPUExecutionProvider"]
        self.session = ort.InferenceSession(graph, options, providers=providers)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(f"graph must have one input and one output, has {len(inputs)} and {len(outputs)}")
        self.input_name, self.output_name = inputs[0].name, outputs[0].name
        # The side-by-side runs share one single-threaded session (a session may run from several threads at once;
        # its weights are held once more, not once per core).
        on_cpu = list(providers) == ["CPUExecutionProvider"]
        self.workers = (threads if threads > 0 else cores()) if split and on_cpu else 1
        self.single = None
        if self.workers > 1:
            options.intra_op_num_threads = 1
            self.single = ort.InferenceSession(graph, options, providers=providers)

    def encode(self, padded: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: padded})[0]

    def encode_all(self, pieces) -> None:
        """pieces: (rows, out) pairs in order, rows (n, samples) and out (sounds, units, T, D) with n = sounds x
        units, sound-major. With one worker, or one row in all, each piece runs whole on `session`; otherwise
        each piece's rows are cut into up to `workers` runs of `single`, at most `workers` runs ahead of the one
        written next (a long call holds a few pieces' inputs at a time, not all of them)."""
        pieces = iter(pieces)
        head = list(itertools.islice(pieces, 2))
        pieces = itertools.chain(head, pieces)
        if self.workers == 1 or (len(head) == 1 and len(head[0][0]) == 1):
            for rows, out in pieces:
                write(out, 0, len(rows), self.encode(rows))
            return
        pending = deque()
        with ThreadPoolExecutor(self.workers) as pool:
            for rows, out in pieces:
                step = -(-len(rows) // self.workers)
                for lo in range(0, len(rows), step):
                    hi = min(lo + step, len(rows))
                    run = pool.submit(self.single.run, [self.output_name], {self.input_name: rows[lo:hi]})
                    pending.append((out, lo, hi, run))
                while len(pending) > self.workers:
                    out_, lo, hi, run = pending.popleft()
                    write(out_, lo, hi, run.result()[0])
            for out, lo, hi, run in pending:
                write(out, lo, hi, run.result()[0])


def write(out: np.ndarray, lo: int, hi: int, values: np.ndarray) -> None:
    """Rows lo..hi-1 of a piece (sound-major over out's first two axes) into out, a view of the embeddings."""
    out[np.unravel_index(np.arange(lo, hi), out.shape[:2])] = values


def load_model(model_file_path: str = "", providers=None, threads: int | None = None,
               stored_graph: bool = False, split: bool = True) -> OnnxModel:
    """stored_graph: run the checkpoint's own graph as stored (the same graph for checkpoints this version writes;
    a torch.onnx export for the earlier ones) instead of the one rebuilt from its spec and weights. threads: the
    cores to use (default OMP_NUM_THREADS, else every core the process may run on); split=False runs every call
    on one session with that many threads instead of single-threaded runs side by side (OnnxModel)."""
    from hear_dual.onnx_graph import build_graph

    checkpoint = read_checkpoint(resolve(model_file_path))     # a path or a model's name, converted on first use
    graph = checkpoint.model_bytes if stored_graph else \
        build_graph(checkpoint.spec, checkpoint.params, checkpoint.constants).SerializeToString()
    try:
        model = OnnxModel(checkpoint.spec, graph, providers, threads=threads, split=split)
    except Exception as e:  # onnxruntime raises its own types for graphs it cannot run
        raise CheckpointError(f"{checkpoint.path}: onnxruntime cannot run the graph ({type(e).__name__}: {e})") from e
    model.checkpoint_path, model.checkpoint_sha256 = checkpoint.path, checkpoint.sha256
    return model


def get_timestamp_embeddings(audio, model: OnnxModel) -> tuple[np.ndarray, np.ndarray]:
    """audio (n_sounds, n_samples) -> embeddings (n_sounds, T, D) float32, timestamps (n_sounds, T) in ms."""
    audio = check_numpy_audio(audio)
    plan = embedding_plan(model.spec, audio.shape[1], audio.shape[0], chunk_timestamps=model.chunk_timestamps)
    timestamps = np.tile(timestamps_ms(model.spec, audio.shape[1]), (audio.shape[0], 1))
    return _embed(audio, model, plan)[:, : plan.n_timestamps], timestamps


def _embed(audio: np.ndarray, model: OnnxModel, plan: Plan) -> np.ndarray:
    """(n_sounds, plan.n_outputs, D): the plan's steps in order (hear_dual.audio.embedding_plan)."""
    embeddings = np.zeros((audio.shape[0], plan.n_outputs, model.timestamp_embedding_size), np.float32)
    model.encode_all(_pieces(audio, embeddings, plan))
    check_finite_embeddings(np.isfinite(embeddings.sum(axis=(1, 2), dtype=np.float64)), model)
    return embeddings


def _pieces(audio: np.ndarray, embeddings: np.ndarray, plan: Plan):
    """Each step's padded rows and the view of `embeddings` they fill, as (sounds, units, T, D)."""
    for lo in range(0, audio.shape[0], plan.sounds):
        part, out = audio[lo : lo + plan.sounds], embeddings[lo : lo + plan.sounds]
        for step in plan.steps:
            if isinstance(step, list):       # units that each have their own input: rows of one batch
                x = np.stack([np.pad(part[:, c.src_start : c.src_stop], ((0, 0), (c.pad_left, c.pad_right)))
                              for c in step], axis=1)
                view = out[:, step[0].out_start : step[-1].out_stop]
                yield x.reshape(-1, x.shape[2]), view.reshape(len(part), len(step), -1, view.shape[2])
            else:
                x = np.pad(part[:, step.src_start : step.src_stop], ((0, 0), (step.pad_left, step.pad_right)))
                yield x, out[:, None, step.out_start : step.out_stop]


def pool_scene(embeddings: np.ndarray, pooling: list[str], tile: int | None = None) -> np.ndarray:
    """Each pooling over every `tile` consecutive embeddings (default all), concatenated, then the mean over the
    tiles, all in float64 (SPEC section 6)."""
    groups = embeddings.reshape(embeddings.shape[0], -1, tile or embeddings.shape[1], embeddings.shape[2])
    pooled = {"mean": lambda e: e.mean(axis=2, dtype=np.float64), "max": lambda e: e.max(axis=2).astype(np.float64)}
    return np.concatenate([pooled[p](groups) for p in pooling], axis=2).mean(axis=1).astype(np.float32)


def get_scene_embeddings(audio, model: OnnxModel) -> np.ndarray:
    """audio (n_sounds, n_samples) -> (n_sounds, scene_embedding_size) float32."""
    audio = check_numpy_audio(audio)
    if audio.shape[0] == 0:
        return np.zeros((0, model.scene_embedding_size), np.float32)
    plan = embedding_plan(model.spec, audio.shape[1], audio.shape[0], scene=True,
                          chunk_timestamps=model.chunk_timestamps)
    return pool_scene(_embed(audio, model, plan), model.spec.scene_pooling, plan.tile)


def pairwise_distance(emb1, emb2, metric: str = "l1") -> np.ndarray:
    """(n1, n_frames, D) x (n2, n_frames, D) -> (n1, n2): unnormalised L1 (or L2) over frames and dims."""
    emb1, emb2 = np.asarray(emb1, np.float32), np.asarray(emb2, np.float32)
    rows = check_pairwise(emb1.shape, emb2.shape, metric)
    blocks = []
    for start in range(0, emb1.shape[0], rows):
        diff = emb1[start : start + rows, None] - emb2[None]
        blocks.append(np.abs(diff).sum(axis=(2, 3)) if metric == "l1" else np.sqrt(np.square(diff).sum(axis=(2, 3))))
    return np.concatenate(blocks) if blocks else np.zeros((0, emb2.shape[0]), np.float32)
