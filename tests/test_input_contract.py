"""The input contract, identical in every backend (checked once in hear_dual.inputs), plus determinism,
batch independence and thread safety. Property-based over lengths, batch sizes, amplitudes and dtypes."""

import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hear_dual.audio import num_timestamps, timestamps_ms
from hear_dual.parity import to_numpy

BACKENDS = ["torch", "tf", "onnx"]


def native(backend, array):
    if backend == "torch":
        import torch

        return torch.from_numpy(array)
    if backend == "tf":
        import tensorflow as tf

        return tf.constant(array)
    return array


def error_of(fn):
    try:
        fn()
    except (TypeError, ValueError) as e:
        return type(e), str(e)
    return None


@pytest.mark.parametrize("bad", [
    np.zeros(100, np.float32), np.zeros((1, 1, 100), np.float32), np.zeros((1, 100), np.int16),
    np.zeros((1, 100), np.int32), np.zeros((1, 100), bool), np.zeros((1, 100), np.complex64),
    np.zeros((1, 100), np.float16), np.zeros((3, 0), np.float32),
    np.array([[0.0, np.inf, 0.0], [0.0, 0.0, 0.0]], np.float32),
], ids=["1d", "3d", "int16", "int32", "bool", "complex64", "float16", "no-samples", "inf"])
def test_every_backend_gives_the_same_error(bad, backends):
    errors = {}
    for name, (module, model) in backends.items():
        errors[name] = error_of(lambda m=module, n=name, mdl=model: m.get_timestamp_embeddings(native(n, bad), mdl))
    assert errors["torch"] is not None
    assert errors["torch"] == errors["tf"] == errors["onnx"], errors


def test_error_messages_say_what_was_expected_and_what_came(backends):
    module, model = backends["onnx"]
    with pytest.raises(TypeError, match=r"float32 or float64, got int16; scale .* / 32768"):
        module.get_timestamp_embeddings(np.zeros((1, 10), np.int16), model)
    with pytest.raises(ValueError, match=r"2-D \(n_sounds, n_samples\), got 1-D with shape \(10,\)"):
        module.get_timestamp_embeddings(np.zeros(10, np.float32), model)
    audio = np.zeros((4, 10), np.float32)
    audio[1, 3] = np.nan
    audio[3, 0] = -np.inf
    with pytest.raises(ValueError, match=r"NaN or infinity in sound\(s\) 1, 3"):
        module.get_scene_embeddings(audio, model)


@pytest.mark.parametrize("backend", BACKENDS)
def test_loud_input_is_not_clipped(backend, backends):
    module, model = backends[backend]
    audio = np.random.default_rng(0).uniform(-1, 1, (1, 8000)).astype(np.float32)
    quiet = to_numpy(module.get_timestamp_embeddings(audio, model)[0])
    loud = to_numpy(module.get_timestamp_embeddings(audio * 4, model)[0])
    assert np.isfinite(loud).all() and np.abs(loud - quiet).max() > 1e-2


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_input_twice_is_bit_identical(backend, backends):
    module, model = backends[backend]
    audio = np.random.default_rng(1).uniform(-1, 1, (3, 23456)).astype(np.float32)
    first = to_numpy(module.get_timestamp_embeddings(audio, model)[0])
    second = to_numpy(module.get_timestamp_embeddings(audio, model)[0])
    assert first.tobytes() == second.tobytes()


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_a_tensor_view_is_accepted(backend, backends):
    module, model = backends[backend]
    audio = np.random.default_rng(2).uniform(-1, 1, (6, 9000)).astype(np.float32)
    want = to_numpy(module.get_timestamp_embeddings(np.ascontiguousarray(audio[::2, 1000:]), model)[0])
    if backend == "torch":
        import torch

        view = torch.from_numpy(audio)[::2, 1000:]
        assert not view.is_contiguous()
    else:
        import tensorflow as tf

        view = tf.constant(audio)[::2, 1000:]
    got = to_numpy(module.get_timestamp_embeddings(view, model)[0])
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_calls_match_sequential_calls(backend, backends):
    module, model = backends[backend]
    clips = [np.random.default_rng(10 + i).uniform(-1, 1, (2, 7000 + 1000 * i)).astype(np.float32) for i in range(4)]
    sequential = [to_numpy(module.get_timestamp_embeddings(c, model)[0]) for c in clips]
    results, errors = [None] * len(clips), []

    def work(i):
        try:
            for _ in range(3):
                results[i] = to_numpy(module.get_timestamp_embeddings(clips[i], model)[0])
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(clips))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors
    for got, want in zip(results, sequential):
        assert got.tobytes() == want.tobytes()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(backend=st.sampled_from(BACKENDS), n_sounds=st.integers(0, 4), n_samples=st.integers(1, 30000),
       amplitude=st.sampled_from([0.0, 1e-6, 0.3, 1.0, 8.0]), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**16))
def test_properties_of_every_output(backends, spec, backend, n_sounds, n_samples, amplitude, dtype, seed):
    module, model = backends[backend]
    audio = (amplitude * np.random.default_rng(seed).uniform(-1, 1, (n_sounds, n_samples))).astype(dtype)
    embeddings, timestamps = module.get_timestamp_embeddings(audio, model)
    scene = module.get_scene_embeddings(audio, model)
    e, t, s = to_numpy(embeddings), to_numpy(timestamps), to_numpy(scene)
    n_t = num_timestamps(spec, n_samples)
    assert e.shape == (n_sounds, n_t, 512) and t.shape == (n_sounds, n_t) and s.shape == (n_sounds, 1024)
    assert e.dtype == t.dtype == s.dtype == np.float32
    assert np.isfinite(e).all() and np.isfinite(s).all()
    for row in t:
        np.testing.assert_array_equal(row, timestamps_ms(spec, n_samples))
        assert row[0] == 0 and float(row[-1]) <= 1000 * (n_samples - 1) / spec.sample_rate
