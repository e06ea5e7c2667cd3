"""Portability: what this machine is, whether every shipped model works on it, and other CPUs emulated on it.

    hear-dual doctor          this machine: platform facts, then every shipped checkpoint in every installed
                              backend against the golden embeddings; non-zero exit with a plain reason
    hear-dual portability     the CPU-personality matrix: the same check in subprocesses that make this
                              CPU dispatch like older ones (numpy, torch, oneDNN and MKL capped together),
                              with TensorFlow's oneDNN on and off, on one thread and on all

A personality can only take away what the CPU has: on a CPU without AVX-512 the "avx2" personality is the
native one, and the report says so; where its child sees the same kernels chosen as native's, native's checks stand
for it rather than computing the same bits again.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys

import numpy as np

from hear_dual.parity import NATIVE
from hear_dual.results import cpu_name

SHIPPED = ("base", "seeded", "compact", "compact-seeded", "randproj", "crepe-tiny", "musicnn-mtt")
# Converted on first use (hear_dual.checkpoints.CONVERTED), so not in the golden file: each is held to the float64
# reference computed in the same process, on the golden cases of the shipped model whose ops it shares.
CONVERTED_CASES = {"crepe-full": "crepe-tiny", "musicnn-msd": "musicnn-mtt", "vgg-mtt": "musicnn-mtt",
                   "vgg-msd": "musicnn-mtt"}
HEAVY_GFLOPS = 10.0           # GFLOP per audio second above which the pair check runs 1 s inputs, one sound a batch
BACKENDS = NATIVE
MAX_CONV_ROUNDING = 8e-7      # a conv1d against float64, relative to its largest output (SPEC section 4)
PARITY_MARGIN = 2.0           # torch vs TF must stay within tolerance / PARITY_MARGIN in every personality

_AVX512 = ("X86_V4 AVX512_ICL AVX512_SPR "                                   # numpy 2.x names
           "AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_KNL AVX512_KNM")   # numpy 1.26 names
ISA_LEVELS = {
    "native": {},
    "avx2": {"NPY_DISABLE_CPU_FEATURES": _AVX512, "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
             "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "sse42": {"NPY_DISABLE_CPU_FEATURES": _AVX512 + " X86_V3 AVX2 FMA3 AVX F16C", "ATEN_CPU_CAPABILITY": "default",
              "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
}
# name -> (ISA level, TensorFlow oneDNN on, threads or None for all): each knob is seen both ways.
PERSONALITIES = {
    "native": ("native", True, None),
    "native-1t-tfeigen": ("native", False, 1),
    "avx2": ("avx2", True, None),
    "avx2-1t-tfeigen": ("avx2", False, 1),
    "sse42": ("sse42", True, None),
    "sse42-1t-tfeigen": ("sse42", False, 1),
}


def personality_env(name: str, base: dict | None = None) -> dict:
    level, onednn, threads = PERSONALITIES[name]
    env = dict(os.environ if base is None else base)
    for key in ("NPY_DISABLE_CPU_FEATURES", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS"):
        env.pop(key, None)
    env |= ISA_LEVELS[level]
    env["TF_ENABLE_ONEDNN_OPTS"] = "1" if onednn else "0"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if threads:
        env |= {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
                "TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": "1"}
    return env


# --- platform facts ------------------------------------------------------------------------------------

def numpy_dispatch() -> dict:
    """numpy's compiled SIMD targets and the ones it really dispatches to in this process."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:   # numpy 1.x
        from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    return {"targets": list(__cpu_dispatch__), "active": [t for t in __cpu_dispatch__ if __cpu_features__.get(t)],
            "cpu_has_avx512f": bool(__cpu_features__.get("AVX512F"))}


