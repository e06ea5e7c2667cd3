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

from hear_dual.spec import Spec, SpecError


def hann_periodic(length: int) -> np.ndarray:
    n = np.arange(length, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / length)


def windowed_dft_matrix(win_length: int, n_fft: int) -> np.ndarray:
    """(win_length, 2 * n_bins): columns [0, n_bins) give Re, [n_bins, 2 n_bins) give Im of the DFT."""
    n = np.arange(win_length)[:, None]
    k = np.arange(n_fft // 2 + 1)[None, :]
    # Reduce n*k modulo n_fft in integers first: the angle stays exact for long windows.
    angle = 2.0 * np.pi * ((n * k) % n_fft) / n_fft
    window = hann_periodic(win_length)[:, None]
    return np.concatenate([window * np.cos(angle), -window * np.sin(angle)], axis=1)


def hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float,
                   norm: str = "slaney") -> np.ndarray:
    """(n_bins, n_mels) triangles linear in Hz, corners equally spaced on the HTK mel scale."""
    bin_hz = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    corners = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    lower, centre, upper = corners[:-2], corners[1:-1], corners[2:]
    rising = (bin_hz[:, None] - lower) / (centre - lower)
    falling = (upper - bin_hz[:, None]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    if norm == "slaney":
        weights *= 2.0 / (upper - lower)
    empty = np.flatnonzero(weights.sum(axis=0) == 0)
    if empty.size:
        raise SpecError(f"mel bands {empty.tolist()} contain no DFT bin: use fewer mels, a larger n_fft "
                        "or a higher f_min")
    return weights


@lru_cache(maxsize=8)
def _frontend_constants(spec_json: str) -> dict[str, np.ndarray]:
    spec = Spec.from_json(spec_json)
    if spec.is_framed:
        return {}       # waveform frames multiply by nothing fixed: their only numbers are in the spec
    fe = spec.frontend
    dft = windowed_dft_matrix(fe["win_length"], fe["n_fft"])
    mel = mel_filterbank(spec.sample_rate, fe["n_fft"], fe["n_mels"], fe["f_min"], fe["f_max"], fe["mel_norm"])
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


# --- framing, padding, chunking, timestamps -------------------------------------------------------

def num_timestamps(spec: Spec, n_samples: int, hop: int | None = None) -> int:
    """Timestamps at 0, hop, 2 hop, ...: log-mel, up to the last one not after the final sample; waveform frames,
    every frame that fits in the clip padded by pad_left and pad_right zeros (SPEC section 5). hop defaults to
    the timestamp hop (the scene hop of a waveform spec is the other one)."""
    hop = hop or spec.hop_samples
    if n_samples <= 0:
        return 0
    if spec.is_framed:
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
CHUNK_ACTIVATION_FLOATS = 64 * 2**20     # waveform family: the widest activation of a chunk, 256 MiB of float32


def auto_chunk_timestamps(spec: Spec, n_sounds: int, hop: int | None = None) -> int:
    """Timestamps per sound per chunk: about 2 minutes of audio across the batch, at most 30 s per sound,
    at least 1 s; for waveform frames also at most CHUNK_ACTIVATION_FLOATS in a layer's output. Bounds memory
    for any batch and length; results do not depend on it (chunking is exact)."""
    per_second = spec.sample_rate / (hop or spec.hop_samples)
    per_sound = CHUNK_SECONDS_PER_BATCH * per_second / max(1, n_sounds)
    chunk = int(min(MAX_CHUNK_SECONDS_PER_SOUND * per_second, max(per_second, per_sound)))
    if spec.is_framed:
        chunk = min(chunk, CHUNK_ACTIVATION_FLOATS // (max(1, n_sounds) * spec.frame_activation_floats))
    return max(1, chunk)


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


def frame_groups(spec: Spec, n_samples: int, n_sounds: int, hop: int) -> list[list[Chunk]]:
    """A waveform spec at a hop other than its frontend's (its scene hop): one-output chunks, each exactly one
    frame of the padded signal, grouped so that a group's frames, run as rows of one batch, fit the chunk budget."""
    if not spec.is_framed:
        raise ValueError(f"{spec.name}: only a waveform_frames spec embeds at a hop other than its own")
    chunks = chunk_plan(spec, n_samples, 1, hop)
    size = auto_chunk_timestamps(spec, n_sounds, hop)
    return [chunks[i : i + size] for i in range(0, len(chunks), size)]
