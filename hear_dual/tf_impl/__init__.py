"""The HEAR 2021 API in TensorFlow 2: load_model, get_timestamp_embeddings, get_scene_embeddings."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from hear_dual.audio import auto_chunk_timestamps, chunk_plan, frame_groups, num_timestamps, timestamps_ms
from hear_dual.inputs import check_audio_layout, check_finite, check_pairwise
from hear_dual.tf_impl.model import HearDualModel, load_model

__all__ = ["HearDualModel", "load_model", "get_timestamp_embeddings", "get_scene_embeddings", "pairwise_distance"]


def _as_audio_tensor(audio) -> tf.Tensor:
    if isinstance(audio, (tf.Tensor, tf.Variable)):
        dtype = audio.dtype
        kind = "f" if dtype.is_floating else "c" if dtype.is_complex else "b" if dtype.is_bool else "i"
        check_audio_layout(tuple(audio.shape), dtype.name, kind)
    else:
        array = np.asarray(audio)
        check_audio_layout(array.shape, array.dtype.name, array.dtype.kind)
        audio = tf.convert_to_tensor(np.ascontiguousarray(array))
    audio = tf.cast(audio, tf.float32)
    # A bool mask (1 byte a sample): TF's reduce_sum has no float64 accumulator without a float64 copy.
    check_finite(tf.reduce_all(tf.math.is_finite(audio), axis=1).numpy())
    return audio


def get_timestamp_embeddings(audio, model: HearDualModel) -> tuple[tf.Tensor, tf.Tensor]:
    """audio (n_sounds, n_samples) -> embeddings (n_sounds, T, D) float32, timestamps (n_sounds, T) in ms."""
    return _embed(_as_audio_tensor(audio), model, model.spec.hop_samples)


def _embed(audio: tf.Tensor, model: HearDualModel, hop: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Embeddings every `hop` samples: the timestamp hop, or a waveform spec's scene hop."""
    n_sounds, n_samples = audio.shape
    spec = model.spec
    pieces = []
    if n_sounds and hop != spec.hop_samples:     # a waveform spec's scene hop: its frames as rows of a batch
        for group in frame_groups(spec, n_samples, n_sounds, hop):
            x = tf.stack([tf.pad(audio[:, c.src_start : c.src_stop], [[0, 0], [c.pad_left, c.pad_right]])
                          for c in group], axis=1)
            rows = model.encode(tf.reshape(x, [-1, x.shape[2]]))
            pieces.append(tf.reshape(rows, [n_sounds, len(group), -1]))
    elif n_sounds:
        chunk_timestamps = model.chunk_timestamps or auto_chunk_timestamps(spec, n_sounds, hop)
        for chunk in chunk_plan(spec, n_samples, chunk_timestamps, hop):
            x = tf.pad(audio[:, chunk.src_start : chunk.src_stop], [[0, 0], [chunk.pad_left, chunk.pad_right]])
            pieces.append(model.encode(x))
    n_out = num_timestamps(spec, n_samples, hop)
    if pieces:
        embeddings = tf.concat(pieces, axis=1)
    else:
        embeddings = tf.zeros((0, n_out, model.timestamp_embedding_size), tf.float32)
    timestamps = tf.tile(tf.constant(timestamps_ms(spec, n_samples, hop))[None], [n_sounds, 1])
    return embeddings, timestamps


def pool_scene(embeddings: tf.Tensor, pooling: list[str]) -> tf.Tensor:
    pooled = {"mean": lambda e: tf.cast(tf.reduce_mean(tf.cast(e, tf.float64), axis=1), tf.float32),
              "max": lambda e: tf.reduce_max(e, axis=1)}
    return tf.concat([pooled[p](embeddings) for p in pooling], axis=1)


def get_scene_embeddings(audio, model: HearDualModel) -> tf.Tensor:
    """audio (n_sounds, n_samples) -> (n_sounds, scene_embedding_size) float32."""
    embeddings, _ = _embed(_as_audio_tensor(audio), model, model.spec.scene_hop_samples)
    if embeddings.shape[0] == 0:
        return tf.zeros((0, model.scene_embedding_size), tf.float32)
    return pool_scene(embeddings, model.spec.scene_pooling)


def pairwise_distance(emb1, emb2, metric: str = "l1") -> tf.Tensor:
    """(n1, n_frames, D) x (n2, n_frames, D) -> (n1, n2): unnormalised L1 (or L2) over frames and dims."""
    emb1, emb2 = tf.cast(tf.convert_to_tensor(emb1), tf.float32), tf.cast(tf.convert_to_tensor(emb2), tf.float32)
    rows = check_pairwise(tuple(emb1.shape), tuple(emb2.shape), metric)
    blocks = []
    for start in range(0, emb1.shape[0], rows):
        diff = emb1[start : start + rows, None] - emb2[None]
        blocks.append(tf.reduce_sum(tf.abs(diff), axis=[2, 3]) if metric == "l1"
                      else tf.sqrt(tf.reduce_sum(tf.square(diff), axis=[2, 3])))
    return tf.concat(blocks, axis=0) if blocks else tf.zeros((0, emb2.shape[0]), tf.float32)
