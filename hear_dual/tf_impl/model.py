"""hear-dual in TensorFlow 2. Mirrors hear_dual/torch_impl/model.py op for op.

Layout here is channels last, as TF's CPU kernels want it: (batch, time, channels) for a time series,
(batch, time, freq, channels) for a map, (batch, features) for a vector; a conv1d's series are time major,
(time, batch, channels), as torch_impl's lie in memory (HearDualModel.run_encoder transposes where needed).
"""

from __future__ import annotations

import math

from hear_dual.audio import (
    CHUNK_ACTIVATION_FLOATS,
    FRONTEND_FRAMES,
    SILENT_SCAN_BLOCKS,
    dft_fold,
    frontend_constants,
    frontend_window,
)
from hear_dual.checkpoint import read_checkpoint
from hear_dual.dsp import FLOAT16_MAX
from hear_dual.layout import to_tf_layout
from hear_dual.quiet import import_tensorflow
from hear_dual.spec import Spec
from hear_dual.weights import resolve

tf = import_tensorflow()       # without its start-up banners (hear_dual.quiet)


class LogMel(tf.Module):
    """Frames, the windowed DFT as a real FFT in the frontend's precision, the power, the mel matrix, the log.

    `fft = False` computes the DFT as the matmul folded by the window's symmetry instead (two matmuls of half the
    size, the same sums): what hear_dual.tf_export exports, since tf2onnx cannot convert an FFT."""

    def __init__(self, spec: Spec, constants: dict | None = None):
        """constants: the checkpoint's frontend constants (default: computed from the spec on this machine)."""
        super().__init__(name="frontend")
        constants = constants or frontend_constants(spec)
        fold = dft_fold(constants["frontend.dft"])
        # Variables, not captured constants: exporters (tf2onnx) freeze variables into the graph.
        self.dft_even = tf.Variable(fold.even, trainable=False, name="frontend.dft_even")
        self.dft_odd = tf.Variable(fold.odd, trainable=False, name="frontend.dft_odd")
        self.mel = tf.Variable(constants["frontend.mel"], trainable=False, name="frontend.mel")
        self.window = tf.constant(frontend_window(constants["frontend.dft"]))    # column 0 of D: the window exactly
        self.fold_tail = fold.tail_index      # numpy, so a trace embeds it as a constant, not a captured input
        self.fold_half = fold.half
        self.hop = spec.frontend["hop_length"]
        self.blocks_per_frame = spec.frontend["win_length"] // self.hop
        self.log_offset = spec.frontend.get("log_offset")
        self.fft = True

    def __call__(self, audio: tf.Tensor) -> tf.Tensor:
        return tf.cast(tf.math.log(self.mel_power(audio) + self.log_offset), tf.float32)

    def mel_power(self, audio: tf.Tensor) -> tf.Tensor:
        """(batch, samples) -> (batch, frames, n_mels), in the frontend's precision."""
        blocks = tf.reshape(audio, [tf.shape(audio)[0], -1, self.hop])
        left, right = silent_frames(blocks, self.blocks_per_frame)
        # The live frames' blocks, in float64 when the spec says so: a tone's leakage bins cancel large terms, and
        # log() would amplify float32 rounding there into cross-framework drift.
        blocks = tf.cast(blocks[:, left : tf.shape(blocks)[1] - right], self.dft_even.dtype)
        batch, n_blocks = tf.shape(blocks)[0], tf.shape(blocks)[1]
        n_frames = n_blocks - self.blocks_per_frame + 1
        if self.fft:
            power = tf.reshape(self.fft_power(blocks, n_frames), [batch, n_frames, self.mel.shape[1]])
        else:
            # TF has no strided views (torch frames with unfold): a concat of hop-sized blocks is the cheapest copy.
            frames = tf.concat([blocks[:, i : i + n_frames] for i in range(self.blocks_per_frame)], axis=2)
            head, tail = frames[..., 1 : self.fold_half + 1], tf.gather(frames, self.fold_tail, axis=2)
            real = tf.matmul(head + tail, self.dft_even)
            imag = tf.matmul(head - tail, self.dft_odd)
            power = tf.matmul(real * real + imag * imag, self.mel)
        return tf.pad(power, [[0, 0], [left, right], [0, 0]])

    def fft_power(self, blocks: tf.Tensor, n_frames) -> tf.Tensor:
        """The spec's frames @ D, as an FFT of the windowed frames (the same sums in float64 to ~1e-16, and the same
        float32 log-mel, SPEC section 3), its power and the mel matrix: every sound's frames in turn, FRONTEND_FRAMES
        at a time, each step's frames gathered from the hop-sized blocks (batch, n_blocks, hop), so that its float64
        temporaries stay in cache, as torch_impl's blocks do. (batch * n_frames, n_mels)."""
        n_blocks, rows = tf.shape(blocks)[1], tf.shape(blocks)[0] * n_frames
        blocks = tf.reshape(blocks, [-1, self.hop])

        def step(i):
            # Frame j of sound b starts at block b n_blocks + j; the last step repeats the last frame to fill up.
            row = tf.minimum(i * FRONTEND_FRAMES + tf.range(FRONTEND_FRAMES), rows - 1)
            first = row // n_frames * n_blocks + row % n_frames
            frames = tf.gather(blocks, first[:, None] + tf.range(self.blocks_per_frame)[None, :])
            spectrum = tf.signal.rfft(tf.reshape(frames, [FRONTEND_FRAMES, -1]) * self.window,
                                      fft_length=[self.window.shape[0]])
            real, imag = tf.math.real(spectrum), tf.math.imag(spectrum)
            return tf.matmul(real * real + imag * imag, self.mel)

        # Two steps at a time, one per core's worth of TF threads (one at a time: base 4 x 30 s's frontend 1.3x slower).
        steps = tf.map_fn(step, tf.range((rows + FRONTEND_FRAMES - 1) // FRONTEND_FRAMES), parallel_iterations=2,
                          fn_output_signature=tf.TensorSpec([FRONTEND_FRAMES, self.mel.shape[1]], self.mel.dtype))
        return tf.reshape(steps, [-1, self.mel.shape[1]])[:rows]

    def to_embeddings(self, x: tf.Tensor, batch) -> tf.Tensor:
        return x                       # already (batch, T, D)


def silent_frames(blocks: tf.Tensor, blocks_per_frame: int) -> tuple[tf.Tensor, tf.Tensor]:
    """How many frames at the start and at the end of the chunk read only zeros, in every sound: the plan's padding,
    a short sound's receptive field of zeros (38% of a 1 s sound's frames), a batch's shorter clips' tails. Their
    power is exactly 0 however it is computed (0 times the window, an FFT of zeros, 0 @ mel), so mel_power pads
    the live frames' power with 0 there and leaves them out of the DFT (SPEC section 3). blocks: (batch, n, hop)."""
    edge = tf.minimum(SILENT_SCAN_BLOCKS, tf.shape(blocks)[1])
    # A block is live if a sound has a nonzero sample there (a NaN is live too).
    head, tail = (tf.cast(tf.reduce_any(tf.not_equal(part, 0), axis=[0, 2]), tf.int32)
                  for part in (blocks[:, :edge], blocks[:, tf.shape(blocks)[1] - edge :]))
    lead = tf.reduce_sum(tf.cast(tf.equal(tf.cumsum(head), 0), tf.int32))    # silent blocks before the first live one
    trail = tf.reduce_sum(tf.cast(tf.equal(tf.cumsum(tail, reverse=True), 0), tf.int32))           # and after the last
    n_frames = tf.maximum(tf.shape(blocks)[1] - blocks_per_frame + 1, 0)
    left = tf.maximum(lead - blocks_per_frame + 1, 0)      # frame j reads blocks j .. j + blocks_per_frame - 1
    return left, tf.minimum(tf.maximum(trail - blocks_per_frame + 1, 0), n_frames - left)


class MelPatches(LogMel):
    """Centred log-mel frames compressed as the spec says (a float16 step, then a log), cut into patches of
    patch_frames frames every patch_hop frames: (batch, samples) -> (batch * patches, time, freq, 1)."""

    def __init__(self, spec: Spec, constants: dict | None = None):
        super().__init__(spec, constants)
        fe, compression = spec.frontend, spec.frontend["compression"]
        self.quantize = compression["quantize"] == "float16"
        self.log_divisor = math.log(10.0) if compression["log"] == "log10" else 1.0     # TF has no log10
        self.scale, self.offset = compression["scale"], compression["offset"]
        self.size, self.step, self.n_mels = fe["patch_frames"], fe["patch_hop"], fe["n_mels"]
        self.embedding_size = spec.timestamp_embedding_size

    def __call__(self, audio: tf.Tensor) -> tf.Tensor:
        mel = self.mel_power(audio)
        if self.quantize:   # float32, then float16, saturating (SPEC 3.3): the original stored its mels as float16
            mel = tf.cast(tf.cast(tf.minimum(tf.cast(mel, tf.float32), FLOAT16_MAX), tf.float16), mel.dtype)
        # A quantized input takes few values, each of whose logs lies far from a float32 rounding boundary, so
        # every float64 evaluation of the log (here log(x) / log(10)) rounds to the same float32 (SPEC section 3.3).
        log_mel = tf.cast(tf.math.log(self.scale * mel + self.offset) / self.log_divisor, tf.float32)
        n_patches = (tf.shape(log_mel)[1] - self.size) // self.step + 1
        index = self.step * tf.range(n_patches)[:, None] + tf.range(self.size)[None, :]
        patches = tf.gather(log_mel, index, axis=1)                   # (batch, patches, size, n_mels), a gather
        return tf.reshape(patches, [-1, self.size, self.n_mels, 1])

    def to_embeddings(self, x: tf.Tensor, batch) -> tf.Tensor:
        return tf.reshape(x, [batch, -1, self.embedding_size])      # per frame or per patch, in order


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


def matmul_rows(x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """x (..., in) @ kernel (in, out) as one product over all of x's rows, as torch's matmul folds them. TF makes a
    3- or 4-D matmul a BatchMatMul, which its Eigen kernels (CPUs without oneDNN: AVX2) run as one small product per
    leading index: musicnn's 7 x 38 layer, (4, 187, 59, 266) @ (266, 204), 138 ms against 44 as one product."""
    y = tf.matmul(tf.reshape(x, [-1, kernel.shape[0]]), kernel)
    return tf.reshape(y, tf.concat([tf.shape(x)[:-1], tf.shape(kernel)[-1:]], axis=0))


def sum_of_taps(taps, kernels) -> tf.Tensor:
    """sum_k taps[k] @ kernels[k], added in tap order, as torch_impl's sum_of_taps adds them (SPEC section 4). TF's
    AddN adds up to 9 inputs left to right in one pass but each further 8 among themselves before they join the sum,
    so the products go in AddNs of 9: the first 9, then the running sum and 8 more (the same passes over the output
    as one AddN). Grappler's arithmetic optimizer sorts an AddN's inputs by name (TF's own put MatMul_10 before
    MatMul_9, in an order that moved whenever the graph gained a matmul elsewhere), so every operand is named for
    its tap, tap0000, tap0001, ..., and the running sum for its last tap: sorted, whatever suffix TF adds to keep
    names unique, they are in tap order."""
    products = [tf.matmul(rows, kernel, name=f"tap{k:04d}") for k, (rows, kernel) in enumerate(zip(taps, kernels))]
    y = tf.add_n(products[:9], name="tap0008_sum")
    for start in range(9, len(products), 8):
        # On (1, rows, out) views: Grappler would merge an AddN into the AddN that reads it, if their shapes matched.
        views = [tf.expand_dims(y, 0, name=f"tap{start - 1:04d}_sum")]
        views += [tf.expand_dims(p, 0, name=f"tap{k:04d}") for k, p in enumerate(products[start : start + 8], start)]
        y = tf.add_n(views, name=f"tap{start + len(views) - 2:04d}_sum")[0]
    return y


class Conv1d(tf.Module):
    """Always VALID: the only padding in the model is explicit (hear_dual.audio.chunk_plan, or a pad layer).

    One matmul per kernel tap, summed, rather than tf.nn.convolution: TF's CPU convolution runs the whole
    kernel_size * in_channels contraction as one float32 running sum, with 4-5x the rounding of torch's
    oneDNN convolution. Trained weights turned that into twice the parity tolerance; per-tap sums match
    torch's rounding at TF's speed (measurements in spec/SPEC.md section 4).

    Its series are time major, (time, batch, channels), in and out (`layout`), as torch_impl's are in memory: a tap's
    rows are then one slice of the input, and the output needs no transpose (HearDualModel.run_encoder). A conv on
    the waveform (one input channel) reads (batch, samples, 1).
    """

    def __init__(self, name, params, stride, dilation):
        super().__init__(name=name)
        kernel = to_tf_layout(f"{name}.weight", params[f"{name}.weight"])
        self.kernel = tf.Variable(kernel, trainable=False, name=f"{name}.weight")
        self.bias = tf.Variable(params[f"{name}.bias"], trainable=False, name=f"{name}.bias")
        self.stride, self.dilation = stride, dilation
        self.layout = "batch" if kernel.shape[1] == 1 else "time"

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        kernel_size = self.kernel.shape[0]
        if self.kernel.shape[1] == 1:
            # A conv on the waveform: K outer products would each round into the sum; gather the K taps and
            # contract them in one matmul instead (SPEC section 4).
            n_out = (tf.shape(x)[1] - self.dilation * (kernel_size - 1) - 1) // self.stride + 1
            if self.dilation == 1 and self.stride > 1 and kernel_size % self.stride == 0:
                # Gathered `stride` samples at a time: position t's taps are rows t, ..., t + K/stride - 1 of the
                # wave cut into rows of `stride` (the same taps in the same order), as the ONNX graph does.
                whole = tf.shape(x)[1] // self.stride * self.stride
                rows = tf.reshape(x[:, :whole, 0], [tf.shape(x)[0], -1, self.stride])
                index = tf.range(n_out)[:, None] + tf.range(kernel_size // self.stride)[None, :]
                taps = tf.reshape(tf.gather(rows, index, axis=1), [tf.shape(x)[0], -1, kernel_size])
            else:
                index = self.stride * tf.range(n_out)[:, None] + self.dilation * tf.range(kernel_size)[None, :]
                taps = tf.gather(x[..., 0], index, axis=1)
            return matmul_rows(taps, self.kernel[:, 0]) + self.bias
        # n_out >= 1 always: chunk_plan sizes every input to at least the receptive field.
        n_out = (tf.shape(x)[0] - self.dilation * (kernel_size - 1) - 1) // self.stride + 1
        # x is (time, batch, channels): at stride 1 a tap's rows are one slice along the first axis, which TF shares
        # instead of copying (each of CREPE's 64 taps copied the layer input: tiny 1.2x, full 1.1x faster).
        rows, batch = x, tf.shape(x)[1]
        if self.stride > 1:
            # Rows in groups of `stride`: tap k's rows are groups k d // s, ..., each at phase k d % s, a slice of
            # whole (batch * channels) rows; TF's strided slice along the first axis took twice as long (base's
            # stride-2 layers; base 1.13x, compact 1.23x end to end). Zero rows complete the last group, never read.
            need = (self.dilation * (kernel_size - 1) // self.stride + n_out) * self.stride
            rows = tf.pad(rows, [[0, tf.maximum(need - tf.shape(rows)[0], 0)], [0, 0], [0, 0]])[:need]
            groups = tf.reshape(rows, [-1, self.stride, batch, tf.shape(x)[2]])
            phases = [divmod(k * self.dilation, self.stride) for k in range(kernel_size)]
            tap_rows = [groups[g : g + n_out, p] for g, p in phases]
        else:
            tap_rows = [rows[k * self.dilation : k * self.dilation + n_out] for k in range(kernel_size)]
        y = sum_of_taps([tf.reshape(rows_k, [-1, self.kernel.shape[1]]) for rows_k in tap_rows],
                        [self.kernel[k] for k in range(kernel_size)])
        return tf.reshape(y, [n_out, batch, -1]) + self.bias


class SkipConv1d(Conv1d):
    """A conv1d over an earlier point of the stream (its source), its windows centred on the stream's own, its
    channels appended after the stream's: a skip connection that needs no padding (SPEC section 4)."""

    def __init__(self, name, params, stride, crop: int):
        super().__init__(name, params, stride, 1)
        self.crop = crop

    def __call__(self, x: tf.Tensor, source: tf.Tensor) -> tf.Tensor:
        kernel_size = self.kernel.shape[0]
        window = source[self.crop : self.crop + self.stride * (tf.shape(x)[0] - 1) + kernel_size]     # time major
        return tf.concat([x, super().__call__(window)], axis=2)


class Conv2d(Conv1d):
    """Explicit zeros around (time, freq), then VALID, computed as conv1d is: one matmul per kernel tap over
    (batch, time, freq, channels), summed in tap order; with one input channel, the taps gathered and contracted
    in one matmul (SPEC section 4)."""

    def __init__(self, name, params, stride, padding):
        super().__init__(name, params, 1, 1)
        self.strides, self.padding = tuple(stride), [[0, 0], *padding, [0, 0]]
        self.layout = "batch"

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        x = tf.pad(x, self.padding)
        (kt, kf, channels, out), (st, sf) = self.kernel.shape, self.strides
        n_t, n_f = (tf.shape(x)[1] - kt) // st + 1, (tf.shape(x)[2] - kf) // sf + 1
        if channels == 1:
            # (batch, n_t, n_f, kt * kf), tap (p, q) at p * kf + q (torch's unfold), by gathers rather than a slice
            # per tap, which made musicnn's graph 22,000 nodes (2,900 taps): a 9 s first call that kept 300 MiB.
            # tf.image.extract_patches copies the same taps 1.3x slower end to end.
            if kf == 1:     # taps along time only: whole rows of the map, the taps moved last (index 3x faster)
                index = st * tf.range(n_t)[:, None] + tf.range(kt)[None, :]
                taps = tf.transpose(tf.gather(x[:, :, : sf * (n_f - 1) + 1 : sf, 0], index, axis=1), [0, 1, 3, 2])
            else:           # runs of kf floats: the flattened map framed kf at a time, then whole frames gathered
                # Tap (p, q) of output (t, f) is element q of the frame starting at (st t + p) width + sf f; a gather
                # of whole frames moves kf floats at a time, where one index per float took 2x as long (musicnn's
                # 7 x 38 layer: 120 -> 55 ms for 12 maps).
                width = tf.shape(x)[2]
                frames = tf.signal.frame(tf.reshape(x, [tf.shape(x)[0], -1]), kf, 1, axis=1)
                index = ((st * tf.range(n_t)[:, None, None] + tf.range(kt)[None, None, :]) * width
                         + sf * tf.range(n_f)[None, :, None])                          # (n_t, n_f, kt)
                taps = tf.reshape(tf.gather(frames, index, axis=1), [tf.shape(x)[0], n_t, n_f, kt * kf])
            return matmul_rows(taps, tf.reshape(self.kernel, [kt * kf, out])) + self.bias
        kernels = [self.kernel[p, q] for p in range(kt) for q in range(kf)]
        if (st, sf) != (1, 1):
            taps = [x[:, p : p + st * (n_t - 1) + 1 : st, q : q + sf * (n_f - 1) + 1 : sf]
                    for p in range(kt) for q in range(kf)]
            # Each tap's rows as one matrix (a 4-D slice would make a BatchMatMul: matmul_rows), the sum shaped back.
            y = sum_of_taps([tf.reshape(rows, [-1, channels]) for rows in taps], kernels)
            return tf.reshape(y, [tf.shape(x)[0], n_t, n_f, out]) + self.bias
        # Stride 1, as torch_impl's tap_sum: with (batch, time, freq, channels) flattened to rows, tap (p, q) of every
        # output (b, t, f) reads one block of rows shifted by p * width + q, a slice TF shares where a 4-D slice per
        # tap was a copy (VGG 1 x 10 s 1.09x). The outputs run over whole rows and maps (those past n_t or n_f wrap
        # around and are dropped): the same sums, in the same order.
        batch, height, width = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
        rows = tf.reshape(x, [-1, channels])
        n_rows = ((batch - 1) * height + n_t - 1) * width + n_f
        y = sum_of_taps([rows[p * width + q :][:n_rows] for p in range(kt) for q in range(kf)], kernels)
        y = tf.pad(y, [[0, batch * height * width - n_rows], [0, 0]])
        return tf.reshape(y, [batch, height, width, out])[:, :n_t, :n_f] + self.bias


class Dense(tf.Module):
    """x W + b, written out (a matmul, then the bias), as torch_impl computes it."""

    def __init__(self, name, params):
        super().__init__(name=name)
        self.kernel = tf.Variable(to_tf_layout(f"{name}.weight", params[f"{name}.weight"]), trainable=False,
                                  name=f"{name}.weight")
        self.bias = tf.Variable(params[f"{name}.bias"], trainable=False, name=f"{name}.bias")

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return matmul_rows(x, self.kernel) + self.bias


class BatchNorm(tf.Module):
    """Inference batch norm written out with the spec's eps (Keras' default eps differs)."""

    layout = "any"      # per channel, the last axis in either layout

    def __init__(self, name, params, eps):
        super().__init__(name=name)
        for p in ("weight", "bias", "running_mean", "running_var"):
            setattr(self, p, tf.Variable(params[f"{name}.{p}"], trainable=False, name=f"{name}.{p}"))
        self.eps = eps

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        # Per-channel scale and shift first, so the per-element work is one multiply and one add; channels are the
        # last axis at any rank, so both broadcast.
        scale = self.weight / tf.sqrt(self.running_var + self.eps)
        shift = self.bias - self.running_mean * scale
        return x * scale + shift


class GELU(tf.Module):
    """The spec's formulas written out: tf.nn.gelu's exact variant uses erfc, which differs from torch's erf
    form in rounding and which tf2onnx cannot export."""

    layout = "any"

    def __init__(self, name, approximate: str):
        super().__init__(name=name)
        self.approximate = approximate

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        if self.approximate == "tanh":
            return 0.5 * x * (1.0 + tf.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))
        return 0.5 * x * (1.0 + tf.math.erf(x * math.sqrt(0.5)))


class ReLU(tf.Module):
    layout = "any"

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return tf.nn.relu(x)


class Pad(tf.Module):
    """Explicit zeros on both ends of the time axis (axis 1)."""

    def __init__(self, name, left: int, right: int):
        super().__init__(name=name)
        self.left, self.right = left, right

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return tf.pad(x, [[0, 0], [self.left, self.right]] + [[0, 0]] * (x.shape.rank - 2))


class MaxPool1d(tf.Module):
    """VALID: windows that do not fit are dropped, never padded."""

    def __init__(self, name, kernel_size: int, stride: int):
        super().__init__(name=name)
        self.kernel_size, self.stride = kernel_size, stride

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return tf.nn.max_pool1d(x, self.kernel_size, self.stride, "VALID")


class MaxPool2d(MaxPool1d):
    """VALID over (time, freq)."""

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return tf.nn.max_pool2d(x, self.kernel_size, self.stride, "VALID")


class Reduce(tf.Module):
    """max or mean over freq (axis 2 of a map) or time (axis 1 of a time series); a mean is accumulated in
    float64, so its order of summation cannot matter."""

    def __init__(self, name, kind: str):
        super().__init__(name=name)
        self.kind = kind

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        if self.kind == "max":
            return tf.reduce_max(x, axis=-2)
        return tf.cast(tf.reduce_mean(tf.cast(x, tf.float64), axis=-2), tf.float32)


class Flatten(tf.Module):
    """channel_major: element (c * T + t) * F + f, torch's memory order, so the channels move first here;
    channel_last: (t * F + f) * C + c, TF's own."""

    def __init__(self, name, order: str):
        super().__init__(name=name)
        self.order = order

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        if self.order == "channel_major":
            x = tf.transpose(x, [0, x.shape.rank - 1] + list(range(1, x.shape.rank - 1)))
        return tf.reshape(x, [tf.shape(x)[0], -1])


class Concat(tf.Module):
    """Along channels, in the listed order."""

    layout = "any"

    def __call__(self, *xs: tf.Tensor) -> tf.Tensor:
        return tf.concat(xs, axis=-1)


class Add(tf.Module):
    """Element-wise, in the listed order."""

    layout = "any"

    def __call__(self, *xs: tf.Tensor) -> tf.Tensor:
        y = xs[0]
        for x in xs[1:]:
            y = y + x
        return y


def make_layer(layer, params, spec: Spec) -> tf.Module:
    if layer.op == "conv1d":
        return Conv1d(layer.name, params, layer.stride, layer.dilation)
    if layer.op == "skip_conv1d":
        return SkipConv1d(layer.name, params, layer.stride, spec.skip_crops[layer.name])
    if layer.op == "conv2d":
        return Conv2d(layer.name, params, layer.stride, layer.padding)
    if layer.op == "dense":
        return Dense(layer.name, params)
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
    if layer.op == "maxpool2d":
        return MaxPool2d(layer.name, layer.kernel_size, layer.stride)
    if layer.op == "reduce":
        return Reduce(layer.name, layer.kind)
    if layer.op == "flatten":
        return Flatten(layer.name, layer.order)
    if layer.op == "concat":
        return Concat(name=layer.name)
    if layer.op == "add":
        return Add(name=layer.name)
    raise ValueError(f"op {layer.op!r} is not implemented by the TensorFlow backend")


def make_frontend(spec: Spec, constants: dict | None) -> tf.Module:
    if spec.is_framed:
        return WaveformFrames(spec)
    return (MelPatches if spec.is_patched else LogMel)(spec, constants)


# A framed model whose frame costs less arithmetic than this runs TF's ops too small to pay their fixed cost.
LIGHT_FRAME_FLOPS = 1e9


def chunk_budget(spec: Spec) -> int:
    """Floats in a layer's output per chunk (hear_dual.audio.embedding_plan). TF pays a fixed cost for every op it
    runs, and a framed model's chunk runs hundreds of small per-tap matmuls (CREPE's five conv1d layers: 320), so a
    light framed model's chunks hold 4x the shared budget: CREPE tiny (0.07 GFLOP a frame) 63.8x real time on 4 x 10 s
    at 1x, 72.5x at 2x, 80.3x at 4x. CREPE full's frames (2.7 GFLOP) make large ops at any budget: 11.28, 11.52 and
    11.30 s a call at 1x, 2x and 4x, while 4x held 20 minutes at 1225 MiB (a minute: 986 MiB at 4x, 741 at 1x); it
    keeps the shared budget, as the patch models do (with 4x, 20 minutes of musicnn would peak at 1254 MiB)."""
    frame_flops = spec.flops_per_second * spec.frontend["hop_length"] / spec.sample_rate
    light = spec.is_framed and frame_flops < LIGHT_FRAME_FLOPS
    return 4 * CHUNK_ACTIVATION_FLOATS if light else CHUNK_ACTIVATION_FLOATS


def to_layout(x: tf.Tensor, layout: str, want: str) -> tf.Tensor:
    """A series (batch, time, channels) as (time, batch, channels), or back."""
    return x if layout == want else tf.transpose(x, [1, 0, 2])


class HearDualModel(tf.Module):
    """Maps a padded audio chunk (batch, samples) to timestamp embeddings (batch, n_outputs, D)."""

    def __init__(self, spec: Spec, params: dict, chunk_timestamps: int | None = None, constants: dict | None = None):
        super().__init__(name=spec.name.replace("-", "_"))
        self.spec = spec
        self.sample_rate = spec.sample_rate
        self.timestamp_embedding_size = spec.timestamp_embedding_size
        self.scene_embedding_size = spec.scene_embedding_size
        self.chunk_timestamps = chunk_timestamps
        self.frontend = make_frontend(spec, constants)
        self.layers = [make_layer(layer, params, spec) for layer in spec.layers]
        # One trace serves every batch size and length: both dimensions are left unknown. No autograph: the model's
        # Python has no control flow on tensors to convert, and converting it took most of the first call (base:
        # 2.0 s, 0.84 s without; the same graph, the same bits).
        self.encode = tf.function(self.forward, input_signature=[tf.TensorSpec([None, None], tf.float32, name="audio")],
                                  reduce_retracing=True, autograph=False)

    def forward(self, audio: tf.Tensor) -> tf.Tensor:
        return self.frontend.to_embeddings(self.run_encoder(self.frontend(audio)), tf.shape(audio)[0])

    def run_encoder(self, x: tf.Tensor) -> tf.Tensor:
        """The encoder on the frontend's output, each layer on the points it reads (SPEC section 2, rule 7b).

        Each point is kept with its layout: a conv1d reads and writes time major series, element-wise layers keep
        the layout they are given, and a series is transposed only where a layer needs the other one (and at the
        end). Base's conv1d layers, transposing in and out, spent a tenth of a call on the copies."""
        kept, previous = self.spec.kept_points, "frontend"
        here = (x, "batch")
        points = {"frontend": here} if "frontend" in kept else {}     # only what a later layer reads, while it does
        for layer in self.layers:
            inputs = [here if point == previous else points[point] for point in self.spec.layer_inputs[layer.name]]
            layout = getattr(layer, "layout", "batch")
            if layout == "any":
                layout = "time" if all(major == "time" for _, major in inputs) else "batch"
            here = (layer(*[to_layout(t, major, layout) for t, major in inputs]), layout)
            points |= {layer.name: here} if layer.name in kept else {}
            for point in [p for p, last in kept.items() if last == layer.name]:
                del points[point]
            previous = layer.name
        return to_layout(*here, "batch")


def load_model(model_file_path: str = "") -> HearDualModel:
    """The HEAR 2021 entry point: the model of a checkpoint file, of a model's short name ("base", "compact",
    "crepe-tiny", "musicnn-mtt", ...; those converted from another package's weights are converted on first use), or
    of the shipped default ("") as a tf.Module, with sample_rate, timestamp_embedding_size and
    scene_embedding_size."""
    # TensorFlow runs float32 matmuls and convolutions on GPUs in TF32 by default (10 mantissa bits, ~3e-4
    # relative error); it has no scoped switch, so loading a model turns it off for the process. No effect on CPUs.
    tf.config.experimental.enable_tensor_float_32_execution(False)
    checkpoint = read_checkpoint(resolve(model_file_path))     # a path or a model's name, converted on first use
    model = HearDualModel(checkpoint.spec, checkpoint.params, constants=checkpoint.constants)
    model.checkpoint_path = checkpoint.path
    model.checkpoint_sha256 = checkpoint.sha256
    return model
