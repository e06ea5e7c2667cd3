"""Writing results: strict JSON of reports, the facts a measurement must carry, and files that are whole or absent.

Low in the package: the commands (parity, compare, embed, evaluate, portability), the benchmarks and the evaluation
harness write through it. Every results file under results/ (the figures of README.md and docs/, rendered by
hear_dual.figures) carries `environment()` as its "meta": when, on what CPU, with which versions, by which command.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import io
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

# The distributions whose versions a measurement depends on.
VERSIONED = ("hear-dual", "numpy", "torch", "tensorflow-cpu", "tensorflow", "onnxruntime", "onnx", "tf2onnx",
             "scikit-learn", "musicnn", "torchcrepe")


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def cpu_isa() -> str | None:
    """The widest vector instructions the CPU offers (AMX, AVX-512, AVX2, or None where /proc/cpuinfo does not say):
    machines of one kind, one CPU name ("AMD EPYC"), differ in them, and kernels, speed and rounding with them."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(next(line for line in f if line.startswith("flags")).split(":", 1)[1].split())
    except (OSError, StopIteration):
        return None
    return next((isa for isa, flag in (("AMX", "amx_tile"), ("AVX-512", "avx512f"), ("AVX2", "avx2")) if flag in flags),
                "SSE")


# What changes a framework's arithmetic or threads: oneDNN in TensorFlow, thread caps, and an emulated CPU's caps
# (../shared/tools/emulate-cpu.sh).
SETTINGS = ("TF_ENABLE_ONEDNN_OPTS", "OMP_NUM_THREADS", "NPY_DISABLE_CPU_FEATURES", "ATEN_CPU_CAPABILITY",
            "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")


def environment(command: str | None = None) -> dict:
    """When, where and how a measurement was made: UTC date, CPU, cores, Python and package versions, the settings
    that change a framework's arithmetic or threads, and the command (default: this process's own)."""
    versions = {}
    for name in VERSIONED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    if command is None:
        program = Path(sys.argv[0]).name
        command = ("hear-dual " if program == "hear-dual" else "python ") + shlex.join(
            sys.argv[1:] if program == "hear-dual" else sys.argv)
    settings = {key: os.environ[key] for key in SETTINGS if key in os.environ}
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"), "cpu": cpu_name(),
            "isa": cpu_isa(), "cores": os.cpu_count(), "python": platform.python_version(),
            "machine": platform.machine(), "versions": versions, "settings": settings, "command": command,
            "commit": source_commit()}


def source_commit(root: Path | None = None) -> str | None:
    """The git commit of the code that measured (short hash, "+" when the working tree had changes), or None
    outside a git checkout: a results file older than the code it describes shows it. root: the folder above the
    package (default: this one's); only a checkout whose top is that folder counts. An installed package lies in
    site-packages, and git, asked there, answers for whatever checkout holds the environment (a venv inside a
    clone of anything)."""
    root = (root or Path(__file__).resolve().parent.parent).resolve()

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)

    try:
        top = git("rev-parse", "--show-toplevel")
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() != root:
            return None
        head, dirty = git("rev-parse", "--short", "HEAD"), git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.TimeoutExpired):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ("+" if dirty.stdout.strip() else "")


def jsonable(value):
    """The report with numpy scalars as python numbers and non-finite floats as None (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def _umask_mode() -> int:
    """The mode a plain open() would give a new file (mkstemp's is 0600). Read once, at import: reading the umask
    means setting it, and embed writes from a second thread while the first may be creating files."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


NEW_FILE_MODE = _umask_mode()


@contextlib.contextmanager
def atomic_file(path, mode: str = "w", buffering: int = -1, sync: bool = False):
    """A file object for `path` that replaces it whole or not at all: a hidden temporary file beside it (with the
    mode a plain open() would give), fsynced when `sync`, then os.replace; removed if the block raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, NEW_FILE_MODE)
    try:
        with os.fdopen(fd, mode, buffering=buffering) as f:
            yield f
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path, report) -> None:
    """A results file: strict JSON (numpy numbers as python ones, non-finite floats as null), written whole or not
    at all (atomic_file)."""
    with atomic_file(path) as f:
        json.dump(jsonable(report), f, indent=1, allow_nan=False)
        f.write("\n")


SMALL_ARCHIVE_BYTES = 1 << 22       # write_npz_atomic builds archives up to this size in memory


def _savez(file, **arrays) -> None:
    np.savez(file, **arrays)


def write_npz_atomic(path, arrays: dict, sync: bool = True) -> None:
    """np.savez to a hidden temporary file beside path, fsync (unless sync=False), then os.replace: path is whole or
    absent, whenever the process is interrupted; with sync, also after a crash of the machine."""
    size = sum(np.asarray(a).nbytes for a in arrays.values())
    if size <= SMALL_ARCHIVE_BYTES:
        # Built in memory, written in one call: zipfile seeks back to each member's header, and every seek of a
        # file flushes its buffer first (a short clip's archive, alternating in one process: 0.97-1.62 ms a file,
        # 0.83-1.21 ms so; hear-dual embed writes thousands).
        archive = io.BytesIO()
        _savez(archive, **arrays)
        with atomic_file(path, "wb", sync=sync) as f:
            f.write(archive.getbuffer())
        return
    # A large buffer: the archive's many small writes and seeks become few system calls, without a second copy of
    # the archive in memory.
    with atomic_file(path, "wb", buffering=1 << 22, sync=sync) as f:
        _savez(f, **arrays)
