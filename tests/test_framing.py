"""Framing, padding, chunking and timestamp arithmetic: exact at every length, no drift."""

import numpy as np
import pytest

from hear_dual.audio import chunk_plan, num_timestamps, padded_input_length, timestamps_ms

TWENTY_MINUTES = 20 * 60 * 16000


@pytest.mark.parametrize("n_samples, expected", [
    (1, 1), (639, 1), (640, 1), (641, 2), (1280, 2), (1281, 3), (16000, 25), (16001, 26),
    (TWENTY_MINUTES, 30000),
])
def test_number_of_timestamps(spec, n_samples, expected):
    assert spec.hop_samples == 640
    assert num_timestamps(spec, n_samples) == expected


@pytest.mark.parametrize("n_samples", [1, 100, 639, 640, 641, 12800, 12801, 16000 * 7 + 3, TWENTY_MINUTES])
def test_timestamps_are_exact_multiples_of_the_hop(spec, n_samples):
    ts = timestamps_ms(spec, n_samples)
    assert ts.dtype == np.float32 and ts[0] == 0.0
    k = np.arange(ts.size)
    # 40 ms is exact in float32 at every index up to 20 minutes: no accumulated drift at all.
    np.testing.assert_array_equal(ts, (k * 40).astype(np.float32))
    last = float(ts[-1])  # compare in float64: NumPy 2 would compare a float32 against a Python float in float32
    assert last <= 1000.0 * (n_samples - 1) / spec.sample_rate          # centred on a real sample
    assert last > 1000.0 * (n_samples - 1) / spec.sample_rate - spec.hop_ms  # every sample within a hop


def test_no_drift_at_twenty_minutes(spec):
    ts = timestamps_ms(spec, TWENTY_MINUTES)
    assert ts[-1] == 1_199_960.0
    assert np.all(np.diff(ts) == 40.0)


@pytest.mark.parametrize("n_samples", [1, 500, 640, 641, 16000, 43840, 96001])
@pytest.mark.parametrize("chunk_timestamps", [1, 7, 25, 10**9])
def test_chunks_tile_the_padded_signal(spec, n_samples, chunk_timestamps):
    chunks = chunk_plan(spec, n_samples, chunk_timestamps)
    assert chunks[0].out_start == 0 and chunks[-1].out_stop == num_timestamps(spec, n_samples)
    for a, b in zip(chunks, chunks[1:]):
        assert a.out_stop == b.out_start
    for c in chunks:
        assert c.input_length == padded_input_length(spec, c.n_outputs)
        assert c.input_length % spec.frontend["hop_length"] == 0
        assert min(c.pad_left, c.pad_right, c.src_start) >= 0 and c.src_stop <= n_samples
        # Output k's window [k*hop - pad_left, ... + receptive field) is centred on sample k*hop.
        begin = c.src_start - c.pad_left
        assert begin == c.out_start * spec.hop_samples - spec.pad_left
        assert begin + spec.receptive_field_samples / 2 == c.out_start * spec.hop_samples


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_embeddings_are_centred_on_their_timestamps(backend, spec, backends):
    """An impulse at sample s changes exactly the embeddings whose window contains s, symmetrically."""
    module, model = backends[backend]
    n, k0 = 100 * 640, 50
    silence = np.zeros((1, n), np.float32)
    click = silence.copy()
    click[0, k0 * spec.hop_samples] = 1.0
    base = np.asarray(module.get_timestamp_embeddings(silence, model)[0])[0]
    hit = np.asarray(module.get_timestamp_embeddings(click, model)[0])[0]
    changed = np.flatnonzero(np.abs(hit - base).max(axis=1) > 1e-4)
    assert changed.size and changed.min() + changed.max() == 2 * k0
    reach = (spec.receptive_field_samples // 2) // spec.hop_samples
    assert k0 - reach <= changed.min() and changed.max() <= k0 + reach


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_delaying_audio_by_one_hop_shifts_embeddings_by_one(backend, spec, backends):
    module, model = backends[backend]
    audio = np.random.default_rng(3).uniform(-0.5, 0.5, (2, 20000)).astype(np.float32)
    delayed = np.pad(audio, ((0, 0), (spec.hop_samples, 0)))
    a = np.asarray(module.get_timestamp_embeddings(audio, model)[0])
    b = np.asarray(module.get_timestamp_embeddings(delayed, model)[0])
    assert b.shape[1] == a.shape[1] + 1
    scale = max(1.0, np.abs(a).max())
    assert np.abs(b[:, 1:] - a).max() <= spec.tolerance * scale
