"""hear-dual in TensorFlow 2. Mirrors hear_dual/torch_impl/model.py op for op.

Layout here is (batch, time, channels): TF's CPU convolutions want channels last.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from hear_dual.audio import dft_fold, frontend_constants
from hear_dual.checkpoint import read_checkpoint
from hear_dual.spec import Spec


def to_tf_layout(name: str, array: np.ndarray) -> np.ndarray:
    """The one place where canonical (ONNX/torch) layouts become TF layouts: conv1d OIW -> WIO."""
    if name.endswith(".weight") and array.ndim == 3:
        return np.ascontiguousarray(np.transpose(array, (2, 1, 0)))
    return array


# Reversing the axes is its own inverse.
from_tf_layout = to_tf_layout


class LogMel(tf.Module):
    """Frames, then the windowed DFT folded by the window's symmetry: two matmuls of half the size."""

    def __init__(self, spec: Spec, constants: dict | None = None):
        """constants: the checkpoint's frontend constants (default: computed from the spec on this machine)."""
        super().__init__(name="frontend")
        constants = constants or frontend_constants(spec)
        fold = dft_fold(constants["frontend.dft"])
        # Variables, not captured constants: exporters (tf2onnx) freeze variables into the graph.
        self.dft_even = tf.Variable(fold.even, trainable=False, name="frontend.dft_even")
        self.dft_odd = tf.Variable(fold.odd, trainable=False, name="frontend.dft_odd")
        self.mel = tf.Variable(constants["frontend.mel"], trainable=False, name="frontend.mel")
        self.fold_tail = fold.tail_index      # numpy, so a trace embeds it as a constant, not a captured input
        self.fold_half = fold.half
        self.hop = spec.frontend["hop_length"]
        self.blocks_per_frame = spec.frontend["win_length"] // self.hop
        self.n_bins = spec.n_bins
        self.log_offset = spec.frontend["log_offset"]

    def __call__(self, audio: tf.Tensor) -> tf.Tensor:
        # In float64 when the spec says so: a tone's leakage bins cancel large terms, and log() would
        # amplify float32 rounding there into cross-framework drift.
        audio = tf.cast(audio, self.dft_even.dtype)
        blocks = tf.reshape(audio, [tf.shape(audio)[0], -1, self.hop])
        n_frames = tf.shape(blocks)[1] - self.blocks_per_frame + 1
        # TF has no strided views (torch frames with unfold): a concat of hop-sized blocks is the cheapest copy.
        frames = tf.concat([blocks[:, i : i + n_frames] for i in range(self.blocks_per_frame)], axis=2)
        head, tail = frames[..., 1 : self.fold_half + 1], tf.gather(frames, self.fold_tail, axis=2)
        real = tf.matmul(head + tail, self.dft_even)
        imag = tf.matmul(head - tail, self.dft_odd)
        power = real * real + imag * imag
        log_mel = tf.math.log(tf.matmul(power, self.mel) + self.log_offset)
        return tf.cast(log_mel, tf.float32)

    def to_embeddings(self, x: tf.Tensor, batch) -> tf.Tensor:
        return x                       # already (batch, T, D)


class WaveformFrames(tf.Module):
    """Overlapping frames of the padded chunk, each centred and scaled by its own standard deviation."""

    def __init__(self, spec: Spec):
        super().__init__(name="frontend")
        fe = spec.frontend
        self.frame_length, self.hop, self.dtype = fe["frame_length"], fe["hop_length"], tf.as_dtype(fe["precision"])
        self.divisor = fe["frame_length"] - fe["normalization"]["std_ddof"]
        self.floor = fe["normalization"]["std_floor"]
        self.embedding_size = spec.timestamp_embedding_size

    def __call__(self, audio: tf.Tensor) -> tf.Tensor:
        # In float64 when the spec says so: a near-constant frame's deviations are a small difference of large
        # numbers, and dividing by its small std turns float32 rounding into large embedding errors.
        audio = tf.cast(audio, self.dtype)
        n_frames = (tf.shape(audio)[1] - self.frame_length) // self.hop + 1
        starts, offsets = tf.range(n_frames), tf.range(self.frame_length)
        index = self.hop * starts[:, None] + offsets[None, :]
        frames = tf.gather(audio, index, axis=1)                   # (batch, F, frame_length), a gather
        frames = frames - tf.reduce_sum(frames, axis=2, keepdims=True) / self.frame_length
        std = tf.sqrt(tf.reduce_sum(frames * frames, axis=2, keepdims=True) / self.divisor)
        frames = frames / tf.maximum(std, tf.constant(self.floor, self.dtype))
        return tf.reshape(tf.cast(frames, tf.float32), [-1, self.frame_length, 1])    # (batch * F, frame_length, 1)

    def to_embeddings(self, x: tf.Tensor, batch) -> tf.Tensor:
        return tf.reshape(x, [batch, -1, self.embedding_size])     # (batch * F, D) -> (batch, F, D)


