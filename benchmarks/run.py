"""Speed, memory and thread scaling of hear-dual's backends, next to the original code of each model and against
this machine's own matrix-product limit, written as results files that the docs' tables are rendered from.

    python benchmarks/run.py speed --reference-python /path/to/naive-venv/bin/python --json results/speed.json
    python benchmarks/run.py memory --json results/memory.json
    python benchmarks/run.py threads --json results/threads.json
    python benchmarks/run.py speed --models base --cases 4x30s --rounds 5      # one group, printed only

speed: for each (model, case) of the plan, every backend and the model's anchors (the code we are measured
against: the organizers' `hearbaseline.naive` and `hearbaseline.tf.naive` for base and compact, torchcrepe for
CREPE, musicnn's own TF1 code for musicnn) are loaded at once, each in its own process, and timed in turn, round
after round in rotating order, so that a shared machine's drift hits all of them alike: a turn repeats the
`get_timestamp_embeddings` call back to back for at least half a second and counts its median call; a ratio is the
median over rounds of the per-round ratio. In the same run, this machine's
float32 and float64 matrix products are timed on the model's own shapes (`Spec.matmuls`: per-tap convolutions,
the frontend's DFT and filterbank), which gives the model's **GEMM limit**: the time its arithmetic would take
at pure matrix-product speed. A backend's fraction of that limit is limit time / its time.

memory: one call on 20 minutes of audio per (model, backend), each in a fresh process: peak resident memory
(VmHWM: the framework, the model and the call, as a user sees it) and the call's time.

threads: the speed benchmark's interleaving with each backend at 1 thread and at all cores.

Audio is deterministic pink noise at the model's sample rate. Every result carries hear_dual.results.environment().
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

CASES = {  # name: (n_sounds, seconds)
    "16x1s": (16, 1.0),
    "4x30s": (4, 30.0),
    "4x10s": (4, 10.0),
    "1x10s": (1, 10.0),
    "1x20min": (1, 1200.0),
    "16x5min": (16, 300.0),
}
OURS = {"torch": "hear_dual.torch_impl", "tf": "hear_dual.tf_impl", "onnx": "hear_dual.onnx_impl"}
NAIVE = [("hearbaseline.naive", "", "reference"), ("hearbaseline.tf.naive", "", "reference")]
# model: (cases, anchors as (module, weights, python: "ours" or "reference")); the first anchor is the one a
# backend's "vs anchor" column compares with.
PLAN = {
    "base": (["4x30s", "16x1s"], NAIVE),
    "compact": (["4x30s"], NAIVE),
    "crepe-tiny": (["4x10s"], [("hear_dual.originals.torchcrepe", "tiny", "ours")]),
    "crepe-full": (["4x10s"], [("hearbaseline.torchcrepe", "", "ours")]),
    "musicnn-mtt": (["4x10s"], [("hear_dual.originals.musicnn", "MTT_musicnn", "ours")]),
    "vgg-mtt": (["1x10s"], [("hear_dual.originals.musicnn", "MTT_vgg", "ours")]),
}
MEMORY_MODELS = ["base", "compact", "crepe-tiny", "crepe-full", "musicnn-mtt", "vgg-mtt"]
THREAD_PLAN = {"base": "4x30s", "crepe-tiny": "4x10s", "musicnn-mtt": "4x10s"}
PAUSE_S = 2.0   # between interleaved calls: OpenMP, Eigen and ONNX Runtime workers spin-wait after a call (0.5 s
                # left musicnn 30% slower than when measured alone; 2 s does not)
MIN_ROUND_S = 0.5    # a module's turn repeats its call, back to back, for at least this long and reports the median
                     # call: one 25 ms call after the pause measured 1.5-3x slower than in a steady run, run to run
REPLY = "hear-dual-benchmark "   # prefixes --serve's replies on stdout


def pink_noise(n_sounds: int, n_samples: int, seed: int = 0) -> np.ndarray:
    """1/f noise, peak 0.5, made in segments of 2^20 samples so that making 20 minutes costs no more memory than
    the float32 result (the peak resident memory measured is the module's, not the input generator's)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n_sounds, n_samples), np.float32)
    segment = 2**20
    for i in range(n_sounds):
        for start in range(0, n_samples, segment):
            n = min(segment, n_samples - start)
            spectrum = np.fft.rfft(rng.standard_normal(n))
            spectrum[1:] /= np.sqrt(np.arange(1, spectrum.size))
            out[i, start : start + n] = np.fft.irfft(spectrum, n)
        out[i] *= 0.5 / np.abs(out[i]).max()
    return out


