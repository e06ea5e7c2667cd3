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
from hear_dual.dsp import FLOAT16_MAX
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
    checkpoint = read_checkpoint(model_file_path)     # a path, or a shipped (or already converted) model's name
    return ReferenceModel(checkpoint.spec, checkpoint.params, checkpoint.constants)


# --- section 3: frontend -----------------------------------------------------------------------------

def mel_power(padded: np.ndarray, spec: Spec, constants: dict) -> np.ndarray:
    """(batch, L) -> (batch, F, n_mels): frame j is samples [h j, h j + N); S = frames @ D, unfolded; |S|^2 @ M."""
    fe = spec.frontend
    n, h, n_bins = fe["win_length"], fe["hop_length"], spec.n_bins
    n_frames = (padded.shape[1] - n) // h + 1
    frames = padded[:, h * np.arange(n_frames)[:, None] + np.arange(n)[None, :]]
    spectrum = frames @ constants["frontend.dft"].astype(np.float64)
    real, imag = spectrum[..., :n_bins], spectrum[..., n_bins:]
    return (real * real + imag * imag) @ constants["frontend.mel"].astype(np.float64)


def log_mel(padded: np.ndarray, spec: Spec, constants: dict) -> np.ndarray:
    """(batch, L) -> (batch, n_mels, F): log(mel power + log_offset)."""
    return np.log(mel_power(padded, spec, constants) + spec.frontend["log_offset"]).transpose(0, 2, 1)


def compress(mel: np.ndarray, compression: dict) -> np.ndarray:
    """Section 3.3: q = float16(min(float32(mel), 65504)) when quantized, y = float32(log(scale q + offset))."""
    if compression["quantize"] == "float16":
        mel = np.minimum(mel.astype(np.float32), FLOAT16_MAX).astype(np.float16).astype(np.float64)
    log = np.log10 if compression["log"] == "log10" else np.log
    return log(compression["scale"] * mel + compression["offset"]).astype(np.float32).astype(np.float64)


def mel_patches(padded: np.ndarray, spec: Spec, constants: dict, step: int) -> np.ndarray:
    """(batch, L) -> (batch * n_patches, 1, P, n_mels): frame j is samples [h j, h j + N) as in log_mel, compressed
    (section 3.3); patch u is frames step u .. step u + P - 1."""
    size = spec.frontend["patch_frames"]
    y = compress(mel_power(padded, spec, constants), spec.frontend["compression"])     # (batch, frames, n_mels)
    patches = [y[:, u : u + size] for u in range(0, y.shape[1] - size + 1, step)]
    return np.stack(patches, axis=1).reshape(-1, 1, size, spec.frontend["n_mels"])


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


def conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride, padding) -> np.ndarray:
    """Zeros around (time, freq) as `padding` says, then VALID:
    y[b, o, t, f] = bias[o] + sum_i sum_{p, q} W[o, i, p, q] x[b, i, st t + p, sf f + q]."""
    ((t0, t1), (f0, f1)), (st, sf) = padding, stride
    x = np.pad(x, ((0, 0), (0, 0), (t0, t1), (f0, f1))).transpose(0, 2, 3, 1)      # (b, t, f, i)
    kt, kf = weight.shape[2:]
    n_t, n_f = (x.shape[1] - kt) // st + 1, (x.shape[2] - kf) // sf + 1
    if weight.shape[1] == 1:        # one input channel: all taps in one contraction (float64 is exact either way)
        windows = np.lib.stride_tricks.sliding_window_view(x[..., 0], (kt, kf), axis=(1, 2))[:, ::st, ::sf]
        y = np.tensordot(windows, weight[:, 0].astype(np.float64), axes=([3, 4], [1, 2]))
        return y.transpose(0, 3, 1, 2) + bias.astype(np.float64)[None, :, None, None]
    y = np.zeros(x.shape[:1] + (n_t, n_f, weight.shape[0])) + bias.astype(np.float64)
    for p in range(kt):
        for q in range(kf):
            y += x[:, p : p + st * (n_t - 1) + 1 : st, q : q + sf * (n_f - 1) + 1 : sf] @ weight[:, :, p, q].T
    return y.transpose(0, 3, 1, 2)


def maxpool2d(x: np.ndarray, kernel_size, stride) -> np.ndarray:
    """VALID: y[b, c, t, f] = max over x[b, c, st t + p, sf f + q], p < kt, q < kf."""
    windows = np.lib.stride_tricks.sliding_window_view(x, tuple(kernel_size), axis=(2, 3))
    return windows[:, :, :: stride[0], :: stride[1]].max(axis=(4, 5))


def reduce(x: np.ndarray, axis: str, kind: str) -> np.ndarray:
    """max or mean over freq (the last axis of a map) or time (the last axis of a time series)."""
    return x.max(axis=-1) if kind == "max" else x.mean(axis=-1)


