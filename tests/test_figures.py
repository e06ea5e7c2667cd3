"""Figures as data (hear_dual.figures): the tables in README.md and docs/ are exactly what their committed results
files render to, a table that drifts from its results file is caught, and every table says when, where and how
it was measured."""

from __future__ import annotations

import json

import pytest

from hear_dual import figures

META = {"date": "2026-12-06T10:00:00+00:00", "cpu": "Test CPU 9000", "cores": 2,
        "versions": {"hear-dual": "0", "numpy": "2", "torch": "2.13.0", "tensorflow-cpu": "2.21.0",
                     "onnxruntime": "1.23"},
        "settings": {}, "command": "hear-dual parity --weights base --json"}


def parity_report(worst: float) -> dict:
    row = {"pair": "torch vs tf", "input": "white_noise", "cases": 3, "max_abs_diff": worst, "max_rel_diff": worst,
           "min_cosine": 0.9999999999, "timestamps_identical": True, "passed": True}
    return {"model": "hear-dual-base", "tolerance": 2e-5, "min_cosine": 0.99999999, "inputs": ["white_noise"],
            "lengths": {"short": 0.5}, "batches": [1, 3], "passed": True, "summary": [row], "downstream": None,
            "meta": META, "rows": [row] * 3}


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setattr(figures, "RESULTS", tmp_path)
    return tmp_path


def test_the_committed_pages_match_their_results_files(capsys):
    """The drift check on this repository: run `python -m hear_dual.figures` after re-measuring."""
    status = figures.main(["--check"])
    err = capsys.readouterr().err
    assert status == 0, err


def test_a_table_that_drifts_from_its_results_is_caught(results):
    (results / "parity-base.json").write_text(json.dumps(parity_report(1.5e-6)))
    page = "intro\n<!-- figures: parity-base -->\n| typed | by hand |\n<!-- /figures -->\nafter\n"
    errors: list = []
    rendered = figures.render_text(page, errors)
    assert not errors
    assert rendered != page and "1.5e-06" in rendered and "| typed |" not in rendered
    assert rendered.startswith("intro\n") and rendered.endswith("after\n")
    assert figures.render_text(rendered, errors) == rendered  # rendering is idempotent: a clean page stays clean
    (results / "parity-base.json").write_text(json.dumps(parity_report(3.2e-6)))  # re-measured
    assert figures.render_text(rendered, errors) != rendered and "3.2e-06" in figures.render_text(rendered, errors)


def test_every_table_names_its_date_machine_and_command(results):
    (results / "parity-base.json").write_text(json.dumps(parity_report(1.5e-6)))
    body = figures.RENDERERS["parity-base"]("docs/parity.md")
    assert "2026-12-06" in body and "Test CPU 9000" in body and "2 cores" in body
    assert "`hear-dual parity --weights base --json`" in body and "torch 2.13.0" in body


def test_a_missing_results_file_is_an_error_naming_it(results):
    page = "<!-- figures: memory -->\nold\n<!-- /figures -->\n"
    errors: list = []
    assert figures.render_text(page, errors, "docs/speed.md") == page  # left as it was
    assert len(errors) == 1 and "memory.json is missing" in errors[0] and "docs/speed.md" in errors[0]


def test_an_unknown_figure_is_an_error(results):
    errors: list = []
    figures.render_text("<!-- figures: nonsense -->\n<!-- /figures -->\n", errors, "README.md")
    assert errors and "unknown figure 'nonsense'" in errors[0]


def test_check_mode_changes_nothing_and_fails_on_a_stale_page(results, tmp_path, monkeypatch):
    (results / "parity-base.json").write_text(json.dumps(parity_report(1.5e-6)))
    page = tmp_path / "page.md"
    page.write_text("<!-- figures: parity-base -->\nstale\n<!-- /figures -->\n")
    monkeypatch.setattr(figures, "ROOT", tmp_path)
    monkeypatch.setattr(figures, "pages", lambda: [page])
    assert figures.main(["--check"]) == 1
    assert "stale" in page.read_text()
    assert figures.main([]) == 0 and "stale" not in page.read_text()
    assert figures.main(["--check"]) == 0


def test_several_runs_gather_into_one_table(results, tmp_path):
    run = {"meta": META | {"command": "hear-dual evaluate hear_dual.torch_impl fsdd --weights crepe-tiny"},
           "models": [{"module": "hear_dual.torch_impl", "weights": "crepe-tiny", "reference": None,
                       "scene_embedding_size": 256, "results": {"fsdd-digit": {"mean": 0.25, "std": 0.01},
                                                                "fsdd-speaker": {"mean": 0.75, "std": 0.02}}}]}
    other = json.loads(json.dumps(run).replace("crepe-tiny", "crepe-full").replace("0.25", "0.34"))
    (tmp_path / "a.json").write_text(json.dumps(run))
    (tmp_path / "b.json").write_text(json.dumps(other))
    assert figures.main(["--gather", str(results / "fsdd-crepe.json"), str(tmp_path / "a.json"),
                         str(tmp_path / "b.json")]) == 0
    body = figures.RENDERERS["fsdd-crepe"]("docs/models/crepe.md")
    assert "| `crepe-tiny` |" in body and "0.250 ± 0.010" in body and "| `crepe-full` |" in body and "0.340" in body
    assert body.count("*Measured") == 1 and "--weights crepe-tiny`, `" in body      # one date and machine, two commands


