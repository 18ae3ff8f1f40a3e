"""The docs a reader of the code is sent to exist, and say what the citations promise.

* Every citation ``docs/<name>.md §N`` (or ``§N.M``, or a list such as ``§1, §3-§5``) in the code
  (``monitor/``, ``producers/``, ``consumers/``, ``benchmarks/``), in ``docs/*.md`` and in the
  README names a doc that exists and a heading ``## N.`` (``### N.M``) in it; a bare
  ``docs/<name>.md`` names a doc that exists.
* No module cites the research notes the repository does not hold (``risk-models.md sN``,
  ``exchange-feeds.md sN``, ``risk-models §N``): those became ``docs/risk-models.md`` and
  ``docs/venues.md``, with the same section numbers.
* Every relative link of ``docs/*.md`` and the README (``[text](path)``) and every path they quote
  in backticks that starts with a folder of the repository (``docs/x.md``, ``deploy/...``,
  ``tests/...``) exists.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CODE_DIRS = ("monitor", "producers", "consumers", "benchmarks")
DOCS = ROOT / "docs"
REPO_FOLDERS = (
    "docs", "deploy", "tests", "monitor", "producers", "consumers", "benchmarks", ".ci",
)  # fmt: skip

# ``docs/<name>.md`` and, right after it, a run of section references: ``§2``, ``§6.1``,
# ``§1, §3-§5``, ``§1 and §2``.
CITATION = re.compile(
    r"docs/(?P<doc>[A-Za-z0-9_-]+)\.md"
    r"(?P<refs>[ \t]+§\d+(?:\.\d+)?(?:[ \t]*(?:,|-|\u2013|and|to)[ \t]*§\d+(?:\.\d+)?)*)?"
)
REF = re.compile(r"§(\d+)(?:\.(\d+))?")
RANGE = re.compile(r"§(\d+)(?:\.(\d+))?[ \t]*[-\u2013][ \t]*§(\d+)(?:\.(\d+))?")
# The research notes' names, anywhere except as ``docs/risk-models.md``.
OLD_FORM = re.compile(r"(?<!docs/)\b(?:risk-models|exchange-feeds)\b(?:\.md)?")
MD_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
BACKTICK = re.compile(r"`([^`\n]+)`")
PLACEHOLDER = re.compile(r"[<>*{}\[\]$ ]|\.\.\.")


def code_files() -> Iterator[Path]:
    for d in CODE_DIRS:
        yield from sorted(
            p
            for p in (ROOT / d).rglob("*.py")
            if "__pycache__" not in p.parts and not any(x.startswith(".") for x in p.parts)
        )


def doc_files() -> list[Path]:
    return [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]


def headings(doc: Path) -> set[str]:
    """``"2"`` for ``## 2. ...``, ``"2.3"`` for ``### 2.3 ...``."""
    out = set()
    for line in doc.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^## (\d+)\.(?:\s|$)", line) or re.match(r"^### (\d+\.\d+)\.?(?:\s|$)", line)
        if m:
            out.add(m.group(1))
    return out


def sections_cited(refs: str) -> list[str]:
    """Every section a run of references names, ranges expanded: ``§3-§5`` -> 3, 4, 5;
    ``§6.1-§6.3`` -> 6.1, 6.2, 6.3."""
    out = [f"{a}.{b}" if b else a for a, b in REF.findall(refs)]
    for a, am, b, bm in RANGE.findall(refs):
        if not am and not bm:
            out += [str(k) for k in range(int(a), int(b) + 1)]
        elif am and bm and a == b:
            out += [f"{a}.{k}" for k in range(int(am), int(bm) + 1)]
    return list(dict.fromkeys(out))


def citation_problems(text: str, where: str, docs_dir: Path = DOCS) -> list[str]:
    """What is wrong with the ``docs/<name>.md §N`` citations of ``text``."""
    problems = []
    cache: dict[Path, set[str]] = {}
    for m in CITATION.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        doc = docs_dir / f"{m['doc']}.md"
        if not doc.is_file():
            problems.append(f"{where}:{line}: docs/{m['doc']}.md does not exist")
            continue
        if doc not in cache:
            cache[doc] = headings(doc)
        for sec in sections_cited(m["refs"] or ""):
            if sec not in cache[doc]:
                kind = "##" if "." not in sec else "###"
                problems.append(f"{where}:{line}: docs/{m['doc']}.md has no '{kind} {sec}' heading")
    return problems


