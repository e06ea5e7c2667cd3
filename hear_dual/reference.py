"""The float64 reference: spec/SPEC.md sections 3 to 6 in plain numpy, the oracle every backend is measured against.

Written from the spec text alone. It shares with the backends only the spec loader (hear_dual.spec) and the
checkpoint's stored constants and parameters; it frames, pads and chunks nothing their way: the whole clip
is padded once (section 5, "Padded signal") and run through the network in one pass, in float64 throughout
(the parameters are float32 numbers, used exactly). It is slow and needs no deep-learning framework.

    import hear_dual.reference as ref
    model = ref.load_model()                                  # any hear-dual checkpoint
    embeddings, timestamps = ref.get_timestamp_embeddings(audio, model)   # float64, float32 ms
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hear_dual.checkpoint import read_checkpoint
from hear_dual.inputs import check_numpy_audio
from hear_dual.spec import Spec

_erf = np.frompyfunc(math.erf, 1, 1)   # numpy has no erf; the C library's is correctly rounded or within 1 ulp


@dataclass(frozen=True)
class ReferenceModel:
    spec: Spec
    params: dict[str, np.ndarray]       # float32, canonical layout
    constants: dict[str, np.ndarray]    # the checkpoint's frontend.dft and frontend.mel

    @property
    def sample_rate(self) -> int:
        return self.spec.sample_rate

    @property
    def timestamp_embedding_size(self) -> int:
        return self.spec.timestamp_embedding_size

    @property
    def scene_embedding_size(self) -> int:
        return self.spec.scene_embedding_size


def load_model(model_file_path: str = "") -> ReferenceModel:
    checkpoint = read_checkpoint(model_file_path)
    return ReferenceModel(checkpoint.spec, checkpoint.params, checkpoint.constants)


# --- section 3: frontend -----------------------------------------------------------------------------

def log_mel(padded: np.ndarray, spec: Spec, constants: dict) -> np.ndarray:
    """(batch, L) -> (batch, n_mels, F); frame j is samples [h j, h j + N); S = frames @ D, unfolded."""
    fe = spec.frontend
    n, h, n_bins = fe["win_length"], fe["hop_length"], spec.n_bins
    n_frames = (padded.shape[1] - n) // h + 1
    frames = padded[:, h * np.arange(n_frames)[:, None] + np.arange(n)[None, :]]
    spectrum = frames @ constants["frontend.dft"].astype(np.float64)
    real, imag = spectrum[..., :n_bins], spectrum[..., n_bins:]
    power = real * real + imag * imag
    return np.log(power @ constants["frontend.mel"].astype(np.float64) + fe["log_offset"]).transpose(0, 2, 1)


def waveform_frames(padded: np.ndarray, spec: Spec, hop: int) -> np.ndarray:
    """(batch, L) -> (batch * F, 1, frame_length): frame j is samples [hop j, hop j + N), centred, divided by
    max(std, floor) with std = sqrt(sum(centred^2) / (N - ddof))."""
    fe, norm = spec.frontend, spec.frontend["normalization"]
    n = fe["frame_length"]
    n_frames = (padded.shape[1] - n) // hop + 1
    frames = padded[:, hop * np.arange(n_frames)[:, None] + np.arange(n)[None, :]]
    centred = frames - frames.mean(axis=2, keepdims=True)
    std = np.sqrt((centred**2).sum(axis=2, keepdims=True) / (n - norm["std_ddof"]))
    return (centred / np.maximum(std, norm["std_floor"])).reshape(-1, 1, n)


# --- section 4: encoder ops, one function each ---------------------------------------------------------

def conv1d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int, dilation: int) -> np.ndarray:
    """VALID: y[b, o, t] = bias[o] + sum_i sum_k W[o, i, k] x[b, i, s t + d k]."""
    kernel_size = weight.shape[2]
    n_out = (x.shape[2] - dilation * (kernel_size - 1) - 1) // stride + 1
    span = (n_out - 1) * stride + 1
    y = np.broadcast_to(bias.astype(np.float64)[None, :, None], (x.shape[0], weight.shape[0], n_out)).copy()
    for k in range(kernel_size):
        y += weight[:, :, k].astype(np.float64) @ x[:, :, k * dilation : k * dilation + span : stride]
    return y


def skip_conv1d(x: np.ndarray, source: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int,
                crop: int) -> np.ndarray:
    """The stream x with conv1d(source[:, :, crop:], stride) appended along channels, its first T outputs."""
    n_out, kernel_size = x.shape[2], weight.shape[2]
    window = source[:, :, crop : crop + stride * (n_out - 1) + kernel_size]
    return np.concatenate([x, conv1d(window, weight, bias, stride, 1)], axis=1)


def batchnorm(x: np.ndarray, weight, bias, running_mean, running_var, eps: float) -> np.ndarray:
    scale = weight.astype(np.float64) / np.sqrt(running_var.astype(np.float64) + eps)
    return (x - running_mean.astype(np.float64)[:, None]) * scale[:, None] + bias.astype(np.float64)[:, None]


def gelu(x: np.ndarray, approximate: str) -> np.ndarray:
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def pad(x: np.ndarray, left: int, right: int) -> np.ndarray:
    return np.pad(x, ((0, 0), (0, 0), (left, right)))


def maxpool1d(x: np.ndarray, kernel_size: int, stride: int) -> np.ndarray:
    """VALID: y[b, c, t] = max_{k < kernel_size} x[b, c, stride t + k]."""
    n_out = (x.shape[2] - kernel_size) // stride + 1
    return np.stack([x[:, :, k : k + stride * (n_out - 1) + 1 : stride] for k in range(kernel_size)]).max(axis=0)


def flatten(x: np.ndarray) -> np.ndarray:
    """channel_major: element c * T + t."""
    return x.reshape(x.shape[0], -1)


def encode(padded: np.ndarray, model: ReferenceModel, hop: int | None = None) -> np.ndarray:
    """(batch, padded samples) -> (batch, n_outputs, D), float64."""
    spec, p, padded = model.spec, model.params, padded.astype(np.float64)
    x = waveform_frames(padded, spec, hop or spec.hop_samples) if spec.is_framed else log_mel(padded, spec,
                                                                                              model.constants)
    sources = {layer.source for layer in spec.layers if layer.op == "skip_conv1d"}
    points = {"frontend": x} if "frontend" in sources else {}     # the outputs a skip_conv1d reads, only
    for layer in model.spec.layers:
        name = layer.name
        if layer.op == "conv1d":
            x = conv1d(x, p[f"{name}.weight"], p[f"{name}.bias"], layer.stride, layer.dilation)
        elif layer.op == "skip_conv1d":
            x = skip_conv1d(x, points[layer.source], p[f"{name}.weight"], p[f"{name}.bias"], layer.stride,
                            spec.skip_crops[name])
        elif layer.op == "batchnorm":
            x = batchnorm(x, p[f"{name}.weight"], p[f"{name}.bias"], p[f"{name}.running_mean"],
                          p[f"{name}.running_var"], layer.eps)
        elif layer.op == "gelu":
            x = gelu(x, layer.approximate)
        elif layer.op == "relu":
            x = relu(x)
        elif layer.op == "pad":
            x = pad(x, layer.left, layer.right)
        elif layer.op == "maxpool1d":
            x = maxpool1d(x, layer.kernel_size, layer.stride)
        elif layer.op == "flatten":
            x = flatten(x)
        else:
            raise ValueError(f"op {layer.op!r} is not implemented by the float64 reference")
        if name in sources:
            points[name] = x
    if spec.is_framed:
        return x.reshape(padded.shape[0], -1, x.shape[1])
    return x.transpose(0, 2, 1)


# --- sections 5 and 6: padding, timestamps, scene -------------------------------------------------------

def get_timestamp_embeddings(audio, model: ReferenceModel, hop: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """audio (n_sounds, n_samples) -> float64 embeddings (n_sounds, T, D), float32 timestamps (n_sounds, T) ms.
    hop: samples between embeddings, the spec's timestamp hop unless given (a waveform spec's scene hop)."""
    spec = model.spec
    audio = check_numpy_audio(audio).astype(np.float64)    # the input contract: 2-D, finite, float32
    n_sounds, n_samples = audio.shape
    hop, rf = hop or spec.hop_samples, spec.receptive_field_samples
    if spec.is_framed:
        # P = pad_left zeros, the clip, pad_right zeros; every frame that fits in P.
        fe = spec.frontend
        padded = np.pad(audio, ((0, 0), (fe["pad_left"], fe["pad_right"])))
        n_out = (padded.shape[1] - rf) // hop + 1
    else:
        # P = rf/2 zeros, the clip, zeros; embedding k sees P[k hop : k hop + rf].
        n_out = (n_samples - 1) // hop + 1
        padded = np.zeros((n_sounds, hop * (n_out - 1) + rf))
        clip = audio[:, : padded.shape[1] - rf // 2]
        padded[:, rf // 2 : rf // 2 + clip.shape[1]] = clip
    embeddings = encode(padded, model, hop) if n_sounds else np.zeros((0, n_out, spec.timestamp_embedding_size))
    if embeddings.shape[1] != n_out:
        raise AssertionError(f"reference produced {embeddings.shape[1]} embeddings, expected {n_out}")
    timestamps = (np.arange(n_out) * hop * 1000.0 / spec.sample_rate).astype(np.float32)
    return embeddings, np.tile(timestamps, (n_sounds, 1))


def pool_scene(embeddings: np.ndarray, pooling: list[str]) -> np.ndarray:
    pooled = {"mean": lambda e: e.mean(axis=1), "max": lambda e: e.max(axis=1)}
    return np.concatenate([pooled[p](embeddings) for p in pooling], axis=1)


def get_scene_embeddings(audio, model: ReferenceModel) -> np.ndarray:
    """audio (n_sounds, n_samples) -> float64 (n_sounds, scene_embedding_size), from embeddings every scene hop."""
    embeddings = get_timestamp_embeddings(audio, model, model.spec.scene_hop_samples)[0]
    return pool_scene(embeddings, model.spec.scene_pooling)
