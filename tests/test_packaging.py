"""The installed distribution ships what users need: spec files, schema, default checkpoint, CLI."""

import subprocess
import sys
from importlib import metadata

import pytest


def installed_files():
    dist = metadata.distribution("hear-dual")
    if any(str(f).endswith("direct_url.json") for f in dist.files or []) and \
            '"editable": true' in (dist.read_text("direct_url.json") or ""):
        pytest.skip("editable install: the wheel layout is checked on a regular install (as in CI)")
    return {str(f) for f in dist.files}


def test_wheel_ships_spec_schema_and_checkpoint():
    files = installed_files()
    for needed in ("hear_dual/_spec/hear-dual-base.json", "hear_dual/_spec/schema.json",
                   "hear_dual/_spec/SPEC.md", "hear_dual/checkpoints/hear-dual-base.onnx"):
        assert needed in files, needed


def test_console_script_runs():
    run = subprocess.run([sys.executable, "-m", "hear_dual.cli", "info", "--json"], capture_output=True, text=True)
    assert run.returncode == 0 and '"hear-dual-base"' in run.stdout
