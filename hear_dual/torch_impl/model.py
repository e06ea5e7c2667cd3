"""hear-dual in PyTorch. Mirrors hear_dual/tf_impl/model.py op for op; layout here is channels first: (batch,
channels, time) for a time series, (batch, channels, time, freq) for a map, (batch, features) for a vector."""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from hear_dual.audio import FRONTEND_FRAMES, SILENT_SCAN_BLOCKS, frontend_constants, frontend_window
from hear_dual.checkpoint import read_checkpoint
from hear_dual.dsp import FLOAT16_MAX
from hear_dual.spec import Spec
from hear_dual.weights import resolve


class LogMel(nn.Module):
    """Frames, the windowed DFT as a real FFT in the frontend's precision, the power, the mel matrix, the log."""

    def __init__(self, spec: Spec, constants: dict | None = None):
        """constants: the checkpoint's frontend constants (default: computed from the spec on this machine)."""
        super().__init__()
        constants = constants or frontend_constants(spec)
        self.register_buffer("dft", torch.from_numpy(constants["frontend.dft"].copy()))
        self.register_buffer("mel", torch.from_numpy(constants["frontend.mel"].copy()))
        # Not persistent: column 0 of dft is the window exactly (w[n] cos 0), so it stays out of the state dict.
        self.register_buffer("window", torch.from_numpy(frontend_window(constants["frontend.dft"]).copy()),
                             persistent=False)
        self.hop = spec.frontend["hop_length"]
        self.win_length = spec.frontend["win_length"]
        self.log_offset = spec.frontend.get("log_offset")

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return torch.log(self.mel_power(audio) + self.log_offset).to(torch.float32).transpose(1, 2)

    def mel_power(self, audio: torch.Tensor) -> torch.Tensor:
        """(batch, samples) -> (batch, frames, n_mels), in the frontend's precision."""
        n_blocks = max(0, (audio.shape[1] - self.win_length) // self.hop + self.win_length // self.hop)  # frames read
        blocks = audio[:, : n_blocks * self.hop].reshape(audio.shape[0], n_blocks, self.hop)
        left, right = silent_frames(blocks, self.win_length // self.hop)
        # In float64 when the spec says so: a tone's leakage bins cancel large terms, and log() would
        # amplify float32 rounding there into cross-framework drift.
        audio = audio.to(self.dft.dtype)
        frames = audio.unfold(1, self.win_length, self.hop)    # (batch, F, N), a strided view
        power = frames.new_empty(frames.shape[0], frames.shape[1], self.mel.shape[1])
        power[:, :left], power[:, frames.shape[1] - right :] = 0, 0
        frames = frames[:, left : frames.shape[1] - right]
        # The spec's frames @ D, as an FFT of the windowed frames: the same sums in float64 to ~1e-16, and the same
        # float32 log-mel (SPEC section 3), in half the time of the folded matmul and a third of the plain one. On
        # a CPU in blocks of about FRONTEND_FRAMES frames, so the float64 temporaries stay in cache (2.7 to 4x
        # faster): part of one sound, or several whole short sounds (a block per clip made FSDD's batches of 400
        # short clips pay a dozen small ops per clip: 1.35x faster frontend on them, the same log-mel).
        n, frames_per_sound, cpu = frames.shape[0], max(1, frames.shape[1]), audio.device.type == "cpu"
        step = min(frames_per_sound, FRONTEND_FRAMES) if cpu else frames_per_sound
        sounds = max(1, FRONTEND_FRAMES // frames_per_sound) if cpu else max(1, n)
        for i in range(0, n, sounds):
            for r in range(0, frames.shape[1], step):
                spectrum = torch.fft.rfft(frames[i : i + sounds, r : r + step] * self.window, n=self.win_length)
                # re^2 + im^2 as TF computes it, squared on the interleaved (re, im) pairs: .real and .imag are
                # stride-2 views, and their products ran 3.5x slower (frontend 1.1-1.15x faster, the same bits).
                squares = torch.view_as_real(spectrum).square()
                rows = slice(left + r, left + min(r + step, frames.shape[1]))
                power[i : i + sounds, rows] = (squares[..., 0] + squares[..., 1]) @ self.mel
        return power

    def to_embeddings(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        return x.transpose(1, 2)       # (batch, D, T) -> (batch, T, D)


def silent_frames(blocks: torch.Tensor, blocks_per_frame: int) -> tuple[int, int]:
    """How many frames at the start and at the end of the chunk read only zeros, in every sound: the plan's padding,
    a short sound's receptive field of zeros (38% of a 1 s sound's frames), a batch's shorter clips' tails. Their
    power is exactly 0 however it is computed (0 times the window, an FFT of zeros, 0 @ mel), so mel_power writes
    0 there and leaves them out of the DFT (SPEC section 3). blocks: (batch, n, hop)."""
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        return 0, 0         # a traced graph would keep the example's counts as constants: it computes every frame
    edge = min(SILENT_SCAN_BLOCKS, blocks.shape[1])
    # A block is live if a sound has a nonzero sample there (the largest |x| is 8x faster to find than any(x != 0);
    # a NaN is live too).
    head, tail = (part.abs().amax(dim=2).amax(dim=0).ne(0).to(torch.int32)
                  for part in (blocks[:, :edge], blocks[:, blocks.shape[1] - edge :]))
    lead = int(head.cumsum(0).eq(0).sum())                     # silent blocks before the first live one
    trail = int(tail.flip(0).cumsum(0).eq(0).sum())            # and after the last
    n_frames = max(blocks.shape[1] - blocks_per_frame + 1, 0)
    left = max(lead - blocks_per_frame + 1, 0)         # frame j reads blocks j .. j + blocks_per_frame - 1
    return left, min(max(trail - blocks_per_frame + 1, 0), n_frames - left)


class MelPatches(LogMel):
    """Centred log-mel frames compressed as the spec says (a float16 step, then a log), cut into patches of
    patch_frames frames every patch_hop frames: (batch, samples) -> (batch * patches, 1, time, freq)."""

    def __init__(self, spec: Spec, constants: dict | None = None):
        super().__init__(spec, constants)
        fe, compression = spec.frontend, spec.frontend["compression"]
        self.quantize = compression["quantize"] == "float16"
        self.log = torch.log10 if compression["log"] == "log10" else torch.log
        self.scale, self.offset = compression["scale"], compression["offset"]
        self.size, self.step, self.n_mels = fe["patch_frames"], fe["patch_hop"], fe["n_mels"]

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        mel = self.mel_power(audio)
        if self.quantize:   # float32, then float16, saturating (SPEC 3.3): the original stored its mels as float16
            mel = mel.to(torch.float32).clamp(max=FLOAT16_MAX).to(torch.float16).to(mel.dtype)
        # A quantized input takes few values, each of whose logs lies far from a float32 rounding boundary, so
        # every float64 evaluation of the log rounds to the same float32 (SPEC section 3.3).
        log_mel = self.log(self.scale * mel + self.offset).to(torch.float32)
        patches = log_mel.unfold(1, self.size, self.step)                  # (batch, patches, n_mels, size)
        return patches.transpose(2, 3).reshape(-1, 1, self.size, self.n_mels)

    def to_embeddings(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        if x.dim() == 3:                # an embedding per frame: (batch * patches, D, size) -> frames in order
            x = x.transpose(1, 2)
        return x.reshape(batch, -1, x.shape[-1])


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


# Per-tap convolutions read the same input once per tap: in blocks of sounds (or frames, or patches) small enough
# to stay in cache across the taps, they run 1.5 to 2.3 times faster, with the same sums in the same order. But
# each tap's product gets at least MIN_ROWS rows: shorter ones leave the BLAS's kernels idle (CREPE full's second
# layer, 1024 channels in: 2 frames a block, 256 rows, 179 GFLOP/s; 8 frames, 1024 rows, 192; musicnn 1.05x).
BLOCK_BYTES = 2**21
MIN_ROWS = 1024


def blocks(n: int, bytes_per_item: int, rows_per_item: int, device: torch.device):
    """Slices of range(n), each of at most BLOCK_BYTES of input unless MIN_ROWS rows need more (at least one item);
    one slice off the CPU, where the blocks would only add kernel launches."""
    step = max(BLOCK_BYTES // max(1, bytes_per_item), -(-MIN_ROWS // max(1, rows_per_item)), 1)
    step = step if device.type == "cpu" else max(1, n)
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def sum_of_taps(taps, weights) -> torch.Tensor:
    """sum_k taps[k] @ weights[k], in tap order, each product added into the running sum as it is made (addmm_:
    no temporary per tap; autograd still works). The BLAS may split a long contraction into panels and add each
    into the sum, an order the rounding tests bound like any GEMM's (SPEC section 4)."""
    y = None
    for rows, w in zip(taps, weights):
        y = rows @ w if y is None else y.addmm_(rows, w)
    return y


def tap_operands(conv: nn.Module) -> list[torch.Tensor]:
    """Each kernel tap's (in, out) operand, contiguous, in tap order ((p, q) row-major for a conv2d). Made once and
    kept while the weights stay the same storage at the same version: remade per call, they were CREPE full's 64
    strided copies of 512 KiB per chunk (keeping them: CREPE full 1.23x, VGG 1.15x, base 1.05x; the same bits).
    Made afresh whenever gradients may flow. Writes through `weight.data` bypass the version counter: update
    weights with load_parameters, load_state_dict, or in place under torch.no_grad()."""
    weight = conv.weight.flatten(2)                     # (out, in, taps)
    if torch.is_grad_enabled() and weight.requires_grad:
        return [weight[:, :, j].T.contiguous() for j in range(weight.shape[2])]
    key = (conv.weight.data_ptr(), conv.weight._version, conv.weight.device)
    if getattr(conv, "tap_key", None) != key:
        conv.taps, conv.tap_key = [weight[:, :, j].T.contiguous() for j in range(weight.shape[2])], key
    return conv.taps


def gathered(taps: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """bias + weight @ taps for gathered taps (batch, K, positions), a strided view of the input, and weight
    (out, K): (batch, out, positions), channels first. The view is copied once, tap-major, so the product is one
    plain matmul that writes its output in place, with the bias added as it is written (baddbmm)."""
    taps = taps.contiguous()
    return torch.baddbmm(bias[:, None], weight.expand(taps.shape[0], -1, -1), taps)


class Conv1d(nn.Conv1d):
    """Always VALID: the only padding in the model is explicit (hear_dual.audio.chunk_plan, or a pad layer).

    One matmul per kernel tap over (time, batch, channels), summed, exactly as tf_impl does: torch's own
    convolutions round by instruction set (oneDNN 2e-7 with AVX-512 kernels, 2.1e-6 with AVX2 or SSE4.1 ones,
    im2col 1.4e-6), while per-tap matmuls stay at 2e-7 to 3e-7 on every one (spec/SPEC.md section 4).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride, dilation):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kernel_size,), (stride,), (dilation,) = self.kernel_size, self.stride, self.dilation
        if self.in_channels == 1:
            # A conv on the waveform: K outer products would each round into the sum; gather the K taps and
            # contract them in one matmul instead (SPEC section 4).
            taps = x[:, 0].unfold(1, dilation * (kernel_size - 1) + 1, stride)[..., ::dilation]
            return gathered(taps.transpose(1, 2), self.weight[:, 0], self.bias)
        # n_out >= 1 always: chunk_plan sizes every input to at least the receptive field.
        n_out = (x.shape[2] - dilation * (kernel_size - 1) - 1) // stride + 1
        span = (n_out - 1) * stride + 1
        weights = tap_operands(self)
        y = x.new_empty(n_out, x.shape[0], self.out_channels)
        x = x.permute(2, 0, 1)     # (time, batch, channels): a tap's rows, for a block of sounds
        for b in blocks(x.shape[1], x.shape[0] * x.shape[2] * 4, n_out, x.device):
            block = x[:, b].contiguous()
            taps = (block[k * dilation : k * dilation + span : stride].reshape(-1, block.shape[2])
                    for k in range(kernel_size))
            y[:, b] = sum_of_taps(taps, weights).reshape(n_out, -1, self.out_channels)
        return (y + self.bias).permute(1, 2, 0)


class SkipConv1d(Conv1d):
    """A conv1d over an earlier point of the stream (its source), its windows centred on the stream's own, its
    channels appended after the stream's: a skip connection that needs no padding (SPEC section 4)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, crop: int):
        super().__init__(in_channels, out_channels, kernel_size, stride, 1)
        self.crop = crop

    def forward(self, x: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        (kernel_size,), (stride,) = self.kernel_size, self.stride
        window = source[:, :, self.crop : self.crop + stride * (x.shape[2] - 1) + kernel_size]
        return torch.cat([x, super().forward(window)], dim=1)


class Conv2d(nn.Conv2d):
    """Explicit zeros around (time, freq), then VALID, computed as conv1d is: one matmul per kernel tap over
    (time, freq, batch) rows of channels, summed in tap order; with one input channel, the taps gathered and
    contracted in one matmul (SPEC section 4)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding):
        super().__init__(in_channels, out_channels, tuple(kernel_size), stride=tuple(stride), padding=0)
        (self.t0, self.t1), (self.f0, self.f1) = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (self.f0, self.f1, self.t0, self.t1))
        (kt, kf), (st, sf) = self.kernel_size, self.stride
        n_t, n_f = (x.shape[2] - kt) // st + 1, (x.shape[3] - kf) // sf + 1
        if self.in_channels == 1:           # one channel: the taps gathered, one matmul (SPEC section 4)
            return self.gathered_rows(x, n_t, n_f)
        y = x.new_empty(x.shape[0], self.out_channels, n_t, n_f)
        weights = tap_operands(self)
        for b in blocks(x.shape[0], math.prod(x.shape[1:]) * 4, n_t * n_f, x.device):
            y[b] = self.tap_sum(x[b], weights, n_t, n_f) + self.bias[:, None, None]
        return y

    def gathered_rows(self, x: torch.Tensor, n_t: int, n_f: int) -> torch.Tensor:
        """One input channel, map by map, in blocks of output rows whose gathered taps fit BLOCK_BYTES: each block's
        taps copied once, tap-major, and contracted in one product (bias + weight @ taps) written into its rows of the
        channels-first output. A whole map's taps (musicnn's 7 x 38 layer: 12 MB) and product left the cache between
        the copy and the product: 69 against 99 GFLOP/s on that layer's shape."""
        (kt, kf), (st, sf) = self.kernel_size, self.stride
        weight, bias = self.weight.reshape(self.out_channels, -1), self.bias[:, None]
        y = x.new_empty(x.shape[0], self.out_channels, n_t, n_f)
        step = max(1, BLOCK_BYTES // (kt * kf * n_f * 4)) if x.device.type == "cpu" else n_t
        for i, t in itertools.product(range(x.shape[0]), range(0, n_t, step)):
            rows = x[i, 0, t * st : (min(t + step, n_t) - 1) * st + kt]
            taps = rows.unfold(0, kt, st).unfold(1, kf, sf)                   # (rows, n_f, kt, kf), a view
            taps = taps.permute(2, 3, 0, 1).reshape(kt * kf, -1)              # copied once, tap-major
            block = y[i, :, t : t + step]                                     # its rows of the output, a view
            if torch.is_grad_enabled():     # autograd cannot follow out=
                block[...] = torch.addmm(bias, weight, taps).view_as(block)
            else:
                torch.addmm(bias, weight, taps, out=block.view(self.out_channels, -1))
        return y

    def tap_sum(self, x: torch.Tensor, weights: list, n_t: int, n_f: int) -> torch.Tensor:
        """The sum over taps, without the bias, for a block of maps: (batch, out_channels, n_t, n_f)."""
        (kt, kf), (st, sf) = self.kernel_size, self.stride
        batch, channels, width = x.shape[0], x.shape[1], x.shape[3]
        x = x.permute(2, 3, 0, 1).contiguous()      # (time, freq, batch, channels)
        if (st, sf) != (1, 1):
            rows = (x[p : p + st * (n_t - 1) + 1 : st, q : q + sf * (n_f - 1) + 1 : sf].reshape(-1, channels)
                    for p in range(kt) for q in range(kf))
            return sum_of_taps(rows, weights).reshape(n_t, n_f, batch, -1).permute(2, 3, 0, 1)
        # Stride 1: with (time, freq, batch, channels) flattened to rows, tap (p, q) of every output (t, f) reads
        # one block of rows, shifted by (p * width + q) * batch, so no tap copies its input. The outputs run over
        # the whole width (those past n_f wrap around and are dropped): the same sums, in the same order.
        x = x.reshape(-1, channels)
        n_rows = ((n_t - 1) * width + n_f) * batch
        rows = (x[(p * width + q) * batch :][:n_rows] for p in range(kt) for q in range(kf))
        y = F.pad(sum_of_taps(rows, weights), (0, 0, 0, (width - n_f) * batch))
        return y.reshape(n_t, width, batch, -1)[:, :n_f].permute(2, 3, 0, 1)


class Dense(nn.Linear):
    """x W^T + b, written out (a matmul, then the bias), as tf_impl computes it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.T + self.bias


class BatchNorm(nn.Module):
    """Inference batch norm written out, so export keeps its four tensors under their spec names."""

    def __init__(self, channels: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.running_mean = nn.Parameter(torch.zeros(channels), requires_grad=False)
        self.running_var = nn.Parameter(torch.ones(channels), requires_grad=False)
        self.eps = eps
        self.inplace = False        # set by HearDualModel where nothing else reads the input

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Per-channel scale and shift first, so the per-element work is one fused multiply-add pass.
        scale = self.weight / torch.sqrt(self.running_var + self.eps)
        shift = self.bias - self.running_mean * scale
        per_channel = (-1,) + (1,) * (x.dim() - 2)         # channels first, at any rank
        out = x if in_place(self, x) else None
        return torch.addcmul(shift.view(per_channel), x, scale.view(per_channel), out=out)


class GELU(nn.Module):
    def __init__(self, approximate: str):
        super().__init__()
        self.approximate = approximate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x, approximate=self.approximate)


class ReLU(nn.Module):
    def __init__(self):
        super().__init__()
        self.inplace = False        # set by HearDualModel where nothing else reads the input

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu_(x) if in_place(self, x) else F.relu(x)


def in_place(op: nn.Module, x: torch.Tensor) -> bool:
    """Overwrite x with the result (the same arithmetic, no fresh memory: element-wise passes over large maps ran
    several times slower on newly mapped pages) when no later layer reads x and no gradient needs it."""
    whole = x.numel() * x.element_size() == x.untyped_storage().nbytes()     # all of its memory, none shared
    return op.inplace and whole and not torch.is_grad_enabled()


class Pad(nn.Module):
    """Explicit zeros on both ends of the time axis (axis 2)."""

    def __init__(self, left: int, right: int):
        super().__init__()
        self.left, self.right = left, right

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (0, 0) * (x.dim() - 3) + (self.left, self.right))


class MaxPool1d(nn.Module):
    """VALID: windows that do not fit are dropped, never padded."""

    def __init__(self, kernel_size: int, stride: int):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return max_of_slices(x, [self.kernel_size], [self.stride])


class MaxPool2d(MaxPool1d):
    """VALID over (time, freq)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return max_of_slices(x, self.kernel_size, self.stride)


def max_of_slices(x: torch.Tensor, kernel, stride) -> torch.Tensor:
    """VALID max pooling over the last len(kernel) axes, as the ONNX graph computes it: the running maximum of
    the window's strided slices, one per position in the window (exact in any order). On the VGG baselines' first
    two pools 3.6 and 2.6 times faster than F.max_pool2d, whose CPU kernel also computes the indices (on their
    last, tiny maps a few microseconds slower)."""
    axes = range(x.dim() - len(kernel), x.dim())
    counts = [(x.shape[a] - k) // s + 1 for a, k, s in zip(axes, kernel, stride)]
    y = None
    for offsets in itertools.product(*(range(k) for k in kernel)):
        index = [slice(None)] * x.dim()
        for a, o, n, s in zip(axes, offsets, counts, stride):
            index[a] = slice(o, o + s * (n - 1) + 1, s)
        window = x[tuple(index)]
        if y is None:
            y = window.clone()
        elif torch.is_grad_enabled():
            y = torch.maximum(y, window)        # autograd needs each step's own output
        else:
            torch.maximum(y, window, out=y)
    return y


class Reduce(nn.Module):
    """max or mean over freq (the last axis of a map) or time (the last axis of a time series); a mean is
    accumulated in float64, so its order of summation cannot matter."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "max":
            return x.amax(dim=-1)
        return x.mean(dim=-1, dtype=torch.float64).to(torch.float32)


class Flatten(nn.Module):
    """channel_major: element (c * T + t) * F + f, torch's memory order; channel_last: (t * F + f) * C + c."""

    def __init__(self, order: str):
        super().__init__()
        self.order = order

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.order == "channel_last":
            x = x.movedim(1, -1)
        return x.reshape(x.shape[0], -1)


class Concat(nn.Module):
    """Along channels, in the listed order."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=1)


class Add(nn.Module):
    """Element-wise, in the listed order."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        y = xs[0]
        for x in xs[1:]:
            y = y + x
        return y


def make_layer(layer, spec: Spec) -> nn.Module:
    if layer.op == "conv1d":
        return Conv1d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.dilation)
    if layer.op == "skip_conv1d":
        return SkipConv1d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                          spec.skip_crops[layer.name])
    if layer.op == "conv2d":
        return Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding)
    if layer.op == "dense":
        return Dense(layer.in_features, layer.out_features)
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
    if layer.op == "maxpool2d":
        return MaxPool2d(layer.kernel_size, layer.stride)
    if layer.op == "reduce":
        return Reduce(layer.kind)
    if layer.op == "flatten":
        return Flatten(layer.order)
    if layer.op == "concat":
        return Concat()
    if layer.op == "add":
        return Add()
    raise ValueError(f"op {layer.op!r} is not implemented by the torch backend")


def make_frontend(spec: Spec, constants: dict | None) -> nn.Module:
    if spec.is_framed:
        return WaveformFrames(spec)
    return (MelPatches if spec.is_patched else LogMel)(spec, constants)


class HearDualModel(nn.Module):
    """Maps a padded audio chunk (batch, samples) to timestamp embeddings (batch, n_outputs, D)."""

    def __init__(self, spec: Spec, chunk_timestamps: int | None = None, constants: dict | None = None):
        super().__init__()
        self.spec = spec
        self.sample_rate = spec.sample_rate
        self.timestamp_embedding_size = spec.timestamp_embedding_size
        self.scene_embedding_size = spec.scene_embedding_size
        self.chunk_timestamps = chunk_timestamps
        self.frontend = make_frontend(spec, constants)
        self.layer_names = [layer.name for layer in spec.layers]
        previous, memory = "frontend", {"frontend": "frontend"}     # memory: the point whose storage a point is
        for layer in spec.layers:
            self.add_module(layer.name, make_layer(layer, spec))
            # In place where the input is read by this layer alone, and so is the storage under it (a flatten is a
            # view of its input), and the encoder made it (run_encoder's caller keeps what it passes in).
            owner = memory[previous]
            if layer.op in ("relu", "batchnorm") and spec.layer_inputs[layer.name] == (previous,) and \
                    not {previous, owner} & set(spec.kept_points) and owner != "frontend":
                getattr(self, layer.name).inplace = True
            memory[layer.name] = memory[spec.layer_inputs[layer.name][0]] if layer.op == "flatten" else layer.name
            previous = layer.name

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.frontend.to_embeddings(self.run_encoder(self.frontend(audio)), audio.shape[0])

    def run_encoder(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder on the frontend's output, each layer on the points it reads (SPEC section 2, rule 7b)."""
        kept, previous = self.spec.kept_points, "frontend"
        points = {"frontend": x} if "frontend" in kept else {}     # only what a later layer reads, while it does
        for name in self.layer_names:
            inputs = [x if point == previous else points[point] for point in self.spec.layer_inputs[name]]
            x = getattr(self, name)(*inputs)
            points |= {name: x} if name in kept else {}
            for point in [p for p, last in kept.items() if last == name]:
                del points[point]
            previous = name
        return x

    def load_parameters(self, params: dict) -> HearDualModel:
        """params in canonical layout, keyed by spec names (torch uses the canonical layout as is)."""
        state = {name: torch.from_numpy(array.copy()) for name, array in params.items()}
        state |= {f"frontend.{k}": v for k, v in self.frontend.state_dict().items()}
        self.load_state_dict(state, strict=True)
        return self.eval()


def load_model(model_file_path: str = "") -> HearDualModel:
    """The HEAR 2021 entry point: the model of a checkpoint file, of a model's short name ("base", "compact",
    "crepe-tiny", "musicnn-mtt", ...; those converted from another package's weights are converted on first use), or
    of the shipped default ("") as a torch.nn.Module, with sample_rate, timestamp_embedding_size and
    scene_embedding_size."""
    checkpoint = read_checkpoint(resolve(model_file_path))     # a path or a model's name, converted on first use
    model = HearDualModel(checkpoint.spec, constants=checkpoint.constants).load_parameters(checkpoint.params)
    model.checkpoint_path = checkpoint.path
    model.checkpoint_sha256 = checkpoint.sha256
    return model.requires_grad_(False)
