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
@pytest.mark.parametrize("backend", ["torch", "tf", "onnx"])
def test_backend_frontend_matches_reference(backend, kind, spec, torch_model, tf_model):
    padded = padded_clip(spec, kind, 16000 + 123)
    want = reference_log_mel(padded, spec)
    if backend == "torch":
        import torch

        got = torch_model.frontend(torch.from_numpy(padded)).transpose(1, 2).numpy()
    elif backend == "tf":
        got = tf_model.frontend(padded).numpy()
    else:
        got, = frontend_graph_session(spec, "log_mel").run(None, {"audio": padded})
    assert got.dtype == np.float32 and got.shape == want.shape
    # float64 compute, one float32 rounding at the end: a few ulp of values up to |10|.
    assert np.abs(got - want).max() <= 5e-6


def frame_variant(spec, win_length: int, hop_length: int):
    """The spec with other frame and hop lengths (an odd N gets one kernel-2 layer, which keeps the receptive field,
    hop + N samples, even)."""
    import copy

    from hear_dual.spec import Spec

    raw = copy.deepcopy(spec.raw)
    raw["frontend"].update(win_length=win_length, n_fft=win_length, hop_length=hop_length)
    if win_length % 2:
        raw["encoder"] = [{"name": "proj", "op": "conv1d", "in_channels": 64, "out_channels": 8, "kernel_size": 2,
                           "stride": 1, "dilation": 1}]
        raw["embedding"].update(timestamp_embedding_size=8, scene_embedding_size=16)
    return Spec(raw)


@pytest.mark.parametrize("win_length, hop_length", [(480, 160), (405, 135)], ids=["even-N", "odd-N"])
def test_folded_dft_equals_the_spec_matmul(spec, win_length, hop_length):
    """SPEC section 3: (head + tail) @ D_even and (head - tail) @ D_odd are frames @ D, to float64 rounding."""
    from hear_dual.audio import dft_fold

    variant = frame_variant(spec, win_length, hop_length)
    dft, n_bins = frontend_constants(variant)["frontend.dft"], variant.n_bins
    fold = dft_fold(dft)
    frames = np.random.default_rng(1).uniform(-1, 1, (64, win_length)).astype(np.float32).astype(np.float64)
    want = frames @ dft
    head, tail = frames[:, 1 : fold.half + 1], frames[:, fold.tail_index]
    scale = np.abs(want).max()
    assert np.abs((head + tail) @ fold.even - want[:, :n_bins]).max() <= 1e-13 * scale
    assert np.abs((head - tail) @ fold.odd - want[:, n_bins:]).max() <= 1e-13 * scale


@pytest.mark.parametrize("win_length, hop_length, n1", [(480, 160, 16), (512, 256, 16), (1024, 256, 32), (480, 120, 8),
                                                        (96, 32, 8), (405, 135, None), (400, 100, None),
                                                        (48, 16, None)])