class Conv1d(tf.Module):
    """Always VALID: the only padding in the model is the explicit one in hear_dual.audio.chunk_plan.

    One matmul per kernel tap, summed, rather than tf.nn.convolution: TF's CPU convolution runs the whole
    kernel_size * in_channels contraction as one float32 running sum, with 4-5x the rounding of torch's
    oneDNN convolution. Trained weights turned that into twice the parity tolerance; per-tap sums match
    torch's rounding at TF's speed (measurements in spec/SPEC.md section 4).
    """

    def __init__(self, name, params, stride, dilation):
        super().__init__(name=name)
        kernel = to_tf_layout(f"{name}.weight", params[f"{name}.weight"])
        self.kernel = tf.Variable(kernel, trainable=False, name=f"{name}.weight")
        self.bias = tf.Variable(params[f"{name}.bias"], trainable=False, name=f"{name}.bias")
        self.stride, self.dilation = stride, dilation

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        kernel_size = self.kernel.shape[0]
        if self.kernel.shape[1] == 1:
            # A conv on the waveform: K outer products would each round into the sum; gather the K taps and
            # contract them in one matmul instead (SPEC section 4).
            n_out = (tf.shape(x)[1] - self.dilation * (kernel_size - 1) - 1) // self.stride + 1
            index = self.stride * tf.range(n_out)[:, None] + self.dilation * tf.range(kernel_size)[None, :]
            return tf.matmul(tf.gather(x[..., 0], index, axis=1), self.kernel[:, 0]) + self.bias
        # n_out >= 1 always: chunk_plan sizes every input to at least the receptive field.
        n_out = (tf.shape(x)[1] - self.dilation * (kernel_size - 1) - 1) // self.stride + 1
        span = (n_out - 1) * self.stride + 1
        taps = [tf.matmul(x[:, k * self.dilation : k * self.dilation + span : self.stride], self.kernel[k])
                for k in range(kernel_size)]
        return tf.add_n(taps) + self.bias


class SkipConv1d(Conv1d):
    """A conv1d over an earlier point of the stream (its source), its windows centred on the stream's own, its
    channels appended after the stream's: a skip connection that needs no padding (SPEC section 4)."""

    def __init__(self, name, params, stride, source: str, crop: int):
        super().__init__(name, params, stride, 1)
        self.source, self.crop = source, crop

    def __call__(self, x: tf.Tensor, points: dict) -> tf.Tensor:
        kernel_size = self.kernel.shape[0]
        window = points[self.source][:, self.crop : self.crop + self.stride * (tf.shape(x)[1] - 1) + kernel_size]
        return tf.concat([x, super().__call__(window)], axis=2)


class BatchNorm(tf.Module):
    """Inference batch norm written out with the spec's eps (Keras' default eps differs)."""

    def __init__(self, name, params, eps):
        super().__init__(name=name)
        for p in ("weight", "bias", "running_mean", "running_var"):
            setattr(self, p, tf.Variable(params[f"{name}.{p}"], trainable=False, name=f"{name}.{p}"))
        self.eps = eps

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        # Per-channel scale and shift first, so the per-element work is one multiply and one add.
        scale = self.weight / tf.sqrt(self.running_var + self.eps)
        shift = self.bias - self.running_mean * scale
        return x * scale + shift


class GELU(tf.Module):
    """The spec's formulas written out: tf.nn.gelu's exact variant uses erfc, which differs from torch's erf
    form in rounding and which tf2onnx cannot export."""

    def __init__(self, name, approximate: str):
        super().__init__(name=name)
        self.approximate = approximate

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        if self.approximate == "tanh":
            return 0.5 * x * (1.0 + tf.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))
        return 0.5 * x * (1.0 + tf.math.erf(x * math.sqrt(0.5)))


