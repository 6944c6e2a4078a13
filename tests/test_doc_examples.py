"""Every shell example in the README and docs/ is one the planner accepts as written, every config example
validates against the schema, and the README's quickstart on a runs table runs end to end.

A `planner …` line of a bash/sh/console block is parsed by the real argument parser (an unknown flag, a
missing argument or a bad choice fails here, naming the file and line); a yaml block whose keys are config
sections is validated as a config. Running every example would train models for hours; the quickstart that
needs no training is run for real.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest
import yaml

from core.config import PlannerConfig, config_from_dict
from planner.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
SHELL = {"bash", "sh", "shell", "console"}


def blocks(path: Path, languages: set[str]):
    text = path.read_text(encoding="utf-8")
    for match in FENCE.finditer(text):
        if match.group(1) in languages:
            yield text[: match.start()].count("\n") + 2, match.group(2)


def planner_lines():
    for path in DOCS:
        for first, body in blocks(path, SHELL):
            joined = body.replace("\\\n", " ")
            for offset, line in enumerate(joined.splitlines()):
                line = line.split(" #")[0].strip().removeprefix("$ ")
                for command in line.split("&&"):
                    words = shlex.split(command)
                    if words and Path(words[0]).name == "planner":
                        yield pytest.param(words[1:], id=f"{path.name}:{first + offset}")


def config_blocks():
    sections = set(PlannerConfig.model_fields)
    for path in DOCS:
        for first, body in blocks(path, {"yaml", "yml"}):
            data = yaml.safe_load(body)
            if isinstance(data, dict) and data and set(data) <= sections:
                yield pytest.param(data, id=f"{path.name}:{first}")


def test_the_docs_have_examples_to_check():
    assert len(list(planner_lines())) >= 10 and len(list(config_blocks())) >= 3


@pytest.mark.parametrize("argv", list(planner_lines()))
def test_every_planner_example_parses(argv, capsys):
    parser = build_parser()
    try:
        parser.parse_args(argv)
    except SystemExit as stop:  # --help and --version exit 0; a usage error exits 2
        assert stop.code == 0, capsys.readouterr().err


@pytest.mark.parametrize("data", list(config_blocks()))
def test_every_config_example_validates(data):
    config_from_dict(data, "a docs example")


def test_the_readme_quickstart_on_a_runs_table_runs(tmp_path, monkeypatch, capsys):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Quickstart A"):text.index("## Quickstart B")]
    commands = [shlex.split(line.split(" #")[0]) for _, body in
                [(0, m.group(2)) for m in FENCE.finditer(section) if m.group(1) in SHELL]
                for line in body.splitlines() if line.strip()]
    assert commands and all(Path(c[0]).name == "planner" for c in commands)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plan").mkdir()
    shutil.copy(ROOT / "benchmarks" / "results" / "smollm2_runs.csv", tmp_path / "plan" / "runs.csv")
    for command in commands:
        assert main(command[1:]) == 0, command
    assert (tmp_path / "plan" / "report.html").is_file()
    # The verdict the README quotes for this table is the one the planner prints.
    quoted = next(line for line in text.splitlines() if line.startswith("verdict: "))
    assert quoted in capsys.readouterr().out.splitlines()
