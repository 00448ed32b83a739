"""The documentation runs: every code example in README.md and docs/ is executed, every
flag and config key it names exists, and the site builds in strict mode.

How the examples run (also in docs/development.md, "Writing docs"):

* Fenced ``bash`` and ``python`` blocks run page by page, in the page's order, in a fresh
  temporary folder per page.  The folder starts with one entry, ``examples``, a link to
  the repository's ``examples/``; a page makes the data it needs (usually with
  ``abkit simulate``), so every page can be followed on its own.
* ``bash`` blocks run with ``bash -euo pipefail`` in a subprocess; each ``python`` block
  runs in this interpreter with a fresh namespace and the page's folder as working
  directory (abkit is imported once, which keeps the test fast).  Both use this
  interpreter's environment (its ``abkit``).
* ``<!-- file: NAME -->`` right before a block writes the block's text to NAME in the
  page's folder instead of running it (a config shown on the page is the one used).
* ``<!-- no-run: REASON -->`` right before a block keeps it from running; the reason is
  required, and a test fails on a marker without one.
* ``<!-- output -->`` right before a ``text`` block: the block is output shown on the page;
  every line of it (up to a trailing "…"; runs of spaces count as one) must appear in the
  standard output of the page's previous block, so pasted output cannot go stale.
* ``toml`` blocks (unless marked ``no-run``) are read with ``abkit.load_config``, so
  every key shown exists.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import re
import shlex
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
RUN = ("bash", "python")
BLOCK_TIMEOUT = 180
MARKER = re.compile(r"^<!--\s*(no-run|file|output)\s*:?(.*?)-->\s*$", re.S)
ANY_MARKER = re.compile(r"<!--\s*(no-run|file|output)\b")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    marker: str | None  # "no-run", "file" or "output"
    argument: str  # the reason or the file name

    def where(self) -> str:
        page = self.page.relative_to(ROOT) if self.page.is_absolute() else self.page
        return f"{page}:{self.line}"


def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("table")


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of a page with the marker comment right before each."""
    return _blocks_of(page.read_text(encoding="utf-8"), page)


def _blocks_of(text: str, page: Path) -> list[Block]:
    tokens = _markdown().parse(text)
    found: list[Block] = []
    previous = None
    for token in tokens:
        if token.type == "fence":
            lang = token.info.strip().split(" ")[0].lower()
            marker, argument = None, ""
            if previous is not None and previous.type == "html_block":
                m = MARKER.match(previous.content.strip())
                if m:
                    marker, argument = m.group(1), m.group(2).strip()
            line = token.map[0] + 1 if token.map else 0
            found.append(Block(page, line, lang, token.content, marker, argument))
        previous = token
    return found


def inline_code(page: Path) -> list[str]:
    """Every inline code span of a page."""
    spans: list[str] = []
    for token in _markdown().parse(page.read_text(encoding="utf-8")):
        if token.type == "inline" and token.children:
            spans += [c.content for c in token.children if c.type == "code_inline"]
    return spans


def _page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


RUNNABLE_PAGES = [
    p for p in PAGES if any(b.lang in RUN and b.marker != "no-run" for b in blocks(p))
]


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env["MPLBACKEND"] = "Agg"
    env["NO_COLOR"] = "1"
    env.pop("PYTHONPATH", None)
    return env


def _run_python(block: Block, folder: Path) -> str:
    """A python block in this interpreter, in a fresh namespace, with the page's folder
    as the working directory (abkit and its dependencies are imported once for all
    blocks, which keeps the docs test fast)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    printed = io.StringIO()
    here = os.getcwd()
    os.chdir(folder)
    try:
        code = compile(block.code, block.where(), "exec")
        with contextlib.redirect_stdout(printed):
            exec(code, {"__name__": "__main__"})
    except Exception:
        pytest.fail(
            f"{block.where()}: the python block raised\n--- block ---\n{block.code}\n"
            f"--- traceback ---\n{traceback.format_exc()}",
            pytrace=False,
        )
    finally:
        os.chdir(here)
        plt.close("all")
    return printed.getvalue()


def _run(block: Block, folder: Path) -> str:
    if block.lang == "python":
        return _run_python(block, folder)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.code],
        cwd=folder,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        pytest.fail(
            f"{block.where()}: the bash block exited {done.returncode}\n"
            f"--- block ---\n{block.code}\n--- stdout (end) ---\n{done.stdout[-3000:]}\n"
            f"--- stderr (end) ---\n{done.stderr[-3000:]}",
            pytrace=False,
        )
    return done.stdout


def _spaces(text: str) -> str:
    """Runs of spaces as one, so that a table row shown on a page matches however wide
    the printed table's columns are."""
    return re.sub(r"[ \t]+", " ", text).strip()


