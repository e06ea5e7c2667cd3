"""The CPU-personality matrix (SPEC section 12): on this one machine, subprocesses that dispatch like other CPUs
(numpy, torch, oneDNN and MKL capped to AVX2 or SSE4.2; TensorFlow's oneDNN on and off; one thread and all).
In each: every shipped checkpoint loads, every backend meets the golden gate, torch vs TF stays within half the
parity tolerance on generated signals and FSDD, and each conv1d rounds within its bound against float64."""

import importlib.util

import numpy as np
import pytest

from hear_dual.parity import NATIVE
from hear_dual.portability import (
    PERSONALITIES,
    SHIPPED,
    check_here,
    format_doctor,
    matrix_table,
    numpy_dispatch,
    pair_inputs,
    personality_env,
    run_personalities,
)


@pytest.fixture(scope="module")
def matrix():
    reports = run_personalities()
    print("\n" + matrix_table(reports))
    return reports


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(PERSONALITIES)), ids=list(PERSONALITIES))
def test_personality_passes(matrix, index):
    report = matrix[index]
    assert report["passed"], report["problems"]
    assert set(report["checkpoints"]) == set(SHIPPED)
    for entry in report["checkpoints"].values():
        assert set(entry["golden"]) == {"torch", "tf", "onnx"}
        assert "speech" in entry["torch_vs_tf"]["inputs"] or entry["torch_vs_tf"]["speech_max_rel_diff"] is None


@pytest.mark.slow
def test_the_native_report_reads_as_the_doctor_prints_it(matrix):
    """`hear-dual doctor` on this machine is the native personality's check; its pair lines, formatted."""
    out = format_doctor(matrix[list(PERSONALITIES).index("native")])
    for name in SHIPPED:
        assert f"\n{name} " in out
    assert out.count("torch vs tf: ") == len(SHIPPED) and "conv1d rounding against float64: " in out
    assert out.rstrip().splitlines()[-1].startswith("PASS")


@pytest.mark.slow
def test_the_caps_took_effect(matrix):
    """Each knob is checked in the child, not assumed: numpy's active dispatch, torch's kernels, TF's oneDNN."""
    native = numpy_dispatch()
    by_name = {r["personality"]: r for r in matrix}
    for name, report in by_name.items():
        level, onednn, threads = PERSONALITIES[name]
        platform = report["platform"]
        active = platform["numpy_dispatch"]["active"]
        if level == "sse42":
            assert active == [] and platform["torch"]["cpu_capability"] == "DEFAULT"
            assert "SSE4.1" in platform["onednn_isa"]
        if level == "avx2":
            assert not any("512" in t or t == "X86_V4" for t in active)
            assert platform["torch"]["cpu_capability"] == "AVX2" and "AVX-512" not in platform["onednn_isa"]
        assert platform["tensorflow"]["onednn_opts"] == ("1" if onednn else "0")
        if threads:
            assert platform["torch"]["threads"] == threads
        assert not [n for n in report["notes"] if "did not take effect" in n or "kernels, not" in n]
    # The checkpoints were written with AVX-512 dispatch: SSE4.2 always differs from it, and on an AVX-512 CPU
    # so does AVX2. On a CPU without AVX-512 the report says AVX-512 cannot be emulated.
    assert by_name["sse42"]["platform"]["numpy_dispatch"]["active"] != ["X86_V3", "X86_V4", "AVX512_ICL"]
    if not native["cpu_has_avx512f"]:
        assert any("cannot be emulated" in n for n in by_name["avx2"]["notes"])


def test_personalities_keep_their_order_and_single_threaded_ones_run_beside_the_others(monkeypatch):
    """run_personalities: reports in the order asked whatever order they finish in, each with its notes; a
    single-threaded personality starts while a multi-threaded one runs (a fake run_personality records overlaps)."""
    import threading
    import time

    import hear_dual.portability as portability

    running, overlapped, lock = set(), set(), threading.Lock()

    def fake(name, checkpoints, platform_only=False):
        with lock:
            overlapped.update((name, other) for other in running)
            running.add(name)
        time.sleep(0.2 if name == "native" else 0.05)
        with lock:
            running.discard(name)
        return {"personality": name, "passed": True, "problems": []}

    monkeypatch.setattr(portability, "run_personality", fake)
    finished = []
    names = ["native", "native-1t-tfeigen", "avx2"]
    reports = run_personalities(names, ("base",), lambda report: finished.append(report["personality"]))
    assert [r["personality"] for r in reports] == names and all(r["notes"] == [] for r in reports)
    assert sorted(finished) == sorted(names) and finished[0] == "native-1t-tfeigen"
    assert ("native-1t-tfeigen", "native") in overlapped
    assert ("avx2", "native") not in overlapped and ("native", "avx2") not in overlapped


def fake_platform(active, capability, isa, onednn="1"):
    return {"numpy_dispatch": {"active": active}, "torch": {"cpu_capability": capability, "threads": 2},
            "onednn_isa": isa, "tensorflow": {"onednn_opts": onednn}}


