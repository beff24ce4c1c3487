"""The README and docs/ are promises: every relative link resolves (anchors included), every
`tuner` command they show parses with today's CLI (commands, flags, a task's data flags),
every Python block compiles and calls only the API `tuner` exports, and every search space
they show is valid for a task. Blocks are fenced by language: shell (no language), python,
yaml, or text for output shown."""

from __future__ import annotations

import ast
import os
import re
import shlex
import sys
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
            sources += python_sources_in(code)
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
def test_every_tuner_command_shown_parses(doc, workdir):
    from tuner.cli.main import build_parser
    from tuner.errors import UsageError

    for language, code in blocks(doc):  # the modules a page writes (its --task files)
        if language == "":
            write_heredoc_files(code)
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


# ---------------------------------------------------------------- the README and docs/, run

BUDGET = {"TUNER_MAX_TRIALS": "2", "TUNER_MAX_EPOCHS": "1", "TUNER_MAX_BATCHES": "2"}
# pages whose blocks need no second trial (no ensemble): one trial each shows them working
ONE_TRIAL = {"tasks.md"}
SERVES = {
    "ui",
    "storage-proxy",
}  # run until stopped: tests/cli/test_ui.py, tests/storage/test_proxy.py run them
NOT_RUN_HERE = ("git clone", "make test")  # CI runs them (.ci/run); this test is in the second
SHOWN = {  # what a command's output must hold: the names and forms the README shows
    "best": "val_mae|no complete trial meeting",
    "trials": "COMPLETE",
    "report": "report.html",
    "compare": "best_value",
    "ensemble": r"-ensemble/\d+( \(alias|, not aliased @best)",
    "finetune": "before -> after fine-tuning",
    "predict": r"y_hat|label|transcript|output|wrote \d+ rows to",  # charlm: the prompt
    "export": r"registered as models:/\S+-(onnx|int8)/\d+",
}


def own_data(folder: Path) -> None:
    """The files the README's "Your own data" and API blocks name, made small."""
    import numpy as np
    import pandas as pd

    shipped = REPO / "tasks" / "data"
    (folder / "tasks").symlink_to(REPO / "tasks")  # the README's paths are the repo's
    (folder / "my.csv").write_bytes((shipped / "air_passengers.csv").read_bytes())
    (folder / "newer.csv").write_bytes((shipped / "us_macro.csv").read_bytes())
    (folder / "book.txt").write_text((shipped / "tinyshakespeare.txt").read_text()[:60_000])
    rng, rows = np.random.default_rng(0), []
    for k in range(60):
        label, t = ["sine", "square", "saw"][k % 3], np.arange(rng.integers(20, 30))
        wave = {"sine": np.sin(t / 3), "square": np.sign(np.sin(t / 3)), "saw": (t % 6) / 3 - 1}
        noisy = wave[label] + rng.normal(0, 0.1, len(t))
        rows += [(k, s, x, label) for s, x in zip(t, noisy, strict=True)]
    pd.DataFrame(rows, columns=["sequence_id", "step", "x", "label"]).to_csv(
        folder / "sequences.csv", index=False
    )
    speech = sorted((shipped / "speech" / "fsdd").glob("*.wav"))[:60]
    pd.DataFrame(
        {"path": [str(p) for p in speech], "transcript": [p.name[0] for p in speech]}
    ).to_csv(folder / "manifest.csv", index=False)


def run_command(command: str, capsys: pytest.CaptureFixture) -> str:
    """One shell command of a block: tuner's in this process, `make demo` as its recipe.
    Returns the tuner command run ("" for one not run here)."""
    from tuner.cli import main

    if command.startswith(NOT_RUN_HERE):
        return ""
    if command == "make demo":
        recipe = re.search(r"^demo:.*\n\t(.+)$", (REPO / "Makefile").read_text(), re.M)[1]
        command = recipe.replace("$(VENV)/bin/", "").replace("$(DEMO_TRIALS)", "30")
    if command.startswith(("python - <<", "cat > ")):
        return ""  # its heredoc body is run as a Python block, or written as a file
    argv = shlex.split(command)
    assert Path(argv[0]).name == "tuner", f"not run by the docs test: {command}"
    if argv[1] in SERVES:
        return ""
    assert main(argv[1:]) == 0, f"{command}: {capsys.readouterr().err[-1500:]}"
    out = capsys.readouterr().out
    form = SHOWN.get(argv[1], "")
    if "--prompt" in argv:  # charlm prints the prompt and what follows it
        form = re.escape(argv[argv.index("--prompt") + 1])
    assert re.search(form, out), f"{command} printed:\n{out[-1500:]}"
    return argv[1]


