"""`hear-dual doctor`: what a user or organizer runs first on a new machine."""

import os
import shutil
import subprocess
import sys

import onnx
import pytest
from onnx import numpy_helper

import hear_dual
from hear_dual.checkpoints import shipped_path


def doctor(*args, cwd, env=None):
    env = dict(env or os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "hear_dual.cli", "doctor", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=600)


@pytest.mark.slow
def test_doctor_passes_and_reports_the_platform(tmp_path):
    """Every shipped checkpoint in every backend against the golden embeddings; the pair checks on all of them are
    the native personality's, printed as the doctor prints them (parity_tests/test_portability.py: check_here, in a
    child), and the conv rounding check runs through the doctor in this file's last test."""
    run = doctor("--no-parity", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    out = run.stdout
    for fact in ("numpy", "dispatch", "torch", "tensorflow", "onnxruntime", "threads"):
        assert fact in out
    for name in ("base", "seeded", "compact", "compact-seeded", "randproj", "crepe-tiny", "musicnn-mtt"):
        assert f"\n{name} " in out
    assert out.rstrip().splitlines()[-1].startswith("PASS")


def corrupt(path, name):
    graph = onnx.load(path)
    init = next(i for i in graph.graph.initializer if i.name == name)
    array = numpy_helper.to_array(init).copy()
    if array.ndim == 3:
        array[:, :, 0] = array[:, :, 0].T       # a layout bug: the file loads, and computes something else
    else:
        array *= 1 + 1e-6
    init.CopyFrom(numpy_helper.from_array(array, name))
    onnx.save(graph, path)


@pytest.mark.slow
def test_doctor_fails_clearly_on_a_corrupted_installed_checkpoint(tmp_path):
    """A damaged install (here: one kernel tap of the shipped default transposed) is named, case by case."""
    package = tmp_path / "site" / "hear_dual"
    shutil.copytree(os.path.dirname(hear_dual.__file__), package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(os.path.join(os.path.dirname(hear_dual.__file__), "..", "spec"), package / "_spec")
    corrupt(package / "checkpoints" / "hear-dual-base.onnx", "conv4.weight")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "site"))
    run = doctor("--no-parity", cwd=tmp_path, env=env)
    assert run.returncode == 1, run.stdout
    assert str(package) in run.stdout
    assert "base: " in run.stdout and "not the file the golden embeddings were made from" in run.stdout
    assert "torch misses the golden embeddings" in run.stdout and "bug report" in run.stdout
    assert "seeded: " not in run.stdout          # the others are fine, and the report says only what is wrong


def test_doctor_fails_clearly_on_a_checkpoint_that_does_not_load(tmp_path):
    path = tmp_path / "corrupted.onnx"
    shutil.copy(shipped_path(), path)
    corrupt(path, "frontend.mel")
    run = doctor("--weights", str(path), "--no-parity", cwd=tmp_path)
    assert run.returncode == 1
    assert "FAIL" in run.stdout and "cannot load" in run.stdout and "frontend.mel" in run.stdout


@pytest.mark.slow
def test_doctor_checks_any_checkpoint_against_the_float64_reference(tmp_path):
    path = tmp_path / "mine.onnx"
    shutil.copy(shipped_path("hear-dual-compact"), path)
    run = doctor("--weights", str(path), cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    assert "cases x 3 backends, worst relative to float64" in run.stdout and "PASS" in run.stdout
    assert "conv1d rounding against float64: " in run.stdout
