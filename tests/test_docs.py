"""The documentation site: it builds with `mkdocs build --strict`, its navigation and its pages agree, and every
figure marker in README.md and docs/ is closed and names a known figure (tables of measurements are rendered from
results files by hear_dual.figures between such markers, never typed in)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CONFIG = ROOT / "mkdocs.yml"
# Pages under docs/ deliberately left out of the nav (mkdocs.yml's `not_in_nav`); none at present.
NOT_IN_NAV: set[str] = set()

OPEN = re.compile(r"<!--\s*figures:\s*(?P<name>[^\s>]+)\s*-->")
CLOSE = re.compile(r"<!--\s*/figures\s*-->")


def figure_names() -> set[str]:
    from hear_dual.figures import RENDERERS

    return set(RENDERERS)


def marked_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def markers(text: str, label: str) -> tuple[list[str], list[str]]:
    """(names of the figure blocks in `text`, problems with its markers), problems prefixed by `label`."""
    names, problems, open_at = [], [], None
    for number, line in enumerate(text.splitlines(), 1):
        opening, closing = OPEN.search(line), CLOSE.search(line)
        if not (opening or closing):
            continue
        if line.strip() != (opening or closing).group(0):
            problems.append(f"{label}:{number}: a figure marker must stand alone on its line: {line.strip()!r}")
        if opening:
            if open_at is not None:
                problems.append(f"{label}:{number}: figure {opening['name']!r} opens before the one opened at line "
                                f"{open_at} is closed")
            names.append(opening["name"])
            open_at = number
        else:
            if open_at is None:
                problems.append(f"{label}:{number}: <!-- /figures --> closes no figure")
            open_at = None
    if open_at is not None:
        problems.append(f"{label}:{open_at}: figure {names[-1]!r} is never closed by <!-- /figures -->")
    return names, problems


def nav_pages(node) -> list[str]:
    """Every page path in mkdocs.yml's nav (external links aside)."""
    if isinstance(node, str):
        return [] if "://" in node else [node]
    if isinstance(node, list):
        return [page for item in node for page in nav_pages(item)]
    if isinstance(node, dict):
        return [page for value in node.values() for page in nav_pages(value)]
    return []


def test_figure_markers_are_closed_and_named():
    known = figure_names()
    problems, used = [], set()
    for path in marked_files():
        label = path.relative_to(ROOT).as_posix()
        names, file_problems = markers(path.read_text(encoding="utf-8"), label)
        problems += file_problems
        problems += [f"{label}: unknown figure {name!r} (known: {sorted(known)})"
                     for name in names if name not in known]
        used.update(names)
    assert not problems, "\n".join(problems)
    unused = sorted(known - used)
    assert not unused, f"figures that no page of README.md or docs/ marks: {unused}"


def test_marker_check_catches_mistakes():
    names, problems = markers("<!-- figures: speed -->\n<!-- /figures -->\n\n<!-- figures: memory -->\n"
                              "text <!-- /figures -->\n<!-- /figures -->\n<!-- figures: threads -->\n", "page.md")
    assert names == ["speed", "memory", "threads"]
    assert [p.split(":")[1] for p in problems] == ["5", "6", "7"], problems  # not alone, closes nothing, not closed


def test_nav_and_pages_agree():
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    listed = nav_pages(config["nav"])
    assert len(listed) == len(set(listed)), f"pages listed twice in the nav: {listed}"
    missing = [page for page in listed if not (DOCS / page).is_file()]
    assert not missing, f"nav entries with no page under docs/: {missing}"
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    unlisted = sorted(pages - set(listed) - NOT_IN_NAV)
    assert not unlisted, f"pages under docs/ missing from mkdocs.yml's nav (or NOT_IN_NAV): {unlisted}"


def test_site_builds_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    pytest.importorskip("mkdocstrings_handlers.python")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(CONFIG),
                             "--site-dir", str(tmp_path / "site")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "reference" / "backends" / "index.html").is_file()
