"""The log-mel frontend of each backend against an independent float64 reference (np.fft + librosa)."""

import numpy as np
import pytest

from hear_dual.audio import chunk_plan, frontend_constants
from hear_dual.dsp import hann_periodic
from hear_dual.signals import SIGNAL_KINDS, signal_batch

librosa = pytest.importorskip("librosa")
scipy_signal = pytest.importorskip("scipy.signal")


def reference_log_mel(padded: np.ndarray, spec) -> np.ndarray:
    """(batch, frames, n_mels) in float64, written without any hear_dual constant."""
    fe = spec.frontend
    frames = np.lib.stride_tricks.sliding_window_view(padded.astype(np.float64), fe["win_length"], axis=1)
    frames = frames[:, :: fe["hop_length"]]
    window = scipy_signal.get_window("hann", fe["win_length"], fftbins=True)
    power = np.abs(np.fft.rfft(frames * window, n=fe["n_fft"], axis=-1)) ** 2
    mel = librosa.filters.mel(sr=spec.sample_rate, n_fft=fe["n_fft"], n_mels=fe["n_mels"], fmin=fe["f_min"],
                              fmax=fe["f_max"], htk=True, norm="slaney", dtype=np.float64)
    return np.log(power @ mel.T + fe["log_offset"])


def padded_clip(spec, kind, n):
    audio = signal_batch(kind, 2, n, spec.sample_rate, seed=5)
    chunk, = chunk_plan(spec, n, chunk_timestamps=10**9)
    return np.pad(audio, ((0, 0), (chunk.pad_left, chunk.pad_right)))


def test_constants_match_independent_definitions(spec):
    fe = spec.frontend
    constants = frontend_constants(spec)
    np.testing.assert_allclose(hann_periodic(fe["win_length"]),
                               scipy_signal.get_window("hann", fe["win_length"], fftbins=True), rtol=0, atol=1e-15)
    mel = librosa.filters.mel(sr=spec.sample_rate, n_fft=fe["n_fft"], n_mels=fe["n_mels"], fmin=fe["f_min"],
                              fmax=fe["f_max"], htk=True, norm="slaney", dtype=np.float64)
    np.testing.assert_allclose(constants["frontend.mel"], mel.T, rtol=1e-12, atol=1e-15)
    # The DFT matrix applied to a frame gives the windowed rfft.
    frame = np.random.default_rng(0).standard_normal(fe["win_length"])
    spectrum = np.fft.rfft(frame * hann_periodic(fe["win_length"]), n=fe["n_fft"])
    got = frame @ constants["frontend.dft"]
    np.testing.assert_allclose(got, np.concatenate([spectrum.real, spectrum.imag]), atol=1e-11)


@pytest.mark.parametrize("kind", SIGNAL_KINDS)
@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_backend_frontend_matches_reference(backend, kind, spec, torch_model, tf_model):
    padded = padded_clip(spec, kind, 16000 + 123)
    want = reference_log_mel(padded, spec)
    if backend == "torch":
        import torch

        got = torch_model.frontend(torch.from_numpy(padded)).transpose(1, 2).numpy()
    else:
        got = tf_model.frontend(padded).numpy()
    assert got.dtype == np.float32 and got.shape == want.shape
    # float64 compute, one float32 rounding at the end: a few ulp of values up to |10|.
    assert np.abs(got - want).max() <= 5e-6


@pytest.mark.parametrize("win_length, hop_length", [(480, 160), (405, 135)], ids=["even-N", "odd-N"])
def test_folded_dft_equals_the_spec_matmul(spec, win_length, hop_length):
    """SPEC section 3: (head + tail) @ D_even and (head - tail) @ D_odd are frames @ D, to float64 rounding."""
    import copy

    from hear_dual.audio import dft_fold
    from hear_dual.spec import Spec

    raw = copy.deepcopy(spec.raw)
    raw["frontend"].update(win_length=win_length, n_fft=win_length, hop_length=hop_length)
    if win_length % 2:  # one kernel-2 layer keeps the receptive field (hop + N samples) even
        raw["encoder"] = [{"name": "proj", "op": "conv1d", "in_channels": 64, "out_channels": 8, "kernel_size": 2,
                           "stride": 1, "dilation": 1}]
        raw["embedding"].update(timestamp_embedding_size=8, scene_embedding_size=16)
    variant = Spec(raw)
    dft, n_bins = frontend_constants(variant)["frontend.dft"], variant.n_bins
    fold = dft_fold(dft)
    frames = np.random.default_rng(1).uniform(-1, 1, (64, win_length)).astype(np.float32).astype(np.float64)
    want = frames @ dft
    head, tail = frames[:, 1 : fold.half + 1], frames[:, fold.tail_index]
    scale = np.abs(want).max()
    assert np.abs((head + tail) @ fold.even - want[:, :n_bins]).max() <= 1e-13 * scale
    assert np.abs((head - tail) @ fold.odd - want[:, n_bins:]).max() <= 1e-13 * scale


@pytest.mark.parametrize("kind", SIGNAL_KINDS)
def test_folded_frontend_matches_the_specs_single_matmul(kind, spec, torch_model):
    """The spec writes the DFT as one matmul (the float64 reference computes it so); the backends fold it. After
    the float32 cast the two agree to the last bit (allowing a rare one-ulp flip where float64 rounding straddles a
    float32 tie)."""
    import torch

    import hear_dual.reference as reference

    padded = padded_clip(spec, kind, 16000 + 123)
    with torch.inference_mode():
        folded = torch_model.frontend(torch.from_numpy(padded)).numpy()
    single = reference.log_mel(padded.astype(np.float64), spec, reference.load_model().constants).astype(np.float32)
    assert np.abs(folded - single).max() <= np.spacing(np.abs(single).max())
    assert (folded == single).mean() >= 0.999