def old_citations(text: str, where: str) -> list[str]:
    return [
        f"{where}:{text.count(chr(10), 0, m.start()) + 1}: {text[m.start() : m.end() + 4]!r}"
        for m in OLD_FORM.finditer(text)
    ]


def path_problems(text: str, md: Path, root: Path = ROOT) -> list[str]:
    """Relative links and quoted repository paths of one Markdown file that do not exist."""
    problems = []
    for m in MD_LINK.finditer(text):
        target = m.group(1).split("#", 1)[0]
        if not target or re.match(r"^[a-z][a-z0-9+.-]*:", target):  # anchor only, or a URL
            continue
        if not (md.parent / target).exists():
            problems.append(f"{md.name}: link ({m.group(1)}) does not exist")
    for m in BACKTICK.finditer(text):
        raw = m.group(1).strip()
        token = raw.rstrip(".,:;")
        if (
            "/" not in token
            or token.split("/", 1)[0] not in REPO_FOLDERS
            or PLACEHOLDER.search(raw)
        ):
            continue
        if not (root / token).exists():
            problems.append(f"{md.name}: `{token}` does not exist")
    return problems


# ---- the checks ----------------------------------------------------------------------------------


def test_every_docs_citation_in_the_code_names_an_existing_doc_and_section() -> None:
    problems, found = [], 0
    for path in code_files():
        text = path.read_text(encoding="utf-8")
        found += len(CITATION.findall(text))
        problems += citation_problems(text, str(path.relative_to(ROOT)))
    assert found > 0, "no docs/<name>.md citation found in the code: the scan is broken"
    assert not problems, "\n".join(problems)


def test_every_section_citation_in_the_docs_and_readme_exists() -> None:
    problems = []
    for md in doc_files():
        problems += citation_problems(md.read_text(encoding="utf-8"), md.name)
    assert not problems, "\n".join(problems)


def test_no_module_cites_the_research_notes_the_repository_does_not_hold() -> None:
    problems = []
    for path in code_files():
        problems += old_citations(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert not problems, (
        f"{len(problems)} citation(s) of risk-models.md / exchange-feeds.md: cite "
        "docs/risk-models.md §N or docs/venues.md §N instead\n" + "\n".join(problems)
    )


@pytest.mark.parametrize("md", doc_files(), ids=lambda p: p.name)
def test_paths_linked_from_the_docs_exist(md: Path) -> None:
    problems = path_problems(md.read_text(encoding="utf-8"), md)
    assert not problems, "\n".join(problems)


def test_the_docs_number_their_sections_as_the_citations_expect() -> None:
    """The two docs that replace the research notes keep the notes' numbering."""
    assert {str(k) for k in range(1, 9)} <= headings(DOCS / "risk-models.md")
    assert {str(k) for k in range(1, 11)} | {"13"} <= headings(DOCS / "venues.md")


# ---- the checkers themselves catch what they are for -------------------------------------------


def test_the_checkers_flag_what_they_must(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("# Notes\n\n## 1. One\n\n### 1.2 Sub\n\n## 3. Three\n")
    good = "see docs/notes.md §1, §1.2 and docs/notes.md §3; docs/notes.md as a whole"
    assert citation_problems(good, "x", tmp_path) == []
    bad = "docs/notes.md §2\ndocs/notes.md §1-§3\ndocs/notes.md §1.3\ndocs/gone.md §1"
    assert citation_problems(bad, "x", tmp_path) == [
        "x:1: docs/notes.md has no '## 2' heading",
        "x:2: docs/notes.md has no '## 2' heading",
        "x:3: docs/notes.md has no '### 1.3' heading",
        "x:4: docs/gone.md does not exist",
    ]
    assert sections_cited("§1, §3-§5") == ["1", "3", "5", "4"]
    assert old_citations(
        "(risk-models.md s2) docs/risk-models.md §2 exchange-feeds.md s1", "m"
    ) == [
        "m:1: 'risk-models.md s2)'",
        "m:1: 'exchange-feeds.md s1'",
    ]
    assert len(old_citations("risk-models §6 and exchange-feeds.md sections 1 and 2", "m")) == 2
    md = tmp_path / "page.md"
    (tmp_path / "there.md").write_text("")
    text = "[a](there.md) [b](gone.md#x) [c](https://example.com) [d](#local) `docs/nope.md`"
    assert path_problems(text, md, tmp_path) == [
        "page.md: link (gone.md#x) does not exist",
        "page.md: `docs/nope.md` does not exist",
    ]
    assert path_problems("`tests/producers/<venue>/documented/` `deploy/...`", md, tmp_path) == []
