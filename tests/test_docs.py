"""The README and docs/ are promises: every relative link resolves (anchors included), every
`tuner` command they show parses with today's CLI (commands, flags, a task's data flags),
every Python block compiles and calls only the API `tuner` exports, and every search space
they show is valid for a task. Blocks are fenced by language: shell (no language), python,
yaml, or text for output shown."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

DOCS = [
    REPO / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
    REPO / "benchmarks" / "README.md",
]
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"\]\(([^)\s]+)\)")
LANGUAGES = {"", "python", "yaml", "text"}


def blocks(doc: Path) -> list[tuple[str, str]]:
    return BLOCK.findall(doc.read_text())


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    text = BLOCK.sub("", doc.read_text())
    return {slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def shell_commands(code: str) -> list[str]:
    """The block's commands, continuation lines joined, comments and heredoc bodies left out."""
    joined = re.sub(r"\\\n\s*", " ", code)
    commands, heredoc = [], None
    for line in joined.splitlines():
        if heredoc is not None:
            heredoc = None if line.strip() == heredoc else heredoc
            continue
        opens = re.search(r"<<'?(\w+)'?", line)
        if opens:
            heredoc = opens[1]
        commands.append(line.split(" #")[0].strip())
    return [command for command in commands if command and not command.startswith("#")]


def tuner_argvs(doc: Path) -> list[tuple[str, list[str]]]:
    found = []
    for language, code in blocks(doc):
        if language:
            continue
        for command in shell_commands(code):
            words = shlex.split(command.rstrip(" &"))
            while words and "=" in words[0] and not words[0].startswith("-"):
                words = words[1:]  # VAR=value before the command
            if words and Path(words[0]).name == "tuner":
                found.append((command, words[1:]))
    return found


def python_sources(doc: Path) -> list[str]:
    sources = [code for language, code in blocks(doc) if language == "python"]
    for language, code in blocks(doc):
        if not language:
            sources += re.findall(r"python - <<'PY'\n(.*?)^PY$", code, re.S | re.M)
    return sources


def test_the_docs_are_fenced_by_language():
    for doc in DOCS:
        languages = {language for language, _ in blocks(doc)}
        assert languages <= LANGUAGES, (doc.name, languages - LANGUAGES)


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: doc.relative_to(REPO).as_posix())
def test_relative_links_resolve(doc):
    broken = []
    for target in LINK.findall(BLOCK.sub("", doc.read_text())):
        if re.match(r"[a-z]+:", target):
            continue  # http://, mailto: ...
        path, _, anchor = target.partition("#")
        linked = (doc.parent / path).resolve() if path else doc
        if not linked.exists():
            broken.append(target)
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(target)
    assert broken == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: doc.relative_to(REPO).as_posix())
def test_every_tuner_command_shown_parses(doc):
    from tuner.cli.main import build_parser
    from tuner.errors import UsageError

    refused = []
    for command, argv in tuner_argvs(doc):
        try:
            build_parser(argv).parse_args(argv)
        except UsageError as exc:  # an unknown command or flag, a value out of range
            refused.append(f"{command}: {exc}")
    assert refused == []


def test_the_docs_show_the_commands_users_run():
    """The parse test reads what it should: the README's main commands are found."""
    shown = {argv[0] for doc in DOCS for _, argv in tuner_argvs(doc) if argv}
    assert {"search", "best", "trials", "ensemble", "finetune", "predict", "ui"} <= shown


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: doc.relative_to(REPO).as_posix())
def test_python_blocks_compile_and_call_only_the_exported_api(doc):
    import tuner

    for source in python_sources(doc):
        tree = ast.parse(source)
        used = {
            node.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "tuner"
        }
        assert used <= set(tuner.__all__), used - set(tuner.__all__)


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: doc.relative_to(REPO).as_posix())
def test_search_spaces_shown_are_valid_for_a_task(doc):
    from tuner.config.space_file import parse_space
    from tuner.errors import SpaceError
    from tuner.tasks import TASKS, get_spec

    for language, code in blocks(doc):
        raw = yaml.safe_load(code) if language == "yaml" else None
        if not isinstance(raw, dict) or not {"params", "fixed"} & set(raw):
            continue
        problems = []
        for task in TASKS:
            try:
                parse_space(raw, get_spec(task), f"{doc.name} block")
                break
            except SpaceError as exc:
                problems.append(str(exc))
        else:
            pytest.fail(f"{doc.name}: a space no task accepts: {problems}")