@pytest.mark.parametrize("has_avx512, same", [(False, True), (False, False), (True, True)])
def test_avx2_reuses_native_checks_only_where_it_dispatches_the_same(monkeypatch, has_avx512, same):
    """On a CPU without AVX-512 the 'avx2' caps take nothing away: its child reports its platform, and where every
    kernel choice equals native's, native's checks stand for it (said in its notes); else it runs its own."""
    import hear_dual.portability as portability

    calls = []
    avx2_isa = "Intel AVX2" if same else "Intel AVX2 (another)"

    def fake(name, checkpoints, platform_only=False):
        calls.append((name, platform_only))
        isa = "Intel AVX2" if name == "native" else avx2_isa
        report = {"personality": name, "platform": fake_platform(["X86_V3"], "AVX2", isa)}
        return report if platform_only else report | {"passed": True, "problems": [], "checkpoints": {name: 1}}

    monkeypatch.setattr(portability, "run_personality", fake)
    monkeypatch.setattr(portability, "numpy_dispatch", lambda: {"cpu_has_avx512f": has_avx512})
    native, avx2 = run_personalities(["native", "avx2"], ("base",))
    if has_avx512 or not same:
        assert calls[-1] == ("avx2", False) and avx2["checkpoints"] == {"avx2": 1}
        assert not [n for n in avx2["notes"] if "not run twice" in n]
    else:
        assert calls == [("native", False), ("avx2", True)]
        assert avx2["checkpoints"] == native["checkpoints"] and avx2["passed"]
        assert avx2["platform"]["onednn_isa"] == avx2_isa           # its own facts, not native's
        assert any("not run twice: the checks of 'native'" in n for n in avx2["notes"])
    # before its twin in the lane, or without it, a personality runs its own checks
    calls.clear()
    run_personalities(["avx2", "native"], ("base",))
    assert ("avx2", False) in calls


def test_personality_environment_is_explicit():
    env = personality_env("avx2-1t-tfeigen", base={"ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "PATH": "/bin"})
    assert env["ONEDNN_MAX_CPU_ISA"] == "AVX2" and env["ATEN_CPU_CAPABILITY"] == "avx2"
    assert env["TF_ENABLE_ONEDNN_OPTS"] == "0" and env["OMP_NUM_THREADS"] == "1" and env["PATH"] == "/bin"
    assert "X86_V4" in env["NPY_DISABLE_CPU_FEATURES"] and "AVX512F" in env["NPY_DISABLE_CPU_FEATURES"]
    native = personality_env("native", base={"NPY_DISABLE_CPU_FEATURES": "X86_V4"})
    assert "NPY_DISABLE_CPU_FEATURES" not in native and native["TF_ENABLE_ONEDNN_OPTS"] == "1"


@pytest.mark.slow
def test_the_table_reports_every_checkpoint_and_backend(matrix):
    table = matrix_table(matrix).splitlines()
    assert len(table) == 2 + len(PERSONALITIES) * len(SHIPPED)
    values = [float(v) for line in table[2:] for v in line.split("|")[5:10]]
    # 0 is a real value (randproj's torch and TF can agree bit for bit); a column of zeros would be a bug
    assert all(0 <= v < 2e-5 for v in values) and np.isfinite(values).all()
    assert sum(v > 0 for v in values) > 0.9 * len(values)


def test_heavy_models_check_pairs_on_shorter_inputs():
    from hear_dual.spec import Spec

    assert pair_inputs(Spec.builtin("hear-dual-musicnn-mtt")) == ({"short": 0.025, "2.74s": 2.74}, (3,))
    assert pair_inputs(Spec.builtin("hear-dual-vgg-mtt")) == ({"short": 0.025, "1s": 1.0}, (1,))   # 37 GFLOP/s
    assert pair_inputs(Spec.builtin("hear-dual-crepe-full")) == ({"short": 0.025, "1s": 1.0}, (1,))


def test_portability_refuses_an_unknown_checkpoint_by_name(capsys):
    from hear_dual.cli import main

    assert main(["portability", "--personalities", "native", "--checkpoints", "base,vgg-nope"]) != 0
    assert "unknown checkpoints ['vgg-nope']; expected some of" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("musicnn") is None,
                    reason="converting musicnn-msd needs musicnn's wheel (pip install --no-deps musicnn==0.1.0)")
def test_a_converted_checkpoint_is_held_to_float64_and_every_pair(tmp_path, monkeypatch):
    monkeypatch.setenv("HEAR_DUAL_CACHE", str(tmp_path))      # converted here, on first use
    report = check_here(("musicnn-msd",), backends=NATIVE)
    assert report["passed"], report["problems"]
    entry = report["checkpoints"]["musicnn-msd"]
    assert entry["path"].startswith(str(tmp_path))
    # against the float64 reference on the shipped musicnn-mtt's golden cases, not against golden entries
    assert {r["case"] for r in entry["rows"]} >= {"silence-400", "near_silence-1s", "dc_offset-0.5s"}
    assert all(0 < entry["golden"][b] < 2e-5 for b in NATIVE)
    assert set(entry["pairs"]) == {"torch vs tf", "torch vs onnx", "tf vs onnx"}
    assert all(0 < p["max_rel_diff"] < 1e-5 and p["cases"] > 0 for p in entry["pairs"].values())