def test_a_table_measured_under_an_emulated_cpu_says_so():
    capped = META | {"settings": {"ATEN_CPU_CAPABILITY": "avx2", "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512F"}}
    line = figures.measured({"meta": capped})
    assert "ATEN_CPU_CAPABILITY=avx2" in line and "numpy's dispatch capped" in line and "AVX512F" not in line
    assert "capped" not in figures.measured({"meta": META}) and "=" not in figures.measured({"meta": META})


def test_a_table_names_the_cpus_vector_instructions(monkeypatch):
    """One CPU name covers machines with and without AVX-512: a results file records the widest vector instructions
    from /proc/cpuinfo's flags, and the line under a table names them; a file from before it has none to name."""
    import builtins
    import io

    from hear_dual import results as results_module

    def cpuinfo(flags):
        real_open = builtins.open
        return lambda path, *a, **k: io.StringIO(f"flags\t\t: {flags}\n") if path == "/proc/cpuinfo" else real_open(
            path, *a, **k)

    for flags, isa in [("fpu sse4_2 avx avx2 fma", "AVX2"), ("avx2 avx512f avx512bw", "AVX-512"),
                       ("avx2 avx512f amx_tile amx_bf16", "AMX"), ("fpu sse4_2", "SSE")]:
        monkeypatch.setattr(builtins, "open", cpuinfo(flags))
        assert results_module.cpu_isa() == isa, flags
    monkeypatch.undo()
    assert "Test CPU 9000 with AVX2 (2 cores" in figures.measured({"meta": META | {"isa": "AVX2"}})
    assert "Test CPU 9000 (2 cores" in figures.measured({"meta": META})


def test_the_goals_take_the_worst_of_both_speed_files(results):
    """A target is met only where it is met on the AVX-512 run and on the AVX2 one: the worse of the two is shown,
    named by its file."""
    def speed(vs_fastest: float) -> dict:
        run = {"model": "base", "case": "16x1s", "module": "tf", "fraction": 0.9, "vs_fastest": vs_fastest,
               "ratios": {"hearbaseline.naive": 1.1}}
        return {"meta": META, "runs": [run | {"module": "torch", "vs_fastest": 1.0}, run]}

    (results / "speed.json").write_text(json.dumps(speed(0.9)))
    (results / "speed-avx2.json").write_text(json.dumps(speed(0.7)))
    memory = {"meta": META, "runs": [{"model": "base", "case": "1x20min", "module": "tf", "peak_rss_mib": 900.0}]}
    for name in figures.MEMORY_FILES:
        (results / f"{name}.json").write_text(json.dumps(memory))
    body = figures.RENDERERS["speed-goals"]("docs/speed.md")
    row = next(line for line in body.splitlines() if "below 0.8x the fastest" in line)
    assert "0.70x (`base` 16x1s, tf, speed-avx2.json)" in row and row.endswith("| **no** |")
    (results / "speed-avx2.json").write_text(json.dumps(speed(0.85)))
    row = next(line for line in figures.RENDERERS["speed-goals"]("docs/speed.md").splitlines() if "0.8x" in line)
    assert "0.85x (`base` 16x1s, tf, speed-avx2.json)" in row and row.endswith("| yes |")


def test_a_later_memory_run_replaces_an_earlier_runs_row(results):
    """MEMORY_FILES are runs oldest first: a later run's (model, case, module) replaces the earlier one's in place, and
    every run that still gives a row is named under the table."""
    def report(command: str, rows: list[tuple[str, str, float]]) -> dict:
        return {"meta": META | {"command": command}, "runs": [
            {"model": m, "case": "1x20min", "module": b, "peak_rss_mib": mib, "seconds": 1.0} for m, b, mib in rows]}
    first, second, third = figures.MEMORY_FILES
    for name, data in [(first, report("first", [("base", "torch", 400.0), ("base", "tf", 700.0)])),
                       (second, report("second", [("vgg", "torch", 410.0), ("vgg", "tf", 1225.0)])),
                       (third, report("third", [("vgg", "tf", 940.0)]))]:
        (results / f"{name}.json").write_text(json.dumps(data))
    body = figures.RENDERERS["memory"]("docs/speed.md")
    rows = [line for line in body.splitlines() if line.startswith("| `")]
    assert [r.split("|")[3].strip() + r.split("|")[4].strip() for r in rows] == \
        ["`torch`400 MiB", "`tf`700 MiB", "`torch`410 MiB", "`tf`940 MiB"]
    assert "1225" not in body and all(f"`{c}`" in body for c in ("first", "second", "third"))
    vgg = figures.memory_table({"vgg"})
    assert "`first`" not in vgg and "`second`" in vgg and "`third`" in vgg
    # A run whose only VGG row was replaced, with a row of another model that stays: not named under VGG's table.
    replaced = report("second", [("vgg", "tf", 1225.0), ("base", "onnx", 300.0)])
    (results / f"{second}.json").write_text(json.dumps(replaced))
    assert "`second`" not in figures.memory_table({"vgg"}) and "`second`" in figures.memory_table({"base"})
