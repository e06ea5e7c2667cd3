"""The installed package ships what users need: spec files, schema, checkpoints, golden embeddings, converters, CLI.

Checked in a subprocess started outside the repository, so the source tree is not on sys.path.
"""

import subprocess
import sys

PROBE = """
import hear_dual, hear_dual.converters.torchcrepe, importlib.resources as r, pathlib
spec_dir = r.files("hear_dual._spec")
for name in ("hear-dual-base.json", "hear-dual-crepe-tiny.json", "hear-dual-crepe-full.json", "schema.json", "SPEC.md"):
    assert spec_dir.joinpath(name).is_file(), name
for name in ("hear-dual-base.onnx", "hear-dual-crepe-tiny.onnx", "golden.npz"):
    assert r.files("hear_dual.checkpoints").joinpath(name).is_file(), name
print(pathlib.Path(hear_dual.__file__).resolve().parent)
"""


def test_installed_package_ships_spec_schema_checkpoint_and_golden(tmp_path):
    run = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr


def test_console_script_runs(tmp_path):
    run = subprocess.run([sys.executable, "-m", "hear_dual.cli", "info", "--json"], capture_output=True,
                         text=True, cwd=tmp_path)
    assert run.returncode == 0 and '"hear-dual-base"' in run.stdout, run.stderr