NO_RUN = re.compile(r"<!-- no-run: (.+?) -->\n```")


def marked(doc: Path) -> int:
    """How many blocks carry a visible no-run marker (the line before the fence)."""
    return len(NO_RUN.findall(doc.read_text()))


def runnable(doc: Path) -> list[tuple[str, str]]:
    """The doc's shell and Python blocks, in order, but those marked `no-run: reason`."""
    text = doc.read_text()
    return [
        (match[1], match[2])
        for match in BLOCK.finditer(text)
        if match[1] in ("", "python")
        and not re.search(r"<!-- no-run: .+? -->\n$", text[: match.start()])
    ]


def write_heredoc_files(code: str) -> None:
    """`cat > FILE <<'END' ... END` in a block writes FILE, as the shell would."""
    for name, _, body in re.findall(r"cat > (\S+) <<'(\w+)'\n(.*?)^\2$", code, re.S | re.M):
        Path(name).write_text(body)


def run_doc(doc: Path, capsys: pytest.CaptureFixture) -> tuple[list[str], int]:
    """Every runnable block of `doc` in order: its tuner commands and its Python."""
    import mlflow

    ran, sources = [], 0
    try:
        for language, code in runnable(doc):
            if language == "":
                write_heredoc_files(code)
                ran += [run_command(command, capsys) for command in shell_commands(code)]
            for source in [code] if language == "python" else python_sources_in(code):
                sys.path.insert(0, os.getcwd())  # as `python -` has it: the blocks import
                try:  # the modules the page wrote beside them
                    exec(compile(source, f"{doc.name} block", "exec"), {"__name__": "__docs__"})
                finally:
                    sys.path.remove(os.getcwd())
                sources += 1
    finally:
        mlflow.set_tracking_uri(None)
    return ran, sources


@pytest.fixture
def project(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's project folder under the caps (torch's threads: conftest.pytest_configure)."""
    for name, value in BUDGET.items():
        monkeypatch.setenv(name, value)
    own_data(workdir)
    return workdir


def test_every_block_runs_or_says_why_not(project, capsys, monkeypatch):
    """Every shell and Python block of the README, then of each docs/ page, in order, in one
    project folder (the pages continue the README's story: its demo study, its files), on
    demo data and small files of the names they show, under TUNER_MAX_TRIALS / _EPOCHS."""
    readme = REPO / "README.md"
    ran, sources = run_doc(readme, capsys)
    verbs = {"search", "best", "trials", "ensemble", "finetune", "predict", "lineage", "report"}
    assert verbs | {"compare"} <= set(ran) and sources == len(python_sources(readme)) == 2
    assert "unique_id" in capsys.readouterr().out  # the pyfunc block's table
    assert marked(readme) == 0
    for doc in sorted((REPO / "docs").glob("*.md")):
        shown = [block for block in blocks(doc) if block[0] in ("", "python")]
        assert len(runnable(doc)) + marked(doc) == len(shown), doc.name  # run, or say why not
        monkeypatch.setenv("TUNER_MAX_TRIALS", "1" if doc.name in ONE_TRIAL else "2")
        ran, sources = run_doc(doc, capsys)
        assert any(ran) or sources or not runnable(doc), doc.name


def python_sources_in(code: str) -> list[str]:
    return re.findall(r"python - <<'PY'\n(.*?)^PY$", code, re.S | re.M)


def test_every_result_says_when_and_which_script_measured_it():
    """RESULTS.md holds current figures only, each written by a committed script: every
    section's stamp names its day and a command that runs one of benchmarks/'s modules."""
    results = (REPO / "benchmarks" / "RESULTS.md").read_text()
    sections = re.split(r"^## ", results, flags=re.M)[1:]
    assert len(sections) >= 7
    for section in sections:
        stamp = re.search(r"^_Measured (\d{4}-\d\d-\d\d) by `([^`]+)`\._$", section, re.M)
        assert stamp, section.splitlines()[0]
        module = re.search(r"benchmarks\.(\w+)", stamp[2])
        assert module and (REPO / "benchmarks" / f"{module[1]}.py").exists(), stamp[2]