def label(module: str, weights: str) -> str:
    return f"{module} [{weights}]" if weights else module


# --- inside a worker process ------------------------------------------------------------------------------------

def load(module_name: str, weights: str, threads: int | None):
    """Import a HEAR module and load its model with `threads` threads (None: the backend's default); returns
    (model, as_input, run)."""
    import importlib

    if threads:     # before any framework starts its thread pools
        os.environ.update(OMP_NUM_THREADS=str(threads), TF_NUM_INTRAOP_THREADS=str(threads),
                          TF_NUM_INTEROP_THREADS="1")
    if "torchcrepe" in module_name:     # torchcrepe imports torchaudio, which cannot load beside torch 2.13
        from hear_dual.converters.torchcrepe import import_torchcrepe

        import_torchcrepe()
    module = importlib.import_module(module_name)
    if threads and module_name == OURS["onnx"]:
        model = module.load_model(weights, threads=threads)
    else:
        model = module.load_model(weights) if weights else module.load_model()
    kind = type(model).__module__.split(".")[0]
    if "torch" in sys.modules:
        import torch

        if threads:
            torch.set_num_threads(threads)
        if isinstance(model, torch.nn.Module):
            kind = "torch"
    if kind != "torch" and "tensorflow" in sys.modules:
        import tensorflow as tf

        kind = "tf" if isinstance(model, tf.Module) else kind

    def as_input(array):
        if kind == "torch":
            import torch

            return torch.from_numpy(array)
        if kind == "tf":
            import tensorflow as tf

            return tf.convert_to_tensor(array)
        return array

    def run(audio):
        embeddings, _ = module.get_timestamp_embeddings(audio, model)
        return tuple(embeddings.shape)

    return model, as_input, run


def serve(module_name: str, weights: str, threads: int | None) -> None:
    """--serve: load once; for each case name read from stdin, time calls back to back for at least MIN_ROUND_S and
    print {"seconds": the median call, "calls": how many}."""
    model, as_input, run = load(module_name, weights, threads)
    inputs = {}
    for line in sys.stdin:
        case = line.strip()
        if case not in inputs:
            n_sounds, seconds = CASES[case]
            inputs[case] = as_input(pink_noise(n_sounds, int(seconds * model.sample_rate)))
            run(inputs[case])   # untimed: the first call on a shape traces (TF) and builds kernels and buffers
        calls, start = [], time.perf_counter()
        while not calls or time.perf_counter() - start < MIN_ROUND_S:
            t0 = time.perf_counter()
            run(inputs[case])
            calls.append(time.perf_counter() - t0)
        print(REPLY + json.dumps({"seconds": float(np.median(calls)), "calls": len(calls)}), flush=True)


def once(module_name: str, weights: str, case: str) -> dict:
    """--once: a fresh process, one call, its time and the process's peak resident memory."""
    model, as_input, run = load(module_name, weights, None)
    n_sounds, seconds = CASES[case]
    audio = as_input(pink_noise(n_sounds, int(seconds * model.sample_rate)))
    t0 = time.perf_counter()
    shape = run(audio)
    return {"seconds": time.perf_counter() - t0, "peak_rss_mib": peak_rss_mib(), "output_shape": list(shape)}