def test_two_stage_dft_is_the_rfft(win_length, hop_length, n1):
    """SPEC section 3, the two-stage DFT: its tables, applied as the ONNX graph applies them, give numpy's rfft of
    the windowed frame for every bin once, to float64 rounding; shapes with no power of two >= 8 dividing both the
    frame and the hop (or none up to sqrt(N)) have no stages and keep the folded product."""
    from hear_dual.audio import dft_stages

    stages = dft_stages(win_length, hop_length, win_length // 2 + 1)
    assert (stages and stages.n1) == n1
    if n1 is None:
        return
    n2 = win_length // n1
    frames = np.random.default_rng(2).uniform(-1, 1, (16, win_length)) * hann_periodic(win_length)
    rows = frames.reshape(-1, n2, n1)[:, stages.order]                 # sample n1 * j + r at [frame, j, r]
    re1, im1 = np.einsum("gj,fjr->fgr", stages.cos, rows), np.einsum("gj,fjr->fgr", stages.sin, rows)
    re = np.einsum("fgr,grs->fgs", re1, stages.stage2[0]) + np.einsum("fgr,grs->fgs", im1, stages.stage2[1])
    im = np.einsum("fgr,grs->fgs", re1, stages.stage2[2]) + np.einsum("fgr,grs->fgs", im1, stages.stage2[3])
    held = stages.bins >= 0
    assert sorted(stages.bins[held]) == list(range(win_length // 2 + 1))
    got = np.zeros((len(frames), win_length // 2 + 1), complex)
    got[:, stages.bins[held]] = (re + 1j * im).reshape(len(frames), -1)[:, held]
    want = np.fft.rfft(frames, axis=1)
    assert np.abs(got - want).max() <= 1e-14 * np.abs(want).max()


def test_graph_without_stages_keeps_the_folded_product(spec):
    """A frame shape the two-stage DFT does not fit (odd N) runs the folded product in the ONNX graph, against the
    independent reference."""
    variant = frame_variant(spec, 405, 135)
    audio = signal_batch("pink_noise", 2, 135 * 60, variant.sample_rate, seed=4)
    got, = frontend_graph_session(variant, "log_mel").run(None, {"audio": audio})
    assert np.abs(got - reference_log_mel(audio, variant)).max() <= 5e-6


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


# --- silent frames (SPEC section 3): frames that read only zeros are left out of the DFT ---------------------------

def expected_silent(audio: np.ndarray, spec) -> tuple[int, int]:
    """Brute force: the frames at each end whose samples are zero in every sound (a NaN is not zero)."""
    fe = spec.frontend
    frames = np.lib.stride_tricks.sliding_window_view(audio, fe["win_length"], axis=1)[:, :: fe["hop_length"]]
    live = (frames != 0).any(axis=(0, 2))
    if not live.any():
        return len(live), 0
    return int(np.argmax(live)), int(np.argmax(live[::-1]))


def frontend_graph_session(spec, outputs: str):
    """ONNX Runtime on the graph's frontend alone: the log-mel, or silent_frames' two counts."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    import hear_dual.onnx_graph as og

    g, kind = og.Graph(), TensorProto.FLOAT if outputs == "log_mel" else TensorProto.INT64
    if outputs == "log_mel":
        names = [og.log_mel(g, "audio", spec, frontend_constants(spec))]
    else:
        blocks = g.op("Reshape", "audio", g.const([0, -1, spec.frontend["hop_length"]]))
        names = list(og.silent_frames(g, blocks, spec.frontend["win_length"] // spec.frontend["hop_length"]))
    g.nodes += [helper.make_node("Identity", [n], [f"out{i}"]) for i, n in enumerate(names)]
    graph = helper.make_graph(g.nodes, "frontend", [helper.make_tensor_value_info("audio", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info(f"out{i}", kind, None) for i in range(len(names))],
                              g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", og.OPSET)], ir_version=og.IR_VERSION)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def silent_counts(backend: str, audio: np.ndarray, spec) -> tuple[int, int]:
    fe = spec.frontend
    hop, per_frame = fe["hop_length"], fe["win_length"] // fe["hop_length"]
    blocks = audio.reshape(audio.shape[0], -1, hop)
    if backend == "torch":
        import torch

        from hear_dual.torch_impl.model import silent_frames

        return silent_frames(torch.from_numpy(blocks), per_frame)
    if backend == "tf":
        from hear_dual.tf_impl.model import silent_frames

        return tuple(int(n) for n in silent_frames(blocks, per_frame))
    return tuple(int(n) for n in frontend_graph_session(spec, "counts").run(None, {"audio": audio}))


def silent_cases(spec):
    """(name, audio): impulses on either side of every block and frame boundary near the edges, one sound live
    where the other is silent, all zero, a NaN at the edge, silence longer than the scan reaches."""
    hop, n = spec.frontend["hop_length"], 40 * spec.frontend["hop_length"]
    cases = []
    for position in [0, 1, hop - 1, hop, 2 * hop - 1, 3 * hop, 7 * hop + 5, n - 3 * hop - 1, n - 3 * hop, n - 1]:
        audio = np.zeros((2, n), np.float32)
        audio[1, position] = -0.25
        cases.append((f"impulse-at-{position}", audio))
    middle = np.zeros((3, n), np.float32)
    middle[0, 12 * hop : 20 * hop] = signal_batch("pink_noise", 1, 8 * hop, spec.sample_rate, seed=3)
    cases += [("one-sound-live", middle), ("all-zero", np.zeros((2, n), np.float32))]
    nan = np.zeros((1, n), np.float32)
    nan[0, 2] = np.nan
    cases.append(("nan-at-the-start", nan))
    long = np.zeros((1, 600 * hop), np.float32)
    long[0, 300 * hop : 301 * hop] = 0.5
    cases.append(("silence-past-the-scan", long))
    return cases


@pytest.mark.parametrize("backend", ["torch", "tf", "onnx"])
def test_silent_frames_are_the_frames_of_zeros_at_the_edges(backend, spec):
    """Each backend's count of silent frames at each end is the brute-force one wherever the silence lies within
    SILENT_SCAN_BLOCKS blocks of the edge; past it, the count stops there (fewer frames skipped, never more)."""
    from hear_dual.audio import SILENT_SCAN_BLOCKS

    per_frame = spec.frontend["win_length"] // spec.frontend["hop_length"]
    for name, audio in silent_cases(spec):
        want = expected_silent(audio, spec)
        if name == "silence-past-the-scan":
            want = (SILENT_SCAN_BLOCKS - per_frame + 1,) * 2
        assert silent_counts(backend, audio, spec) == want, (backend, name)


@pytest.mark.parametrize("backend", ["torch", "tf", "onnx"])
def test_skipping_silent_frames_keeps_every_live_frame(backend, spec, torch_model, tf_model):
    """The log-mel of each case against the independent float64 reference: a live frame wrongly skipped would read
    log(log_offset) where the reference has its impulse's spectrum; a NaN stays NaN."""
    for name, audio in silent_cases(spec):
        want = reference_log_mel(audio, spec)
        if backend == "torch":
            import torch

            got = torch_model.frontend(torch.from_numpy(audio)).transpose(1, 2).numpy()
        elif backend == "tf":
            got = tf_model.frontend(audio).numpy()
        else:
            got, = frontend_graph_session(spec, "log_mel").run(None, {"audio": audio})
        assert got.shape == want.shape, (backend, name)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{backend} {name}")
        finite = ~np.isnan(want)
        assert np.abs(got[finite] - want[finite]).max() <= 5e-6, (backend, name)


def test_tf_frontend_steps_of_any_size_give_the_same_power(spec, monkeypatch):
    """tf_impl takes every sound's frames through the FFT FRONTEND_FRAMES at a time (fft_power): steps of 7 frames
    (steps that straddle two sounds, an uneven last one that repeats the last frame) give each sound's power as
    steps of 256 and as the sound alone do; and the same live frames as the independent float64 reference."""
    import tensorflow as tf

    import hear_dual.tf_impl.model as tfm
    from hear_dual.parity import input_batch

    audio = input_batch("pink_noise", 9, 4000, spec.sample_rate, seed=2)        # 23 frames a sound: 207 in all
    whole = tfm.LogMel(spec).mel_power(tf.constant(audio)).numpy()
    monkeypatch.setattr(tfm, "FRONTEND_FRAMES", 7)
    frontend = tfm.LogMel(spec)
    small = frontend.mel_power(tf.constant(audio)).numpy()
    alone = np.concatenate([frontend.mel_power(tf.constant(audio[i : i + 1])).numpy() for i in range(9)])
    assert whole.shape == small.shape == alone.shape == (9, 23, spec.frontend["n_mels"])
    np.testing.assert_allclose(small, whole, rtol=1e-12, atol=0)
    np.testing.assert_allclose(alone, whole, rtol=1e-12, atol=0)
    want = np.exp(reference_log_mel(audio, spec)) - spec.frontend["log_offset"]
    np.testing.assert_allclose(small, want, rtol=1e-9, atol=1e-12 * want.max())
