"""The training recipe's contracts with the model it trains (training/train.py; no espeak-ng or training run here).

The recipe claims that the scene embedding its heads see is the one get_scene_embeddings returns, that the
distillation teacher sees the student's frames, and the shipped compact checkpoint says where it came from.
"""

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hear_dual.audio import num_timestamps, padded_input_length
from hear_dual.checkpoint import read_checkpoint
from hear_dual.checkpoints import shipped_path
from hear_dual.signals import signal_batch

train = pytest.importorskip("training.train", reason="run from the repository root (training/ is not installed)")


def test_training_scene_is_the_api_scene():
    """encode_frames + pool on the recipe's padded 1 s clip == get_scene_embeddings of that clip."""
    from hear_dual.torch_impl import get_scene_embeddings, load_model

    model = load_model("compact")
    spec = model.spec
    n = spec.sample_rate
    audio = signal_batch("chirp", 3, n, spec.sample_rate).astype(np.float32)
    pad = (spec.pad_left, padded_input_length(spec, num_timestamps(spec, n)) - spec.pad_left - n)
    with torch.no_grad():
        frames = train.encode_frames(model, model.frontend(F.pad(torch.from_numpy(audio), pad)))
        scene = train.pool(frames)
    assert frames.shape == (3, spec.timestamp_embedding_size, num_timestamps(spec, n))
    np.testing.assert_allclose(scene.numpy(), get_scene_embeddings(audio, model).numpy(), rtol=0, atol=1e-5)


def test_teacher_must_share_the_students_frames():
    from hear_dual.spec import Spec

    with pytest.raises(ValueError, match="frontend"):
        train.Teacher("crepe-tiny", Spec.builtin("hear-dual-compact"), [])


