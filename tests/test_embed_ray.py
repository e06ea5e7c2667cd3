"""hear_dual.embed with engine="ray": the same batches on a pool of Ray actors give the same files, bit for bit."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

import soundfile as sf  # noqa: E402
from test_embed import _files, _load  # noqa: E402  (same helpers as the local-engine tests)

from hear_dual.embed import embed_paths  # noqa: E402

pytestmark = pytest.mark.slow    # a Ray cluster starts in about 10 s

RAY_CPUS = 2
GOOD = ("a.wav", "sub/b.flac", "sub/deeper/c.ogg")
KEYS = {"timestamps", "embeddings", "scene", "model", "spec_version", "spec_sha256", "checkpoint_sha256", "backend",
        "source", "sample_rate", "source_sample_rate", "duration_s"}


def make_tree(root: Path) -> Path:
    """wav 16 kHz, stereo flac 8 kHz, ogg 44.1 kHz in nested folders, plus a corrupt and an empty .wav."""
    rng = np.random.default_rng(0)
    (root / "sub" / "deeper").mkdir(parents=True)
    sf.write(root / "a.wav", 0.1 * rng.standard_normal(int(1.3 * 16000)), 16000)
    sf.write(root / "sub" / "b.flac", 0.1 * rng.standard_normal((int(0.7 * 8000), 2)), 8000)
    sf.write(root / "sub" / "deeper" / "c.ogg", 0.1 * rng.standard_normal(int(2.1 * 44100)), 44100)
    (root / "corrupt.wav").write_bytes(rng.bytes(2048))
    sf.write(root / "sub" / "empty.wav", np.zeros(0), 16000)
    return root


@pytest.fixture(scope="module")
def cluster():
    """A local Ray instance in this process (embed_paths uses it as it is and leaves it running)."""
    context = ray.init(num_cpus=RAY_CPUS, include_dashboard=False, log_to_driver=False,
                       runtime_env={"env_vars": {"TF_CPP_MIN_LOG_LEVEL": "2"}})
    yield context
    ray.shutdown()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_tree(tmp_path_factory.mktemp("ray") / "data")


@pytest.fixture
def torch_threads():
    """Set this process's torch threads for a local run, restored afterwards."""
    import torch

    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def _assert_identical(a_dir: Path, b_dir: Path) -> None:
    assert _files(a_dir) == _files(b_dir) == {f"{name}.npz" for name in GOOD}
    for name in GOOD:
        a, b = _load(a_dir / f"{name}.npz"), _load(b_dir / f"{name}.npz")
        assert set(a) == set(b) == KEYS
        for key in KEYS:
            assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), (name, key)


def test_ray_and_local_write_identical_files(cluster, data, tmp_path, torch_threads, monkeypatch):
    # Relative paths, from a cwd the Ray workers do not share: the driver hands them absolute paths.
    monkeypatch.chdir(tmp_path)
    relative = os.path.relpath(data, tmp_path)
    # One actor holding all RAY_CPUS CPUs runs torch with RAY_CPUS threads: so does the local run here
    # (torch CPU kernels may round differently with a different thread count).
    remote = embed_paths([relative], "ray", engine="ray", num_workers=1, progress=False)
    torch_threads(RAY_CPUS)
    local = embed_paths([relative], "local", engine="local", progress=False)
    assert str(_load(tmp_path / "ray" / "a.wav.npz")["source"]) == os.path.join(relative, "a.wav")
    for key in ("embedded", "skipped", "failed", "failures", "audio_seconds"):
        assert remote[key] == local[key], key
    assert remote["embedded"] == 3 and remote["failed"] == 2
    _assert_identical(tmp_path / "ray", tmp_path / "local")
    assert ray.is_initialized()                                    # a cluster it did not start is left running

    again = embed_paths([relative], "ray", engine="ray", num_workers=1, progress=False)
    assert (again["embedded"], again["skipped"]) == (0, 3)


def test_several_actors_small_batches(cluster, data, tmp_path):
    remote = embed_paths([data], tmp_path / "ray", backend="onnx", engine="ray", num_workers=2,
                         batch_seconds=0.5, progress=False)
    local = embed_paths([data], tmp_path / "local", backend="onnx", batch_seconds=0.5, progress=False)
    assert remote["embedded"] == local["embedded"] == 3
    _assert_identical(tmp_path / "ray", tmp_path / "local")


def test_cli_with_address_of_a_running_cluster(cluster, data, tmp_path):
    """`hear-dual embed --engine ray --address ADDR` from another process joins the cluster started here."""
    out = tmp_path / "cli"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-m", "hear_dual.embed", str(data), "--out", str(out), "--backend", "onnx",
                           "--engine", "ray", "--address", cluster.address_info["gcs_address"], "--quiet"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1, proc.stderr                       # the corrupt and the empty file fail
    assert "embedded 3 file(s)" in proc.stdout and "on ray" in proc.stdout and "failed 2:" in proc.stdout
    embed_paths([data], tmp_path / "local", backend="onnx", progress=False)
    _assert_identical(out, tmp_path / "local")