@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=_page_id)
def test_page_examples_run(page: Path, tmp_path: Path) -> None:
    """The page's bash and python blocks run in order in a folder of their own."""
    run_blocks(blocks(page), tmp_path)


def run_blocks(found: list[Block], tmp_path: Path) -> None:
    """Run one page's blocks in a fresh folder that holds a link to examples/."""
    folder = tmp_path / "work"
    folder.mkdir(parents=True)
    (folder / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    printed = ""
    for block in found:
        if block.marker == "output":
            normalised = _spaces(printed)
            for line in block.code.splitlines():
                shown = _spaces(line.split("…")[0])
                if shown and shown not in normalised:
                    pytest.fail(
                        f"{block.where()}: shown output line not printed by the block "
                        f"before it: {shown!r} (if abkit's output changed on purpose, "
                        f"update the page's output block and the prose that quotes it)"
                        f"\n--- printed ---\n{printed}",
                        pytrace=False,
                    )
        elif block.marker == "file":
            target = folder / block.argument
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.code, encoding="utf-8")
        elif block.lang in RUN and block.marker != "no-run":
            printed = _run(block, folder)


def test_the_runner_checks_output_and_writes_files(tmp_path: Path) -> None:
    """A file block is written before the next block runs, and shown output that the
    block before it did not print fails."""
    page = Path("page.md")
    good = "<!-- file: a.txt -->\n```text\nx  1\n```\n\n```bash\ncat a.txt\n```\n"
    good += "\n<!-- output -->\n```text\nx 1\n```\n"
    run_blocks(_blocks_of(good, page), tmp_path / "good")
    bad = "```bash\necho hello\n```\n\n<!-- output -->\n```text\ngoodbye\n```\n"
    with pytest.raises(pytest.fail.Exception, match="goodbye"):
        run_blocks(_blocks_of(bad, page), tmp_path / "bad")


def marker_problems(text: str, where: str) -> list[str]:
    """What is wrong with the markers of one page: a no-run without a reason, a file
    without a name, an output marker before anything but a text block, or a marker that
    does not stand alone right before a fenced block (it would silently do nothing)."""
    problems: list[str] = []
    tokens = _markdown().parse(text)
    for i, token in enumerate(tokens):
        line = f"{where}:{token.map[0] + 1 if token.map else 0}"
        if token.type == "inline" and token.children:
            for child in token.children:
                if child.type == "html_inline" and ANY_MARKER.search(child.content):
                    problems.append(f"{line}: a marker inside a paragraph does nothing")
        if token.type != "html_block" or not ANY_MARKER.search(token.content):
            continue
        m = MARKER.match(token.content.strip())
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        if m is None or following is None or following.type != "fence":
            problems.append(f"{line}: a marker must stand alone right before a fence")
        elif m.group(1) != "output" and not m.group(2).strip():
            what = "a reason" if m.group(1) == "no-run" else "a file name"
            problems.append(f"{line}: <!-- {m.group(1)}: --> without {what}")
        elif m.group(1) == "output" and following.info.strip() != "text":
            problems.append(f"{line}: <!-- output --> must precede a text block")
    return problems


def test_markers_are_well_formed() -> None:
    """Every page's markers are well formed (see marker_problems)."""
    problems = [p for page in PAGES for p in marker_problems(page.read_text(), _page_id(page))]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "text",
    [
        "<!-- no-run -->\n```bash\nabkit analyze a b\n```\n",
        "<!-- no-run:   -->\n```bash\nabkit analyze a b\n```\n",
        "<!-- file: -->\n```toml\n[experiment]\n```\n",
        "<!-- no-run: slow -->\n\nSome text.\n\n```bash\nabkit analyze a b\n```\n",
        "Text <!-- no-run: slow --> in a paragraph.\n\n```bash\nabkit analyze a b\n```\n",
        "<!-- output -->\n```bash\nabkit analyze a b\n```\n",
    ],
)
def test_a_bad_marker_fails(text: str) -> None:
    """A block skipped without a reason, or a marker that would do nothing, is caught."""
    assert marker_problems(text, "page.md")


