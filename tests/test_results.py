"""What a results file says about the code that measured it (hear_dual.results)."""

import shutil
import subprocess

import pytest

from hear_dual.results import source_commit

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(cwd, *args) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def checkout(tmp_path):
    root = tmp_path / "clone"
    (root / "hear_dual").mkdir(parents=True)
    (root / "hear_dual" / "code.py").write_text("x = 1\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "code")
    return root


def test_a_checkout_gives_its_commit_and_marks_changes(checkout):
    assert source_commit(checkout) == git(checkout, "rev-parse", "--short", "HEAD")
    (checkout / "hear_dual" / "code.py").write_text("x = 2\n")
    assert source_commit(checkout) == git(checkout, "rev-parse", "--short", "HEAD") + "+"


def test_an_installed_package_inside_another_checkout_gives_none(checkout):
    # pip install puts the package in .venv/lib/python3.11/site-packages: a folder inside the clone, not its top.
    site = checkout / ".venv" / "lib" / "python3.11" / "site-packages"
    (site / "hear_dual").mkdir(parents=True)
    assert source_commit(site) is None


def test_outside_any_checkout_gives_none(tmp_path):
    assert source_commit(tmp_path) is None