def platform_facts() -> dict:
    """CPU, dispatch, library versions and thread counts: what a bug report should carry."""
    facts = {"python": platform.python_version(), "machine": platform.machine(), "cpu": cpu_name(),
             "cpu_count": os.cpu_count(), "numpy": np.__version__, "numpy_dispatch": numpy_dispatch()}
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        facts["numpy_blas"] = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # older numpy: no dict mode
        facts["numpy_blas"] = "?"
    for key in ("NPY_DISABLE_CPU_FEATURES", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS",
                "TF_ENABLE_ONEDNN_OPTS", "OMP_NUM_THREADS"):
        facts.setdefault("env", {})[key] = os.environ.get(key, "(unset)")
    try:
        import torch

        facts["torch"] = {"version": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                          "threads": torch.get_num_threads(), "mkldnn": torch.backends.mkldnn.is_available(),
                          "cuda": torch.cuda.is_available()}
    except ImportError:
        facts["torch"] = None
    try:
        import tensorflow as tf

        facts["tensorflow"] = {"version": tf.__version__, "onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1"),
                               "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads() or "all",
                               "gpus": len(tf.config.list_physical_devices("GPU"))}
    except ImportError:
        facts["tensorflow"] = None
    try:
        import onnxruntime as ort

        facts["onnxruntime"] = {"version": ort.__version__, "providers": ort.get_available_providers()}
    except ImportError:
        facts["onnxruntime"] = None
    return facts


def installed_backends() -> list[str]:
    from importlib.util import find_spec

    wanted = {"torch": "torch", "tf": "tensorflow", "onnx": "onnxruntime"}
    return [name for name, package in wanted.items() if find_spec(package) is not None]


# --- the check, in this process ------------------------------------------------------------------------

def load_backend(name: str, path: str, threads: int | None = None):
    """(HEAR API module, loaded model) for one backend."""
    if name == "torch":
        import torch

        import hear_dual.torch_impl as module
        if threads:
            torch.set_num_threads(threads)
        return module, module.load_model(path)
    if name == "tf":
        import hear_dual.tf_impl as module
        return module, module.load_model(path)
    import hear_dual.onnx_impl as module
    return module, module.load_model(path, threads=threads)


# (batch, frames, in, out, kernel, stride, dilation): hear-dual-base's conv4, conv5 and conv1 shapes, where
# a framework's default convolution rounds several times worse on some instruction sets (SPEC section 4).
CONV_CASES = [(4, 3000, 384, 384, 3, 1, 1), (1, 12, 384, 384, 3, 1, 2), (1, 40, 128, 256, 3, 2, 1)]


# (batch, time, freq, in, out, kernel, stride, padding): musicnn's widest timbral and longest temporal filters (one
# input channel: every tap in one matmul) and a VGG block (one matmul per tap).
CONV2D_CASES = [(4, 187, 96, 1, 204, (7, 38), (1, 1), ((3, 3), (0, 0))),
                (4, 187, 96, 1, 51, (128, 1), (1, 1), ((63, 64), (0, 0))),
                (2, 92, 48, 128, 128, (3, 3), (1, 1), ((1, 1), (1, 1)))]


def conv_case(batch: int, frames: int, in_channels: int, out_channels: int, kernel_size, seed: int = 0,
              freq: int | None = None):
    """Post-GELU-like inputs (mostly positive, so rounding does not cancel) and He-normal weights, float32: a time
    series and a conv1d kernel, or with `freq` a map and a conv2d kernel ((time, freq) kernel_size)."""
    rng = np.random.default_rng(seed)
    kernel = tuple(kernel_size) if freq else (kernel_size,)
    x = np.maximum(rng.standard_normal((batch, in_channels, frames, *([freq] if freq else []))), -0.17)
    w = rng.standard_normal((out_channels, in_channels, *kernel)) * np.sqrt(2.0 / (in_channels * math.prod(kernel)))
    return x.astype(np.float32), w.astype(np.float32), rng.standard_normal(out_channels).astype(np.float32)