def test_a_good_marker_passes_and_skips() -> None:
    text = "<!-- no-run: needs a cluster -->\n```bash\nabkit analyze a b\n```\n"
    assert marker_problems(text, "page.md") == []
    page = Path("page.md")
    found = _blocks_of(text, page)
    assert [(b.marker, b.argument) for b in found] == [("no-run", "needs a cluster")]


def test_toml_examples_are_valid_configs() -> None:
    """Every TOML block shown is a config abkit reads (unknown keys are errors)."""
    from abkit.config import load_config

    checked = 0
    for page in PAGES:
        for b in blocks(page):
            if b.lang == "toml" and b.marker != "no-run":
                try:
                    import tomllib

                    load_config(tomllib.loads(b.code))
                except Exception as error:  # the message names the key
                    pytest.fail(f"{b.where()}: {type(error).__name__}: {error}", pytrace=False)
                checked += 1
    assert checked >= 10


# --- README -------------------------------------------------------------------------------

FIRST = (
    "pip install -e . && abkit analyze examples/ai_summary_export/assignments.parquet "
    "examples/ai_summary_export/events.parquet -c examples/ai_summary_export/experiment.toml"
)
SECOND = 'pip install -e ".[test]" && python -m pytest'


def test_readme_starts_with_the_two_commands() -> None:
    """CI runs the second verbatim; a newcomer copies the first."""
    fences = blocks(ROOT / "README.md")
    assert [b.code.strip() for b in fences[:2]] == [FIRST, SECOND]


def test_readme_first_command_runs_on_the_home_page() -> None:
    """The first command's analysis runs as the home page's example (its install step
    is what CI's own install does), so the two must stay the same command."""
    analysis = shlex.split(FIRST.split(" && ", 1)[1])
    runs = [
        shlex.split(b.code.replace("\\\n", " "))
        for b in blocks(DOCS / "index.md")
        if b.lang == "bash" and b.marker is None
    ]
    assert analysis in runs


