"""Long audio: 20 minutes within 1 GiB of peak resident memory per backend (a 16 x 5 min batch, whose input and
output alone take 550 MB, within 2 GiB), measured in a fresh process; chunked 20-minute results equal the
whole-clip computation."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from hear_dual.audio import num_timestamps
from hear_dual.parity import agreement

GIB = 1024.0  # MiB
ROOT = Path(__file__).resolve().parent.parent


def harness():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize("module", ["hear_dual.torch_impl", "hear_dual.tf_impl", "hear_dual.onnx_impl"])
@pytest.mark.parametrize("case", ["1x20min", "16x5min"])
def test_peak_memory_is_bounded(module, case):
    result = harness().measure_once(module, "base", case)
    n_sounds, seconds = harness().CASES[case]
    assert result["output_shape"] == [n_sounds, int(seconds * 16000 - 1) // 640 + 1, 512]
    assert result["peak_rss_mib"] <= {"1x20min": 1, "16x5min": 2}[case] * GIB, result


@pytest.mark.slow
def test_twenty_minutes_of_musicnn_in_tensorflow_are_bounded():
    """The widest output (753 floats every 16 ms: 226 MB for 20 minutes) in the heaviest framework (its import alone
    480 to 510 MiB, without Keras: hear_dual.quiet.keras_deferred): held once, with TensorFlow's first call kept small
    (gathered conv2d taps, not a slice per tap). It peaked at 1480 MiB before those two, 990 to 1044 MiB before Keras
    was deferred; 891 to 903 MiB since in the development venv, 926 in a freshly installed one (docs/speed.md)."""
    result = harness().measure_once("hear_dual.tf_impl", "musicnn-mtt", "1x20min")
    assert result["output_shape"] == [1, 75001, 753]
    assert result["peak_rss_mib"] <= GIB, result


@pytest.mark.slow      # the fast tier checks chunk boundaries on short clips (test_chunking)
@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_twenty_minutes_chunked_equals_whole_clip(backend, backends, spec):
    module, model = backends[backend]
    n = 20 * 60 * spec.sample_rate
    audio = (0.5 * np.sin(np.linspace(0, 2e5, n)) * np.random.default_rng(0).uniform(0, 1, n))[None].astype(np.float32)
    chunked = np.asarray(module.get_timestamp_embeddings(audio, model)[0])
    saved = model.chunk_timestamps
    model.chunk_timestamps = 10**9
    try:
        whole = np.asarray(module.get_timestamp_embeddings(audio, model)[0])
    finally:
        model.chunk_timestamps = saved
    assert chunked.shape == whole.shape == (1, num_timestamps(spec, n), 512) == (1, 30000, 512)
    assert agreement(whole, chunked, spec.tolerance, spec.min_cosine).passed
