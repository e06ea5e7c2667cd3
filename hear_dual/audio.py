"""Frontend constants and index math, in numpy float64, shared by every backend.

Nothing here imports a deep-learning framework. The window, the windowed DFT matrix and the mel
filterbank are computed once in float64 from the spec and cast once to the spec's frontend precision,
and stored in every checkpoint; a loaded model's backends all multiply by its checkpoint's stored
arrays, so within a process they are bit-identical. Padding, chunking and timestamps are integer arithmetic on
sample counts, so no backend can drift from another at any length.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from hear_dual.dsp import mel_filterbank, windowed_dft_matrix
from hear_dual.spec import Spec


@lru_cache(maxsize=8)
def _frontend_constants(spec_json: str) -> dict[str, np.ndarray]:
    spec = Spec.from_json(spec_json)
    if spec.is_framed:
        return {}       # waveform frames multiply by nothing fixed: their only numbers are in the spec
    fe = spec.frontend
    dft = windowed_dft_matrix(fe["win_length"], fe["n_fft"])
    mel = mel_filterbank(spec.sample_rate, fe["n_fft"], fe["n_mels"], fe["f_min"], fe["f_max"], fe["mel_norm"],
                         fe["mel_scale"])
    dtype = np.dtype(fe["precision"])
    constants = {"frontend.dft": dft.astype(dtype), "frontend.mel": mel.astype(dtype)}
    for array in constants.values():
        array.setflags(write=False)
    return constants


def frontend_constants(spec: Spec) -> dict[str, np.ndarray]:
    """The spec's constants (in frontend.precision) computed on this machine, keyed by checkpoint name.

    A loaded model multiplies by its checkpoint's stored constants instead (SPEC section 7): numpy's float64
    sin, cos, log10 and power round differently per CPU, so a recomputation may differ by an ulp. These are
    what export writes and what the reader checks stored constants against, within a bound."""
    return _frontend_constants(spec.to_json())


def frontend_window(dft: np.ndarray) -> np.ndarray:
    """The analysis window, read off the stored windowed DFT matrix: its column 0 is w[n] * cos(0) = w[n], exactly."""
    window = dft[:, 0].copy()
    window.setflags(write=False)
    return window


@dataclass(frozen=True)
class DftFold:
    """The windowed DFT folded by the window's symmetry (SPEC section 3): with head = frames[..., 1 : half + 1]
    and tail = frames[..., tail_index], re = (head + tail) @ even and im = (head - tail) @ odd."""
    tail_index: np.ndarray     # int64 (half,): N - n for n = 1..half
    even: np.ndarray           # (half, n_bins), rows 1..half of D's real part; the self-paired row N/2 halved
    odd: np.ndarray            # (half, n_bins), rows 1..half of D's imaginary part

    @property
    def half(self) -> int:
        return self.tail_index.size


def dft_fold(dft: np.ndarray) -> DftFold:
    """Half the DFT's multiply-adds with rows of the same constant D (win_length, 2 * n_bins). Exact because
    the periodic Hann window has w[0] = 0 and w[n] = w[N - n], and cos / sin are even / odd in n -> N - n."""
    n, n_bins = dft.shape[0], dft.shape[1] // 2
    half = n // 2
    even = dft[1 : half + 1, :n_bins].copy()
    if n % 2 == 0:
        even[-1] /= 2      # x[N/2] pairs with itself: head + tail = 2 x[N/2]; halving is exact
    odd = dft[1 : half + 1, n_bins:].copy()
    fold = DftFold(np.arange(n - 1, n - 1 - half, -1, dtype=np.int64), even, odd)
    for array in (fold.tail_index, fold.even, fold.odd):
        array.setflags(write=False)
    return fold


@dataclass(frozen=True)
class DftStages:
    """The DFT of a frame of N = n1 * n2 samples in two stages of small products (SPEC section 3, "The two-stage
    DFT"): one radix-n1 step of Cooley-Tukey, with sample n = n1 * j + r (j < n2, r < n1). Stage 1 takes, for each r,
    the n2-point DFT of x[n1 j + r] at k2 = 0..n2 // 2 (a real input's other half is its conjugate); stage 2 maps
    those to X[k], k = 0..n_bins - 1, each k from the stage-1 group k2 = k mod n2 or n2 - (k mod n2), in one of
    `slots` places per group. Rows j of stage 1 are ordered (q, i) for the frame's i-th hop-sized block and q < hop
    // n1, so that the graph gathers them from the blocks without a copy per frame."""
    n1: int
    order: np.ndarray          # int64 (n2,): j at stage-1 row q * blocks_per_frame + i
    cos: np.ndarray            # (groups, n2): cos(2 pi j k2 / n2), columns in `order`
    sin: np.ndarray            # (groups, n2): -sin(2 pi j k2 / n2), columns in `order`
    stage2: np.ndarray         # (4, groups, n1, slots): re from re, re from im, im from re, im from im
    bins: np.ndarray           # int64 (groups * slots,): the bin k each output slot holds, -1 for none


@lru_cache(maxsize=8)
def dft_stages(n: int, hop: int, n_bins: int) -> DftStages | None:
    """The two stages for frames of n samples at this hop, or None where no n1 fits: n1 is the largest power of two
    dividing both n and hop with n1 * n1 <= n, and at least 8 (base and musicnn: 16, with 3.6 and 3.8 times fewer
    multiply-adds than the folded product). Computed once per shape; the arrays are read-only."""
    n1 = 1
    while n % hop == 0 and n % (2 * n1) == 0 and hop % (2 * n1) == 0 and (2 * n1) ** 2 <= n:
        n1 *= 2
    if n1 < 8:
        return None
    n2, blocks_per_frame = n // n1, n // hop
    groups = n2 // 2 + 1
    order = (np.arange(blocks_per_frame)[None, :] * (hop // n1) + np.arange(hop // n1)[:, None]).reshape(-1)
    angle = 2.0 * np.pi * ((order[None, :] * np.arange(groups)[:, None]) % n2) / n2     # reduced in integers
    members = [[k for k in range(n_bins) if k % n2 in (g, (n2 - g) % n2)] for g in range(groups)]
    slots = max(len(m) for m in members)
    stage2 = np.zeros((4, groups, n1, slots))
    bins = np.full((groups, slots), -1, dtype=np.int64)
    r = np.arange(n1)
    for g, ks in enumerate(members):
        for s, k in enumerate(ks):
            theta = 2.0 * np.pi * ((r * k) % n) / n       # X[k] = sum_r e^{-i theta} V_r[k mod n2], V_r = a + ib
            sign = 1.0 if k % n2 == g else -1.0            # V_r[n2 - g] = conj(V_r[g])
            cos, sin = np.cos(theta), np.sin(theta)
            stage2[:, g, :, s] = cos, sign * sin, -sin, sign * cos
            bins[g, s] = k
    tables = DftStages(n1, order, np.cos(angle), -np.sin(angle), stage2, bins.reshape(-1))
    for array in (tables.order, tables.cos, tables.sin, tables.stage2, tables.bins):
        array.setflags(write=False)
    return tables


# Silent frames (SPEC section 3): a backend looks for them among the first and the last SILENT_SCAN_BLOCKS hop-sized
# blocks of a chunk, where the plan's padding (base: 36 blocks a side) and a batch's shorter clips' zeros lie; scanning
# a whole 30 s chunk cost 2-5% of the frontend for frames it never finds.
SILENT_SCAN_BLOCKS = 256

# A CPU backend takes the frontend's frames through the FFT, the power and the mel matrix FRONTEND_FRAMES at a time, so
# the float64 temporaries (256 frames of 480 samples: 1 MiB) stay in cache; each frame's power is computed as it would
# be alone, so the block size never changes a bit (torch_impl: 2.7 to 4x faster frontend, tf_impl 2 to 2.7x).
FRONTEND_FRAMES = 256

# --- framing, padding, chunking, timestamps -------------------------------------------------------

def num_timestamps(spec: Spec, n_samples: int, hop: int | None = None) -> int:
    """Timestamps at 0, hop, 2 hop, ...: log-mel, up to the last one not after the final sample; waveform frames,
    every frame that fits in the clip padded by pad_left and pad_right zeros (SPEC section 5). hop defaults to
    the timestamp hop (the scene hop of a waveform spec is the other one)."""
    hop = hop or spec.hop_samples
    if n_samples <= 0:
        return 0
    if spec.is_framed or spec.is_patched:
        return (n_samples + spec.pad_right - spec.pad_left) // hop + 1
    return (n_samples - 1) // hop + 1


def timestamps_ms(spec: Spec, n_samples: int, hop: int | None = None) -> np.ndarray:
    """float32 milliseconds, each computed from its own index (no accumulated rounding)."""
    hop = hop or spec.hop_samples
    k = np.arange(num_timestamps(spec, n_samples, hop), dtype=np.float64)
    return (k * hop * 1000.0 / spec.sample_rate).astype(np.float32)


def padded_input_length(spec: Spec, n_outputs: int, hop: int | None = None) -> int:
    """Samples of (padded) audio the encoder needs to produce exactly n_outputs embeddings."""
    return (hop or spec.hop_samples) * (n_outputs - 1) + spec.receptive_field_samples


MAX_CHUNK_SECONDS_PER_SOUND = 30.0
CHUNK_SECONDS_PER_BATCH = 120.0
# The framed families' widest layer output per chunk: 16 MiB of float32. Smaller chunks stay in cache between ops and
# reuse the allocator's memory instead of mapping fresh pages for every op; measured against 2^26 (torch, 4 x 10 s,
# 2026-12-06): musicnn 40x -> 56x real time, vgg 1.2x -> 1.5x, CREPE tiny no slower; TF and ONNX Runtime unchanged.
CHUNK_ACTIVATION_FLOATS = 2**22


def auto_chunk_timestamps(spec: Spec, n_sounds: int, hop: int | None = None,
                          activation_floats: int = CHUNK_ACTIVATION_FLOATS) -> int:
    """Timestamps per sound per chunk: about 2 minutes of audio across the batch, at most 30 s per sound,
    at least 1 s; for the framed families also at most activation_floats in a layer's output (a backend may ask
    for its own budget). Bounds memory for any batch and length; results do not depend on it (chunking is exact)."""
    per_second = spec.sample_rate / (hop or spec.hop_samples)
    per_sound = CHUNK_SECONDS_PER_BATCH * per_second / max(1, n_sounds)
    chunk = int(min(MAX_CHUNK_SECONDS_PER_SOUND * per_second, max(per_second, per_sound)))
    if spec.is_framed or spec.is_patched:
        chunk = min(chunk, units_per_chunk(spec, n_sounds, activation_floats))
    return max(1, chunk)


def sounds_per_step(spec: Spec, n_sounds: int, activation_floats: int = CHUNK_ACTIVATION_FLOATS) -> int:
    """Sounds embedded together: all of them, except where a framed family's unit is so large that one unit of each
    would pass activation_floats in a layer's output: then as many as fit, at least one."""
    if not (spec.is_framed or spec.is_patched):
        return max(1, n_sounds)
    return max(1, min(n_sounds, activation_floats // spec.frame_activation_floats))


def units_per_chunk(spec: Spec, n_sounds: int, activation_floats: int = CHUNK_ACTIVATION_FLOATS) -> int:
    """Units (frames, patches) of every sound that one chunk may hold: a layer's output stays under
    activation_floats, however wide the model."""
    return max(1, activation_floats // (max(1, n_sounds) * spec.frame_activation_floats))


@dataclass(frozen=True)
class Chunk:
    """Timestamps [out_start, out_stop) come from audio[src_start:src_stop] with explicit zero padding."""
    out_start: int
    out_stop: int
    src_start: int
    src_stop: int
    pad_left: int
    pad_right: int

    @property
    def n_outputs(self) -> int:
        return self.out_stop - self.out_start

    @property
    def input_length(self) -> int:
        return self.pad_left + (self.src_stop - self.src_start) + self.pad_right


def chunk_plan(spec: Spec, n_samples: int, chunk_timestamps: int, hop: int | None = None) -> list[Chunk]:
    """Split a clip into chunks of at most chunk_timestamps outputs with receptive-field overlap.

    Output k sees padded samples [k * hop, k * hop + receptive_field), and the padded signal is the clip
    with spec.pad_left zeros before it and zeros after it. So every chunk is an exact slice of that
    padded signal: chunked and whole-clip results are the same computation.
    """
    if chunk_timestamps < 1:
        raise ValueError(f"chunk_timestamps must be >= 1, got {chunk_timestamps}")
    hop = hop or spec.hop_samples
    total = num_timestamps(spec, n_samples, hop)
    chunks = []
    for out_start in range(0, total, chunk_timestamps):
        out_stop = min(out_start + chunk_timestamps, total)
        begin = out_start * hop - spec.pad_left      # in clip coordinates
        end = begin + padded_input_length(spec, out_stop - out_start, hop)
        src_start, src_stop = max(begin, 0), min(end, n_samples)
        chunks.append(Chunk(out_start, out_stop, src_start, src_stop,
                            pad_left=src_start - begin, pad_right=end - src_stop))
    return chunks


def frame_groups(spec: Spec, n_samples: int, n_sounds: int, hop: int,
                 activation_floats: int = CHUNK_ACTIVATION_FLOATS) -> list[list[Chunk]]:
    """A waveform spec at a hop other than its frontend's (its scene hop): one-output chunks, each exactly one
    frame of the padded signal, grouped so that a group's frames, run as rows of one batch, fit the chunk budget."""
    if not spec.is_framed:
        raise ValueError(f"{spec.name}: only a waveform_frames spec embeds at a hop other than its own")
    chunks = chunk_plan(spec, n_samples, 1, hop)
    size = auto_chunk_timestamps(spec, n_sounds, hop, activation_floats)
    return [chunks[i : i + size] for i in range(0, len(chunks), size)]


# --- the log-mel patch family (SPEC section 5, "Patches") -------------------------------------------------------

def frame_span(spec: Spec, first: int, stop: int, n_samples: int) -> Chunk:
    """The audio of log-mel frames first .. stop - 1 (any integers: frames before 0 or after the clip read zeros):
    frame j is centred on clip sample j * hop_length, as librosa's centred frames are. Outputs are left unset."""
    fe = spec.frontend
    begin = first * fe["hop_length"] - fe["win_length"] // 2
    end = (stop - 1) * fe["hop_length"] + fe["win_length"] // 2
    if end <= 0 or begin >= n_samples:      # nothing of the clip: all zeros
        return Chunk(0, 0, 0, 0, pad_left=end - begin, pad_right=0)
    src_start, src_stop = max(begin, 0), min(end, n_samples)
    return Chunk(0, 0, src_start, src_stop, pad_left=src_start - begin, pad_right=end - src_stop)


def num_tiles(spec: Spec, n_samples: int) -> int:
    """Patches that tile the clip from frame 0, the last one zero-padded: ceil(frames / patch_frames)."""
    frames = num_timestamps(spec, n_samples, spec.frontend["hop_length"])
    return -(-frames // spec.frontend["patch_frames"])


def tile_groups(spec: Spec, n_samples: int, n_sounds: int, size: int | None = None,
                activation_floats: int = CHUNK_ACTIVATION_FLOATS) -> list[list[Chunk]]:
    """The tiled patches of a clip, each a one-patch chunk (patch t = frames [P t, P t + P)), in groups of `size`
    (default: what fits the chunk budget). Outputs count the encoder's outputs per patch: P for a per-frame spec,
    1 otherwise."""
    frames, per_tile = spec.frontend["patch_frames"], spec.frontend["patch_frames"] if spec.per_frame else 1
    chunks = []
    for t in range(num_tiles(spec, n_samples)):
        span = frame_span(spec, t * frames, (t + 1) * frames, n_samples)
        chunks.append(Chunk(t * per_tile, (t + 1) * per_tile, span.src_start, span.src_stop, span.pad_left,
                            span.pad_right))
    most = units_per_chunk(spec, n_sounds, activation_floats)
    size = min(size or most, most)
    return [chunks[i : i + size] for i in range(0, len(chunks), size)]


@dataclass(frozen=True)
class Plan:
    """How a backend embeds a batch: `steps` in order, each a Chunk (one padded slice of the clips, several outputs)
    or a list of Chunks (units run as rows of one batch); `n_outputs` embeddings per sound in all, of which the
    first `n_timestamps` are timestamp embeddings; scenes pool groups of `tile` consecutive outputs (SPEC 6). The
    steps run on `sounds` sounds at a time (all of them unless a framed family's units are large)."""
    steps: list
    n_outputs: int
    n_timestamps: int
    tile: int
    sounds: int


def embedding_plan(spec: Spec, n_samples: int, n_sounds: int, scene: bool = False,
                   chunk_timestamps: int | None = None, activation_floats: int = CHUNK_ACTIVATION_FLOATS) -> Plan:
    """The one plan every backend follows for timestamp embeddings (scene=False) or the embeddings a scene pools
    (scene=True): chunks of the padded clip where outputs share their input, rows where each output has its own
    unit (a waveform spec's scene hop, the tiled patches of the patch family)."""
    sounds = sounds_per_step(spec, n_sounds, activation_floats)
    if spec.is_patched and (scene or spec.per_frame):
        groups = tile_groups(spec, n_samples, sounds, chunk_timestamps, activation_floats)
        n_outputs = groups[-1][-1].out_stop if groups else 0
        per_tile = spec.frontend["patch_frames"] if spec.per_frame else 1
        return Plan(groups, n_outputs, num_timestamps(spec, n_samples) if not scene else n_outputs, per_tile, sounds)
    hop = spec.scene_hop_samples if scene else spec.hop_samples
    n_out = num_timestamps(spec, n_samples, hop)
    if hop != spec.hop_samples:
        return Plan(frame_groups(spec, n_samples, sounds, hop, activation_floats), n_out, n_out, max(1, n_out), sounds)
    size = chunk_timestamps or auto_chunk_timestamps(spec, sounds, hop, activation_floats)
    return Plan(chunk_plan(spec, n_samples, size, hop), n_out, n_out, max(1, n_out), sounds)
