"""Embed audio files to .npz: `hear-dual embed INPUT... --out DIR`, locally or on a Ray cluster.

    hear-dual embed recordings/ extra.flac --out embeddings/ [--backend torch|tf|onnx] [--engine ray]

Inputs are files and folders (searched recursively). In folders, every file whose extension is one that
soundfile (libsndfile) reads is an input (wav, flac, ogg/oga/opus, mp3, aiff, au, caf, w64, rf64, ...);
a file named on the command line is always tried, whatever its extension. Each file is read with soundfile,
mixed to mono (mean of the channels) and resampled to the model's rate with soxr at quality "HQ" (soxr's
high quality preset), exactly as hear_dual.datasets.read_clip does.

One .npz per input, mirroring the input tree under --out: a file inside a folder input goes to
OUT/<path relative to that folder>.npz, a file input to OUT/<file name>.npz; the original extension is
kept (a/b.wav -> OUT/a/b.wav.npz). Each .npz (np.savez, no pickled objects: np.load(allow_pickle=False)
reads it) holds

    timestamps          float32 (T,)      milliseconds, hear_dual.audio.timestamps_ms
    embeddings          float32 (T, D)    timestamp embeddings (left out with --scene-only)
    scene               float32 (D_scene,) the backend's pool_scene of this file's own timestamp embeddings (a
                        spec with a scene hop of its own: its embeddings of this file alone at that hop)
    model, spec_version, spec_sha256, checkpoint_sha256, backend, source      str (0-d unicode arrays)
    sample_rate, source_sample_rate     int64;  duration_s  float64 (length of the file as read)

Writes are atomic (a hidden temporary file in the same folder, then os.replace), so an interrupted run
leaves no partial .npz; a rerun skips the inputs whose .npz is a whole archive (--overwrite redoes them).

Batching: files are sorted by length and grouped into batches of at most --batch-seconds of padded audio
(every clip is zero-padded to the longest clip of its batch); files longer than 60 s go alone. Each clip's
outputs are cut back to its own num_timestamps and its scene embedding is pooled from those alone, so
batching does not change results beyond float rounding (within the spec's parity gate).

Engines: "local" embeds in this process. "ray" plans the same batches on the driver and hands them to a
pool of Ray actors, one loaded model each (one GPU per actor when the cluster has GPUs); each actor reads
its batch's files and writes their .npz itself, so input and output paths must be visible at the same
paths on every node (a shared filesystem), and hear-dual must be installed there. With the same backend,
device and thread count per worker, both engines give bit-for-bit identical files. Ray is optional:
`pip install "hear-dual[ray]"`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from hear_dual.command import standalone
from hear_dual.datasets import audio_extensions, read_audio
from hear_dual.parity import NATIVE
from hear_dual.results import write_npz_atomic

BACKENDS = NATIVE
ENGINES = ("local", "ray")
DEFAULT_BATCH_SECONDS = 120.0
LONG_CLIP_SECONDS = 60.0          # longer files are embedded alone (the API chunks them with bounded memory)
CPU_THREADS_PER_RAY_WORKER = 4    # default CPU-only actor count is cluster CPUs // this (at least 1)
RAY_HINT = 'the "ray" engine needs Ray, which is not installed: pip install "hear-dual[ray]" (or pip install ray)'

class NoInputsError(FileNotFoundError):
    """No audio file was found under the given inputs."""


class RayNotInstalledError(ImportError):
    """engine="ray" without Ray installed."""


# ---------------------------------------------------------------- finding inputs

@dataclass(frozen=True)
class Job:
    """One input file: where it is, where its .npz goes, and its length from soundfile.info (for planning).

    source and output are the paths as given (recorded in the .npz and the summary); read_path and write_path
    are the same paths made absolute, which is what gets opened, so Ray workers need not share our cwd.
    """
    source: str
    output: str
    read_path: str
    write_path: str
    source_rate: int = 0
    frames: int = 0
    n_samples: int = 0          # estimated length at the model's rate, only used to group files into batches


@dataclass(frozen=True)
class Result:
    source: str
    output: str
    status: str                 # "embedded" or "failed"
    reason: str = ""
    audio_seconds: float = 0.0


def _output_path(out_dir: Path, relative: Path) -> Path:
    return out_dir / relative.parent / (relative.name + ".npz")


def find_inputs(inputs: Iterable, out_dir) -> tuple[list[Job], list[Result]]:
    """Jobs for every audio file under inputs, in a stable order, and failures for paths that do not work."""
    extensions = audio_extensions()
    out_dir = Path(out_dir)
    jobs: dict[str, Job] = {}
    seen: set[str] = set()
    failures: list[Result] = []

    def add(source: Path, relative: Path) -> None:
        real = os.path.realpath(source)
        if real in seen:                # named twice (e.g. a file and its folder): embedded once, first mapping
            return
        output = str(_output_path(out_dir, relative))
        if output in jobs:
            failures.append(Result(str(source), output, "failed",
                                   f"output {output} is already taken by {jobs[output].source}"))
            return
        seen.add(real)
        jobs[output] = Job(str(source), output, os.path.abspath(source), os.path.abspath(output))

    for item in inputs:
        path = Path(item)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    if Path(name).suffix.lower().lstrip(".") in extensions:
                        file = Path(root) / name
                        add(file, file.relative_to(path))
        elif path.is_file():
            add(path, Path(path.name))
        else:
            failures.append(Result(str(path), "", "failed", "no such file or directory"))
    return list(jobs.values()), failures


def probe(job: Job, sample_rate: int) -> Job:
    """job with the file's rate and length from soundfile.info; raises for unreadable or empty files."""
    import soundfile as sf

    info = sf.info(job.read_path)
    if info.frames <= 0:
        raise ValueError(f"empty file: {info.frames} audio frames")
    if info.samplerate <= 0:
        raise ValueError(f"invalid sample rate {info.samplerate}")
    n_samples = max(1, round(info.frames * sample_rate / info.samplerate))
    return replace(job, source_rate=int(info.samplerate), frames=int(info.frames), n_samples=int(n_samples))


