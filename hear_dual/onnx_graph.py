"""hear-dual as an ONNX graph, built from the spec and the parameters. Mirrors hear_dual/torch_impl/model.py and
hear_dual/tf_impl/model.py op for op; layout here is channels last, as in tf_impl.

The same graph is every checkpoint's (hear_dual.export writes it with onnx alone: no framework, no exporter) and
what hear_dual.onnx_impl runs, rebuilt at load time from the checkpoint's spec and weights. Parameters and frontend
constants are initializers under their spec names, in canonical layout, and the graph derives what it multiplies by
(a tap of a kernel, the window, the folded DFT's halves, a batch norm's scale) from them with exact or correctly
rounded ops, which ONNX Runtime folds once when a session starts. Index arrays, scalars and the two-stage DFT's cos
and sin tables (computed from the spec's integers, SPEC section 3) are Constant nodes, never initializers, so a
checkpoint holds no initializer but the spec's (SPEC section 8, rule 11).
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hear_dual.audio import SILENT_SCAN_BLOCKS, DftFold, DftStages, dft_fold, dft_stages
from hear_dual.dsp import FLOAT16_MAX
from hear_dual.layout import TF_AXES
from hear_dual.spec import Spec

OPSET = 18
IR_VERSION = 8          # what opset 18 needs; onnx writes its newest by default, which older runtimes refuse
INT64_MAX = np.iinfo(np.int64).max
_TYPES = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE,
          np.dtype(np.float16): TensorProto.FLOAT16, np.dtype(np.int64): TensorProto.INT64}


class Graph:
    """Nodes in order; `op` adds one and returns its output's name."""

    def __init__(self):
        self.nodes, self.initializers, self.count = [], [], 0

    def op(self, op_type: str, *inputs: str, **attributes) -> str:
        self.count += 1
        output = f"{op_type.lower()}_{self.count}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=output, **attributes))
        return output

    def const(self, value, dtype=np.int64) -> str:
        return self.op("Constant", value=numpy_helper.from_array(np.asarray(value, dtype=dtype)))

    def initializer(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def cast(self, x: str, dtype) -> str:
        return self.op("Cast", x, to=_TYPES[np.dtype(dtype)])

    def slice(self, x: str, axis: int, start: int, stop: int = INT64_MAX, step: int = 1) -> str:
        return self.op("Slice", x, self.const([start]), self.const([stop]), self.const([axis]), self.const([step]))

    def slice_between(self, x: str, axis: int, start: str, stop: str) -> str:
        """x[start:stop] along axis, for int64 scalars start and stop computed in the graph."""
        return self.op("Slice", x, self.op("Unsqueeze", start, self.const([0])),
                       self.op("Unsqueeze", stop, self.const([0])), self.const([axis]))

    def dim(self, x: str, axis: int) -> str:
        """The size of x along axis, an int64 scalar."""
        return self.op("Squeeze", self.op("Shape", x, start=axis, end=axis + 1), self.const([0]))

    def taps(self, x: str, axis: int, kernel: int, stride: int, dilation: int = 1) -> list[str]:
        """x[..., d k : T - d (K - 1 - k) : s, ...] for k < K along axis: each has floor((T - d(K-1) - 1)/s) + 1
        elements, VALID's output length, so no shape arithmetic is needed."""
        span = dilation * (kernel - 1)
        return [self.slice(x, axis, dilation * k, -(span - dilation * k) if k * dilation < span else INT64_MAX,
                           stride) for k in range(kernel)]


# --- frontends ---------------------------------------------------------------------------------------------------

def mel_power(g: Graph, audio: str, spec: Spec, constants: dict) -> str:
    """(batch, samples) -> (batch, frames, n_mels): the live frames' power by the two-stage DFT where the spec's
    shapes allow it, else by the folded one (SPEC section 3), times the mel matrix; the silent frames' rows are 0."""
    fe = spec.frontend
    hop, blocks_per_frame = fe["hop_length"], fe["win_length"] // fe["hop_length"]
    dft = g.initializer("frontend.dft", constants["frontend.dft"])
    mel = g.initializer("frontend.mel", constants["frontend.mel"])
    blocks = g.op("Reshape", audio, g.const([0, -1, hop]))
    left, right = silent_frames(g, blocks, blocks_per_frame)
    live = g.slice_between(blocks, 1, left, g.op("Sub", g.dim(blocks, 1), right))     # the live frames' blocks
    stages = dft_stages(fe["win_length"], hop, spec.n_bins) if fe["precision"] == "float64" else None
    if stages:
        power, mel = two_stage_power(g, live, dft, mel, stages, spec)
    else:
        power, mel = folded_power(g, live, dft, mel, dft_fold(constants["frontend.dft"]), spec)
    zero, pads = g.const([0]), [g.op("Unsqueeze", n, g.const([0])) for n in (left, right)]
    return g.op("Pad", g.op("MatMul", power, mel), g.op("Concat", zero, pads[0], zero, zero, pads[1], zero, axis=0))


def folded_power(g: Graph, blocks: str, dft: str, mel: str, fold: DftFold, spec: Spec) -> tuple[str, str]:
    """|S|^2 (batch, frames, n_bins) of the folded windowed DFT, its halves taken from frontend.dft inside the graph
    (halving a row is exact); and the mel matrix."""
    fe, dtype = spec.frontend, np.dtype(spec.frontend["precision"])
    blocks_per_frame = fe["win_length"] // fe["hop_length"]
    blocks = g.cast(blocks, dtype)
    frames = g.op("Concat", *(g.slice(blocks, 1, i, -(blocks_per_frame - 1 - i) if i < blocks_per_frame - 1
                                      else INT64_MAX) for i in range(blocks_per_frame)), axis=2)
    half, n_bins = fold.half, spec.n_bins
    head = g.slice(frames, 2, 1, half + 1)
    tail = g.slice(frames, 2, int(fold.tail_index[0]), int(fold.tail_index[-1]) - 1, -1)    # x[N-1], ..., x[N-half]
    rows = g.slice(dft, 0, 1, half + 1)
    halve = np.ones((half, 1)) if fe["win_length"] % 2 else np.append(np.ones(half - 1), 0.5)[:, None]
    even = g.op("Mul", g.slice(rows, 1, 0, n_bins), g.const(halve, dtype))
    odd = g.slice(rows, 1, n_bins)
    real = g.op("MatMul", g.op("Add", head, tail), even)
    imag = g.op("MatMul", g.op("Sub", head, tail), odd)
    return g.op("Add", g.op("Mul", real, real), g.op("Mul", imag, imag)), mel


def two_stage_power(g: Graph, blocks: str, dft: str, mel: str, stages: DftStages, spec: Spec) -> tuple[str, str]:
    """|S|^2 (batch, frames, groups * slots) by the two-stage DFT (hear_dual.audio.dft_stages), and the mel
    matrix's rows in the same slots (0 where a slot holds no bin). Each product runs over all the frames at once:
    ONNX Runtime has no fast FFT, and the folded product did 3.6 to 3.8 times the multiply-adds."""
    fe, dtype = spec.frontend, np.dtype(spec.frontend["precision"])
    n, hop, n1 = fe["win_length"], fe["hop_length"], stages.n1
    blocks_per_frame, q, groups = n // hop, hop // n1, stages.cos.shape[0]
    # Sample q * n1 + r of block b at [batch, q, b, r]: frame f's stage-1 rows are blocks f..f+blocks_per_frame-1.
    rows = g.cast(g.op("Transpose", g.op("Reshape", blocks, g.const([0, 0, q, n1])), perm=[0, 2, 1, 3]), dtype)
    n_frames = g.op("Sub", g.dim(rows, 2), g.const(blocks_per_frame - 1))
    index = g.op("Add", g.op("Unsqueeze", g.op("Range", g.const(0), n_frames, g.const(1)), g.const([0])),
                 g.const(np.arange(blocks_per_frame)[:, None]))
    frames = g.op("Gather", rows, index, axis=2)                  # (batch, q, blocks_per_frame, frames, n1)
    window = g.op("Transpose", g.op("Reshape", g.slice(dft, 1, 0, 1), g.const([blocks_per_frame, q, n1])),
                  perm=[1, 0, 2])                                 # column 0 of D is the window, exactly
    windowed = g.op("Mul", frames, g.op("Reshape", window, g.const([q, blocks_per_frame, 1, n1])))
    windowed = g.op("Reshape", windowed, g.const([0, n // n1, -1]))
    # Stage 1: (batch, groups, frames, n1) for the real and the imaginary part.
    part = [g.op("Reshape", g.op("MatMul", g.const(table, dtype), windowed), g.const([0, groups, -1, n1]))
            for table in (stages.cos, stages.sin)]
    real, imag = (g.op("Add", g.op("MatMul", part[0], g.const(stages.stage2[i], dtype)),
                       g.op("MatMul", part[1], g.const(stages.stage2[i + 1], dtype))) for i in (0, 2))
    power = g.op("Add", g.op("Mul", real, real), g.op("Mul", imag, imag))       # (batch, groups, frames, slots)
    bins = stages.bins
    power = g.op("Reshape", g.op("Transpose", power, perm=[0, 2, 1, 3]), g.const([0, 0, bins.size]))
    slotted = g.op("Mul", g.op("Gather", mel, g.const(np.maximum(bins, 0)), axis=0),
                   g.const((bins >= 0)[:, None], dtype))           # a gather, and 0 for the empty slots: exact
    return power, slotted


def silent_frames(g: Graph, blocks: str, blocks_per_frame: int) -> tuple[str, str]:
    """How many frames at the start and at the end of the chunk read only zeros, in every sound (int64 scalars):
    their power is exactly 0, so mel_power pads the live frames' power with 0 there (SPEC section 3). blocks:
    (batch, n, hop) float32."""
    n = g.dim(blocks, 1)
    edge = g.op("Min", n, g.const(SILENT_SCAN_BLOCKS))
    parts = g.slice_between(blocks, 1, g.const(0), edge), g.slice_between(blocks, 1, g.op("Sub", n, edge), n)
    # A block is live if a sound has a nonzero sample there (a NaN is live too).
    head, tail = (g.op("ReduceMax", g.cast(g.op("Not", g.op("Equal", part, g.const(0.0, np.float32))), np.int64),
                       g.const([0, 2]), keepdims=0) for part in parts)

    def silent(live: str, reverse: int) -> str:
        return g.op("ReduceSum", g.cast(g.op("Equal", g.op("CumSum", live, g.const(0), reverse=reverse), g.const(0)),
                                        np.int64), keepdims=0)

    lead, trail = silent(head, 0), silent(tail, 1)         # silent blocks before the first live one, after the last
    zero, minus = g.const(0), g.const(blocks_per_frame - 1)
    n_frames = g.op("Max", g.op("Sub", n, minus), zero)
    left = g.op("Max", g.op("Sub", lead, minus), zero)     # frame j reads blocks j .. j + blocks_per_frame - 1
    return left, g.op("Min", g.op("Max", g.op("Sub", trail, minus), zero), g.op("Sub", n_frames, left))


def log_mel(g: Graph, audio: str, spec: Spec, constants: dict) -> str:
    """The stream's log-mel: (batch, frames, n_mels) float32."""
    offset = g.const(spec.frontend["log_offset"], constants["frontend.dft"].dtype)
    return g.cast(g.op("Log", g.op("Add", mel_power(g, audio, spec, constants), offset)), np.float32)


def mel_patches(g: Graph, audio: str, spec: Spec, constants: dict) -> str:
    """(batch, samples) -> (batch * patches, time, freq, 1): the float16 step, the log, patches every patch_hop."""
    fe, compression = spec.frontend, spec.frontend["compression"]
    dtype = constants["frontend.dft"].dtype
    mel = mel_power(g, audio, spec, constants)
    if compression["quantize"] == "float16":     # float32, then float16, saturating (SPEC 3.3)
        clipped = g.op("Min", g.cast(mel, np.float32), g.const(FLOAT16_MAX, np.float32))
        mel = g.cast(g.cast(clipped, np.float16), dtype)
    scaled = g.op("Add", g.op("Mul", mel, g.const(compression["scale"], dtype)), g.const(compression["offset"], dtype))
    divisor = math.log(10.0) if compression["log"] == "log10" else 1.0     # ONNX has no log10
    y = g.cast(g.op("Div", g.op("Log", scaled), g.const(divisor, dtype)), np.float32)
    size, step = fe["patch_frames"], fe["patch_hop"]
    n_patches = g.op("Add", g.op("Div", g.op("Sub", g.dim(y, 1), g.const(size)), g.const(step)), g.const(1))
    starts = g.op("Mul", g.op("Range", g.const(0), n_patches, g.const(1)), g.const(step))
    index = g.op("Add", g.op("Unsqueeze", starts, g.const([1])), g.const(np.arange(size)[None, :]))
    patches = g.op("Gather", y, index, axis=1)                        # (batch, patches, size, n_mels), a gather
    return g.op("Reshape", patches, g.const([-1, size, fe["n_mels"], 1]))


def waveform_frames(g: Graph, audio: str, spec: Spec) -> str:
    """(batch, samples) -> (batch * frames, frame_length, 1), each frame centred and divided by max(std, floor)."""
    fe = spec.frontend
    n, hop, dtype = fe["frame_length"], fe["hop_length"], np.dtype(fe["precision"])
    x = g.cast(audio, dtype)
    n_frames = g.op("Add", g.op("Div", g.op("Sub", g.dim(x, 1), g.const(n)), g.const(hop)), g.const(1))
    starts = g.op("Mul", g.op("Range", g.const(0), n_frames, g.const(1)), g.const(hop))
    frames = g.op("Gather", x, g.op("Add", g.op("Unsqueeze", starts, g.const([1])), g.const(np.arange(n)[None, :])),
                  axis=1)
    total = g.op("ReduceSum", frames, g.const([2]), keepdims=1)
    centred = g.op("Sub", frames, g.op("Div", total, g.const(n, dtype)))
    squares = g.op("ReduceSum", g.op("Mul", centred, centred), g.const([2]), keepdims=1)
    std = g.op("Sqrt", g.op("Div", squares, g.const(n - fe["normalization"]["std_ddof"], dtype)))
    scaled = g.op("Div", centred, g.op("Max", std, g.const(fe["normalization"]["std_floor"], dtype)))
    return g.op("Reshape", g.cast(scaled, np.float32), g.const([-1, n, 1]))


# --- encoder ops, one function each (channels last) --------------------------------------------------------------

def tf_weight(g: Graph, name: str, params: dict) -> str:
    """A weight initializer in canonical layout, transposed in the graph to TF's (hear_dual.layout)."""
    array = params[f"{name}.weight"]
    return g.op("Transpose", g.initializer(f"{name}.weight", array), perm=list(TF_AXES[array.ndim]))


def conv1d(g: Graph, x: str, name: str, params: dict, stride: int, dilation: int) -> str:
    kernel, bias = tf_weight(g, name, params), g.initializer(f"{name}.bias", params[f"{name}.bias"])
    out, channels, size = params[f"{name}.weight"].shape
    if channels == 1:       # the K taps gathered and contracted in one matmul (SPEC section 4)
        wave = g.op("Squeeze", x, g.const([2]))
        n_out = g.op("Add", g.op("Div", g.op("Sub", g.dim(x, 1), g.const(dilation * (size - 1) + 1)),
                                 g.const(stride)), g.const(1))
        positions = g.op("Unsqueeze", g.op("Range", g.const(0), n_out, g.const(1)), g.const([1]))
        if dilation == 1 and stride > 1 and size % stride == 0:
            # Gathered `stride` samples at a time: position t's taps are rows t, ..., t + K/stride - 1 of the wave
            # cut into rows of `stride` (the same taps in the same order). A Gather copies index by index: CREPE's
            # first layer (512 taps, stride 4) took half of ONNX Runtime's time gathering single samples.
            whole = g.op("Mul", g.op("Div", g.dim(wave, 1), g.const(stride)), g.const(stride))
            rows = g.op("Reshape", g.op("Slice", wave, g.const([0]), g.op("Unsqueeze", whole, g.const([0])),
                                        g.const([1])), g.const([0, -1, stride]))
            index = g.op("Add", positions, g.const(np.arange(size // stride)[None, :]))
            taps = g.op("Reshape", g.op("Gather", rows, index, axis=1), g.const([0, -1, size]))
        else:
            index = g.op("Add", g.op("Mul", positions, g.const(stride)), g.const(dilation * np.arange(size)[None, :]))
            taps = g.op("Gather", wave, index, axis=1)
        return g.op("Add", g.op("MatMul", taps, g.op("Reshape", kernel, g.const([size, out]))), bias)
    taps = [g.op("MatMul", tap, g.op("Gather", kernel, g.const(k), axis=0))
            for k, tap in enumerate(g.taps(x, 1, size, stride, dilation))]
    return g.op("Add", add_in_order(g, taps), bias)


def skip_conv1d(g: Graph, x: str, source: str, name: str, params: dict, stride: int, crop: int) -> str:
    size = params[f"{name}.weight"].shape[2]
    stop = g.op("Add", g.op("Mul", g.op("Sub", g.dim(x, 1), g.const(1)), g.const(stride)), g.const(crop + size))
    window = g.op("Slice", source, g.const([crop]), g.op("Unsqueeze", stop, g.const([0])), g.const([1]))
    return g.op("Concat", x, conv1d(g, window, name, params, stride, 1), axis=2)


def conv2d(g: Graph, x: str, name: str, params: dict, stride, padding) -> str:
    kernel, bias = tf_weight(g, name, params), g.initializer(f"{name}.bias", params[f"{name}.bias"])
    out, channels, kt, kf = params[f"{name}.weight"].shape
    (t0, t1), (f0, f1) = padding
    x = g.op("Pad", x, g.const([0, t0, f0, 0, 0, t1, f1, 0]))
    if channels == 1:       # the taps gathered and contracted in one matmul (SPEC section 4)
        return g.op("Add", g.op("MatMul", one_channel_taps(g, x, kt, kf, stride),
                                g.op("Reshape", kernel, g.const([kt * kf, out]))), bias)
    rows = g.taps(x, 1, kt, stride[0])
    taps = [g.op("MatMul", tap, g.op("Gather", g.op("Gather", kernel, g.const(p), axis=0), g.const(q), axis=0))
            for p, row in enumerate(rows) for q, tap in enumerate(g.taps(row, 2, kf, stride[1]))]
    return g.op("Add", add_in_order(g, taps), bias)


def one_channel_taps(g: Graph, x: str, kt: int, kf: int, stride) -> str:
    """(batch, n_t, n_f, kt * kf), tap (p, q) at p * kf + q, gathered as tf_impl gathers them. A Concat of the kt * kf
    one-float slices copies float by float: 1.15x slower on musicnn's 7 x 38 layer, 3.4x on its 128 x 1 (12 maps)."""
    (st, sf), batch = stride, g.op("Shape", x, start=0, end=1)
    n_t = g.op("Add", g.op("Div", g.op("Sub", g.dim(x, 1), g.const(kt)), g.const(st)), g.const(1))
    n_f = g.op("Add", g.op("Div", g.op("Sub", g.dim(x, 2), g.const(kf)), g.const(sf)), g.const(1))
    starts_t = g.op("Mul", g.op("Range", g.const(0), n_t, g.const(1)), g.const(st))
    if kf == 1:             # taps along time only: whole rows of the map gathered, the taps moved last
        index = g.op("Add", g.op("Unsqueeze", starts_t, g.const([1])), g.const(np.arange(kt)[None, :]))
        rows = g.op("Gather", g.slice(g.op("Squeeze", x, g.const([3])), 2, 0, INT64_MAX, sf), index, axis=1)
        return g.op("Transpose", rows, perm=[0, 1, 3, 2])
    # Runs of kf floats: the flattened map framed kf at a time, then whole frames gathered; tap (p, q) of output
    # (t, f) is element q of the frame starting at (st t + p) width + sf f.
    flat = g.op("Reshape", x, g.const([0, -1]))
    n_frames = g.op("Sub", g.dim(flat, 1), g.const(kf - 1))
    frames = g.op("Gather", flat, g.op("Add", g.op("Unsqueeze", g.op("Range", g.const(0), n_frames, g.const(1)),
                                                   g.const([1])), g.const(np.arange(kf)[None, :])), axis=1)
    row_starts = g.op("Mul", g.op("Add", g.op("Unsqueeze", starts_t, g.const([1, 2])),
                                  g.const(np.arange(kt)[None, None, :])), g.dim(x, 2))
    starts_f = g.op("Mul", g.op("Range", g.const(0), n_f, g.const(1)), g.const(sf))
    index = g.op("Add", row_starts, g.op("Unsqueeze", starts_f, g.const([0, 2])))      # (n_t, n_f, kt)
    shape = g.op("Concat", batch, g.op("Unsqueeze", n_t, g.const([0])), g.op("Unsqueeze", n_f, g.const([0])),
                 g.const([kt * kf]), axis=0)
    return g.op("Reshape", g.op("Gather", frames, index, axis=1), shape)


def dense(g: Graph, x: str, name: str, params: dict) -> str:
    kernel, bias = tf_weight(g, name, params), g.initializer(f"{name}.bias", params[f"{name}.bias"])
    return g.op("Add", g.op("MatMul", x, kernel), bias)


def batchnorm(g: Graph, x: str, name: str, params: dict, eps: float) -> str:
    w, b, mean, var = (g.initializer(f"{name}.{p}", params[f"{name}.{p}"])
                       for p in ("weight", "bias", "running_mean", "running_var"))
    scale = g.op("Div", w, g.op("Sqrt", g.op("Add", var, g.const(eps, np.float32))))
    shift = g.op("Sub", b, g.op("Mul", mean, scale))
    return g.op("Add", g.op("Mul", x, scale), shift)


def gelu(g: Graph, x: str, approximate: str) -> str:
    half_x = g.op("Mul", x, g.const(0.5, np.float32))
    if approximate == "tanh":
        cube = g.op("Mul", g.op("Mul", g.op("Mul", x, x), x), g.const(0.044715, np.float32))
        inner = g.op("Mul", g.op("Add", x, cube), g.const(math.sqrt(2.0 / math.pi), np.float32))
        return g.op("Mul", half_x, g.op("Add", g.const(1.0, np.float32), g.op("Tanh", inner)))
    erf = g.op("Erf", g.op("Mul", x, g.const(math.sqrt(0.5), np.float32)))
    return g.op("Mul", half_x, g.op("Add", g.const(1.0, np.float32), erf))


def pad(g: Graph, x: str, rank: int, left: int, right: int) -> str:
    """Zeros before and after the time axis (axis 1)."""
    before, after = [0, left] + [0] * (rank - 2), [0, right] + [0] * (rank - 2)
    return g.op("Pad", x, g.const(before + after))


def maxpool(g: Graph, x: str, kernel, stride) -> str:
    """VALID: the max of the window's strided slices, one per position in the window (exact in any order)."""
    slices = [x]
    for axis, (size, step) in enumerate(zip(kernel, stride), start=1):
        slices = [tap for s in slices for tap in g.taps(s, axis, size, step)]
    return g.op("Max", *slices) if len(slices) > 1 else slices[0]


def reduce(g: Graph, x: str, kind: str) -> str:
    """Over axis -2 (freq of a map, time of a time series); a mean accumulated in float64."""
    if kind == "max":
        return g.op("ReduceMax", x, g.const([-2]), keepdims=0)
    return g.cast(g.op("ReduceMean", g.cast(x, np.float64), g.const([-2]), keepdims=0), np.float32)


def flatten(g: Graph, x: str, rank: int, order: str) -> str:
    if order == "channel_major":
        x = g.op("Transpose", x, perm=[0, rank - 1, *range(1, rank - 1)])
    return g.op("Reshape", x, g.const([0, -1]))


def add_in_order(g: Graph, xs: list[str]) -> str:
    y = xs[0]
    for x in xs[1:]:
        y = g.op("Add", y, x)
    return y


def apply(g: Graph, layer, inputs: list[str], rank: int, spec: Spec, params: dict) -> str:
    """One op on its inputs; rank: of its first input, with the batch."""
    x, name = inputs[0], layer.name
    if layer.op == "conv1d":
        return conv1d(g, x, name, params, layer.stride, layer.dilation)
    if layer.op == "skip_conv1d":
        return skip_conv1d(g, x, inputs[1], name, params, layer.stride, spec.skip_crops[name])
    if layer.op == "conv2d":
        return conv2d(g, x, name, params, layer.stride, layer.padding)
    if layer.op == "dense":
        return dense(g, x, name, params)
    if layer.op == "batchnorm":
        return batchnorm(g, x, name, params, layer.eps)
    if layer.op == "gelu":
        return gelu(g, x, layer.approximate)
    if layer.op == "relu":
        return g.op("Relu", x)
    if layer.op == "pad":
        return pad(g, x, rank, layer.left, layer.right)
    if layer.op == "maxpool1d":
        return maxpool(g, x, [layer.kernel_size], [layer.stride])
    if layer.op == "maxpool2d":
        return maxpool(g, x, layer.kernel_size, layer.stride)
    if layer.op == "reduce":
        return reduce(g, x, layer.kind)
    if layer.op == "flatten":
        return flatten(g, x, rank, layer.order)
    if layer.op == "concat":
        return g.op("Concat", *inputs, axis=-1)
    if layer.op == "add":
        return add_in_order(g, inputs)
    raise ValueError(f"op {layer.op!r} is not implemented by the ONNX backend")


def build_graph(spec: Spec, params: dict, constants: dict, encoder_only: bool = False) -> onnx.ModelProto:
    """The model as an ONNX graph: input `audio` float32 (batch, samples), output `timestamp_embeddings`
    float32 (batch, outputs, D), for any padded chunk the spec's geometry allows (SPEC section 8).

    encoder_only: the encoder alone, from the frontend's output in TF layout (input `frontend`) to the last layer's
    (output `encoder`), to feed it inputs of one's own (the same log-mel as another implementation's)."""
    from hear_dual.checkpoint import GRAPH_INPUT, GRAPH_OUTPUT

    framed = spec.is_framed or spec.is_patched
    # ranks with the batch: from the shape walk of a framed spec; a stream is always (batch, time, channels)
    ranks = dict(zip(["frontend", *(layer.name for layer in spec.layers)],
                     (1 + len(shape) for shape in spec.frame_shapes))) if framed else {}
    g = Graph()
    if encoder_only:
        x = "frontend"
    elif spec.is_framed:
        x = waveform_frames(g, GRAPH_INPUT, spec)
    elif spec.is_patched:
        x = mel_patches(g, GRAPH_INPUT, spec, constants)
    else:
        x = log_mel(g, GRAPH_INPUT, spec, constants)
    points = {"frontend": x}
    for layer in spec.layers:
        inputs = spec.layer_inputs[layer.name]
        points[layer.name] = apply(g, layer, [points[p] for p in inputs], ranks.get(inputs[0], 3), spec, params)
    y = points[spec.layers[-1].name]
    if encoder_only:
        io = [helper.make_tensor_value_info("frontend", TensorProto.FLOAT, [None] * ranks.get("frontend", 3)),
              helper.make_tensor_value_info("encoder", TensorProto.FLOAT, None)]
        g.nodes.append(helper.make_node("Identity", [y], ["encoder"], name="output"))
    else:
        if framed:        # one vector (or a frame's vectors) per unit, in order
            y = g.op("Reshape", y, g.op("Concat", g.op("Shape", GRAPH_INPUT, start=0, end=1),
                                        g.const([-1, spec.timestamp_embedding_size]), axis=0))
        io = [helper.make_tensor_value_info(GRAPH_INPUT, TensorProto.FLOAT, ["batch", "samples"]),
              helper.make_tensor_value_info(GRAPH_OUTPUT, TensorProto.FLOAT,
                                            ["batch", "outputs", spec.timestamp_embedding_size])]
        g.nodes.append(helper.make_node("Identity", [y], [GRAPH_OUTPUT], name="output"))
    graph = helper.make_graph(g.nodes, spec.name, [io[0]], [io[1]], g.initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                             producer_name="hear-dual", doc_string=f"{spec.name}: {spec.raw.get('description', '')}")
