"""The toy HEAR 2021 module natively in TensorFlow (same numpy constants as toy_torch)."""

import numpy as np
import tensorflow as tf
from toy_constants import FRAME, HOP, LOG_OFFSET, N_BANDS, SAMPLE_RATE, band_basis, n_frames, timestamps_ms


class ToyModel(tf.Module):
    timestamp_embedding_size = N_BANDS
    scene_embedding_size = N_BANDS

    def __init__(self, sample_rate: int = SAMPLE_RATE, log_offset: float = LOG_OFFSET):
        super().__init__(name="toy")
        self.sample_rate = sample_rate
        self.log_offset = log_offset
        self.basis = tf.constant(band_basis(sample_rate))

    def __call__(self, audio: tf.Tensor) -> tf.Tensor:
        x = tf.pad(tf.cast(audio, tf.float64), [[0, 0], [FRAME // 2, FRAME // 2]])
        frames = tf.signal.frame(x, FRAME, HOP, pad_end=False)[:, : n_frames(int(audio.shape[1]))]
        z = tf.matmul(frames, self.basis)
        energy = z[..., :N_BANDS] ** 2 + z[..., N_BANDS:] ** 2
        return tf.cast(tf.math.log(energy + self.log_offset), tf.float32)


def load_model(model_file_path: str = "") -> ToyModel:
    return ToyModel()


def get_timestamp_embeddings(audio, model: ToyModel):
    audio = tf.convert_to_tensor(np.asarray(audio, dtype=np.float32) if not tf.is_tensor(audio) else audio)
    embeddings = model(audio)
    stamps = tf.constant(timestamps_ms(int(audio.shape[1]), model.sample_rate))
    return embeddings, tf.tile(stamps[None], [tf.shape(audio)[0], 1])


def get_scene_embeddings(audio, model: ToyModel) -> tf.Tensor:
    embeddings, _ = get_timestamp_embeddings(audio, model)
    return tf.reduce_mean(embeddings, axis=1)
