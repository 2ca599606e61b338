"""The documentation: the mkdocs site builds strictly, the README stays the short front door, and
every relative link of the README and of ``docs/`` points to a file that exists."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
README = REPO / "README.md"
README_MAX_LINES = 250

# [text](target) or ![alt](target "title"); reference definitions "[id]: target".
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^)]*[\"'])?\s*\)")
REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
FENCE = re.compile(r"^(\s*)(```|~~~).*?^\1\2\s*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1", re.DOTALL)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def prose(text: str) -> str:
    """The text without fenced code blocks and code spans (their brackets are no links)."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def relative_links(path: Path) -> list[str]:
    text = prose(path.read_text(encoding="utf-8"))
    targets = INLINE_LINK.findall(text) + REFERENCE_DEF.findall(text)
    return [t for t in targets if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", t) and not t.startswith("//")]


def heading_anchors(path: Path) -> set[str]:
    """The ids Python-Markdown's toc (and GitHub) give the headings of a Markdown file."""
    from markdown.extensions.toc import slugify

    anchors = set()
    for title in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title).replace("`", "").replace("*", "")
        anchors.add(slugify(title, "-"))
    return anchors


def test_the_site_builds_strictly(tmp_path):
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(REPO / "mkdocs.yml"),
         "--site-dir", str(site)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, (build.stdout + build.stderr)[-5000:]
    for page in ("index.html", "scan/index.html", "dedoppler/index.html", "api/dedoppler/index.html"):
        assert (site / page).is_file(), f"{page} is missing from the built site"
    # The API page holds the package and its modules, rendered from the docstrings.
    api = (site / "api/dedoppler/index.html").read_text(encoding="utf-8")
    assert 'id="tfseti.dedoppler"' in api
    assert len(set(re.findall(r'id="(tfseti\.dedoppler\.[a-z_]+)"', api))) >= 3, "no submodules documented"
    # Scan guide: the walk-through's list holds its code block and table (4-space indentation).
    scan = (site / "scan/index.html").read_text(encoding="utf-8")
    assert "<table>" in scan and "--cadence-list" in scan


def test_the_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines (at most {README_MAX_LINES})"
    text = "\n".join(lines)
    assert "## Two commands" in text and "make test" in text and "make demo" in text


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_point_to_files_that_exist(path):
    missing = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        file_part = file_part.split("?")[0]
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists():
            missing.append(f"{target} (no {resolved})")
        elif anchor and path == README and resolved.suffix == ".md":
            # The site's own build checks the anchors between its pages; the README's are checked here.
            if anchor not in heading_anchors(resolved):
                missing.append(f"{target} (no heading #{anchor} in {resolved.name})")
    assert not missing, f"{path.relative_to(REPO)}: broken relative links: {missing}"