def backend_conv1d(backend: str, x, w, b, stride: int, dilation: int) -> np.ndarray:
    """One native backend's conv1d layer on canonical (batch, channels, time) float32 arrays; TF's inside a
    tf.function, as the model runs it (Grappler rewrites a traced graph, never an eager call)."""
    if backend == "torch":
        import torch

        from hear_dual.torch_impl.model import Conv1d
        layer = Conv1d(w.shape[1], w.shape[0], w.shape[2], stride, dilation)
        layer.load_state_dict({"weight": torch.from_numpy(w), "bias": torch.from_numpy(b)})
        with torch.inference_mode():
            return layer(torch.from_numpy(x)).numpy()
    import tensorflow as tf

    from hear_dual.tf_impl.model import Conv1d
    conv = Conv1d("conv", {"conv.weight": w, "conv.bias": b}, stride, dilation)
    layer = tf.function(conv)
    if conv.layout == "batch":          # on the waveform: (batch, samples, 1)
        return np.transpose(layer(tf.constant(np.transpose(x, (0, 2, 1)))).numpy(), (0, 2, 1))
    return np.transpose(layer(tf.constant(np.transpose(x, (2, 0, 1)))).numpy(), (1, 2, 0))     # (time, batch, ch)


def backend_conv2d(backend: str, x, w, b, stride, padding) -> np.ndarray:
    """One native backend's conv2d layer on canonical (batch, channels, time, freq) float32 arrays (TF's traced, as
    conv1d's)."""
    if backend == "torch":
        import torch

        from hear_dual.torch_impl.model import Conv2d
        layer = Conv2d(w.shape[1], w.shape[0], w.shape[2:], stride, padding)
        layer.load_state_dict({"weight": torch.from_numpy(w), "bias": torch.from_numpy(b)})
        with torch.inference_mode():
            return layer(torch.from_numpy(x)).numpy()
    import tensorflow as tf

    from hear_dual.tf_impl.model import Conv2d
    layer = tf.function(Conv2d("conv", {"conv.weight": w, "conv.bias": b}, stride, padding))
    return np.moveaxis(layer(tf.constant(np.moveaxis(x, 1, -1))).numpy(), -1, 1)


def conv_rounding(backends) -> dict:
    """Each native backend's worst conv1d and conv2d error against the float64 reference, relative to the largest
    output."""
    from hear_dual.reference import conv1d as reference_conv1d
    from hear_dual.reference import conv2d as reference_conv2d

    cases = [(conv_case(batch, frames, cin, cout, k), backend_conv1d, reference_conv1d, (stride, dilation))
             for batch, frames, cin, cout, k, stride, dilation in CONV_CASES]
    cases += [(conv_case(batch, time, cin, cout, k, freq=freq), backend_conv2d, reference_conv2d, (stride, padding))
              for batch, time, freq, cin, cout, k, stride, padding in CONV2D_CASES]
    worst = {}
    for (x, w, b), run, reference, args in cases:
        want = reference(x.astype(np.float64), w, b, *args)
        for name in set(backends) & {"torch", "tf"}:
            got = run(name, x, w, b, *args)
            worst[name] = max(worst.get(name, 0.0), float(np.abs(got - want).max() / np.abs(want).max()))
    return worst