def plan_batches(jobs: Sequence[Job], sample_rate: int, batch_seconds: float = DEFAULT_BATCH_SECONDS,
                 long_seconds: float = LONG_CLIP_SECONDS) -> list[list[Job]]:
    """Group jobs of similar length: sorted by length, each batch holds at most batch_seconds of padded audio
    (its size times its longest clip); clips longer than long_seconds, or than the budget, go alone."""
    budget = batch_seconds * sample_rate
    batches: list[list[Job]] = []
    current: list[Job] = []
    for job in sorted(jobs, key=lambda j: (j.n_samples, j.output)):
        alone = job.n_samples > long_seconds * sample_rate
        if current and (alone or (len(current) + 1) * job.n_samples > budget):
            batches.append(current)
            current = []
        if alone:
            batches.append([job])
        else:
            current.append(job)
    if current:
        batches.append(current)
    return batches


# ---------------------------------------------------------------- reading, embedding, writing

class Embedder:
    """One loaded model of one backend; embeds a list of mono clips as one zero-padded batch."""

    def __init__(self, backend: str = "torch", weights: str = "", threads: int | None = None):
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
        from hear_dual.hear_module import load_hear_module

        self.backend = backend
        self.device = None
        options = {}
        if backend == "torch":
            import torch

            if threads:
                torch.set_num_threads(threads)
            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        elif backend == "onnx":
            import onnxruntime as ort

            options["providers"] = ["CPUExecutionProvider"]
            if "CUDAExecutionProvider" in ort.get_available_providers():
                options["providers"].insert(0, "CUDAExecutionProvider")
        loaded = load_hear_module(f"hear_dual.{backend}_impl", weights, allow_numpy=True, **options)
        self.module, self.model = loaded.module, loaded.model
        self.spec = self.model.spec
        self.sample_rate = int(self.model.sample_rate)

    def metadata(self) -> dict:
        spec = self.spec
        return {"model": np.str_(spec.name), "spec_version": np.str_(str(spec.version)),
                "spec_sha256": np.str_(spec.sha256), "checkpoint_sha256": np.str_(self.model.checkpoint_sha256),
                "backend": np.str_(self.backend), "sample_rate": np.int64(self.sample_rate)}

    @staticmethod
    def _numpy(x) -> np.ndarray:
        from hear_dual.parity import to_numpy

        return np.ascontiguousarray(to_numpy(x), dtype=np.float32)

    def embed(self, clips: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """[(embeddings (T_i, D), timestamps (T_i,) ms, scene (D_scene,))] with T_i = num_timestamps(len(clip_i))."""
        from hear_dual.audio import num_timestamps
        from hear_dual.parity import scene_of

        lengths = [len(c) for c in clips]
        batch = np.zeros((len(clips), max(lengths)), np.float32)
        for row, clip in zip(batch, clips):
            row[: len(clip)] = clip
        audio = batch
        if self.backend == "torch":
            import torch

            audio = torch.from_numpy(batch).to(self.device)
        embeddings, timestamps = self.module.get_timestamp_embeddings(audio, self.model)
        counts = [num_timestamps(self.spec, length) for length in lengths]
        # Each clip's scene as the backend makes it for the clip alone (its own rows, its own length), but one call
        # for each run of clips that share a length (or, where the scene pools the timestamp embeddings, a number of
        # timestamps: a row's float64 pooling reads that row alone, SPEC section 6). A call per clip cost tf_impl 4 s
        # of eager ops on FSDD's 3,000 clips; the batches are sorted by length, so runs are long.
        scenes, keys = [], counts if self.spec.scene_from_timestamps else lengths
        for run in runs(keys):
            n, length = counts[run.start], lengths[run.start]
            scenes.append(self._numpy(scene_of(self.module, audio[run, :length], self.model, embeddings[run, :n])))
        # To numpy once, then cut per clip (each a view of its row): a TF slice per clip is an eager op each.
        embeddings, timestamps, scenes = self._numpy(embeddings), self._numpy(timestamps), np.concatenate(scenes)
        return [(embeddings[i, :n], timestamps[i, :n], scenes[i]) for i, n in enumerate(counts)]


def runs(keys: Sequence) -> list[slice]:
    """The runs of equal consecutive keys, as slices: runs([1, 1, 2, 1]) == [slice(0, 2), slice(2, 3), slice(3, 4)]."""
    starts = [i for i in range(len(keys)) if i == 0 or keys[i] != keys[i - 1]]
    return [slice(a, b) for a, b in zip(starts, starts[1:] + [len(keys)])]


def process_batch(embedder: Embedder, jobs: Sequence[Job], scene_only: bool = False) -> list[Result]:
    """Read, embed and write one batch; a file that cannot be read, embedded or written fails alone."""
    return write_batch(*embed_batch(embedder, read_batch(jobs, embedder.sample_rate), scene_only))


def read_batch(jobs: Sequence[Job], sample_rate: int) -> tuple[list[Result], list]:
    """Read one batch's files at sample_rate: (results of the files that failed, [(job, audio, rate, frames)])."""
    results, read = [], []
    for job in jobs:
        try:
            audio, rate, frames = read_audio(job.read_path, sample_rate)
            if frames == 0:
                raise ValueError("empty file: 0 audio frames")
            if not np.isfinite(audio).all():
                raise ValueError("audio contains NaN or infinity")
        except Exception as e:
            results.append(Result(job.source, job.output, "failed", _reason(e)))
            continue
        read.append((job, audio, rate, frames))
    return results, read


def embed_batch(embedder: Embedder, batch: tuple[list[Result], list], scene_only: bool = False) -> tuple[list, list]:
    """Embed one read batch (read_batch's output): (results of the files that failed, [(job, arrays to write, audio
    seconds)])."""
    results, read = batch
    if not read:
        return results, []
    try:
        outputs = embedder.embed([audio for _, audio, _, _ in read])
    except Exception as e:
        return results + [Result(job.source, job.output, "failed", f"embedding failed: {_reason(e)}")
                          for job, _, _, _ in read], []
    metadata, todo = embedder.metadata(), []
    for (job, _, rate, frames), (embeddings, timestamps, scene) in zip(read, outputs):
        arrays = {"timestamps": timestamps}
        if not scene_only:
            arrays["embeddings"] = embeddings
        arrays |= {"scene": scene, **metadata, "source": np.str_(job.source),
                   "source_sample_rate": np.int64(rate), "duration_s": np.float64(frames / rate)}
        todo.append((job, arrays, frames / rate))
    return results, todo


def finished(path) -> bool:
    """An output a previous run completed: a whole .npz archive whose members all match their checksums (outputs
    are not synced one by one, so a crash of the machine may leave an end record over missing data)."""
    if not (os.path.isfile(path) and zipfile.is_zipfile(path)):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (zipfile.BadZipFile, OSError):
        return False


def write_batch(results: list[Result], todo: list) -> list[Result]:
    """Write embed_batch's outputs, each file atomically; one that cannot be written fails alone."""
    for job, arrays, seconds in todo:
        try:
            # No fsync per file (it cost as much as the model on short clips): a file cut short by a crash of the
            # machine is not a complete archive, and the next run redoes it (finished()).
            write_npz_atomic(job.write_path, arrays, sync=False)
        except Exception as e:
            results.append(Result(job.source, job.output, "failed", f"cannot write {job.output}: {_reason(e)}"))
            continue
        results.append(Result(job.source, job.output, "embedded", audio_seconds=seconds))
    return results


def _reason(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


# ---------------------------------------------------------------- engines

class _EmbedWorker:
    """A Ray actor's state: one Embedder. Module level so Ray workers import it from hear_dual.embed."""

    def __init__(self, backend: str, weights: str, scene_only: bool, threads: int | None):
        self.embedder = Embedder(backend, weights, threads=threads)
        self.scene_only = scene_only

    def run(self, jobs: list[Job]) -> list[Result]:
        return process_batch(self.embedder, jobs, self.scene_only)


def _run_local(batches, embedder: Embedder, scene_only, on_results) -> None:
    """A second thread reads the next batch's files and writes the last one's while this one embeds: on thousands of
    short clips, reading and writing the files took as long as the model (soundfile, soxr and file writes release
    the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hear-dual-io") as io:
        reading = io.submit(read_batch, batches[0], embedder.sample_rate)
        pending = None
        for i in range(len(batches)):
            read = reading.result()
            if i + 1 < len(batches):
                reading = io.submit(read_batch, batches[i + 1], embedder.sample_rate)
            embedded = embed_batch(embedder, read, scene_only)
            if pending is not None:
                on_results(pending.result())
            pending = io.submit(write_batch, *embedded)
        if pending is not None:
            on_results(pending.result())


def _import_ray():
    try:
        import ray
    except ImportError as e:
        raise RayNotInstalledError(RAY_HINT) from e
    return ray


def _run_ray(batches, backend, weights, scene_only, on_results, address=None, num_workers=None,
             verbose=True) -> None:
    ray = _import_ray()
    from ray.util import ActorPool

    weights = os.path.abspath(weights) if weights else weights     # workers need not share our cwd

    started = not ray.is_initialized()
    if started:
        ray.init(address=address, log_to_driver=verbose, logging_level=logging.INFO if verbose else logging.WARNING)
    try:
        resources = ray.cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), max(1, int(resources.get("CPU", 1)))
        if gpus:
            n = num_workers or gpus
            options, threads = {"num_gpus": 1, "num_cpus": 1}, None
        else:
            n = num_workers or max(1, cpus // CPU_THREADS_PER_RAY_WORKER)
            threads = max(1, cpus // n)
            options = {"num_cpus": threads}
        n = max(1, min(n, len(batches)))
        actor = ray.remote(**options)(_EmbedWorker)
        actors = [actor.remote(backend, weights, scene_only, threads) for _ in range(n)]
        try:
            pool = ActorPool(actors)
            for results in pool.map_unordered(lambda a, batch: a.run.remote(batch), batches):
                on_results(results)
        finally:
            for a in actors:
                ray.kill(a)
    finally:
        if started:
            ray.shutdown()


# ---------------------------------------------------------------- the job

def embed_paths(inputs, out_dir, backend: str = "torch", weights: str = "", scene_only: bool = False,
                overwrite: bool = False, batch_seconds: float = DEFAULT_BATCH_SECONDS, engine: str = "local",
                address: str | None = None, num_workers: int | None = None, progress: bool = True) -> dict:
    """Embed every audio file under inputs to OUT_DIR/<relative path>.npz; returns a summary dict:

    embedded / skipped / failed (counts), failures [{source, reason}], outputs (written .npz paths),
    audio_seconds, elapsed_s, backend, engine, out_dir. Raises NoInputsError when no audio file is found.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    if not batch_seconds > 0:
        raise ValueError(f"batch_seconds must be > 0, got {batch_seconds}")
    if num_workers is not None and num_workers < 1:
        raise ValueError(f"num_workers must be >= 1, got {num_workers}")
    if engine == "ray":
        _import_ray()   # fail before any work when Ray is missing
    from tqdm import tqdm

    from hear_dual.checkpoint import read_checkpoint
    from hear_dual.weights import resolve

    started = time.perf_counter()
    jobs, failures = find_inputs(inputs, out_dir)
    if not jobs:
        missing = "".join(f"\n  {f.source}: {f.reason}" for f in failures)
        raise NoInputsError(f"no audio files found in {', '.join(map(str, inputs)) or '(no inputs)'}{missing}")

    def report(result: Result) -> None:
        if progress:
            tqdm.write(f"hear-dual embed: failed {result.source}: {result.reason}", file=sys.stderr)

    for failure in failures:
        report(failure)
    skipped, todo = [], []
    for job in jobs:
        (skipped if not overwrite and finished(job.write_path) else todo).append(job)
    # The local engine loads its model once, here, and its rate plans the batches (reading the checkpoint once more
    # only for the rate cost 0.1 s); nothing is loaded when every output is already there.
    embedder, sample_rate = None, 0
    if todo and engine == "local":
        embedder = Embedder(backend, weights)
        sample_rate = embedder.sample_rate
    elif todo:
        sample_rate = read_checkpoint(resolve(weights)).spec.sample_rate
    pending = []
    for job in todo:
        try:
            pending.append(probe(job, sample_rate))
        except Exception as e:
            failures.append(Result(job.source, job.output, "failed", _reason(e)))
            report(failures[-1])
    batches = plan_batches(pending, sample_rate, batch_seconds)

    embedded: list[Result] = []
    bar = tqdm(total=len(pending), desc="embed", unit="file", file=sys.stderr,
               disable=not (progress and sys.stderr.isatty()))

    def on_results(results: list[Result]) -> None:
        for result in results:
            if result.status == "embedded":
                embedded.append(result)
            else:
                failures.append(result)
                report(result)
        seconds = sum(r.audio_seconds for r in embedded)
        bar.set_postfix_str(f"{seconds / max(time.perf_counter() - started, 1e-9):.1f} audio s/s", refresh=False)
        bar.update(len(results))

    try:
        if batches and engine == "local":
            _run_local(batches, embedder, scene_only, on_results)
        elif batches:
            _run_ray(batches, backend, weights, scene_only, on_results, address, num_workers, progress)
    finally:
        bar.close()
    return {"embedded": len(embedded), "skipped": len(skipped), "failed": len(failures),
            "failures": [{"source": f.source, "reason": f.reason} for f in failures],
            "outputs": sorted(r.output for r in embedded),
            "audio_seconds": float(sum(r.audio_seconds for r in embedded)),
            "elapsed_s": time.perf_counter() - started, "backend": backend, "engine": engine,
            "out_dir": str(out_dir)}


def format_summary(summary: dict) -> str:
    seconds, elapsed = summary["audio_seconds"], summary["elapsed_s"]
    lines = [f"embedded {summary['embedded']} file(s) ({seconds:.1f} s of audio) in {elapsed:.1f} s "
             f"({seconds / max(elapsed, 1e-9):.1f} audio s/s) with {summary['backend']} on {summary['engine']} "
             f"-> {summary['out_dir']}",
             f"skipped {summary['skipped']} already embedded" + (" (--overwrite redoes them)"
                                                                  if summary["skipped"] else ""),
             f"failed {summary['failed']}" + (":" if summary["failed"] else "")]
    lines += [f"  {f['source']}: {f['reason']}" for f in summary["failures"]]
    return "\n".join(lines)


# ---------------------------------------------------------------- command line

def sleeping_waits() -> None:
    """Before torch is imported: its OpenMP threads (GNU OpenMP, read once as it loads) go to sleep when an op ends
    instead of spinning for their next one, unless the user set OMP_WAIT_POLICY. The local engine's second thread
    reads and writes files while the model runs on every core, and spinning threads kept it off them: FSDD's 3,000
    files 9.2-10.7 s -> 7.5-8.6 s end to end (alternating runs, 2 cores). Not for the model alone, which waits for
    nothing else: base 16 x 1 s 25 -> 34 ms a call."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def cmd_embed(args) -> int:
    if args.engine == "local":
        sleeping_waits()
    try:
        summary = embed_paths(args.inputs, args.out, backend=args.backend, weights=args.weights,
                              scene_only=args.scene_only, overwrite=args.overwrite,
                              batch_seconds=args.batch_seconds, engine=args.engine, address=args.address,
                              num_workers=args.num_workers, progress=not args.quiet)
    except (NoInputsError, RayNotInstalledError) as e:
        print(f"hear-dual embed: error: {e}", file=sys.stderr)
        return 2
    print(format_summary(summary))
    return 1 if summary["failed"] else 0


def add_embed_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "embed", help="embed audio files and folders to one .npz per file",
        description="Embed every audio file under INPUT (files, and folders recursively) to one .npz per file under "
                    "--out, mirroring the input tree (a/b.wav -> OUT/a/b.wav.npz). Audio is mixed to mono and "
                    "resampled to the model's rate with soxr high quality (HQ). Existing .npz files are skipped. "
                    "Exit 0 when every file was embedded or skipped, 1 when some failed, 2 when none was found.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files and folders")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--backend", choices=BACKENDS, default="torch", help="implementation to run (default torch)")
    parser.add_argument("--weights", default="", metavar="PATH",
                        help="checkpoint path (default: shipped hear-dual-base)")
    parser.add_argument("--scene-only", action="store_true", help="store scene embeddings and timestamps only")
    parser.add_argument("--overwrite", action="store_true", help="redo inputs whose .npz already exists")
    parser.add_argument("--batch-seconds", type=float, default=DEFAULT_BATCH_SECONDS, metavar="S",
                        help=f"padded audio per batch in seconds (default {DEFAULT_BATCH_SECONDS:g}); files over "
                             f"{LONG_CLIP_SECONDS:g} s go alone")
    parser.add_argument("--engine", choices=ENGINES, default="local",
                        help='"local" (this process, default) or "ray" (a pool of Ray actors; needs hear-dual[ray])')
    parser.add_argument("--address", default=None, metavar="ADDR",
                        help="Ray cluster address for ray.init, e.g. ray://head:10001 or auto (default: start a "
                             "local Ray instance)")
    parser.add_argument("--num-workers", type=int, default=None, metavar="N",
                        help=f"Ray actors (default: one per GPU, else cluster CPUs // {CPU_THREADS_PER_RAY_WORKER})")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or per-file messages on stderr")
    parser.set_defaults(func=cmd_embed)
    return parser


def main(argv=None) -> int:
    """`hear-dual embed` on its own (`python -m hear_dual.embed`): argv holds the arguments after `embed`."""
    return standalone("embed", add_embed_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