def dense(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return x @ weight.astype(np.float64).T + bias.astype(np.float64)


def batchnorm(x: np.ndarray, weight, bias, running_mean, running_var, eps: float) -> np.ndarray:
    """Per channel (axis 1), at any rank."""
    scale = weight.astype(np.float64) / np.sqrt(running_var.astype(np.float64) + eps)
    per_channel = (-1,) + (1,) * (x.ndim - 2)
    return (x - running_mean.astype(np.float64).reshape(per_channel)) * scale.reshape(per_channel) \
        + bias.astype(np.float64).reshape(per_channel)


def gelu(x: np.ndarray, approximate: str) -> np.ndarray:
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def pad(x: np.ndarray, left: int, right: int) -> np.ndarray:
    """Zeros before and after the time axis (axis 2)."""
    return np.pad(x, [(0, 0), (0, 0), (left, right)] + [(0, 0)] * (x.ndim - 3))


def maxpool1d(x: np.ndarray, kernel_size: int, stride: int) -> np.ndarray:
    """VALID: y[b, c, t] = max_{k < kernel_size} x[b, c, stride t + k]."""
    n_out = (x.shape[2] - kernel_size) // stride + 1
    return np.stack([x[:, :, k : k + stride * (n_out - 1) + 1 : stride] for k in range(kernel_size)]).max(axis=0)


def flatten(x: np.ndarray, order: str) -> np.ndarray:
    """channel_major: element (c * T + t) * F + f; channel_last: element (t * F + f) * C + c."""
    if order == "channel_last":
        x = np.moveaxis(x, 1, -1)
    return x.reshape(x.shape[0], -1)


def apply(layer, p: dict, spec: Spec, *x: np.ndarray) -> np.ndarray:
    """One op on its inputs (SPEC section 4)."""
    name, op = layer.name, layer.op
    if op == "conv1d":
        return conv1d(x[0], p[f"{name}.weight"], p[f"{name}.bias"], layer.stride, layer.dilation)
    if op == "skip_conv1d":
        return skip_conv1d(x[0], x[1], p[f"{name}.weight"], p[f"{name}.bias"], layer.stride, spec.skip_crops[name])
    if op == "conv2d":
        return conv2d(x[0], p[f"{name}.weight"], p[f"{name}.bias"], layer.stride, layer.padding)
    if op == "batchnorm":
        return batchnorm(x[0], p[f"{name}.weight"], p[f"{name}.bias"], p[f"{name}.running_mean"],
                         p[f"{name}.running_var"], layer.eps)
    if op == "gelu":
        return gelu(x[0], layer.approximate)
    if op == "relu":
        return relu(x[0])
    if op == "pad":
        return pad(x[0], layer.left, layer.right)
    if op == "maxpool1d":
        return maxpool1d(x[0], layer.kernel_size, layer.stride)
    if op == "maxpool2d":
        return maxpool2d(x[0], layer.kernel_size, layer.stride)
    if op == "reduce":
        return reduce(x[0], layer.axis, layer.kind)
    if op == "flatten":
        return flatten(x[0], layer.order)
    if op == "dense":
        return dense(x[0], p[f"{name}.weight"], p[f"{name}.bias"])
    if op == "concat":
        return np.concatenate(x, axis=1)
    if op == "add":
        return sum(x[1:], x[0])
    raise ValueError(f"op {op!r} is not implemented by the float64 reference")


def run_encoder(x: np.ndarray, model: ReferenceModel, before_layer=None) -> np.ndarray:
    """The encoder on the frontend's output: each layer reads the points the spec names (section 2, rule 7b).
    before_layer(layer, input), if given, sees each layer's first input before the layer runs."""
    points = {"frontend": x}
    for layer in model.spec.layers:
        inputs = [points[name] for name in model.spec.layer_inputs[layer.name]]
        if before_layer is not None:
            before_layer(layer, inputs[0])
        points[layer.name] = apply(layer, model.params, model.spec, *inputs)
    return points[model.spec.layers[-1].name]


def frontend(padded: np.ndarray, model: ReferenceModel, hop: int | None = None) -> np.ndarray:
    """The frontend on a padded chunk (batch, L): log-mel (batch, n_mels, F), waveform frames every `hop` (default
    the frontend's) (batch * F, 1, N), or patches every patch_hop frames (batch * patches, 1, P, n_mels)."""
    spec, padded = model.spec, padded.astype(np.float64)
    if spec.is_framed:
        return waveform_frames(padded, spec, hop or spec.hop_samples)
    if spec.is_patched:
        return mel_patches(padded, spec, model.constants, spec.frontend["patch_hop"])
    return log_mel(padded, spec, model.constants)


def encode(padded: np.ndarray, model: ReferenceModel, hop: int | None = None) -> np.ndarray:
    """(batch, padded samples) -> (batch, n_outputs, D), float64: what a backend's model gives for the chunk."""
    x = run_encoder(frontend(padded, model, hop), model)
    if model.spec.is_framed or model.spec.is_patched:      # one vector, or a unit's frames' vectors, per unit
        if x.ndim == 3:
            x = x.transpose(0, 2, 1)
        return x.reshape(padded.shape[0], -1, x.shape[-1])
    return x.transpose(0, 2, 1)


# --- sections 5 and 6: padding, timestamps, scene -------------------------------------------------------

PATCH_BLOCK = 16


def patch_outputs(audio: np.ndarray, model: ReferenceModel, tiled: bool) -> np.ndarray:
    """The patch family (section 5, "Patches"): (n_sounds, n_outputs, D) from the patches that tile the clip from
    frame 0 (tiled), or from one patch centred on each timestamp's frame; frames past the clip read zeros."""
    spec, fe = model.spec, model.spec.frontend
    size, h, half, n_samples = fe["patch_frames"], fe["hop_length"], fe["win_length"] // 2, audio.shape[1]
    frames = 1 + n_samples // h                       # centred frames with a centre in the clip
    if tiled:
        first, n_units, step = 0, -(-frames // size), size
    else:
        first, n_units, step = -(size // 2), 1 + n_samples // spec.hop_samples, fe["patch_hop"]
    stop = first + step * (n_units - 1) + size       # frames first .. stop - 1 are read
    before, length = half - first * h, (stop - first - 1) * h + 2 * half     # P: zeros, the clip, zeros
    padded = np.zeros((audio.shape[0], length))
    clip = audio[:, max(0, -before) : max(0, length - before)]
    padded[:, max(0, before) : max(0, before) + clip.shape[1]] = clip
    patches = mel_patches(padded, spec, model.constants, step)
    # A few patches at a time: each is independent, and VGG's float64 maps are 18 MB a layer per patch.
    x = np.concatenate([run_encoder(patches[i : i + PATCH_BLOCK], model)     # (n * units, D, P) or (n * units, D)
                        for i in range(0, len(patches), PATCH_BLOCK)])
    if x.ndim == 3:
        x = x.transpose(0, 2, 1)
    return x.reshape(audio.shape[0], -1, x.shape[-1])


def get_timestamp_embeddings(audio, model: ReferenceModel, hop: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """audio (n_sounds, n_samples) -> float64 embeddings (n_sounds, T, D), float32 timestamps (n_sounds, T) ms.
    hop: samples between embeddings, the spec's timestamp hop unless given (a waveform spec's scene hop)."""
    spec = model.spec
    audio = check_numpy_audio(audio).astype(np.float64)    # the input contract: 2-D, finite, float32
    n_sounds, n_samples = audio.shape
    hop, rf = hop or spec.hop_samples, spec.receptive_field_samples
    if spec.is_patched:
        n_out = 1 + n_samples // hop
        embeddings = (patch_outputs(audio, model, tiled=spec.per_frame)[:, :n_out] if n_sounds
                      else np.zeros((0, n_out, spec.timestamp_embedding_size)))
    else:
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


def pool_scene(embeddings: np.ndarray, pooling: list[str], tile: int | None = None) -> np.ndarray:
    """Section 6: each pooling over every group of `tile` consecutive embeddings (default: all of them), concatenated
    in the listed order, then the mean over the groups."""
    tile = tile or embeddings.shape[1]
    groups = embeddings.reshape(embeddings.shape[0], -1, tile, embeddings.shape[2])
    pooled = {"mean": lambda e: e.mean(axis=2), "max": lambda e: e.max(axis=2)}
    return np.concatenate([pooled[p](groups) for p in pooling], axis=2).mean(axis=1)


def get_scene_embeddings(audio, model: ReferenceModel) -> np.ndarray:
    """audio (n_sounds, n_samples) -> float64 (n_sounds, scene_embedding_size): pooled embeddings every scene hop,
    or for the patch family, the mean over the tiled patches of each one's pooled outputs."""
    spec = model.spec
    if spec.is_patched:
        audio = check_numpy_audio(audio).astype(np.float64)
        if audio.shape[0] == 0:
            return np.zeros((0, spec.scene_embedding_size))
        outputs = patch_outputs(audio, model, tiled=True)
        return pool_scene(outputs, spec.scene_pooling, spec.frontend["patch_frames"] if spec.per_frame else 1)
    embeddings = get_timestamp_embeddings(audio, model, spec.scene_hop_samples)[0]
    return pool_scene(embeddings, spec.scene_pooling)