def check_here(checkpoints=SHIPPED, backends=None, threads: int | None = None, parity: bool = True,
               weights: str | None = None) -> dict:
    """Load each checkpoint in each backend, meet the golden gate, and (parity=True) torch vs TF with margin.

    checkpoints: shipped names (against the golden file) or CONVERTED_CASES names (converted on first use, against
    the float64 reference computed here). weights: any checkpoint file, against the float64 reference on every case."""
    import hear_dual.checkpoints
    from hear_dual.checkpoint import CheckpointError
    from hear_dual.golden import (
        CASES,
        CHECKPOINT_CASES,
        CHUNKED,
        GOLDEN_SAMPLE_RATE,
        check_backend,
        load_golden,
        reference_outputs,
    )
    from hear_dual.weights import resolve

    backends = list(backends or installed_backends())
    golden = load_golden()
    report = {"platform": platform_facts(), "backends": backends, "checkpoints": {}, "problems": []}
    for name in [weights] if weights else checkpoints:
        try:
            path = weights or (hear_dual.checkpoints.path(name) if name in SHIPPED else resolve(name))
        except (CheckpointError, FileNotFoundError, ValueError, ImportError) as e:
            report["problems"].append(f"{name}: no checkpoint to check: {e}")
            continue
        entry = report["checkpoints"][name] = {"path": path, "golden": {}, "rows": [], "cases": 0}
        models = {}
        for backend in backends:
            try:
                models[backend] = load_backend(backend, path, threads)
            except (CheckpointError, FileNotFoundError, ValueError) as e:
                report["problems"].append(f"{name}: the {backend} backend cannot load {path}: {e}")
        if not models:
            continue
        if weights or name in CONVERTED_CASES:
            # Not shipped: the float64 reference computed here from the same file takes the golden file's place.
            cases = CHECKPOINT_CASES[CONVERTED_CASES[name]] if name in CONVERTED_CASES else tuple(CASES)
            expected, chunks = reference_outputs(name, path, cases), (None,)
        else:
            sha = getattr(models[backends[0]][1], "checkpoint_sha256", None)
            if sha != str(golden[f"{name}/checkpoint_sha256"]):
                report["problems"].append(f"{name}: {path} is not the file the golden embeddings were made from "
                                          f"(sha256 {sha}); reinstall hear-dual")
            expected, cases, chunks = golden, CHECKPOINT_CASES[name], (None, CHUNKED)
        rows_by_backend = {b: [row for chunk in chunks for row in check_backend(m, model, name, expected, chunk, cases)]
                           for b, (m, model) in models.items()}
        for backend, rows in rows_by_backend.items():
            entry["rows"] += [r | {"backend": backend} for r in rows]
            entry["cases"] = len({r["case"] for r in entry["rows"]})     # kept where a report drops its rows
            entry["golden"][backend] = max((r.get("max_rel_diff", float("inf")) for r in rows), default=None)
            if not rows:
                report["problems"].append(f"{name}: nothing was checked in {backend}: the golden inputs are "
                                          f"{GOLDEN_SAMPLE_RATE} Hz (and FSDD), this model is not")
            for r in rows:
                if not r["passed"]:
                    reason = r.get("error") or (f"relative difference {r['max_rel_diff']:.3g}, min cosine "
                                                f"{r['min_cosine']:.12f}, "
                                                f"timestamps identical: {r['timestamps_identical']}")
                    against = "golden embeddings" if name in SHIPPED else "float64 reference"
                    report["problems"].append(f"{name}: {backend} misses the {against} on {r['case']} "
                                              f"(chunk {r['chunk'] or 'auto'}): {reason}")
        if parity and {"torch", "tf"} <= set(models) and (name in CHECKPOINT_CASES or name in CONVERTED_CASES):
            entry["pairs"] = _backend_pairs(models)
            entry["torch_vs_tf"] = entry["pairs"]["torch vs tf"]
            bound = models["torch"][1].spec.tolerance / PARITY_MARGIN
            for pair, result in entry["pairs"].items():
                if result["max_rel_diff"] > bound:
                    report["problems"].append(f"{name}: {pair} differ by {result['max_rel_diff']:.3g} relative, more "
                                              f"than half the parity tolerance ({bound:g})")
    if parity:
        report["conv_rounding"] = conv_rounding(backends)
        for backend, error in report["conv_rounding"].items():
            if error > MAX_CONV_ROUNDING:
                report["problems"].append(f"{backend}'s conv1d rounds at {error:.3g} against float64, more than "
                                          f"{MAX_CONV_ROUNDING:g}")
    report["passed"] = not report["problems"]
    return report


def pair_inputs(spec) -> tuple[dict, tuple]:
    """(lengths, batch sizes) of the pair check: 0.025 s and 2.74 s, three sounds a batch; a model over HEAVY_GFLOPS
    (VGG's patch every 48 ms, CREPE full) 0.025 s and 1 s, one sound, which still spans several timestamps."""
    if spec.flops_per_second / 1e9 > HEAVY_GFLOPS:
        return {"short": 400 / 16000, "1s": 1.0}, (1,)
    return {"short": 400 / 16000, "2.74s": 2.74}, (3,)


