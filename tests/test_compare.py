"""hear_dual.compare and hear_dual.downstream: comparing two HEAR 2021 modules, on toy modules and on hear_dual."""

import argparse
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hear_dual import compare, datasets, hear_module
from hear_dual.compare import add_compare_parser, compare_modules, format_report, main
from hear_dual.downstream import fsdd_subset, probe_agreement
from hear_dual.parity import to_numpy
from hear_dual.signals import SIGNAL_KINDS

HEAR_MODULES = Path(__file__).resolve().parent / "hear_modules"
HAVE_FSDD = datasets.fsdd_dir() is not None
FAST = {"lengths_s": (0.5,), "batch": 2}


@pytest.fixture(autouse=True)
def hear_modules_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(HEAR_MODULES))


def _compare(*args, **kwargs) -> dict:
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(HEAR_MODULES))
        return compare_modules(*args, **kwargs)


@pytest.fixture(scope="module")
def toy_report():
    return _compare("toy_torch", "toy_tf")


@pytest.fixture(scope="module")
def drift_report():
    return _compare("toy_torch", "toy_tf_drift")


def _rows(report) -> dict:
    return {row["input"]: row for row in report["rows"]}


def test_toy_torch_and_tf_ports_agree(toy_report):
    assert toy_report["kind_a"] == "torch" and toy_report["kind_b"] == "tf"
    assert toy_report["problems"] == [] and toy_report["passed"] is True
    assert all(v == {"a": 8, "b": 8, "equal": True} for k, v in toy_report["metadata"].items() if k != "sample_rate")
    rows = _rows(toy_report)
    expected = {f"{kind} {s:g}s" for kind in SIGNAL_KINDS for s in (0.99, 2.74)}
    expected |= {"fsdd_speech"} if HAVE_FSDD else set()
    assert set(rows) == expected
    for row in rows.values():
        assert row["passed"] and row["timestamps_equal"] and row["max_timestamp_diff_ms"] == 0.0
        assert row["timestamp_embeddings"]["max_rel_diff"] <= 2e-5 and row["scene_embeddings"]["passed"]
    assert rows["silence 2.74s"]["shapes_a"]["timestamp_embeddings"] == [3, 138, 8]   # 1 + 43840 // 320 frames
    text = format_report(toy_report)
    assert text.splitlines()[-1] == f"overall: PASS (all {len(rows)} inputs agree)"
    assert "FAIL" not in text


@pytest.mark.skipif(not HAVE_FSDD, reason="FSDD not found")
def test_downstream_probe_on_toy_ports(toy_report):
    down = toy_report["downstream"]
    assert down["held_out_group"] == "george" and (down["n_train"], down["n_test"]) == (200, 40)
    assert down["identical_predictions"] == 1.0 and down["accuracy_a"] == down["accuracy_b"] > 0.15   # chance is 0.1
    assert "identical predictions 100.0% (0 of 40 differ)" in format_report(toy_report)


def test_subtle_drift_is_caught_and_shown(drift_report):
    assert drift_report["problems"] == [] and drift_report["passed"] is False
    rows = _rows(drift_report)
    for name in ("silence 0.99s", "near_silence 2.74s", "sine_50hz 0.99s", "sine_near_nyquist 2.74s"):
        assert not rows[name]["passed"] and rows[name]["timestamp_embeddings"]["max_rel_diff"] > 1e-3
    # subtle: noise passes, shapes and timestamps are right, and every cosine is still > 0.99
    assert rows["white_noise 0.99s"]["passed"]
    assert all(r["shapes_equal"] and r["timestamps_equal"] for r in rows.values())
    assert min(r["timestamp_embeddings"]["min_cosine"] for r in rows.values()) > 0.99
    lines = format_report(drift_report).splitlines()
    silence = next(line for line in lines if line.startswith("silence 0.99s"))
    assert silence.count("FAIL") == 2 and "1.67e-01" in silence
    assert next(line for line in lines if line.startswith("white_noise 0.99s")).count("pass") == 2
    n_failed = sum(not r["passed"] for r in rows.values())
    assert lines[-1].startswith(f"overall: FAIL ({n_failed} of {len(rows)} inputs disagree: silence 0.99s,")
    if HAVE_FSDD:
        assert drift_report["downstream"]["identical_predictions"] < 1.0


