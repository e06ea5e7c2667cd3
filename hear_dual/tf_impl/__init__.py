"""The HEAR 2021 API in TensorFlow 2: load_model, get_timestamp_embeddings, get_scene_embeddings."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from hear_dual.audio import chunk_plan, num_timestamps, timestamps_ms
from hear_dual.inputs import check_audio_layout, check_finite
from hear_dual.tf_impl.model import HearDualModel, load_model

__all__ = ["HearDualModel", "load_model", "get_timestamp_embeddings", "get_scene_embeddings"]


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
    check_finite(tf.reduce_all(tf.math.is_finite(audio), axis=1).numpy())
    return audio


def get_timestamp_embeddings(audio, model: HearDualModel) -> tuple[tf.Tensor, tf.Tensor]:
    """audio (n_sounds, n_samples) -> embeddings (n_sounds, T, D) float32, timestamps (n_sounds, T) in ms."""
    audio = _as_audio_tensor(audio)
    n_sounds, n_samples = audio.shape
    spec = model.spec
    pieces = []
    if n_sounds:
        for chunk in chunk_plan(spec, n_samples, model.chunk_timestamps):
            x = tf.pad(audio[:, chunk.src_start : chunk.src_stop], [[0, 0], [chunk.pad_left, chunk.pad_right]])
            pieces.append(model.encode(x))
    n_out = num_timestamps(spec, n_samples)
    if pieces:
        embeddings = tf.concat(pieces, axis=1)
    else:
        embeddings = tf.zeros((0, n_out, model.timestamp_embedding_size), tf.float32)
    timestamps = tf.tile(tf.constant(timestamps_ms(spec, n_samples))[None], [n_sounds, 1])
    return embeddings, timestamps


def pool_scene(embeddings: tf.Tensor, pooling: list[str]) -> tf.Tensor:
    pooled = {"mean": lambda e: tf.reduce_mean(e, axis=1), "max": lambda e: tf.reduce_max(e, axis=1)}
    return tf.concat([pooled[p](embeddings) for p in pooling], axis=1)


def get_scene_embeddings(audio, model: HearDualModel) -> tf.Tensor:
    """audio (n_sounds, n_samples) -> (n_sounds, scene_embedding_size) float32."""
    embeddings, _ = get_timestamp_embeddings(audio, model)
    if embeddings.shape[0] == 0:
        return tf.zeros((0, model.scene_embedding_size), tf.float32)
    return pool_scene(embeddings, model.spec.scene_pooling)