def _backend_pairs(models: dict) -> dict:
    """Every pair of the loaded backends (torch, tf, onnx) on every generated signal class and on FSDD speech, at
    pair_inputs' lengths and batch sizes: {"torch vs tf": {...}, ...}."""
    from hear_dual.parity import Backend, input_batch, run_matrix, summarise
    from hear_dual.signals import SIGNAL_KINDS

    loaded = {name: Backend.loaded(name, *models[name]) for name in BACKENDS if name in models}
    inputs = list(SIGNAL_KINDS)
    if input_batch("speech", 1, 10, loaded["torch"].spec.sample_rate) is not None:
        inputs.append("speech")
    rows = run_matrix(loaded, inputs, *pair_inputs(loaded["torch"].spec))
    pairs, summaries = {}, summarise(rows)
    for pair in dict.fromkeys(r["pair"] for r in rows):
        summary = [r for r in summaries if r["pair"] == pair]
        pairs[pair] = {"cases": sum(r["cases"] for r in summary), "inputs": inputs,
                       "max_rel_diff": max(r["max_rel_diff"] for r in summary),
                       "speech_max_rel_diff": max((r["max_rel_diff"] for r in summary if r["input"] == "speech"),
                                                  default=None),
                       "min_cosine": min(r["min_cosine"] for r in summary),
                       "passed": all(r["passed"] for r in summary)}
    return pairs


# --- the matrix, in subprocesses -----------------------------------------------------------------------

def onednn_isa(env: dict) -> str:
    """The instruction set oneDNN really uses under env, from its own verbose line (one tiny torch convolution
    in a child process: the verbose mode would flood a real run). '?' where torch or oneDNN is missing."""
    code = ("import torch\n"
            "torch.ops.aten.mkldnn_convolution(torch.ones(1, 2, 5), torch.ones(2, 2, 3), None, [0], [1], [1], 1)\n")
    try:
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                             env=env | {"ONEDNN_VERBOSE": "1"})
    except subprocess.TimeoutExpired:
        return "?"
    isa = [line.split("isa:", 1)[1].strip() for line in run.stdout.splitlines() if "isa:" in line]
    return isa[0] if isa else "?"


def run_personality(name: str, checkpoints=SHIPPED, timeout: int = 900, platform_only: bool = False) -> dict:
    """One personality's check in a child process with its environment (platform_only: its platform facts alone)."""
    args = ["--platform-only"] if platform_only else ["--checkpoints", ",".join(checkpoints)]
    run = subprocess.run([sys.executable, "-m", "hear_dual.portability", "--inside", name, *args],
                         capture_output=True, text=True, env=personality_env(name), timeout=timeout)
    if run.returncode not in (0, 1) or not run.stdout.strip():
        return {"personality": name, "passed": False, "problems": [f"the check crashed (exit {run.returncode}): "
                                                                    f"{run.stderr[-3000:]}"]}
    report = json.loads(run.stdout.strip().splitlines()[-1]) | {"personality": name}
    report["platform"]["onednn_isa"] = onednn_isa(personality_env(name))
    return report


def dispatch(report: dict) -> tuple:
    """What a personality's caps act on, as its child saw it: numpy's kernels, torch's, oneDNN's, TF's oneDNN switch
    and torch's threads."""
    p = report["platform"]
    torch_facts, tf_facts = p.get("torch") or {}, p.get("tensorflow") or {}
    return (tuple(p["numpy_dispatch"]["active"]), torch_facts.get("cpu_capability"), p.get("onednn_isa"),
            tf_facts.get("onednn_opts"), torch_facts.get("threads"))


def native_twin(name: str, names, native: dict) -> str | None:
    """The native personality that an 'avx2' one is on a CPU without AVX-512 (a cap can only take away what the CPU
    has), where it runs before this one in the same lane (run_personalities); else None."""
    level, onednn, threads = PERSONALITIES[name]
    if level != "avx2" or native["cpu_has_avx512f"]:
        return None
    twin = next((n for n, v in PERSONALITIES.items() if v == ("native", onednn, threads)), None)
    return twin if twin in names[: names.index(name)] else None


