#!/usr/bin/env python3
"""Checks that the repository's pointers into its own docs lead somewhere:

- every relative link in its Markdown: the file it names exists, and its
  `#anchor`, if any, is a heading of that file as GitHub renders it (links
  to other sites are left alone: CI cannot reach them);
- every section named in prose or a comment anywhere in the repository as
  `docs/FILE.md, "Section"`, `README, "Settings"` or, unquoted, as the
  whole of a parenthesis, `(docs/contract.md, Trust)`, on one line or
  wrapped onto the next: that file has a
  heading, or a paragraph led by a bold phrase (`**Licences.**`), starting
  with those words (a renamed section otherwise leaves code comments
  pointing at nothing).

Exits non-zero, naming each broken pointer by file and line.

Usage: scripts/check-doc-links.py [FILE ...]   (default: every tracked file)
"""

import bisect
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent

# [text](target) and ![alt](target); the target ends at a space (a title
# follows) or the closing parenthesis.
LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
# A paragraph or list item led by a bold phrase: **Licences.** ...
BOLD_LEAD = re.compile(r"^\s*(?:[-*]\s+)?\*\*([^*]+)\*\*")
CODE_SPAN = re.compile(r"(`+).*?\1")
# docs/bench.md, "Workers" / README, "Settings" (a comma or colon or nothing
# between the file and the quoted name; either may be wrapped onto the next
# line, which `joined_lines` undoes).
SECTION_NAMED = re.compile(r"((?:docs/)?[A-Za-z-]+\.md|README)[,:]?\s+\"([^\"]{1,160})\"")
# The same unquoted, as the whole of a parenthesis: (docs/contract.md, Trust).
SECTION_IN_PARENTHESES = re.compile(r"\(((?:docs/)?[A-Za-z-]+\.md|README),\s+([A-Z][^()\"`]{0,80}?)\)")
# What leads a wrapped line of a comment or a quote: `///`, `//!`, `//`,
# `#`, `--`, `*`, `>`.
LINE_LEAD = re.compile(r"^\s*(?:/{2,3}!?|#+|--|\*|>)?\s*")
FENCE = re.compile(r"^\s*(```|~~~)")


def prose_lines(path):
    """(line number, text) of each line outside fenced code blocks."""
    fenced = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = FENCE.match(line)
        if fence:
            if fenced is None:
                fenced = fence.group(1)
            elif fence.group(1) == fenced:
                fenced = None
            continue
        if fenced is None:
            yield number, line


def slug(heading):
    """GitHub's anchor for a heading: its text without markup, lower case,
    punctuation and symbols dropped (letters, digits, `_`, `-` and spaces
    stay), each space a hyphen."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
    text = text.replace("`", "").replace("*", "")
    text = "".join(c for c in text.lower() if c.isalnum() or c in "_- ")
    return text.replace(" ", "-")


def headings(path):
    """The text of each of `path`'s headings, as written."""
    for _, line in prose_lines(path):
        match = HEADING.match(line)
        if match:
            yield match.group(2)


def section_names(path):
    """`path`'s headings and the bold phrases that lead its paragraphs."""
    for _, line in prose_lines(path):
        match = HEADING.match(line) or BOLD_LEAD.match(line)
        if match:
            yield match.group(match.lastindex)


def anchors(path):
    """Every anchor GitHub makes for `path`'s headings (a repeated heading
    gets -1, -2, ...)."""
    seen = {}
    found = set()
    for heading in headings(path):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def paragraphs(path):
    """(first line number, text) of each run of non-blank prose lines of
    `path`, its lines joined by spaces: a link's text wraps onto the next
    line as often as not, `[1,000 in flight, accounted\nagain](#…)`."""
    lines = []
    for number, line in prose_lines(path):
        if lines and (not line.strip() or number != lines[-1][0] + 1):
            yield lines[0][0], " ".join(text for _, text in lines)
            lines = []
        if line.strip():
            lines.append((number, line))
    if lines:
        yield lines[0][0], " ".join(text for _, text in lines)


def relative_links(path):
    """(line, target) of each link in `path` to a file of the repository
    (http:, https:, mailto: and the like are not checked offline); the line
    is where the link's paragraph starts."""
    for number, text in paragraphs(path):
        for match in LINK.finditer(CODE_SPAN.sub("", text)):
            target = match.group(1)
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
                yield number, target


def broken_links(links, path, anchor_cache):
    """(line, target, why) for each of `links` (in `path`) that leads nowhere."""
    for number, target in links:
        file_part, _, anchor = target.partition("#")
        linked = path if not file_part else (path.parent / unquote(file_part))
        if not linked.exists():
            yield number, target, "no such file"
            continue
        if anchor and linked.suffix == ".md":
            if linked not in anchor_cache:
                anchor_cache[linked] = anchors(linked)
            if unquote(anchor).lower() not in anchor_cache[linked]:
                yield number, target, "no such heading"


def joined_lines(text):
    """`text`'s lines without their comment or quote leaders, joined by
    spaces, so that a pointer wrapped onto the next line reads as one; and
    the offset at which each line starts in the joined text."""
    joined = []
    starts = []
    offset = 0
    for line in text.splitlines():
        kept = LINE_LEAD.sub("", line, count=1)
        starts.append(offset)
        joined.append(kept)
        offset += len(kept) + 1
    return " ".join(joined), starts


def named_sections(path):
    """(line, file name, section, whether the file has it) for each section
    of one of the repository's docs that `path` names."""
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, IsADirectoryError):
        return  # not text
    joined, starts = joined_lines(text)
    matches = [*SECTION_NAMED.finditer(joined), *SECTION_IN_PARENTHESES.finditer(joined)]
    for match in sorted(matches, key=lambda match: match.start()):
        number = bisect.bisect_right(starts, match.start())
        name, section = match.groups()
        named = ROOT / ("README.md" if name == "README" else name)
        if not named.exists() and not name.startswith("docs/"):
            named = ROOT / "docs" / name
        if not named.exists():
            continue  # not one of ours (SPEC.md and the like live elsewhere)
        wanted = section.replace("`", "").lower()
        found = any(h.replace("`", "").lower().startswith(wanted) for h in section_names(named))
        yield number, name, section, found


def main(argv):
    """Checks `argv`'s files, or every tracked file; 1 if any pointer is broken."""
    if argv:
        files = [Path(name).resolve() for name in argv]
    else:
        listed = subprocess.run(
            ["git", "ls-files"], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout.split()
        files = [ROOT / name for name in listed]
    anchor_cache = {}
    failures = 0
    links_checked = 0
    sections_checked = 0
    for path in files:
        where = path.relative_to(ROOT)
        if path.suffix == ".md":
            links = list(relative_links(path))
            links_checked += len(links)
            for number, target, why in broken_links(links, path, anchor_cache):
                print(f"{where}:{number}: ({target}): {why}")
                failures += 1
        for number, name, section, found in named_sections(path):
            sections_checked += 1
            if not found:
                print(f'{where}:{number}: {name}, "{section}": no such section')
                failures += 1
    summary = f"{links_checked} relative links and {sections_checked} named sections in {len(files)} files"
    if failures:
        print(f"{failures} pointers lead nowhere, of {summary}")
        return 1
    print(f"all {summary} lead somewhere")
    return 0



if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
