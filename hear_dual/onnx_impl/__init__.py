"""The HEAR 2021 API on ONNX Runtime: numpy in, numpy out. Needs neither torch nor TensorFlow.

It runs the model's ONNX graph (hear_dual.onnx_graph), rebuilt at load time from the checkpoint's spec and
weights as the other backends rebuild theirs; or, on request, the checkpoint's stored graph as it is; or any graph
that maps the spec's padded audio chunk to timestamp embeddings (tf_impl exported with tf2onnx, hear_dual.tf_export).
"""

from __future__ import annotations

import os

import numpy as np

from hear_dual.audio import Plan, embedding_plan, timestamps_ms
from hear_dual.checkpoint import CheckpointError, read_checkpoint
from hear_dual.extras import require
from hear_dual.inputs import check_numpy_audio, check_pairwise
from hear_dual.quiet import onnxruntime_log_level
from hear_dual.spec import Spec
from hear_dual.weights import resolve

__all__ = ["OnnxModel", "load_model", "get_timestamp_embeddings", "get_scene_embeddings", "pairwise_distance"]


def omp_threads() -> int:
    """The first level of the user's OMP_NUM_THREADS ("4" or "4,2"), or 0 where it is unset or unreadable."""
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(value) if value.isdigit() else 0


class OnnxModel:
    """Same attributes as the torch and TF models; `encode` maps a padded chunk to embeddings."""

    def __init__(self, spec: Spec, graph: bytes, providers=None, chunk_timestamps: int | None = None,
                 threads: int | None = None):
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
        self.session = ort.InferenceSession(graph, options, providers=providers or ["CPUExecutionProvider"])
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(f"graph must have one input and one output, has {len(inputs)} and {len(outputs)}")
        self.input_name, self.output_name = inputs[0].name, outputs[0].name

    def encode(self, padded: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: padded})[0]


def load_model(model_file_path: str = "", providers=None, threads: int | None = None,
               stored_graph: bool = False) -> OnnxModel:
    """stored_graph: run the checkpoint's own graph as stored (the same graph for checkpoints this version writes;
    a torch.onnx export for the earlier ones) instead of the one rebuilt from its spec and weights."""
    from hear_dual.onnx_graph import build_graph

    checkpoint = read_checkpoint(resolve(model_file_path))     # a path or a model's name, converted on first use
    graph = checkpoint.model_bytes if stored_graph else \
        build_graph(checkpoint.spec, checkpoint.params, checkpoint.constants).SerializeToString()
    try:
        model = OnnxModel(checkpoint.spec, graph, providers, threads=threads)
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
    n_sounds = audio.shape[0]
    embeddings = np.zeros((n_sounds, plan.n_outputs, model.timestamp_embedding_size), np.float32)
    for lo in range(0, n_sounds, plan.sounds):
        part, out = audio[lo : lo + plan.sounds], embeddings[lo : lo + plan.sounds]
        for step in plan.steps:
            if isinstance(step, list):       # units that each have their own input: rows of one batch
                x = np.stack([np.pad(part[:, c.src_start : c.src_stop], ((0, 0), (c.pad_left, c.pad_right)))
                              for c in step], axis=1)
                rows = model.encode(x.reshape(-1, x.shape[2]))
                out[:, step[0].out_start : step[-1].out_stop] = rows.reshape(part.shape[0], -1, rows.shape[2])
            else:
                x = np.pad(part[:, step.src_start : step.src_stop], ((0, 0), (step.pad_left, step.pad_right)))
                out[:, step.out_start : step.out_stop] = model.encode(x)
    return embeddings


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
