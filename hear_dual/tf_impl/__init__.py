"""The HEAR 2021 API in TensorFlow 2: load_model, get_timestamp_embeddings, get_scene_embeddings."""

from __future__ import annotations

import numpy as np

from hear_dual.audio import Plan, embedding_plan, timestamps_ms
from hear_dual.inputs import (
    check_audio_layout,
    check_finite,
    check_finite_embeddings,
    check_numpy_audio,
    check_pairwise,
)
from hear_dual.tf_impl.model import HearDualModel, chunk_budget, load_model, tf

__all__ = ["HearDualModel", "load_model", "get_timestamp_embeddings", "get_scene_embeddings", "pairwise_distance"]


def _as_audio(audio) -> tf.Tensor | np.ndarray:
    """A tensor as float32; numpy audio stays numpy (float32): each chunk is converted as it is cut, so 20 minutes
    are not held twice."""
    if not isinstance(audio, (tf.Tensor, tf.Variable)):
        return check_numpy_audio(audio)
    dtype = audio.dtype
    kind = "f" if dtype.is_floating else "c" if dtype.is_complex else "b" if dtype.is_bool else "i"
    check_audio_layout(tuple(audio.shape), dtype.name, kind)
    audio = tf.cast(audio, tf.float32)
    # A bool mask (1 byte a sample): TF's reduce_sum has no float64 accumulator without a float64 copy.
    check_finite(tf.reduce_all(tf.math.is_finite(audio), axis=1).numpy())
    return audio


def get_timestamp_embeddings(audio, model: HearDualModel) -> tuple[tf.Tensor, tf.Tensor]:
    """audio (n_sounds, n_samples) -> embeddings (n_sounds, T, D) float32, timestamps (n_sounds, T) in ms."""
    audio = _as_audio(audio)
    plan = embedding_plan(model.spec, audio.shape[1], audio.shape[0], chunk_timestamps=model.chunk_timestamps,
                          activation_floats=chunk_budget(model.spec))
    timestamps = tf.constant(timestamps_ms(model.spec, audio.shape[1]))
    return _embed(audio, model, plan, plan.n_timestamps), tf.tile(timestamps[None], [audio.shape[0], 1])


def _embed(audio, model: HearDualModel, plan: Plan, keep: int | None = None) -> tf.Tensor:
    """(n_sounds, keep, D), the first `keep` (default all) of plan.n_outputs: the plan's steps in order
    (hear_dual.audio.embedding_plan). Each piece is written into one numpy buffer as it is made, and the buffer
    becomes the returned tensor without a copy (DLPack): a concat of the pieces held 20 minutes of musicnn's
    output (226 MB) twice."""
    n_sounds, keep = audio.shape[0], plan.n_outputs if keep is None else keep
    if n_sounds == 0 or keep == 0:
        return tf.zeros((n_sounds, keep, model.timestamp_embedding_size), tf.float32)
    out = _aligned_empty((n_sounds, keep, model.timestamp_embedding_size))
    for lo in range(0, n_sounds, plan.sounds):
        part, done = audio[lo : lo + plan.sounds], 0
        for step in plan.steps:
            if isinstance(step, list):       # units that each have their own input: rows of one batch
                x = tf.stack([tf.pad(part[:, c.src_start : c.src_stop], [[0, 0], [c.pad_left, c.pad_right]])
                              for c in step], axis=1)
                rows = model.encode(tf.reshape(x, [-1, x.shape[2]]))
                piece = tf.reshape(rows, [part.shape[0], -1, rows.shape[2]])
            else:
                x = tf.pad(part[:, step.src_start : step.src_stop], [[0, 0], [step.pad_left, step.pad_right]])
                piece = model.encode(x)
            n = min(piece.shape[1], keep - done)
            out[lo : lo + part.shape[0], done : done + n] = piece[:, :n].numpy()
            done += n
    check_finite_embeddings(np.isfinite(out.sum(axis=(1, 2), dtype=np.float64)), model)
    return tf.experimental.dlpack.from_dlpack(out.__dlpack__())


def _aligned_empty(shape: tuple) -> np.ndarray:
    """An uninitialised float32 array at a 64-byte boundary, which TensorFlow requires of memory it shares."""
    size = int(np.prod(shape)) * 4
    raw = np.empty(size + 64, np.uint8)
    start = -raw.ctypes.data % 64
    return raw[start : start + size].view(np.float32).reshape(shape)


def pool_scene(embeddings: tf.Tensor, pooling: list[str], tile: int | None = None) -> tf.Tensor:
    """Each pooling over every `tile` consecutive embeddings (default all), concatenated, then the mean over the
    tiles, all in float64 (SPEC section 6)."""
    groups = tf.reshape(embeddings, [embeddings.shape[0], -1, tile or embeddings.shape[1], embeddings.shape[2]])
    pooled = {"mean": lambda e: tf.reduce_mean(tf.cast(e, tf.float64), axis=2),
              "max": lambda e: tf.cast(tf.reduce_max(e, axis=2), tf.float64)}
    return tf.cast(tf.reduce_mean(tf.concat([pooled[p](groups) for p in pooling], axis=2), axis=1), tf.float32)


def get_scene_embeddings(audio, model: HearDualModel) -> tf.Tensor:
    """audio (n_sounds, n_samples) -> (n_sounds, scene_embedding_size) float32."""
    audio = _as_audio(audio)
    if audio.shape[0] == 0:
        return tf.zeros((0, model.scene_embedding_size), tf.float32)
    plan = embedding_plan(model.spec, audio.shape[1], audio.shape[0], scene=True,
                          chunk_timestamps=model.chunk_timestamps, activation_floats=chunk_budget(model.spec))
    return pool_scene(_embed(audio, model, plan), model.spec.scene_pooling, plan.tile)


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