def run_personalities(names=tuple(PERSONALITIES), checkpoints=SHIPPED, on_report=None) -> list[dict]:
    """Each personality's report (run_personality, with emulation_notes as "notes"), in the order of names; on_report
    is called with each as it finishes.

    The single-threaded personalities run beside the others, in a lane of their own (as many at once as there are
    cores beyond the first): a personality's check is mostly one core's work (imports, loading, small batches), so
    on 2 cores the six took 520 s one after another and run in about 300 s so. What a personality computes is set
    by its caps and its thread count, not by the machine's load. An 'avx2' personality on a CPU without AVX-512
    (native_twin) reports its own platform and, where it dispatches as its native twin does, carries the twin's
    checks with a note: 330 s -> 260 s on 2 AVX2 cores."""
    from concurrent.futures import ThreadPoolExecutor

    native = numpy_dispatch()

    names, futures = list(names), {}

    def run(name: str) -> dict:
        twin = native_twin(name, names, native)
        report = run_personality(name, checkpoints, platform_only=twin is not None)
        if twin and "platform" in report:
            done = futures[twin].result()       # earlier in this lane: finished
            if "platform" in done and dispatch(done) == dispatch(report):
                # The same kernels everywhere, seen in its own child: the checks would compute the same bits again.
                report |= {k: v for k, v in done.items() if k not in ("personality", "platform", "notes")}
                report["reused"] = f"the checks of '{twin}', which dispatches the same here"
            else:
                report = run_personality(name, checkpoints)
        report["notes"] = emulation_notes(report, native) if "platform" in report else []
        if report.get("reused"):
            report["notes"].append(f"not run twice: {report['reused']}")
        if on_report:
            on_report(report)
        return report

    single = [n for n in names if PERSONALITIES[n][2] == 1]
    spare = max(1, min(len(single), (os.cpu_count() or 1) - 1))
    with ThreadPoolExecutor(1) as lane, ThreadPoolExecutor(spare) as single_threaded:
        for n in names:
            futures[n] = (single_threaded if n in single else lane).submit(run, n)
        return [futures[n].result() for n in names]


def emulation_notes(report: dict, native: dict) -> list[str]:
    """Where a personality could not take effect on this CPU, say so."""
    level = PERSONALITIES[report["personality"]][0]
    active = report["platform"]["numpy_dispatch"]["active"]
    notes = []
    if level == "avx2" and not native["cpu_has_avx512f"]:
        notes.append("this CPU has no AVX-512, so 'avx2' is the native dispatch (AVX-512 cannot be emulated here)")
    if level == "avx2" and any("512" in t or t == "X86_V4" for t in active):
        notes.append(f"numpy still dispatches to {active}: the cap did not take effect")
    if level == "sse42" and active:
        notes.append(f"numpy still dispatches to {active}: the cap did not take effect")
    onednn = report["platform"].get("onednn_isa", "?")
    want_onednn = {"native": None, "avx2": "AVX2", "sse42": "SSE4.1"}[level]
    if want_onednn and want_onednn not in onednn:
        notes.append(f"oneDNN uses {onednn}, not {want_onednn}: the cap did not take effect")
    torch_facts = report["platform"].get("torch")
    if torch_facts and level != "native":
        want = {"avx2": ("AVX2",), "sse42": ("DEFAULT",)}[level]
        if torch_facts["cpu_capability"] not in want:
            notes.append(f"torch runs {torch_facts['cpu_capability']} kernels, not {want[0]}")
    return notes


