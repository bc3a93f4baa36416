"""Relative links in README.md and docs/*.md lead somewhere: an existing file, and an existing heading."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def _prose(text: str) -> list[str]:
    """The lines of a Markdown text outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def _relative_links(document: Path) -> list[str]:
    """Every link target in the prose of ``document`` that is not a URL with a scheme (http:, mailto:, ...)."""
    targets = []
    for line in _prose(document.read_text()):
        for target in _LINK.findall(_CODE_SPAN.sub("``", line)):
            if not _SCHEME.match(target):
                targets.append(target)
    return targets


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: links reduced to their text, lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(document: Path) -> set[str]:
    """The anchors GitHub gives the headings of ``document``, with ``-1``, ``-2``... for repeated ones."""
    seen: dict[str, int] = {}
    found = set()
    for line in _prose(document.read_text()):
        match = _HEADING.match(line)
        if match:
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def _name(document: Path) -> str:
    return str(document.relative_to(ROOT))


def test_slug_follows_githubs_rules() -> None:
    """A heading with code, punctuation and a link gets the anchor GitHub would give it."""
    assert slug("The same check on a live deployment: `venus canary`") == (
        "the-same-check-on-a-live-deployment-venus-canary")
    assert slug("What lands in [Kafka](https://kafka.apache.org), v1.2") == "what-lands-in-kafka-v12"
    assert slug("max_events_per_batch and TLS/mTLS") == "max_events_per_batch-and-tlsmtls"


@pytest.mark.parametrize("document", DOCUMENTS, ids=_name)
def test_every_relative_link_points_at_an_existing_file(document: Path) -> None:
    """Each relative link of the document names a file or folder of the repository."""
    missing = [target for target in _relative_links(document)
               if (path := target.split("#", 1)[0]) and not (document.parent / unquote(path)).exists()]
    assert missing == [], f"{_name(document)} links to missing files: {missing}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=_name)
def test_every_anchor_names_a_heading_of_its_file(document: Path) -> None:
    """Each ``#anchor`` and ``file.md#anchor`` link of the document names a heading that file has."""
    broken = []
    for target in _relative_links(document):
        path, _, anchor = target.partition("#")
        linked = (document.parent / unquote(path)) if path else document
        if anchor and linked.suffix == ".md" and linked.is_file() and unquote(anchor) not in anchors(linked):
            broken.append(target)
    assert broken == [], f"{_name(document)} links to headings that do not exist: {broken}"


def test_readme_links_every_docs_page() -> None:
    """Every page in docs/ is reachable from the README."""
    linked = {(ROOT / target.split("#", 1)[0]).resolve() for target in _relative_links(ROOT / "README.md")}
    assert [_name(page) for page in DOCUMENTS[1:] if page.resolve() not in linked] == []