def peak_rss_mib() -> float:
    """This program's peak resident memory. Linux's VmHWM belongs to the address space exec made; ru_maxrss is kept
    across exec, so a child of a large process (a test suite that loaded every framework) would report its parent's
    size."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024.0
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --- the driver -------------------------------------------------------------------------------------------------

def interleaved(jobs: list[tuple[str, str, str, str, int | None]], case: str, rounds: int) -> dict[str, list[float]]:
    """jobs: (label, module, weights, python, threads). Every job in its own long-lived process, timed in turn (its
    calls back to back for MIN_ROUND_S, serve) in rotating order for `rounds` rounds. Returns {label: [seconds per
    call, one per round]}."""
    procs = {}
    for name, module, weights, python, threads in jobs:
        cmd = [python, os.path.abspath(__file__), "--serve", module, "--weights", weights]
        cmd += ["--threads", str(threads)] if threads else []
        procs[name] = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    names, times = list(procs), {name: [] for name in procs}
    try:
        for r in range(rounds):
            for name in names[r % len(names):] + names[: r % len(names)]:
                time.sleep(PAUSE_S)     # the previous module's thread pools stop spinning before the next call
                procs[name].stdin.write(case + "\n")
                procs[name].stdin.flush()
                reply = ""
                while not reply.startswith(REPLY):   # skip anything the module itself prints
                    reply = procs[name].stdout.readline()
                    if not reply:
                        raise RuntimeError(f"{name} exited mid-benchmark (exit {procs[name].wait()})")
                times[name].append(json.loads(reply[len(REPLY):])["seconds"])
    finally:
        for proc in procs.values():
            proc.stdin.close()
            proc.wait()
    return times


def gemm_limit(model: str, case: str, threads: int | None = None) -> dict:
    """This machine's matrix-product rate on the model's own shapes, and the time the case's arithmetic would take
    at that rate (Spec.matmuls; rows per product as in one call, capped at 2^16)."""
    import torch

    from hear_dual.checkpoint import read_checkpoint
    from hear_dual.weights import resolve

    if threads:
        torch.set_num_threads(threads)
    spec = read_checkpoint(resolve(model)).spec
    n_sounds, seconds = CASES[case]
    limit_s, flops, rates = 0.0, 0.0, {}
    for product in spec.matmuls():
        dtype = getattr(torch, product["dtype"])
        rows = int(min(max(product["rows"] * seconds * n_sounds, 64), 2**16))
        key = (rows, product["k"], product["n"], product["dtype"])
        if key not in rates:
            a = torch.rand(rows, product["k"], dtype=dtype)
            b = torch.rand(product["k"], product["n"], dtype=dtype)
            a @ b
            runs, repeats = [], max(1, int(2e8 // (2 * rows * product["k"] * product["n"])))   # ~0.2 GFLOP a run
            for _ in range(5):
                t0 = time.perf_counter()
                for _ in range(repeats):
                    a @ b
                runs.append((time.perf_counter() - t0) / repeats)
            rates[key] = 2 * rows * product["k"] * product["n"] / float(np.median(runs))
        work = 2 * product["rows"] * product["k"] * product["n"] * product["count"] * seconds * n_sounds
        flops += work
        limit_s += work / rates[key]
    return {"limit_seconds": limit_s, "matmul_gflop": flops / 1e9, "gflops": flops / limit_s / 1e9,
            "model_gflop": spec.flops_per_second * seconds * n_sounds / 1e9}


def speed(args) -> dict:
    runs, limits = [], {}
    for model, (cases, anchors) in PLAN.items():
        if args.models and model not in args.models:
            continue
        usable = [(m, w, p) for m, w, p in anchors if p == "ours" or args.reference_python]
        jobs = [(backend, OURS[backend], model, sys.executable, None) for backend in args.backends]
        jobs += [(label(m, w), m, w, sys.executable if p == "ours" else args.reference_python, None)
                 for m, w, p in usable]
        for case in cases:
            if args.cases and case not in args.cases:
                continue
            print(f"{model} {case}: {len(jobs)} modules x {args.rounds} rounds", file=sys.stderr, flush=True)
            times = interleaved(jobs, case, args.rounds)
            limit = limits.setdefault(model, {})[case] = gemm_limit(model, case)
            audio_s = CASES[case][0] * CASES[case][1]
            fastest = min(float(np.median(times[b])) for b in args.backends)
            for name, module, *_ in jobs:
                t = np.asarray(times[name])
                median = float(np.median(t))
                row = {"model": model, "case": case, "module": name, "rounds": len(t), "seconds": median,
                       "rtf": audio_s / median, "times": t.tolist(),
                       "ratios": {label(m, w): float(np.median(np.asarray(times[label(m, w)]) / t)) for m, w, _ in
                                  usable if label(m, w) != name}}
                if module in OURS.values():
                    row |= {"gflops": limit["model_gflop"] / median, "fraction": limit["limit_seconds"] / median,
                            "vs_fastest": fastest / median}
                runs.append(row)
                print(f"  {name:<40} {row['rtf']:8.1f}x real time" + "".join(
                    f"  {r:.2f}x {a}" for a, r in row["ratios"].items()), file=sys.stderr, flush=True)
    return {"gemm_limits": limits, "runs": runs}


def measure_once(module: str, weights: str, case: str) -> dict:
    """One call in a fresh process (--once): {"seconds", "peak_rss_mib", "output_shape"}."""
    cmd = [sys.executable, os.path.abspath(__file__), "--once", module, "--weights", weights, "--case", case]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"{label(module, weights)} {case}: {result.stderr.strip()[-2000:]}")
    return json.loads(result.stdout.splitlines()[-1])


def memory(args) -> dict:
    runs = []
    for model in args.models or MEMORY_MODELS:
        for backend in args.backends:
            row = {"model": model, "case": "1x20min", "module": backend} | measure_once(OURS[backend], model,
                                                                                       "1x20min")
            print(f"{model:<12} {backend:<6} {row['peak_rss_mib']:.0f} MiB  {row['seconds']:.1f} s", file=sys.stderr,
                  flush=True)
            runs.append(row)
    return {"runs": runs}


def threads(args) -> dict:
    runs, cores = [], os.cpu_count() or 1
    counts = sorted({1, cores})
    for model, case in THREAD_PLAN.items():
        if args.models and model not in args.models:
            continue
        jobs = [(f"{b} x{n}", OURS[b], model, sys.executable, n) for b in args.backends for n in counts]
        times = interleaved(jobs, case, args.rounds)
        audio_s = CASES[case][0] * CASES[case][1]
        for name, _, _, _, n in jobs:
            median = float(np.median(times[name]))
            runs.append({"model": model, "case": case, "module": name.split()[0], "threads": n, "seconds": median,
                         "rtf": audio_s / median})
            print(f"{model:<12} {name:<10} {audio_s / median:8.1f}x real time", file=sys.stderr, flush=True)
    return {"runs": runs}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", nargs="?", choices=["speed", "memory", "threads"])
    parser.add_argument("--serve", metavar="MODULE", help=argparse.SUPPRESS)
    parser.add_argument("--once", metavar="MODULE", help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--weights", default="", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--models", type=lambda s: s.split(","), help=f"a subset of {list(PLAN)}")
    parser.add_argument("--cases", type=lambda s: s.split(","), help=f"a subset of {list(CASES)}")
    parser.add_argument("--backends", type=lambda s: s.split(","), default=list(OURS), help="default: torch,tf,onnx")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per case (speed, threads)")
    parser.add_argument("--reference-python",
                        help="python of an environment with hearbaseline's naive baselines (made by "
                             "../shared/tools/naive-baseline-venv.sh); without it those anchors are left out")
    parser.add_argument("--json", metavar="PATH", help="write the results file (with its meta) to PATH")
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.weights, args.threads)
        return 0
    if args.once:
        print(json.dumps(once(args.once, args.weights, args.case)))
        return 0
    if not args.mode:
        parser.error("name a mode: speed, memory or threads")
    from hear_dual.results import environment, write_json_atomic

    report = {"meta": environment()} | {"speed": speed, "memory": memory, "threads": threads}[args.mode](args)
    if args.json:
        write_json_atomic(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