def test_readme_links_resolve() -> None:
    """README's relative links (to the site's pages and pictures) point at files."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\((?!https?://|#)([^)\s]+)\)", text)
    assert targets
    missing = [t for t in targets if not (ROOT / t.split("#")[0]).exists()]
    assert not missing, missing


def test_readme_is_short() -> None:
    """The README leads to the site; the manual lives there."""
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 120


# --- flags and keys -----------------------------------------------------------------------

# Flags of other programs that the docs name in inline code: mkdocs, pytest, and the
# benchmark script benchmarks/sequential_power_exports.py (--lift, --runs).
OTHER_TOOLS = {"--strict", "-m", "-s", "-q", "--lift", "--runs"}


def _commands() -> dict[str, set[str]]:
    import click

    from abkit_cli.main import cli

    commands: dict[str, set[str]] = {}
    for name, command in cli.commands.items():
        options: set[str] = set()
        for param in command.params:
            if isinstance(param, click.Option):
                options.update(param.opts)
                options.update(param.secondary_opts)
        commands[name] = options | {"--help", "-h"}
    return commands


FLAG = re.compile(r"(?<![\w./-])(--?[A-Za-z][\w-]*)")
# `abkit SUB` at the start of a command: line start, after a pipe, `&&`, `;`, `(`, a
# prompt `$` or an environment assignment (not `ruff check abkit cli`)
ABKIT = re.compile(r"(?:^|[|;&(]\s*|\$\s*|\b\w+=\S*\s+)abkit\s+([a-z][a-z-]*)\b", re.M)


def _abkit_invocations(text: str) -> list[tuple[str, str]]:
    """(subcommand, rest) for each abkit command line in a block, with continuation
    lines (a trailing backslash, or indented lines of a usage synopsis) joined."""
    lines = text.replace("\\\n", " ").splitlines()
    joined: list[str] = []
    for line in lines:
        if joined and line.startswith((" ", "\t")) and line.strip().startswith("["):
            joined[-1] += " " + line.strip()
        else:
            joined.append(line)
    found = []
    for line in joined:
        for m in ABKIT.finditer(line):
            rest = line[m.end() :]
            rest = re.split(r"\s(?:\||&&|;|>|2>|#)\s|\s#", rest)[0]
            found.append((m.group(1), rest))
    return found


def test_documented_abkit_flags_exist() -> None:
    """Every flag shown after `abkit <command>` is an option of that command, and every
    flag named on its own in inline code is an option of some abkit command."""
    commands = _commands()
    every = set().union(*commands.values())
    problems: list[str] = []
    for page in PAGES:
        texts = [b.code for b in blocks(page)] + inline_code(page)
        for text in texts:
            for sub, rest in _abkit_invocations(text):
                if sub not in commands:
                    problems.append(f"{_page_id(page)}: no command 'abkit {sub}'")
                    continue
                for flag in FLAG.findall(rest):
                    if flag not in commands[sub]:
                        problems.append(f"{_page_id(page)}: abkit {sub} has no {flag}")
        for span in inline_code(page):
            if re.match(r"--?[A-Za-z]", span) and not ABKIT.search(span):
                flag = span.split()[0].split("=")[0]
                if flag not in every and flag not in OTHER_TOOLS:
                    problems.append(f"{_page_id(page)}: no abkit command has {flag}")
    assert not problems, "\n".join(sorted(set(problems)))


def _schema() -> dict[str, set[str]]:
    """Config section → its keys, from the dataclasses abkit reads the TOML into."""
    from abkit.config import ExperimentSpec, MetricSpec

    sections: dict[str, set[str]] = {"experiment": set(), "metrics": set()}
    for f in dataclasses.fields(ExperimentSpec):
        section = f.metadata.get("section")
        if section == "metrics":
            sections["metrics"] = {g.name for g in dataclasses.fields(MetricSpec)}
        elif section:
            sections[section] = {g.name for g in dataclasses.fields(f.default_factory())}  # type: ignore[misc]
        else:
            sections["experiment"].add(f.name)
    return sections


def _documented_keys() -> dict[str, set[str]]:
    text = (DOCS / "reference" / "config.md").read_text(encoding="utf-8")
    sections: dict[str, set[str]] = {}
    current = None
    in_keys = False  # inside a table whose first header cell is "key"
    for line in text.splitlines():
        heading = re.match(r"^#+\s+`\[\[?(\w+)\]\]?`", line)
        if heading:
            current = heading.group(1)
            sections.setdefault(current, set())
            continue
        if not line.startswith("|"):
            in_keys = False
            continue
        if re.match(r"^\|\s*key\s*\|", line):
            in_keys = True
            continue
        row = re.match(r"^\|\s*`(\w+)`\s*\|", line)
        if row and current and in_keys:
            sections[current].add(row.group(1))
    return sections


def test_config_reference_lists_every_key() -> None:
    """docs/reference/config.md has one row per config key, and no key that abkit
    does not read; a new key fails this test until it is documented there."""
    documented, schema = _documented_keys(), _schema()
    problems = []
    for section in sorted(set(documented) | set(schema)):
        have, want = documented.get(section, set()), schema.get(section, set())
        if want - have:
            problems.append(f"[{section}] undocumented: {sorted(want - have)}")
        if have - want:
            problems.append(f"[{section}] documented but not read by abkit: {sorted(have - want)}")
    assert not problems, "docs/reference/config.md:\n" + "\n".join(problems)


# --- shell completion ---------------------------------------------------------------------


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_prints_a_script(shell: str) -> None:
    """The documented mechanism (click's _ABKIT_COMPLETE) prints a completion script."""
    env = _environment() | {"_ABKIT_COMPLETE": f"{shell}_source"}
    done = subprocess.run(["abkit"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "_abkit_completion" in done.stdout
    assert f"_ABKIT_COMPLETE={shell}_source" in (DOCS / "reference" / "cli.md").read_text()


# --- the site -----------------------------------------------------------------------------


def test_site_builds_strict(tmp_path: Path) -> None:
    """`mkdocs build --strict`: every page in the nav, every link and anchor resolves,
    the API reference renders from the docstrings."""
    import importlib.util

    tools = ("mkdocs", "mkdocstrings", "material")
    absent = [name for name in tools if importlib.util.find_spec(name) is None]
    if absent:
        reason = f'{", ".join(absent)} not installed (pip install -e ".[docs]")'
        if os.environ.get("CI") == "true":
            pytest.fail(reason + "; CI installs the docs extra before the tests")
        pytest.skip(reason)
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        env=_environment() | {"NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    api = (tmp_path / "site" / "reference" / "api" / "index.html").read_text()
    for anchor in (
        "abkit.run.analyze",
        "abkit.result.AnalysisResult",
        "abkit.analysis.decision.Decision",
        "abkit.power.power_analysis",
        "abkit.stats.power.units_needed",
        "abkit.stats.welch_test",
    ):
        assert f'id="{anchor}"' in api, anchor
    cli = (tmp_path / "site" / "reference" / "cli" / "index.html").read_text()
    assert "--sequential" in cli and "simulate-replay" in cli
