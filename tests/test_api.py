"""The HEAR 2021 API in each backend: types, shapes, dtypes, timestamps, input kinds."""

import numpy as np
import pytest

from hear_dual.audio import num_timestamps, timestamps_ms
from hear_dual.parity import to_numpy

BACKENDS = ["torch", "tf", "onnx"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_model_attributes(backend, backends, spec):
    _, model = backends[backend]
    for name in ("sample_rate", "scene_embedding_size", "timestamp_embedding_size"):
        assert type(getattr(model, name)) is int
    assert model.sample_rate == spec.sample_rate == 16000
    assert model.timestamp_embedding_size == 512 and model.scene_embedding_size == 1024


def test_models_are_framework_modules(torch_model, tf_model):
    """hear-validator checks isinstance(model, tf.Module): a Keras model would not do."""
    import tensorflow as tf
    import torch

    assert isinstance(torch_model, torch.nn.Module)
    assert isinstance(tf_model, tf.Module)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n_sounds, n_samples", [(1, 1), (2, 100), (3, 640), (2, 641), (4, 16000), (1, 43840)])
def test_output_shapes_and_dtypes(backend, backends, spec, n_sounds, n_samples):
    module, model = backends[backend]
    audio = np.random.default_rng(n_samples).uniform(-1, 1, (n_sounds, n_samples)).astype(np.float32)
    embeddings, timestamps = module.get_timestamp_embeddings(audio, model)
    scene = module.get_scene_embeddings(audio, model)
    n_t = num_timestamps(spec, n_samples)
    e, t, s = to_numpy(embeddings), to_numpy(timestamps), to_numpy(scene)
    assert e.shape == (n_sounds, n_t, 512) and e.dtype == np.float32
    assert t.shape == (n_sounds, n_t) and t.dtype == np.float32
    assert s.shape == (n_sounds, 1024) and s.dtype == np.float32
    assert np.isfinite(e).all() and np.isfinite(s).all()
    for row in t:
        np.testing.assert_array_equal(row, timestamps_ms(spec, n_samples))


@pytest.mark.parametrize("backend", BACKENDS)
def test_returns_framework_tensors(backend, backends):
    module, model = backends[backend]
    audio = np.zeros((2, 3000), np.float32)
    embeddings, timestamps = module.get_timestamp_embeddings(audio, model)
    scene = module.get_scene_embeddings(audio, model)
    if backend == "torch":
        import torch

        assert all(isinstance(x, torch.Tensor) for x in (embeddings, timestamps, scene))
    elif backend == "tf":
        import tensorflow as tf

        assert all(isinstance(x, tf.Tensor) for x in (embeddings, timestamps, scene))
    else:
        assert all(isinstance(x, np.ndarray) for x in (embeddings, timestamps, scene))


@pytest.mark.parametrize("backend", BACKENDS)
def test_scene_is_mean_then_max_of_timestamp_embeddings(backend, backends):
    module, model = backends[backend]
    audio = np.random.default_rng(1).uniform(-1, 1, (3, 30000)).astype(np.float32)
    e = to_numpy(module.get_timestamp_embeddings(audio, model)[0])
    s = to_numpy(module.get_scene_embeddings(audio, model))
    np.testing.assert_allclose(s[:, :512], e.mean(axis=1), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(s[:, 512:], e.max(axis=1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_scene_mean_is_the_float64_mean_rounded_once(backend, backends):
    """SPEC section 6: every backend must give the correctly rounded mean, not its own float32 sum's
    rounding, which grows with the number of timestamps and differs between frameworks."""
    module, _ = backends[backend]
    rows = np.full((2, 1500, 4), 2.5700001, np.float32) + np.float32(3e-7) * np.arange(4, dtype=np.float32)
    rows[1] *= np.linspace(0.5, 1.5, 1500, dtype=np.float32)[:, None]
    want = rows.astype(np.float64).mean(axis=1).astype(np.float32)
    assert not np.array_equal(rows.mean(axis=1, dtype=np.float32), want)     # a float32 sum would fail
    tensor = {"torch": lambda a: __import__("torch").from_numpy(a),
              "tf": lambda a: __import__("tensorflow").constant(a), "onnx": lambda a: a}[backend](rows)
    np.testing.assert_array_equal(to_numpy(module.pool_scene(tensor, ["mean"])), want)


@pytest.mark.parametrize("backend", BACKENDS)
def test_framework_tensor_numpy_and_float64_inputs_agree(backend, backends):
    module, model = backends[backend]
    audio = np.random.default_rng(2).uniform(-1, 1, (2, 9000)).astype(np.float32)
    want = to_numpy(module.get_timestamp_embeddings(audio, model)[0])
    if backend == "torch":
        import torch

        native = torch.from_numpy(audio)
    elif backend == "tf":
        import tensorflow as tf

        native = tf.constant(audio)
    else:
        native = audio.tolist()
    for variant in (native, audio.astype(np.float64), np.asfortranarray(audio)):
        np.testing.assert_array_equal(to_numpy(module.get_timestamp_embeddings(variant, model)[0]), want)


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_batch_gives_empty_outputs(backend, backends):
    module, model = backends[backend]
    e, t = module.get_timestamp_embeddings(np.zeros((0, 16000), np.float32), model)
    s = module.get_scene_embeddings(np.zeros((0, 16000), np.float32), model)
    assert to_numpy(e).shape == (0, 25, 512) and to_numpy(t).shape == (0, 25) and to_numpy(s).shape == (0, 1024)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad, error, message", [
    (np.zeros(16000, np.float32), ValueError, "2-D"),
    (np.zeros((1, 2, 16000), np.float32), ValueError, "2-D"),
    (np.zeros((1, 16000), np.int16), TypeError, "32768"),
    (np.zeros((1, 16000), bool), TypeError, "bool"),
    (np.zeros((1, 16000), np.complex64), TypeError, "complex64"),
    (np.zeros((2, 0), np.float32), ValueError, "zero samples"),
])
def test_bad_input_gets_a_clear_error(backend, backends, bad, error, message):
    module, model = backends[backend]
    with pytest.raises(error, match=message):
        module.get_timestamp_embeddings(bad, model)


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_finite_input_names_the_sound(backend, backends):
    module, model = backends[backend]
    audio = np.zeros((3, 1000), np.float32)
    audio[2, 17] = np.nan
    with pytest.raises(ValueError, match=r"sound\(s\) 2"):
        module.get_scene_embeddings(audio, model)


def test_tf_traces_once_for_many_lengths_and_batches(tf_model):
    import hear_dual.tf_impl as backend

    before = tf_model.encode.experimental_get_tracing_count()
    for n_sounds, n in [(1, 1000), (3, 17001), (2, 48000), (5, 640)]:
        backend.get_timestamp_embeddings(np.zeros((n_sounds, n), np.float32), tf_model)
    assert tf_model.encode.experimental_get_tracing_count() - before <= (1 if before == 0 else 0)