def test_main_json_exit_codes(capsys):
    assert main(["toy_torch", "toy_tf", "--json", "--lengths", "0.5", "--no-speech"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is True and len(report["rows"]) == len(SIGNAL_KINDS)
    assert report["downstream"] == {"skipped": "speech disabled"}
    assert main(["toy_torch", "toy_tf_drift", "--json", "--lengths", "0.5", "--no-speech"]) == 1
    assert json.loads(capsys.readouterr().out)["passed"] is False
    assert main(["toy_torch", "toy_tf_drift", "--lengths", "0.5", "--no-speech", "--tol", "1.0",
                 "--min-cosine", "0.9"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("overall: PASS (all 11 inputs agree)")


def test_add_compare_parser_registers_the_subcommand():
    parser = argparse.ArgumentParser(prog="hear-dual")
    add_compare_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["compare", "pkg_a", "pkg_b", "--weights-a", "a.pt", "--tol", "1e-4", "--json"])
    assert (args.command, args.module_a, args.module_b, args.weights_a, args.weights_b) == \
        ("compare", "pkg_a", "pkg_b", "a.pt", "")
    assert args.tol == 1e-4 and args.json and args.func is compare.cmd_compare
    assert args.lengths == [0.99, 2.74] and args.batch == 3 and not args.no_speech


def test_cli_in_a_subprocess():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HEAR_MODULES), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-m", "hear_dual.compare", "toy_torch", "toy_tf_drift", "--json",
                           "--lengths", "0.3", "--batch", "1", "--no-speech"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["passed"] is False and report["rows"][0]["input"] == "silence 0.3s"
    assert report["rows"][0]["timestamp_embeddings"]["passed"] is False


def test_hear_dual_torch_and_tf_agree():
    report = compare_modules("hear_dual.torch_impl", "hear_dual.tf_impl", lengths_s=(0.99,), batch=2)
    assert report["passed"] is True, format_report(report)
    assert report["metadata"]["scene_embedding_size"] == {"a": 1024, "b": 1024, "equal": True}
    assert all(r["timestamps_equal"] and r["timestamp_embeddings"]["max_rel_diff"] <= 2e-5 for r in report["rows"])
    if HAVE_FSDD:
        assert report["rows"][-1]["input"] == "fsdd_speech" and report["rows"][-1]["passed"]
        assert report["downstream"]["identical_predictions"] >= 0.975
    json.dumps(compare.jsonable(report), allow_nan=False)


def test_mismatched_sample_rate_is_a_clear_failure():
    report = _compare("toy_torch", "toy_torch_22k", **FAST)
    assert report["passed"] is False and report["rows"] == []
    assert report["metadata"]["sample_rate"] == {"a": 16000, "b": 22050, "equal": False}
    assert report["problems"] == ["sample_rate differs: A (toy_torch) has 16000, B (toy_torch_22k) has 22050"]
    text = format_report(report)
    assert "sample_rate A 16000 / B 22050" in text and text.splitlines()[-1].startswith("overall: FAIL (sample_rate")


def test_mismatched_embedding_size_is_a_clear_failure(monkeypatch):
    toy_tf = importlib.import_module("toy_tf")

    def load_model(model_file_path=""):
        model = toy_tf.ToyModel()
        model.timestamp_embedding_size = 16
        return model

    monkeypatch.setattr(toy_tf, "load_model", load_model)
    report = compare_modules("toy_torch", "toy_tf", **FAST)
    assert report["passed"] is False and report["rows"] == []
    assert report["problems"] == ["timestamp_embedding_size differs: A (toy_torch) has 8, B (toy_tf) has 16"]


def test_unloadable_modules_and_models_are_reported():
    report = compare_modules("toy_torch", "no_such_hear_module_xyz", **FAST)
    assert report["passed"] is False and report["kind_a"] == "torch"
    assert report["problems"][0].startswith("cannot load module B 'no_such_hear_module_xyz': ModuleNotFoundError")
    assert "overall: FAIL (cannot load module B" in format_report(report)
    with pytest.raises(TypeError, match="must be a torch.nn.Module or a tf.Module"):
        hear_module.model_kind(object())
    with pytest.raises(AttributeError, match="lacks the HEAR 2021 function"):
        hear_module.load_hear_module("toy_constants")


def test_a_module_that_crashes_fails_that_input_only(monkeypatch):
    toy_tf = importlib.import_module("toy_tf")
    original = toy_tf.get_timestamp_embeddings

    def crashes_on_silence(audio, model):
        if not np.any(audio.numpy()):
            raise ValueError("cannot take log of silence")
        return original(audio, model)

    monkeypatch.setattr(toy_tf, "get_timestamp_embeddings", crashes_on_silence)
    report = compare_modules("toy_torch", "toy_tf", include_speech=False, **FAST)
    rows = _rows(report)
    assert rows["silence 0.5s"]["error"] == "B (toy_tf) raised ValueError: cannot take log of silence"
    assert not rows["silence 0.5s"]["passed"] and rows["near_silence 0.5s"]["passed"]
    line = next(line for line in format_report(report).splitlines() if line.startswith("silence 0.5s "))
    assert line.endswith("| ERROR: B (toy_tf) raised ValueError: cannot take log of silence")


def test_shifted_timestamps_fail_with_their_offset(monkeypatch):
    toy_tf = importlib.import_module("toy_tf")
    original = toy_tf.get_timestamp_embeddings

    def half_hop_late(audio, model):
        embeddings, timestamps = original(audio, model)
        return embeddings, timestamps + 10.0

    monkeypatch.setattr(toy_tf, "get_timestamp_embeddings", half_hop_late)
    report = compare_modules("toy_torch", "toy_tf", include_speech=False, **FAST)
    assert report["passed"] is False
    for row in report["rows"]:
        assert row["timestamp_embeddings"]["passed"] and row["scene_embeddings"]["passed"]
        assert not row["timestamps_equal"] and row["max_timestamp_diff_ms"] == 10.0 and not row["passed"]
    line = next(line for line in format_report(report).splitlines() if line.startswith("chirp 0.5s "))
    assert "10 ms  FAIL |" in line and line.endswith("pass")


def test_without_fsdd_speech_and_downstream_are_skipped(monkeypatch):
    monkeypatch.setattr(datasets, "fsdd_dir", lambda: None)
    assert fsdd_subset(16000) is None
    report = compare_modules("toy_torch", "toy_tf", **FAST)
    assert report["passed"] is True and "fsdd_speech" not in _rows(report)
    assert report["speech"] == report["downstream"] == {"skipped": "FSDD not found"}
    assert "downstream: skipped (FSDD not found)" in format_report(report)


def test_to_numpy_and_jsonable():
    import tensorflow as tf
    import torch

    expected = np.arange(6, dtype=np.float32).reshape(2, 3)
    for x in (torch.from_numpy(expected.copy()).requires_grad_(), tf.constant(expected), tf.Variable(expected),
              expected, expected.tolist()):
        out = to_numpy(x)
        assert isinstance(out, np.ndarray) and np.array_equal(out, expected)
    assert compare.jsonable({"a": np.float32(1.5), "b": (np.int64(2), float("inf")), "c": np.bool_(True)}) == \
        {"a": 1.5, "b": [2, None], "c": True}


def test_probe_agreement_splits_and_agreement():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 40)
    groups = np.tile(np.array(["s1", "s2", "s3", "s4"]), 30)
    scene = rng.standard_normal((120, 5)) + 3.0 * np.eye(5)[labels]
    same = probe_agreement(scene, scene.copy(), labels, groups=groups)
    assert same["held_out_group"] == "s1" and (same["n_train"], same["n_test"]) == (90, 30)
    assert same["identical_predictions"] == 1.0 and same["accuracy_a"] == same["accuracy_b"] > 0.9
    assert probe_agreement(scene, scene, labels, groups=groups, seed=2)["held_out_group"] == "s3"
    scrambled = probe_agreement(scene, rng.permutation(scene), labels)
    assert (scrambled["n_train"], scrambled["n_test"]) == (90, 30) and "held_out_group" not in scrambled
    assert scrambled["identical_predictions"] < 0.7 and scrambled["accuracy_b"] < scrambled["accuracy_a"]
    assert scrambled["n_differing_predictions"] == round(30 * (1 - scrambled["identical_predictions"]))


def test_probe_agreement_needs_sklearn(monkeypatch):
    for name in [m for m in sys.modules if m == "sklearn" or m.startswith("sklearn.")] + ["sklearn"]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"needs sklearn: pip install \"hear-dual\[eval\]\""):
        probe_agreement(np.zeros((4, 2)), np.zeros((4, 2)), [0, 1, 0, 1])


@pytest.mark.skipif(not HAVE_FSDD, reason="FSDD not found")
def test_fsdd_subset_is_balanced_and_deterministic():
    audio, digits, speakers = fsdd_subset(8000, n_per_digit_speaker=2)
    assert audio.dtype == np.float32 and audio.shape[0] == 120 and audio.shape[1] <= 8000
    pairs, counts = np.unique(np.stack([digits.astype(str), speakers]), axis=1, return_counts=True)
    assert pairs.shape[1] == 60 and set(counts) == {2} and len(set(speakers)) == 6
    again, digits_again, _ = fsdd_subset(8000, n_per_digit_speaker=2)
    assert np.array_equal(audio, again) and np.array_equal(digits, digits_again)
    other, _, _ = fsdd_subset(8000, n_per_digit_speaker=2, seed=1)
    assert other.shape != audio.shape or not np.array_equal(other, audio)
    assert len(fsdd_subset(16000)[0]) == 240
