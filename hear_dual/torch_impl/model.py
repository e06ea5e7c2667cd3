"""hear-dual in PyTorch. Mirrors hear_dual/tf_impl/model.py op for op; layout here is (batch, channels, time)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hear_dual.audio import dft_fold, frontend_constants
from hear_dual.checkpoint import read_checkpoint
from hear_dual.spec import Spec


class LogMel(nn.Module):
    """Frames, then the windowed DFT folded by the window's symmetry: two matmuls of half the size."""

    def __init__(self, spec: Spec, constants: dict | None = None):
        """constants: the checkpoint's frontend constants (default: computed from the spec on this machine)."""
        super().__init__()
        constants = constants or frontend_constants(spec)
        self.register_buffer("dft", torch.from_numpy(constants["frontend.dft"].copy()))
        self.register_buffer("mel", torch.from_numpy(constants["frontend.mel"].copy()))
        fold = dft_fold(constants["frontend.dft"])
        # Not persistent: rows of dft, so they stay out of the checkpoint.
        self.register_buffer("dft_even", torch.from_numpy(fold.even.copy()), persistent=False)
        self.register_buffer("dft_odd", torch.from_numpy(fold.odd.copy()), persistent=False)
        self.register_buffer("fold_tail", torch.from_numpy(fold.tail_index.copy()), persistent=False)
        self.fold_half = fold.half
        self.hop = spec.frontend["hop_length"]
        self.win_length = spec.frontend["win_length"]
        self.blocks_per_frame = self.win_length // self.hop
        self.n_bins = spec.n_bins
        self.log_offset = spec.frontend["log_offset"]

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        # In float64 when the spec says so: a tone's leakage bins cancel large terms, and log() would
        # amplify float32 rounding there into cross-framework drift.
        audio = audio.to(self.dft.dtype)
        if torch.onnx.is_in_onnx_export():
            real, imag = self.unfolded_spectrum(audio)
        else:
            frames = audio.unfold(1, self.win_length, self.hop)    # (batch, F, N), a strided view
            head, tail = frames[..., 1 : self.fold_half + 1], frames.index_select(2, self.fold_tail)
            real = (head + tail) @ self.dft_even
            imag = (head - tail) @ self.dft_odd
        return self.log_mel(real, imag)

    def to_embeddings(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        return x.transpose(1, 2)       # (batch, D, T) -> (batch, T, D)

    def log_mel(self, real: torch.Tensor, imag: torch.Tensor) -> torch.Tensor:
        power = real * real + imag * imag
        log_mel = torch.log(power @ self.mel + self.log_offset)
        return log_mel.to(torch.float32).transpose(1, 2)

    def unfolded_spectrum(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The spec's single matmul, for the checkpoint graph: the reader checks its constant against the spec."""
        blocks = audio.reshape(audio.shape[0], -1, self.hop)
        n_frames = blocks.shape[1] - self.blocks_per_frame + 1
        frames = torch.cat([blocks[:, i : i + n_frames] for i in range(self.blocks_per_frame)], dim=2)
        spectrum = frames @ self.dft
        return spectrum[..., : self.n_bins], spectrum[..., self.n_bins :]


class WaveformFrames(nn.Module):
    """Overlapping frames of the padded chunk, each centred and scaled by its own standard deviation."""

    def __init__(self, spec: Spec):
        super().__init__()
        fe = spec.frontend
        self.frame_length, self.hop, self.dtype = fe["frame_length"], fe["hop_length"], getattr(torch, fe["precision"])
        self.divisor = fe["frame_length"] - fe["normalization"]["std_ddof"]
        self.floor = fe["normalization"]["std_floor"]
        self.embedding_size = spec.timestamp_embedding_size

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        # In float64 when the spec says so: a near-constant frame's deviations are a small difference of large
        # numbers, and dividing by its small std turns float32 rounding into large embedding errors.
        audio = audio.to(self.dtype)
        n_frames = (audio.shape[1] - self.frame_length) // self.hop + 1
        starts = torch.arange(n_frames, device=audio.device)
        index = self.hop * starts[:, None] + torch.arange(self.frame_length, device=audio.device)[None, :]
        frames = audio[:, index]                                   # (batch, F, frame_length), a gather
        frames = frames - frames.sum(dim=2, keepdim=True) / self.frame_length
        std = torch.sqrt((frames * frames).sum(dim=2, keepdim=True) / self.divisor)
        frames = frames / torch.clamp(std, min=self.floor)
        return frames.to(torch.float32).reshape(-1, 1, self.frame_length)    # (batch * F, 1, frame_length)

    def to_embeddings(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        return x.reshape(batch, -1, self.embedding_size)     # (batch * F, D) -> (batch, F, D)


class Conv1d(nn.Conv1d):
    """Always VALID: the only padding in the model is the explicit one in hear_dual.audio.chunk_plan.

    One matmul per kernel tap over (batch, time, channels), summed, exactly as tf_impl does: torch's own
    convolutions round by instruction set (oneDNN 2e-7 with AVX-512 kernels, 2.1e-6 with AVX2 or SSE4.1 ones,
    im2col 1.4e-6), while per-tap matmuls stay at 2e-7 to 3e-7 on every one (spec/SPEC.md section 4).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride, dilation):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.onnx.is_in_onnx_export():
            return super().forward(x)      # one Conv node in the checkpoint graph
        (kernel_size,), (stride,), (dilation,) = self.kernel_size, self.stride, self.dilation
        if self.in_channels == 1:
            # A conv on the waveform: K outer products would each round into the sum; gather the K taps and
            # contract them in one matmul instead (SPEC section 4).
            taps = x[:, 0].unfold(1, dilation * (kernel_size - 1) + 1, stride)[..., ::dilation]
            return (taps @ self.weight[:, 0].T + self.bias).transpose(1, 2)
        # n_out >= 1 always: chunk_plan sizes every input to at least the receptive field.
        n_out = (x.shape[2] - dilation * (kernel_size - 1) - 1) // stride + 1
        span = (n_out - 1) * stride + 1
        batch, channels = x.shape[0], x.shape[1]
        x = x.permute(2, 0, 1).contiguous()    # (time, batch, channels): a tap's rows are one block, no copy
        y = None
        for k in range(kernel_size):
            rows = x[k * dilation : k * dilation + span : stride].reshape(-1, channels)
            tap = rows @ self.weight[:, :, k].T
            y = tap if y is None else y.add_(tap)          # in tap order, as the spec's sum is written
        return (y + self.bias).reshape(n_out, batch, -1).permute(1, 2, 0)


class SkipConv1d(Conv1d):
    """A conv1d over an earlier point of the stream (its source), its windows centred on the stream's own, its
    channels appended after the stream's: a skip connection that needs no padding (SPEC section 4)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, source: str, crop: int):
        super().__init__(in_channels, out_channels, kernel_size, stride, 1)
        self.source, self.crop = source, crop

    def forward(self, x: torch.Tensor, points: dict) -> torch.Tensor:
        (kernel_size,), (stride,) = self.kernel_size, self.stride
        window = points[self.source][:, :, self.crop : self.crop + stride * (x.shape[2] - 1) + kernel_size]
        return torch.cat([x, super().forward(window)], dim=1)


class BatchNorm(nn.Module):
    """Inference batch norm written out, so export keeps its four tensors under their spec names."""

    def __init__(self, channels: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.running_mean = nn.Parameter(torch.zeros(channels), requires_grad=False)
        self.running_var = nn.Parameter(torch.ones(channels), requires_grad=False)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Per-channel scale and shift first, so the per-element work is one fused multiply-add pass.
        scale = self.weight / torch.sqrt(self.running_var + self.eps)
        shift = self.bias - self.running_mean * scale
        return torch.addcmul(shift[:, None], x, scale[:, None])


class GELU(nn.Module):
    def __init__(self, approximate: str):
        super().__init__()
        self.approximate = approximate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x, approximate=self.approximate)


class ReLU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x)


class Pad(nn.Module):
    """Explicit zeros on both ends of each frame's time axis."""

    def __init__(self, left: int, right: int):
        super().__init__()
        self.left, self.right = left, right

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (self.left, self.right))


class MaxPool1d(nn.Module):
    """VALID: windows that do not fit are dropped, never padded."""

    def __init__(self, kernel_size: int, stride: int):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool1d(x, self.kernel_size, self.stride)


class Flatten(nn.Module):
    """channel_major: (N, C, T) -> (N, C * T) with element c * T + t, torch's own memory order."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1)


def make_layer(layer, spec: Spec) -> nn.Module:
    if layer.op == "conv1d":
        return Conv1d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.dilation)
    if layer.op == "skip_conv1d":
        return SkipConv1d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.source,
                          spec.skip_crops[layer.name])
    if layer.op == "batchnorm":
        return BatchNorm(layer.channels, layer.eps)
    if layer.op == "gelu":
        return GELU(layer.approximate)
    if layer.op == "relu":
        return ReLU()
    if layer.op == "pad":
        return Pad(layer.left, layer.right)
    if layer.op == "maxpool1d":
        return MaxPool1d(layer.kernel_size, layer.stride)
    if layer.op == "flatten":
        return Flatten()
    raise ValueError(f"op {layer.op!r} is not implemented by the torch backend")


class HearDualModel(nn.Module):
    """Maps a padded audio chunk (batch, samples) to timestamp embeddings (batch, n_outputs, D)."""

    def __init__(self, spec: Spec, chunk_timestamps: int | None = None, constants: dict | None = None):
        super().__init__()
        self.spec = spec
        self.sample_rate = spec.sample_rate
        self.timestamp_embedding_size = spec.timestamp_embedding_size
        self.scene_embedding_size = spec.scene_embedding_size
        self.chunk_timestamps = chunk_timestamps
        self.frontend = WaveformFrames(spec) if spec.is_framed else LogMel(spec, constants)
        self.layer_names = [layer.name for layer in spec.layers]
        self.sources = {layer.source for layer in spec.layers if layer.op == "skip_conv1d"}
        for layer in spec.layers:
            self.add_module(layer.name, make_layer(layer, spec))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.frontend.to_embeddings(self.run_encoder(self.frontend(audio)), audio.shape[0])

    def run_encoder(self, x: torch.Tensor, before_layer=None) -> torch.Tensor:
        """The encoder on the frontend's output; before_layer(name, input), if given, sees each layer's input."""
        points = {"frontend": x} if "frontend" in self.sources else {}    # the outputs a skip_conv1d reads, only
        for name in self.layer_names:
            layer = getattr(self, name)
            if before_layer is not None:
                before_layer(name, x)
            x = layer(x, points) if isinstance(layer, SkipConv1d) else layer(x)
            if name in self.sources:
                points[name] = x
        return x

    def load_parameters(self, params: dict) -> HearDualModel:
        """params in canonical layout, keyed by spec names (torch uses the canonical layout as is)."""
        state = {name: torch.from_numpy(array.copy()) for name, array in params.items()}
        state |= {f"frontend.{k}": v for k, v in self.frontend.state_dict().items()}
        self.load_state_dict(state, strict=True)
        return self.eval()


def load_model(model_file_path: str = "") -> HearDualModel:
    checkpoint = read_checkpoint(model_file_path)
    model = HearDualModel(checkpoint.spec, constants=checkpoint.constants).load_parameters(checkpoint.params)
    model.checkpoint_path = checkpoint.path
    model.checkpoint_sha256 = checkpoint.sha256
    return model.requires_grad_(False)
