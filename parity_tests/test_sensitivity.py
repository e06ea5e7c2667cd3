"""The suite proves its own sensitivity: each classic cross-framework drift, injected into one backend,
fails the parity gate that the faithful backend passes on the same inputs."""

import copy

import numpy as np
import pytest

from hear_dual.audio import chunk_plan, num_timestamps
from hear_dual.checkpoint import read_checkpoint
from hear_dual.parity import agreement, input_batch
from hear_dual.spec import Spec


@pytest.fixture(scope="module")
def checkpoint():
    return read_checkpoint()


@pytest.fixture(scope="module")
def audio(spec):
    speech = input_batch("speech", 2, 2 * spec.sample_rate, spec.sample_rate)
    tones = input_batch("tone_mix", 2, 2 * spec.sample_rate, spec.sample_rate)
    return tones if speech is None else np.concatenate([speech, tones])


@pytest.fixture(scope="module")
def reference(audio, torch_model):
    import hear_dual.torch_impl as backend

    return np.asarray(backend.get_timestamp_embeddings(audio, torch_model)[0])


def tf_embeddings(spec, params, audio, shift_pad=0):
    """tf_impl built from (possibly drifted) spec and params; shift_pad moves padding from left to right."""
    import tensorflow as tf

    from hear_dual.tf_impl.model import HearDualModel

    model = HearDualModel(spec, params)
    pieces = []
    for c in chunk_plan(spec, audio.shape[1], chunk_timestamps=10**9):
        x = np.pad(audio[:, c.src_start : c.src_stop], ((0, 0), (c.pad_left - shift_pad, c.pad_right + shift_pad)))
        pieces.append(model.encode(tf.constant(x)).numpy())
    out = np.concatenate(pieces, axis=1)
    assert out.shape[1] == num_timestamps(spec, audio.shape[1])
    return out, model


def drifted_spec(spec, edit):
    raw = copy.deepcopy(spec.raw)
    edit(raw)
    return Spec(raw)


def assert_caught(reference, drifted, spec):
    result = agreement(reference, drifted, spec.tolerance, spec.min_cosine)
    assert not result.passed, f"drift not caught: {result}"
    return result


def test_faithful_backend_passes(spec, checkpoint, audio, reference):
    got, _ = tf_embeddings(spec, checkpoint.params, audio)
    assert agreement(reference, got, spec.tolerance, spec.min_cosine).passed


def test_keras_batchnorm_epsilon_is_caught(spec, checkpoint, audio, reference):
    def keras_eps(raw):
        for layer in raw["encoder"]:
            if layer["op"] == "batchnorm":
                layer["eps"] = 1e-3
    got, _ = tf_embeddings(drifted_spec(spec, keras_eps), checkpoint.params, audio)
    assert_caught(reference, got, spec)


def test_single_epsilon_change_is_caught(spec, checkpoint, audio, reference):
    # eps matters in proportion to eps / running_var: drift it where the weights make it matter most (trained
    # weights have running variances of 0.4 to 8, so 1e-4 in the largest-variance layer moves nothing).
    smallest_var = min((layer.name for layer in spec.layers if layer.op == "batchnorm"),
                       key=lambda name: checkpoint.params[f"{name}.running_var"].min())

    def one_eps(raw):
        next(layer for layer in raw["encoder"] if layer["name"] == smallest_var)["eps"] = 1e-4
    got, _ = tf_embeddings(drifted_spec(spec, one_eps), checkpoint.params, audio)
    assert_caught(reference, got, spec)


def test_tanh_gelu_is_caught(spec, checkpoint, audio, reference):
    def tanh_gelu(raw):
        for layer in raw["encoder"]:
            if layer["op"] == "gelu":
                layer["approximate"] = "tanh"
    got, _ = tf_embeddings(drifted_spec(spec, tanh_gelu), checkpoint.params, audio)
    assert_caught(reference, got, spec)


@pytest.mark.parametrize("shift", [1, 160], ids=["one-sample", "one-frame"])
def test_padding_moved_to_the_other_side_is_caught(spec, checkpoint, audio, reference, shift):
    """TF 'same' puts the odd pad on the right where torch pads symmetrically: a shifted signal."""
    got, _ = tf_embeddings(spec, checkpoint.params, audio, shift_pad=shift)
    assert_caught(reference, got, spec)


def test_transposed_kernel_is_caught(spec, checkpoint, audio, reference):
    """OIW read as IOW: the shape-preserving layout bug of a square convolution."""
    params = dict(checkpoint.params)
    params["conv4.weight"] = np.ascontiguousarray(params["conv4.weight"].transpose(1, 0, 2))
    got, _ = tf_embeddings(spec, params, audio)
    assert_caught(reference, got, spec)


def test_time_reversed_kernel_is_caught(spec, checkpoint, audio, reference):
    """Convolution vs cross-correlation: the kernel's time axis flipped in one layer."""
    params = dict(checkpoint.params)
    params["conv2.weight"] = np.ascontiguousarray(params["conv2.weight"][:, :, ::-1])
    got, _ = tf_embeddings(spec, params, audio)
    assert_caught(reference, got, spec)


def test_tensorflow_mel_filterbank_convention_is_caught(spec, checkpoint, audio, reference):
    """tf.signal's filterbank: HTK, unnormalised, zero DC bin, triangles linear in mel."""
    import tensorflow as tf

    from hear_dual.tf_impl.model import HearDualModel

    fe = spec.frontend
    model = HearDualModel(spec, checkpoint.params)
    tf_mel = tf.signal.linear_to_mel_weight_matrix(fe["n_mels"], spec.n_bins, spec.sample_rate, fe["f_min"],
                                                   fe["f_max"], dtype=tf.float64)
    model.frontend.mel.assign(tf_mel)
    c, = chunk_plan(spec, audio.shape[1], 10**9)
    got = model.encode(np.pad(audio, ((0, 0), (c.pad_left, c.pad_right)))).numpy()
    assert_caught(reference, got, spec)


def test_slaney_norm_dropped_is_caught(spec, checkpoint, audio, reference):
    def no_norm(raw):
        raw["frontend"]["mel_norm"] = "none"
    got, _ = tf_embeddings(drifted_spec(spec, no_norm), checkpoint.params, audio)
    assert_caught(reference, got, spec)


def test_float64_frontend_reduces_drift_on_tones(spec, checkpoint, torch_model):
    """The spec's float64 frontend is a margin choice: on a low tone and a DC offset, where leakage bins
    cancel large terms before the log, a float32 frontend on one side drifts clearly further."""
    import hear_dual.torch_impl as backend

    tones = np.concatenate([input_batch(k, 1, 4 * spec.sample_rate, spec.sample_rate)
                            for k in ("sine_50hz", "dc_offset")])
    ref = np.asarray(backend.get_timestamp_embeddings(tones, torch_model)[0])

    def fp32(raw):
        raw["frontend"]["precision"] = "float32"
    drift32 = agreement(ref, tf_embeddings(drifted_spec(spec, fp32), checkpoint.params, tones)[0], 1, 0)
    drift64 = agreement(ref, tf_embeddings(spec, checkpoint.params, tones)[0], 1, 0)
    assert drift32.max_rel_diff > 1.5 * drift64.max_rel_diff