def matrix_table(reports: list[dict]) -> str:
    """Markdown: worst relative difference against the golden embeddings per personality, checkpoint and backend."""
    lines = ["| personality | numpy dispatch | torch / oneDNN | checkpoint | torch vs golden | tf vs golden "
             "| onnx vs golden | torch vs tf | worst pair with onnx | result |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for report in reports:
        if "platform" not in report:
            lines.append(f"| {report['personality']} | crashed | | | | | | | | FAIL |")
            continue
        dispatch = ",".join(report["platform"]["numpy_dispatch"]["active"]) or "baseline"
        torch_cap = (report["platform"].get("torch") or {}).get("cpu_capability", "-")
        torch_cap += " / " + report["platform"].get("onednn_isa", "?").replace("Intel ", "").split(" with")[0]
        for name, entry in report["checkpoints"].items():
            golden = [f"{entry['golden'][b]:.2e}" if entry["golden"].get(b) is not None else "-" for b in BACKENDS]
            pair = entry.get("torch_vs_tf", {}).get("max_rel_diff")
            onnx = max((r["max_rel_diff"] for p, r in entry.get("pairs", {}).items() if "onnx" in p), default=None)
            failed = any(p.startswith(f"{name}:") for p in report["problems"])
            lines.append(f"| {report['personality']} | {dispatch} | {torch_cap} | {name} | {' | '.join(golden)} | "
                         f"{'-' if pair is None else f'{pair:.2e}'} | {'-' if onnx is None else f'{onnx:.2e}'} | "
                         f"{'FAIL' if failed else 'pass'} |")
    return "\n".join(lines)


def format_doctor(report: dict) -> str:
    p = report["platform"]
    lines = [f"hear-dual doctor: {p['cpu']} ({p['machine']}, {p['cpu_count']} CPUs), Python {p['python']}",
             f"  numpy {p['numpy']} (BLAS {p['numpy_blas']}), "
             f"dispatch {','.join(p['numpy_dispatch']['active']) or 'baseline'}"
             f" of {','.join(p['numpy_dispatch']['targets'])}"]
    if p.get("torch"):
        t = p["torch"]
        lines.append(f"  torch {t['version']}: kernels {t['cpu_capability']}, {t['threads']} threads, cuda {t['cuda']}")
    if p.get("tensorflow"):
        t = p["tensorflow"]
        lines.append(f"  tensorflow {t['version']}: oneDNN opts {t['onednn_opts']}, intra-op threads "
                     f"{t['intra_op_threads']}, GPUs {t['gpus']}")
    if p.get("onnxruntime"):
        lines.append(f"  onnxruntime {p['onnxruntime']['version']}: {', '.join(p['onnxruntime']['providers'])}")
    lines.append("  capped by environment: " + ", ".join(f"{k}={v}" for k, v in p["env"].items() if v != "(unset)")
                 if any(v != "(unset)" for v in p["env"].values()) else "  nothing capped by environment variables")
    lines.append("")
    width = max((len(name) for name in report["checkpoints"]), default=0)
    for name, entry in report["checkpoints"].items():
        golden = ", ".join(f"{b} {v:.2e}" for b, v in entry["golden"].items() if v is not None)
        lines.append(f"{name:<{width}} {entry['cases']:>2} cases x {len(entry['golden'])} backends, worst relative to "
                     f"float64: {golden or 'nothing ran'}")
        for name_pair, pair in entry.get("pairs", {}).items():
            lines.append(f"{'':<{width}} {name_pair}: {pair['max_rel_diff']:.2e} over {pair['cases']} comparisons")
    if "conv_rounding" in report:
        lines.append("conv1d rounding against float64: " +
                     ", ".join(f"{b} {v:.2e}" for b, v in report["conv_rounding"].items()) +
                     f" (bound {MAX_CONV_ROUNDING:g})")
    lines.append("")
    if report["passed"]:
        lines.append("PASS: every checkpoint loads and meets the parity gate against float64 in every backend")
    else:
        lines.append("FAIL:")
        lines += [f"  - {problem}" for problem in report["problems"]]
        lines.append("Please include this whole output in a bug report.")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hear_dual.portability")
    parser.add_argument("--inside", required=True, choices=list(PERSONALITIES),
                        help="run one personality's check in this process (its environment already set)")
    parser.add_argument("--checkpoints", default=",".join(SHIPPED))
    parser.add_argument("--platform-only", action="store_true", help="only the platform facts, no check")
    args = parser.parse_args(argv)
    if args.platform_only:
        print(json.dumps({"platform": platform_facts()}))
        return 0
    threads = PERSONALITIES[args.inside][2]
    report = check_here(tuple(args.checkpoints.split(",")), threads=threads)
    for entry in report["checkpoints"].values():
        entry.pop("rows")
    print(json.dumps(report))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
