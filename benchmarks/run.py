"""Speed and memory of HEAR modules: real-time factor (median of repeats) and peak resident memory.

Each (module, case) runs in a fresh worker process, so peak RSS (ru_maxrss) belongs to that case alone
and includes the framework import and the model, as a user would see it.

    python benchmarks/run.py                                   # hear_dual torch, tf and onnx
    python benchmarks/run.py --reference hearbaseline.naive --reference-python /path/to/naive-venv/bin/python
    python benchmarks/run.py --markdown --json results.json

Real-time factor = seconds of audio / seconds of compute for get_timestamp_embeddings (the work every
HEAR task does), in steady state: one untimed call on the case's own input precedes the timed repeats
(first-call latency is reported separately). Audio is deterministic pink noise at the module's own sample
rate.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

CASES = {  # name: (n_sounds, seconds, repeats)
    "16x1s": (16, 1.0, 7),
    "16x10s": (16, 10.0, 5),
    "4x30s": (4, 30.0, 5),
    "1x60s": (1, 60.0, 5),
    "1x20min": (1, 1200.0, 3),
    "16x5min": (16, 300.0, 1),
    "4x10s": (4, 10.0, 3),          # CREPE-sized cases: full costs 54 GFLOP per audio second
}
OURS = {"torch": "hear_dual.torch_impl", "tf": "hear_dual.tf_impl", "onnx": "hear_dual.onnx_impl"}
REPLY = "hear-dual-benchmark "   # prefixes --serve's replies on stdout


def pink_noise(n_sounds: int, n_samples: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n_sounds, n_samples), np.float32)
    for i in range(n_sounds):
        spectrum = np.fft.rfft(rng.standard_normal(n_samples))
        spectrum[1:] /= np.sqrt(np.arange(1, spectrum.size))
        x = np.fft.irfft(spectrum, n_samples)
        out[i] = 0.5 * x / np.abs(x).max()
    return out


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def load(module_name: str, weights: str, threads: int | None):
    """Import a HEAR module and load its model; returns (model, as_input, run, load_s)."""
    import importlib

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "torchcrepe" in module_name:     # hearbaseline.torchcrepe: torchcrepe imports torchaudio, which cannot load
        from hear_dual.converters.torchcrepe import import_torchcrepe

        import_torchcrepe()
    t0 = time.perf_counter()
    module = importlib.import_module(module_name)
    model = module.load_model(weights) if weights else module.load_model()
    load_s = time.perf_counter() - t0

    kind = "numpy"
    if "torch" in sys.modules:
        import torch

        if isinstance(model, torch.nn.Module):
            kind = "torch"
            if threads:
                torch.set_num_threads(threads)
    if kind == "numpy" and "tensorflow" in sys.modules:
        import tensorflow as tf

        if isinstance(model, tf.Module):
            kind = "tf"

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
        return embeddings.shape

    return model, as_input, run, load_s


def worker(module_name: str, weights: str, case: str, threads: int | None, once: bool = False) -> dict:
    """Runs inside the worker process. once: a single timed call and no untimed one (memory of long cases)."""
    n_sounds, seconds, repeats = CASES[case]
    repeats = 1 if once else repeats
    model, as_input, run, load_s = load(module_name, weights, threads)
    t0 = time.perf_counter()
    run(as_input(pink_noise(1, model.sample_rate, seed=1)))  # first call: tracing, allocator warm-up
    first_call_s = time.perf_counter() - t0

    audio = as_input(pink_noise(n_sounds, int(seconds * model.sample_rate)))
    if not once:
        run(audio)  # untimed: the first call on a new shape builds per-shape kernels and buffers (TF, oneDNN)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        shape = run(audio)
        times.append(time.perf_counter() - t0)
    median = float(np.median(times))
    return {"module": module_name, "case": case, "sample_rate": model.sample_rate, "load_s": load_s,
            "first_call_s": first_call_s, "times_s": times, "median_s": median,
            "rtf": n_sounds * seconds / median, "peak_rss_mib": peak_rss_mib(), "output_shape": list(shape)}


def measure(module_name: str, case: str, python: str = sys.executable, weights: str = "",
            threads: int | None = None, timeout: float = 3600, once: bool = False) -> dict:
    """One (module, case) in a fresh process; returns the worker's JSON result."""
    cmd = [python, os.path.abspath(__file__), "--worker", module_name, "--case", case] + (["--once"] if once else [])
    if weights:
        cmd += ["--weights", weights]
    if threads:
        cmd += ["--threads", str(threads)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if run.returncode:
        return {"module": module_name, "case": case, "error": run.stderr.strip().splitlines()[-1:]}
    return json.loads(run.stdout.strip().splitlines()[-1])


def serve(module_name: str, weights: str, threads: int | None) -> None:
    """--serve: load once; for each case name read from stdin, time one call and print {"seconds": s}."""
    model, as_input, run, _ = load(module_name, weights, threads)
    inputs = {}
    for line in sys.stdin:
        case = line.strip()
        if case not in inputs:
            n_sounds, seconds, _ = CASES[case]
            inputs[case] = as_input(pink_noise(n_sounds, int(seconds * model.sample_rate)))
            run(inputs[case])  # untimed, as in worker()
        t0 = time.perf_counter()
        run(inputs[case])
        print(REPLY + json.dumps({"seconds": time.perf_counter() - t0}), flush=True)


def interleaved(jobs: list[tuple[str, str, str]], case: str, rounds: int, threads: int | None) -> dict:
    """Every module in its own long-lived process, timed one call at a time in rotating order for `rounds`
    rounds, so a shared machine's slow drifts hit every module alike. Returns {module: [seconds per round]}."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    procs = {}
    for module, python, weights in jobs:
        cmd = [python, os.path.abspath(__file__), "--serve", module] + (["--weights", weights] if weights else [])
        cmd += ["--threads", str(threads)] if threads else []
        procs[module] = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    modules, times = list(procs), {module: [] for module in procs}
    try:
        for r in range(rounds):
            for module in modules[r % len(modules):] + modules[: r % len(modules)]:
                procs[module].stdin.write(case + "\n")
                procs[module].stdin.flush()
                reply = ""
                while not reply.startswith(REPLY):   # skip anything the module itself prints
                    reply = procs[module].stdout.readline()
                    if not reply:
                        raise RuntimeError(f"{module} exited mid-benchmark (exit {procs[module].wait()})")
                times[module].append(json.loads(reply[len(REPLY):])["seconds"])
    finally:
        for proc in procs.values():
            proc.stdin.close()
            proc.wait()
    return times


def interleaved_markdown(times: dict, case: str, references: list[str]) -> str:
    """Median real-time factor per module and, against each reference, the median over rounds of the
    per-round speed ratio (each round's modules ran back to back)."""
    n_sounds, seconds, _ = CASES[case]
    header = [f"module ({case}, {len(next(iter(times.values())))} rounds)", "median RTF"]
    header += [f"vs {ref} (paired)" for ref in references]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for module, ts in times.items():
        cells = [f"{n_sounds * seconds / float(np.median(ts)):.0f}x"]
        cells += [f"{float(np.median(np.asarray(times[ref]) / np.asarray(ts))):.2f}" for ref in references]
        lines.append(f"| {module} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "system": platform.system()}


def markdown(results: list[dict], reference: str | None) -> str:
    cases = list(dict.fromkeys(r["case"] for r in results))
    modules = list(dict.fromkeys(r["module"] for r in results))
    by = {(r["module"], r["case"]): r for r in results}
    lines = ["| module | " + " | ".join(cases) + " | first call | peak RSS (max) |",
             "|---|" + "---|" * (len(cases) + 2)]
    for module in modules:
        cells, rss, first = [], [], None
        for case in cases:
            r = by.get((module, case), {})
            if "rtf" not in r:
                cells.append("error" if r else "")
                continue
            cell = f"{r['rtf']:.0f}x"
            ref = by.get((reference, case)) if reference else None
            if ref and "rtf" in ref and module != reference:
                cell += f" ({r['rtf'] / ref['rtf']:.2f} of ref)"
            cells.append(cell)
            rss.append(r["peak_rss_mib"])
            first = r["first_call_s"] if first is None else first
        tail = f" | {first:.2f} s | {max(rss):.0f} MiB |" if rss else " | | |"
        lines.append(f"| {module} | " + " | ".join(cells) + tail)
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", metavar="MODULE", help=argparse.SUPPRESS)
    parser.add_argument("--serve", metavar="MODULE", help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--weights", default="", help="checkpoint for hear_dual modules")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads in torch workers")
    parser.add_argument("--once", action="store_true",
                        help="one timed call per case and no untimed one: for peak memory of long cases")
    parser.add_argument("--backends", default="torch,tf,onnx", help="hear_dual backends to run")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {list(CASES)}")
    parser.add_argument("--reference", action="append", default=[], metavar="MODULE",
                        help="also benchmark this HEAR module (repeatable), e.g. hearbaseline.naive")
    parser.add_argument("--reference-python", default=sys.executable,
                        help="python of the environment the reference modules live in")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--json", metavar="PATH", help="write all results to PATH")
    parser.add_argument("--interleave", type=int, metavar="ROUNDS",
                        help="speed only: all modules loaded at once and timed in alternation, ROUNDS rounds of "
                             "each case (for ratios on a shared, noisy machine); no memory figures")
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(args.worker, args.weights, args.case, args.threads, args.once)))
        return 0
    if args.serve:
        serve(args.serve, args.weights, args.threads)
        return 0

    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    jobs = [(OURS[b.strip()], sys.executable, args.weights) for b in args.backends.split(",") if b.strip()]
    jobs += [(ref, args.reference_python, "") for ref in args.reference]
    if args.interleave:
        runs = {case: interleaved(jobs, case, args.interleave, args.threads) for case in cases}
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"machine": machine(), "interleaved_seconds": runs}, f, indent=1)
        print(f"machine: {machine()['cpu']}, {machine()['cores']} cores")
        for case, times in runs.items():
            print(interleaved_markdown(times, case, args.reference))
        return 0
    results = []
    for module, python, weights in jobs:
        for case in cases:
            result = measure(module, case, python, weights, args.threads, once=args.once)
            results.append(result)
            if "error" in result:
                print(f"{module:<24} {case:<8} ERROR {result['error']}", file=sys.stderr)
            else:
                print(f"{module:<24} {case:<8} {result['rtf']:8.1f}x real time  median {result['median_s']:.3f} s"
                      f"  peak RSS {result['peak_rss_mib']:.0f} MiB  first call {result['first_call_s']:.2f} s",
                      file=sys.stderr)
    info = {"machine": machine(), "results": results}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(info, f, indent=1)
    if args.markdown:
        print(f"machine: {info['machine']['cpu']}, {info['machine']['cores']} cores")
        for ref in args.reference or [None]:
            print(markdown(results, ref))
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
