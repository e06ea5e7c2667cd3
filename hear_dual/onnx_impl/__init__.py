"""The HEAR 2021 API on ONNX Runtime: numpy in, numpy out. Needs neither torch nor TensorFlow.

It runs the checkpoint's own graph (the torch export), or any graph that maps the spec's padded audio
chunk to timestamp embeddings (e.g. tf_impl exported with tf2onnx, see hear_dual.tf_export).
"""

from __future__ import annotations

import numpy as np

from hear_dual.audio import auto_chunk_timestamps, chunk_plan, frame_groups, num_timestamps, timestamps_ms
from hear_dual.checkpoint import CheckpointError, read_checkpoint
from hear_dual.inputs import check_numpy_audio, check_pairwise
from hear_dual.spec import Spec

__all__ = ["OnnxModel", "load_model", "get_timestamp_embeddings", "get_scene_embeddings", "pairwise_distance"]


class OnnxModel:
    """Same attributes as the torch and TF models; `encode` maps a padded chunk to embeddings."""

    def __init__(self, spec: Spec, graph: bytes, providers=None, chunk_timestamps: int | None = None,
                 threads: int | None = None):
        import onnxruntime as ort

        self.spec = spec
        self.sample_rate = spec.sample_rate
        self.timestamp_embedding_size = spec.timestamp_embedding_size
        self.scene_embedding_size = spec.scene_embedding_size
        self.chunk_timestamps = chunk_timestamps
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(graph, options, providers=providers or ["CPUExecutionProvider"])
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(f"graph must have one input and one output, has {len(inputs)} and {len(outputs)}")
        self.input_name, self.output_name = inputs[0].name, outputs[0].name

    def encode(self, padded: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: padded})[0]


def load_model(model_file_path: str = "", providers=None, threads: int | None = None) -> OnnxModel:
    checkpoint = read_checkpoint(model_file_path)
    try:
        model = OnnxModel(checkpoint.spec, checkpoint.model_bytes, providers, threads=threads)
    except Exception as e:  # onnxruntime raises its own types for graphs it cannot run
        raise CheckpointError(f"{checkpoint.path}: onnxruntime cannot run the graph ({type(e).__name__}: {e})") from e
    model.checkpoint_path, model.checkpoint_sha256 = checkpoint.path, checkpoint.sha256
    return model


def get_timestamp_embeddings(audio, model: OnnxModel) -> tuple[np.ndarray, np.ndarray]:
    """audio (n_sounds, n_samples) -> embeddings (n_sounds, T, D) float32, timestamps (n_sounds, T) in ms."""
    return _embed(check_numpy_audio(audio), model, model.spec.hop_samples)


def _embed(audio: np.ndarray, model: OnnxModel, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings every `hop` samples: the timestamp hop, or a waveform spec's scene hop."""
    n_sounds, n_samples = audio.shape
    spec = model.spec
    embeddings = np.zeros((n_sounds, num_timestamps(spec, n_samples, hop), model.timestamp_embedding_size),
                          np.float32)
    if n_sounds and hop != spec.hop_samples:     # a waveform spec's scene hop: its frames as rows of a batch
        for group in frame_groups(spec, n_samples, n_sounds, hop):
            x = np.stack([np.pad(audio[:, c.src_start : c.src_stop], ((0, 0), (c.pad_left, c.pad_right)))
                          for c in group], axis=1)
            rows = model.encode(x.reshape(-1, x.shape[2]))
            embeddings[:, group[0].out_start : group[-1].out_stop] = rows.reshape(n_sounds, len(group), -1)
    elif n_sounds:
        chunk_timestamps = model.chunk_timestamps or auto_chunk_timestamps(spec, n_sounds, hop)
        for chunk in chunk_plan(spec, n_samples, chunk_timestamps, hop):
            x = np.pad(audio[:, chunk.src_start : chunk.src_stop], ((0, 0), (chunk.pad_left, chunk.pad_right)))
            embeddings[:, chunk.out_start : chunk.out_stop] = model.encode(x)
    timestamps = np.tile(timestamps_ms(spec, n_samples, hop), (n_sounds, 1))
    return embeddings, timestamps


def pool_scene(embeddings: np.ndarray, pooling: list[str]) -> np.ndarray:
    pooled = {"mean": lambda e: e.mean(axis=1, dtype=np.float64).astype(np.float32), "max": lambda e: e.max(axis=1)}
    return np.concatenate([pooled[p](embeddings) for p in pooling], axis=1)


def get_scene_embeddings(audio, model: OnnxModel) -> np.ndarray:
    """audio (n_sounds, n_samples) -> (n_sounds, scene_embedding_size) float32."""
    embeddings, _ = _embed(check_numpy_audio(audio), model, model.spec.scene_hop_samples)
    if embeddings.shape[0] == 0:
        return np.zeros((0, model.scene_embedding_size), np.float32)
    return pool_scene(embeddings, model.spec.scene_pooling)


def pairwise_distance(emb1, emb2, metric: str = "l1") -> np.ndarray:
    """(n1, n_frames, D) x (n2, n_frames, D) -> (n1, n2): unnormalised L1 (or L2) over frames and dims."""
    emb1, emb2 = np.asarray(emb1, np.float32), np.asarray(emb2, np.float32)
    rows = check_pairwise(emb1.shape, emb2.shape, metric)
    blocks = []
    for start in range(0, emb1.shape[0], rows):
        diff = emb1[start : start + rows, None] - emb2[None]
        blocks.append(np.abs(diff).sum(axis=(2, 3)) if metric == "l1" else np.sqrt(np.square(diff).sum(axis=(2, 3))))
    return np.concatenate(blocks) if blocks else np.zeros((0, emb2.shape[0]), np.float32)