class ReLU(tf.Module):
    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return tf.nn.relu(x)


class Pad(tf.Module):
    """Explicit zeros on both ends of each frame's time axis."""

    def __init__(self, name, left: int, right: int):
        super().__init__(name=name)
        self.left, self.right = left, right

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return tf.pad(x, [[0, 0], [self.left, self.right], [0, 0]])


class MaxPool1d(tf.Module):
    """VALID: windows that do not fit are dropped, never padded."""

    def __init__(self, name, kernel_size: int, stride: int):
        super().__init__(name=name)
        self.kernel_size, self.stride = kernel_size, stride

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return tf.nn.max_pool1d(x, self.kernel_size, self.stride, "VALID")


class Flatten(tf.Module):
    """channel_major: element c * T + t, torch's memory order; here (N, T, C) is transposed to (N, C, T) first."""

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return tf.reshape(tf.transpose(x, [0, 2, 1]), [tf.shape(x)[0], -1])


def make_layer(layer, params, spec: Spec) -> tf.Module:
    if layer.op == "conv1d":
        return Conv1d(layer.name, params, layer.stride, layer.dilation)
    if layer.op == "skip_conv1d":
        return SkipConv1d(layer.name, params, layer.stride, layer.source, spec.skip_crops[layer.name])
    if layer.op == "batchnorm":
        return BatchNorm(layer.name, params, layer.eps)
    if layer.op == "gelu":
        return GELU(layer.name, layer.approximate)
    if layer.op == "relu":
        return ReLU(name=layer.name)
    if layer.op == "pad":
        return Pad(layer.name, layer.left, layer.right)
    if layer.op == "maxpool1d":
        return MaxPool1d(layer.name, layer.kernel_size, layer.stride)
    if layer.op == "flatten":
        return Flatten(name=layer.name)
    raise ValueError(f"op {layer.op!r} is not implemented by the TensorFlow backend")


class HearDualModel(tf.Module):
    """Maps a padded audio chunk (batch, samples) to timestamp embeddings (batch, n_outputs, D)."""

    def __init__(self, spec: Spec, params: dict, chunk_timestamps: int | None = None, constants: dict | None = None):
        super().__init__(name=spec.name.replace("-", "_"))
        self.spec = spec
        self.sample_rate = spec.sample_rate
        self.timestamp_embedding_size = spec.timestamp_embedding_size
        self.scene_embedding_size = spec.scene_embedding_size
        self.chunk_timestamps = chunk_timestamps
        self.frontend = WaveformFrames(spec) if spec.is_framed else LogMel(spec, constants)
        self.layers = [make_layer(layer, params, spec) for layer in spec.layers]
        self.sources = {layer.source for layer in spec.layers if layer.op == "skip_conv1d"}
        # One trace serves every batch size and length: both dimensions are left unknown.
        self.encode = tf.function(self.forward, input_signature=[tf.TensorSpec([None, None], tf.float32, name="audio")],
                                  reduce_retracing=True)

    def forward(self, audio: tf.Tensor) -> tf.Tensor:
        return self.frontend.to_embeddings(self.run_encoder(self.frontend(audio)), tf.shape(audio)[0])

    def run_encoder(self, x: tf.Tensor) -> tf.Tensor:
        """The encoder on the frontend's output."""
        points = {"frontend": x} if "frontend" in self.sources else {}    # the outputs a skip_conv1d reads, only
        for layer in self.layers:
            x = layer(x, points) if isinstance(layer, SkipConv1d) else layer(x)
            if layer.name in self.sources:
                points[layer.name] = x
        return x


def load_model(model_file_path: str = "") -> HearDualModel:
    # TensorFlow runs float32 matmuls and convolutions on GPUs in TF32 by default (10 mantissa bits, ~3e-4
    # relative error); it has no scoped switch, so loading a model turns it off for the process. No effect on CPUs.
    tf.config.experimental.enable_tensor_float_32_execution(False)
    checkpoint = read_checkpoint(model_file_path)
    model = HearDualModel(checkpoint.spec, checkpoint.params, constants=checkpoint.constants)
    model.checkpoint_path = checkpoint.path
    model.checkpoint_sha256 = checkpoint.sha256
    return model