def test_teacher_targets_are_standardised():
    from hear_dual.spec import Spec

    spec = Spec.builtin("hear-dual-compact")
    logmel = torch.randn(6, 64, 171, generator=torch.Generator().manual_seed(0)) - 4.0
    teacher = train.Teacher("base", spec, [logmel])
    frames, scene = teacher.targets(logmel)
    assert frames.shape == (6, 512, 26) and scene.shape == (6, 1024)        # (171 - 71) // 4 + 1 timestamps
    np.testing.assert_allclose(frames.double().mean(dim=(0, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(frames.double().std(dim=(0, 2)), 1, atol=1e-3)
    heads = train.DistillHeads(spec, teacher)
    losses = heads.losses(torch.zeros(6, 32, 26), torch.zeros(6, 64), logmel)
    assert set(losses) == {"distill_frames", "distill_scene"} and all(v.ndim == 0 for v in losses.values())


def test_frame_spectrum_targets_sit_on_their_timestamps():
    """Each target averages the log-mel frames around its own timestamp: on a log-mel whose bands all hold the
    clip sample their frame is centred on, every target is its timestamp (timestamps_ms, in samples)."""
    from hear_dual.audio import timestamps_ms
    from hear_dual.spec import Spec

    spec = Spec.builtin("hear-dual-compact")
    n, hop, win = spec.sample_rate, spec.frontend["hop_length"], spec.frontend["win_length"]
    n_frames = (padded_input_length(spec, num_timestamps(spec, n)) - win) // hop + 1
    centres = np.arange(n_frames) * hop + win // 2 - spec.pad_left          # frame j's centre, in clip samples
    fit = torch.randn(4, 64, n_frames, generator=torch.Generator().manual_seed(0))
    spectrum = train.FrameSpectrum(spec, n, [fit], 8)
    logmel = torch.from_numpy(np.broadcast_to(centres.astype(np.float32), (2, 64, n_frames)).copy())
    got = spectrum.centre_frames(logmel)[:, :, :num_timestamps(spec, n)]
    want = timestamps_ms(spec, n).astype(np.float64) * spec.sample_rate / 1000
    np.testing.assert_array_equal(got.numpy(), np.broadcast_to(want, got.shape))


def test_frame_spectrum_targets_are_standardised_principal_components():
    from hear_dual.spec import Spec

    spec = Spec.builtin("hear-dual-compact")
    t = num_timestamps(spec, spec.sample_rate)
    generator = torch.Generator().manual_seed(1)
    mixing = torch.randn(64, 64, generator=generator) * torch.linspace(2.0, 0.1, 64)    # distinct variances
    logmel = torch.einsum("mn,bnf->bmf", mixing, torch.randn(40, 64, 171, generator=generator)) - 4.0
    spectrum = train.FrameSpectrum(spec, spec.sample_rate, [logmel], 8)
    targets = spectrum.targets(logmel, t).double()
    assert targets.shape == (40, 8, t)
    flat = targets.transpose(1, 2).reshape(-1, 8)
    np.testing.assert_allclose(torch.cov(flat.T).numpy(), np.eye(8), atol=1e-4)      # unit variance, uncorrelated
    head = train.FrameSpectrumHead(spectrum)
    frames = torch.cat([torch.randn(40, 24, t, generator=generator), targets.float()], dim=1)
    assert head.losses(frames, None, logmel)["frame_spectrum"].item() < 1e-10      # the last 8 dimensions, as is
    with pytest.raises(ValueError, match="0 < k <= 32"):
        train.FrameSpectrum(spec, spec.sample_rate, [logmel], 33)


def test_graft_keeps_the_stream_and_appends_the_frame_spectrum():
    """training.graft: the stream's first 24 channels as they were, then exactly FrameSpectrum's 8 targets."""
    from hear_dual.export import seeded_parameters
    from hear_dual.spec import Spec
    from hear_dual.torch_impl.model import HearDualModel
    from training import graft

    spec, stream = Spec.builtin("hear-dual-compact"), train.load_spec(graft.STREAM_SPEC)
    stream_params = seeded_parameters(stream, 3)
    t = num_timestamps(spec, spec.sample_rate)
    n_frames = (padded_input_length(spec, t) - spec.frontend["win_length"]) // spec.frontend["hop_length"] + 1
    generator = torch.Generator().manual_seed(2)
    logmel = torch.randn(6, 64, n_frames, generator=generator) * torch.linspace(3, 0.5, 64)[:, None] - 5.0
    spectrum = train.FrameSpectrum(spec, spec.sample_rate, [logmel], 8)
    params = graft.graft(spec, stream, stream_params, spectrum)
    assert set(params) == set(spec.parameter_shapes)
    assert all(np.array_equal(params[n], stream_params[n][: spec.parameter_shapes[n][0]]) for n in stream_params)
    with torch.no_grad():
        got = HearDualModel(spec).load_parameters(params).run_encoder(logmel)
        want = HearDualModel(stream).load_parameters(stream_params).run_encoder(logmel)
    assert torch.equal(got[:, :24], want[:, :24])
    np.testing.assert_allclose(got[:, 24:].numpy(), spectrum.targets(logmel, t).numpy(), atol=2e-5)
    with pytest.raises(ValueError, match="only in the skip_conv1d"):
        graft.graft(spec, stream, stream_params | {"extra.weight": np.zeros(1, np.float32)}, spectrum)


def test_shipped_compact_spectrum_is_a_hop_average_of_the_log_mel():
    """The shipped skip is spectrum_kernel's: every component weighs the 5 frames around a timestamp as
    centre_frames does ([.5, 1, 1, 1, .5] / 4), so its output is a linear map of the hop-averaged log-mel."""
    weight = read_checkpoint(shipped_path("hear-dual-compact")).params["spectrum.weight"].astype(np.float64)
    taps = np.array([0.5, 1, 1, 1, 0.5]) / 4
    per_band = weight.sum(axis=2, keepdims=True)
    np.testing.assert_allclose(weight, per_band * taps, rtol=0, atol=4e-7 * np.abs(weight).max())
    assert np.abs(per_band).max() > 0.05                   # not a zero kernel


def test_shipped_compact_was_distilled_from_the_shipped_base():
    """Its provenance names the teacher by the sha256 of the base checkpoint that ships beside it."""
    provenance = read_checkpoint(shipped_path("hear-dual-compact")).provenance
    with open(shipped_path("hear-dual-base"), "rb") as f:
        base_sha256 = hashlib.sha256(f.read()).hexdigest()
    assert provenance["teacher"] == "hear-dual-base" and provenance["teacher_sha256"] == base_sha256
    assert provenance["license"] == "CC-BY-4.0" and provenance["spec"] == "hear-dual-compact"
    assert provenance["steps"] > 0 and provenance["skip"]["frame_spectrum_dims"] == 8


def test_changed_loss_weights_are_named_in_the_provenance():
    from hear_dual.spec import Spec

    defaults = train.DEFAULT_WEIGHTS | train.INPUT_STATS_WEIGHTS
    weights, changed = train.parse_weights("contrastive=0.25,input_stats=2", defaults)
    assert weights == defaults | {"contrastive": 0.25} and changed == {"contrastive": 0.25}
    assert train.parse_weights("", defaults) == (defaults, {})
    full = ",".join(f"{k}={v}" for k, v in (defaults | {"speaker": 1.0}).items())      # every name, as run 3's log
    assert train.parse_weights(full, defaults)[1] == {"speaker": 1.0}
    for bad in ("distill_frames=2", "contrastive", "contrastive="):                   # not a head in use; no value
        with pytest.raises(SystemExit, match="input_stats"):
            train.parse_weights(bad, defaults)
    spec = Spec.builtin("hear-dual-compact")
    assert "loss_weights" not in train.provenance(spec, 0, 10, None)
    assert train.provenance(spec, 0, 10, None, loss_weights=changed)["loss_weights"] == {"contrastive": 0.25}


def test_info_prints_the_provenance():
    run = subprocess.run([sys.executable, "-m", "hear_dual.cli", "info", "--weights", "compact", "--json"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    info = json.loads(run.stdout)
    assert info["name"] == "hear-dual-compact" and info["provenance.teacher"] == "hear-dual-base"
