"""hear_dual.embed: `hear-dual embed` on a generated tree of audio files (local engine; Ray is in test_embed_ray.py)."""

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hear_dual import embed as embed_module
from hear_dual import results as results_module
from hear_dual.audio import num_timestamps, timestamps_ms
from hear_dual.datasets import read_clip
from hear_dual.embed import (
    Embedder,
    Job,
    NoInputsError,
    RayNotInstalledError,
    embed_paths,
    format_summary,
    main,
    plan_batches,
    read_audio,
    runs,
)
from hear_dual.parity import agreement, cosine_rows
from hear_dual.spec import Spec

SPEC = Spec.builtin()
SR = SPEC.sample_rate
STRING_KEYS = ("model", "spec_version", "spec_sha256", "checkpoint_sha256", "backend", "source")
KEYS = {"timestamps", "embeddings", "scene", *STRING_KEYS, "sample_rate", "source_sample_rate", "duration_s"}
GOOD = {"a.wav": 16000, "sub/b.flac": 8000, "sub/deeper/c.ogg": 44100}   # relative path -> file sample rate
BAD = ("corrupt.wav", "sub/empty.wav")


def _noise(seconds: float, rate: int, seed: int, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    tone = 0.3 * np.sin(2 * np.pi * (300 + 100 * seed) * t)
    audio = tone[:, None] + 0.05 * rng.standard_normal((n, channels))
    return audio if channels > 1 else audio[:, 0]


def make_tree(root: Path) -> Path:
    """wav 16 kHz, stereo flac 8 kHz, ogg 44.1 kHz in nested folders, a corrupt .wav, an empty .wav, a text file."""
    (root / "sub" / "deeper").mkdir(parents=True)
    sf.write(root / "a.wav", _noise(1.3, 16000, 1), 16000)
    sf.write(root / "sub" / "b.flac", _noise(0.7, 8000, 2, channels=2), 8000)
    sf.write(root / "sub" / "deeper" / "c.ogg", _noise(2.1, 44100, 3), 44100)
    (root / "corrupt.wav").write_bytes(np.random.default_rng(0).bytes(2048))
    sf.write(root / "sub" / "empty.wav", np.zeros(0), 16000)
    (root / "notes.txt").write_text("not audio\n")
    return root


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _load(path) -> dict:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _run_cli(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def torch_run(tmp_path_factory):
    """The CLI on the whole tree with the torch backend: (data dir, out dir, exit code, stdout, stderr)."""
    root = tmp_path_factory.mktemp("embed")
    data = make_tree(root / "data")
    out = root / "out"
    rc, stdout, stderr = _run_cli([str(data), "--out", str(out), "--quiet"])
    return data, out, rc, stdout, stderr


@pytest.fixture(scope="module")
def torch_embedder():
    return Embedder("torch")


def test_outputs_mirror_the_input_tree(torch_run):
    data, out, rc, stdout, _ = torch_run
    assert _files(out) == {f"{name}.npz" for name in GOOD}        # no temp files, nothing for bad or text files
    assert "embedded 3 file(s)" in stdout


def test_npz_contents(torch_run, torch_embedder):
    import torch

    import hear_dual.torch_impl as torch_backend

    data, out, *_ = torch_run
    for name, rate in GOOD.items():
        result = _load(out / f"{name}.npz")
        assert set(result) == KEYS
        n_samples = len(read_clip(data / name, SR))
        T = num_timestamps(SPEC, n_samples)
        assert result["timestamps"].dtype == np.float32 and result["timestamps"].shape == (T,)
        np.testing.assert_array_equal(result["timestamps"], timestamps_ms(SPEC, n_samples))
        assert result["embeddings"].dtype == np.float32
        assert result["embeddings"].shape == (T, SPEC.timestamp_embedding_size)
        assert result["scene"].dtype == np.float32 and result["scene"].shape == (SPEC.scene_embedding_size,)
        assert np.isfinite(result["embeddings"]).all()
        pooled = torch_backend.pool_scene(torch.from_numpy(result["embeddings"][None]), SPEC.scene_pooling)[0]
        np.testing.assert_allclose(result["scene"], pooled.numpy(), rtol=1e-6, atol=1e-6)
        for key in STRING_KEYS:
            assert result[key].dtype.kind == "U" and result[key].shape == ()
        assert str(result["model"]) == SPEC.name and str(result["spec_version"]) == str(SPEC.version)
        assert str(result["spec_sha256"]) == SPEC.sha256
        assert str(result["checkpoint_sha256"]) == torch_embedder.model.checkpoint_sha256
        assert str(result["backend"]) == "torch" and str(result["source"]) == str(data / name)
        assert int(result["sample_rate"]) == SR and int(result["source_sample_rate"]) == rate
        assert float(result["duration_s"]) == pytest.approx(sf.info(str(data / name)).duration)


def test_failures_are_reported_and_the_exit_code_is_non_zero(torch_run):
    data, out, rc, stdout, _ = torch_run
    assert rc == 1
    assert "failed 2:" in stdout
    for name in BAD:
        line = next(line for line in stdout.splitlines() if line.strip().startswith(str(data / name)))
        assert ": " in line.strip()[len(str(data / name)):]       # file, then the reason
    assert "empty file: 0 audio frames" in stdout
    assert "corrupt.wav: LibsndfileError" in stdout
    assert "notes.txt" not in stdout


def test_summary_dict(tmp_path):
    data = make_tree(tmp_path / "data")
    summary = embed_paths([data / "sub"], tmp_path / "out", backend="onnx", progress=False)
    assert summary["embedded"] == 2 and summary["skipped"] == 0 and summary["failed"] == 1
    assert summary["failures"][0]["source"] == str(data / "sub" / "empty.wav")
    assert summary["outputs"] == sorted(str(tmp_path / "out" / f"{n}.npz") for n in ("b.flac", "deeper/c.ogg"))
    assert summary["audio_seconds"] == pytest.approx(0.7 + 2.1)
    assert "failed 1:" in format_summary(summary)


def test_file_inputs_go_by_name_and_missing_paths_fail(tmp_path):
    data = make_tree(tmp_path / "data")
    out = tmp_path / "out"
    summary = embed_paths([data / "sub" / "b.flac", data / "notes.txt", tmp_path / "missing.wav"], out,
                          backend="onnx", progress=False)
    assert _files(out) == {"b.flac.npz"}
    reasons = {f["source"]: f["reason"] for f in summary["failures"]}
    assert reasons[str(tmp_path / "missing.wav")] == "no such file or directory"
    assert str(data / "notes.txt") in reasons                     # named explicitly, so tried, and it fails


def test_relative_paths_are_recorded_as_given(tmp_path, monkeypatch):
    make_tree(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    summary = embed_paths(["data/sub/deeper", "data/a.wav"], "out", backend="onnx", progress=False)
    assert summary["outputs"] == [os.path.join("out", "a.wav.npz"), os.path.join("out", "c.ogg.npz")]
    assert str(_load(tmp_path / "out" / "c.ogg.npz")["source"]) == os.path.join("data/sub/deeper", "c.ogg")


def test_colliding_outputs_fail(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    for folder in ("x", "y"):
        sf.write(tmp_path / folder / "same.wav", _noise(0.5, SR, 1), SR)
    summary = embed_paths([tmp_path / "x" / "same.wav", tmp_path / "y" / "same.wav", tmp_path / "x" / "same.wav"],
                          tmp_path / "out", backend="onnx", progress=False)
    assert summary["embedded"] == 1 and summary["failed"] == 1
    assert "already taken by" in summary["failures"][0]["reason"]


def test_no_inputs_is_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("no audio here")
    with pytest.raises(NoInputsError, match="no audio files found"):
        embed_paths([tmp_path], tmp_path / "out", progress=False)
    rc, _, stderr = _run_cli([str(tmp_path), "--out", str(tmp_path / "out")])
    assert rc == 2 and "no audio files found" in stderr
    rc, _, stderr = _run_cli([str(tmp_path / "nothing"), "--out", str(tmp_path / "out")])
    assert rc == 2 and "no such file or directory" in stderr
    assert not (tmp_path / "out").exists()


def test_rerun_skips_without_rewriting_and_overwrite_redoes(tmp_path):
    data = make_tree(tmp_path / "data")
    out = tmp_path / "out"
    first = embed_paths([data], out, backend="onnx", progress=False)
    assert first["embedded"] == 3
    before = {name: os.stat(out / f"{name}.npz") for name in GOOD}
    contents = {name: _load(out / f"{name}.npz") for name in GOOD}

    again = embed_paths([data], out, backend="onnx", progress=False)
    assert (again["embedded"], again["skipped"], again["failed"]) == (0, 3, 2)
    for name, stat in before.items():
        now = os.stat(out / f"{name}.npz")
        assert (now.st_mtime_ns, now.st_ino) == (stat.st_mtime_ns, stat.st_ino)

    redo = embed_paths([data], out, backend="onnx", overwrite=True, progress=False)
    assert (redo["embedded"], redo["skipped"]) == (3, 0)
    for name, stat in before.items():
        assert os.stat(out / f"{name}.npz").st_ino != stat.st_ino      # a new file, replaced atomically
        redone = _load(out / f"{name}.npz")
        assert all(np.array_equal(redone[k], contents[name][k]) for k in KEYS)
    assert _files(out) == {f"{name}.npz" for name in GOOD}


def test_a_rerun_with_nothing_to_do_loads_no_model(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    sf.write(data / "a.wav", _noise(0.5, 16000, 0), 16000)
    out = tmp_path / "out"
    assert embed_paths([data], out, backend="onnx", progress=False)["embedded"] == 1

    def no_model(*args, **kwargs):
        raise AssertionError("a model or checkpoint was loaded for a run with nothing to do")

    monkeypatch.setattr(embed_module, "Embedder", no_model)
    monkeypatch.setattr("hear_dual.checkpoint.read_checkpoint", no_model)
    again = embed_paths([data], out, backend="onnx", progress=False)
    assert (again["embedded"], again["skipped"], again["failed"]) == (0, 1, 0)


def test_interrupted_run_leaves_no_partial_files_and_the_rerun_completes(tmp_path, monkeypatch):
    data = make_tree(tmp_path / "data")
    out = tmp_path / "out"
    real_savez, calls = results_module._savez, []

    def crash_on_second(file, **arrays):
        calls.append(1)
        if len(calls) == 2:
            file.write(b"PK\x03\x04 half an npz")
            raise KeyboardInterrupt                     # as if the run were killed while writing
        real_savez(file, **arrays)

    monkeypatch.setattr(results_module, "_savez", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        embed_paths([data], out, backend="onnx", batch_seconds=0.1, progress=False)   # one file per batch
    written = _files(out)
    assert len(written) == 1 and written <= {f"{name}.npz" for name in GOOD}
    _load(out / next(iter(written)))                    # the one written is complete

    monkeypatch.setattr(results_module, "_savez", real_savez)
    rerun = embed_paths([data], out, backend="onnx", progress=False)
    assert (rerun["embedded"], rerun["skipped"]) == (2, 1)
    assert _files(out) == {f"{name}.npz" for name in GOOD}
    for name in GOOD:
        assert set(_load(out / f"{name}.npz")) == KEYS


def test_write_errors_fail_the_file_and_the_run_goes_on(tmp_path, monkeypatch):
    data = make_tree(tmp_path / "data")
    real_savez = results_module._savez

    def disk_full_for_b(file, **arrays):
        if str(arrays["source"]).endswith("b.flac"):
            raise OSError(28, "No space left on device")
        real_savez(file, **arrays)

    monkeypatch.setattr(results_module, "_savez", disk_full_for_b)
    summary = embed_paths([data], tmp_path / "out", backend="onnx", progress=False)
    assert summary["embedded"] == 2
    assert any("b.flac" in f["source"] and "No space left" in f["reason"] for f in summary["failures"])
    assert _files(tmp_path / "out") == {"a.wav.npz", "sub/deeper/c.ogg.npz"}


def test_scene_only(tmp_path):
    data = make_tree(tmp_path / "data")
    embed_paths([data / "a.wav"], tmp_path / "out", backend="onnx", scene_only=True, progress=False)
    result = _load(tmp_path / "out" / "a.wav.npz")
    assert set(result) == KEYS - {"embeddings"}
    assert result["scene"].shape == (SPEC.scene_embedding_size,)
    assert result["timestamps"].shape == (num_timestamps(SPEC, len(read_clip(data / "a.wav", SR))),)


def _job(name: str, seconds: float) -> Job:
    return Job(name, name + ".npz", "/" + name, f"/{name}.npz", SR, int(seconds * SR), int(seconds * SR))


def test_plan_batches_groups_similar_lengths_within_the_budget():
    jobs = [_job(f"f{i}", s) for i, s in enumerate([5, 1, 30, 2, 90, 1, 61, 29, 10])]
    batches = plan_batches(jobs, SR, batch_seconds=60)
    assert sorted(j.source for b in batches for j in b) == sorted(j.source for j in jobs)
    lengths = [[j.n_samples / SR for j in b] for b in batches]
    assert lengths == [[1, 1, 2, 5, 10], [29, 30], [61], [90]]
    for batch in lengths:
        assert len(batch) == 1 or len(batch) * max(batch) <= 60
    assert plan_batches(jobs[::-1], SR, batch_seconds=60) == batches    # independent of input order
    assert [len(b) for b in plan_batches(jobs, SR, batch_seconds=0.5)] == [1] * len(jobs)
    assert [len(b) for b in plan_batches(jobs, SR, batch_seconds=1e6)] == [7, 1, 1]   # over 60 s: alone


def test_padding_in_a_batch_does_not_change_a_clip(torch_embedder):
    short = _noise(0.61, SR, 4).astype(np.float32)
    longer = [_noise(s, SR, 5 + i).astype(np.float32) for i, s in enumerate((2.3, 4.0))]
    (alone_e, alone_t, alone_s), = torch_embedder.embed([short])
    batched = torch_embedder.embed([longer[0], short, longer[1]])       # padded to 4 s
    batch_e, batch_t, batch_s = batched[1]
    assert batch_e.shape == alone_e.shape == (num_timestamps(SPEC, len(short)), SPEC.timestamp_embedding_size)
    np.testing.assert_array_equal(batch_t, alone_t)
    assert agreement(alone_e, batch_e, SPEC.tolerance, SPEC.min_cosine).passed
    assert agreement(alone_s, batch_s, SPEC.tolerance, SPEC.min_cosine).passed
    (long_alone_e, _, _), = torch_embedder.embed([longer[1]])
    assert agreement(long_alone_e, batched[2][0], SPEC.tolerance, SPEC.min_cosine).passed


def test_runs_of_equal_keys():
    assert runs([]) == []
    assert runs([5]) == [slice(0, 1)]
    assert runs([1, 1, 2, 1, 1, 1]) == [slice(0, 2), slice(2, 3), slice(3, 6)]


# Clips out of order, some sharing a length or only a number of timestamps, each its own noise: a scene taken from
# another clip's rows, or a run cut at the wrong place, gives another clip's scene or a shape error.
RUN_LENGTHS = (8000, 8000, 4000, 8000, 8001, 8800, 4000, 12000)


@pytest.mark.parametrize("backend", ["torch", "tf", "onnx"])
def test_each_clip_gets_the_scene_of_its_own_rows(backend):
    import importlib

    import torch

    module = importlib.import_module(f"hear_dual.{backend}_impl")
    embedder = Embedder(backend)
    clips = [_noise(n / SR, SR, seed).astype(np.float32) for seed, n in enumerate(RUN_LENGTHS)]
    outputs = embedder.embed(clips)
    for clip, (embeddings, timestamps, scene) in zip(clips, outputs):
        assert embeddings.shape == (num_timestamps(SPEC, len(clip)), SPEC.timestamp_embedding_size)
        np.testing.assert_array_equal(timestamps, timestamps_ms(SPEC, len(clip)))
        rows = torch.from_numpy(embeddings[None]) if backend == "torch" else embeddings[None]
        pooled = np.asarray(module.pool_scene(rows, SPEC.scene_pooling))[0]      # the per-clip call it replaced
        np.testing.assert_array_equal(scene, pooled)
        alone = np.asarray(module.get_scene_embeddings(clip[None], embedder.model))[0]
        assert agreement(alone, scene, SPEC.tolerance, SPEC.min_cosine).passed


def test_a_scene_pass_of_its_own_runs_per_clip_length():
    """crepe-tiny's scene has a hop of its own (a second pass, SPEC section 6): clips of one length share a call,
    and each gets the scene of its own audio."""
    embedder = Embedder("onnx", "crepe-tiny")
    import hear_dual.onnx_impl as module

    assert not embedder.spec.scene_from_timestamps
    clips = [_noise(n / SR, SR, seed).astype(np.float32) for seed, n in enumerate(RUN_LENGTHS)]
    for clip, (_, _, scene) in zip(clips, embedder.embed(clips)):
        alone = module.get_scene_embeddings(clip[None], embedder.model)[0]
        assert agreement(alone, scene, embedder.spec.tolerance, embedder.spec.min_cosine).passed


def test_batched_files_equal_files_embedded_alone(tmp_path):
    data = make_tree(tmp_path / "data")
    embed_paths([data], tmp_path / "batched", backend="onnx", batch_seconds=1000, progress=False)
    embed_paths([data], tmp_path / "alone", backend="onnx", batch_seconds=0.01, progress=False)
    for name in GOOD:
        a, b = _load(tmp_path / "alone" / f"{name}.npz"), _load(tmp_path / "batched" / f"{name}.npz")
        np.testing.assert_array_equal(a["timestamps"], b["timestamps"])
        for key in ("embeddings", "scene"):
            assert agreement(a[key], b[key], SPEC.tolerance, SPEC.min_cosine).passed, (name, key)


def test_read_audio_is_read_clip(tmp_path):
    data = make_tree(tmp_path / "data")
    for name, rate in GOOD.items():
        audio, source_rate, frames = read_audio(data / name, SR)
        np.testing.assert_array_equal(audio, read_clip(data / name, SR))
        assert (source_rate, frames) == (rate, sf.info(str(data / name)).frames)


def test_resampled_sine_matches_the_sine_generated_at_the_model_rate(tmp_path, torch_embedder):
    """A 1 kHz sine stored at 8 kHz, resampled by soxr HQ, against the same sine generated at 16 kHz.

    Inside the clip the two signals agree to ~1e-7; within ~140 samples of either end soxr's band-limiting
    filter rings (the sine starts and stops abruptly). Timestamps whose receptive field stays clear of the
    first and last 10 ms pass the parity gate; the edge timestamps and the scene embedding stay very close.
    """
    seconds = 3.0
    for rate in (8000, 16000):
        t = np.arange(int(seconds * rate)) / rate
        sf.write(tmp_path / f"sine_{rate}.wav", 0.5 * np.sin(2 * np.pi * 1000 * t), rate, subtype="FLOAT")
    embed_paths([tmp_path], tmp_path / "out", progress=False)
    low, ref = _load(tmp_path / "out" / "sine_8000.wav.npz"), _load(tmp_path / "out" / "sine_16000.wav.npz")
    np.testing.assert_array_equal(low["timestamps"], ref["timestamps"])
    edge, hop, n = SR // 100, SPEC.hop_samples, int(seconds * SR)
    first = -(-(edge + SPEC.pad_left) // hop)                       # receptive field starts at or after `edge`
    last = (n - edge - SPEC.receptive_field_samples + SPEC.pad_left) // hop
    assert 0 < first < last < len(ref["timestamps"]) - 1
    inner = slice(first, last + 1)
    assert agreement(ref["embeddings"][inner], low["embeddings"][inner], SPEC.tolerance, SPEC.min_cosine).passed
    assert cosine_rows(ref["embeddings"], low["embeddings"]).min() >= 0.998
    assert cosine_rows(ref["scene"][None], low["scene"][None]).min() >= 0.9995


@pytest.mark.parametrize("backend", ["tf", "onnx"])
def test_backends_agree_with_torch(torch_run, tmp_path, backend):
    data, torch_out, *_ = torch_run
    summary = embed_paths([data], tmp_path / "out", backend=backend, progress=False)
    assert summary["embedded"] == 3
    for name in GOOD:
        ref, other = _load(torch_out / f"{name}.npz"), _load(tmp_path / "out" / f"{name}.npz")
        assert str(other["backend"]) == backend
        np.testing.assert_array_equal(ref["timestamps"], other["timestamps"])
        for key in ("embeddings", "scene"):
            assert agreement(ref[key], other[key], SPEC.tolerance, SPEC.min_cosine).passed, (name, key)
        for key in ("model", "spec_sha256", "checkpoint_sha256", "source_sample_rate", "duration_s"):
            assert ref[key] == other[key]


def test_local_engine_never_imports_ray_and_the_ray_engine_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)                  # `import ray` raises ImportError
    data = make_tree(tmp_path / "data")
    assert embed_paths([data / "a.wav"], tmp_path / "out", backend="onnx", progress=False)["embedded"] == 1
    with pytest.raises(RayNotInstalledError, match=r"hear-dual\[ray\]"):
        embed_paths([data], tmp_path / "out", engine="ray", progress=False)
    rc, _, stderr = _run_cli([str(data), "--out", str(tmp_path / "out"), "--engine", "ray"])
    assert rc == 2 and "hear-dual[ray]" in stderr


SPY_ON_TORCH = """
import os, sys
class Spy:      # records OMP_WAIT_POLICY as torch (and with it GNU OpenMP, which reads it once) starts to load
    def find_spec(self, name, path=None, target=None):
        if name == "torch" and "seen" not in globals():
            globals()["seen"] = os.environ.get("OMP_WAIT_POLICY", "(unset)")
sys.meta_path.insert(0, Spy())
from hear_dual.cli import main
rc = main(["embed", sys.argv[1], "--out", sys.argv[2], "--quiet"])
print(rc, seen)
"""


@pytest.mark.parametrize("user, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_the_cli_lets_openmp_threads_sleep_before_torch_loads_unless_the_user_chose(tmp_path, user, expected):
    """`hear-dual embed` (local engine: a second thread reads and writes files beside the model) sets
    OMP_WAIT_POLICY=PASSIVE before torch loads; a user's own value stays."""
    data = make_tree(tmp_path / "data")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | ({"OMP_WAIT_POLICY": user} if user else {})
    run = subprocess.run([sys.executable, "-c", SPY_ON_TORCH, str(data / "a.wav"), str(tmp_path / "out")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.stdout.split()[-2:] == ["0", expected], run.stderr[-2000:]


def test_cli_help_and_bad_arguments(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "--batch-seconds" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["x", "--out", "y", "--backend", "jax"])
    assert _run_cli(["x", "--out", "y", "--batch-seconds", "0"])[0] == 2


def test_add_embed_parser_registers_the_subcommand():
    import argparse

    parser = argparse.ArgumentParser(prog="hear-dual")
    embed_module.add_embed_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["embed", "a", "b/", "--out", "o", "--engine", "ray", "--address", "auto",
                              "--num-workers", "3", "--scene-only", "--overwrite", "--batch-seconds", "30"])
    assert args.func is embed_module.cmd_embed
    assert (args.inputs, args.out, args.engine, args.address, args.num_workers) == (["a", "b/"], "o", "ray", "auto", 3)
    assert args.scene_only and args.overwrite and args.batch_seconds == 30 and args.backend == "torch"


def test_an_archive_damaged_in_the_middle_is_redone(tmp_path):
    """Outputs are not synced one by one: after a crash of the machine an archive may keep its end record over data
    that never reached the disk. Its checksums give it away, and a rerun embeds it again."""
    import zipfile

    data, out = make_tree(tmp_path / "data"), tmp_path / "out"
    embed_paths([data], out, backend="onnx", progress=False)
    path = out / "a.wav.npz"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 64] = bytes(64)       # a block of zeros where the embeddings were
    path.write_bytes(bytes(raw))
    assert zipfile.is_zipfile(path) and not embed_module.finished(path)
    rerun = embed_paths([data], out, backend="onnx", progress=False)
    assert (rerun["embedded"], rerun["skipped"]) == (1, 2)
    assert set(_load(path)) == KEYS


def test_outputs_and_results_files_get_the_mode_open_would_give(tmp_path):
    """Atomic writes go through mkstemp, whose files are private (0600); outputs must be readable as usual."""
    (tmp_path / "plain").write_text("")
    results_module.write_npz_atomic(tmp_path / "a.npz", {"x": np.zeros(2)})
    results_module.write_json_atomic(tmp_path / "a.json", {"x": 1})
    want = os.stat(tmp_path / "plain").st_mode
    assert os.stat(tmp_path / "a.npz").st_mode == os.stat(tmp_path / "a.json").st_mode == want
