"""Docs drift is a test failure: every command, setting and front-matter key is in the README."""

from __future__ import annotations

from pathlib import Path

from kb.documents import FrontMatter
from kb.server.cli import cli
from kb.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_cli_command_is_in_the_readme() -> None:
    for name in cli.commands:
        assert f"`kb {name}" in README, name


def test_every_setting_is_in_the_readme() -> None:
    for name in Settings.model_fields:
        assert f"`KB_{name.upper()}`" in README, name


def test_every_front_matter_key_is_in_the_readme() -> None:
    for name in FrontMatter.model_fields:
        assert f"`{name}`" in README, name


def test_ci_runs_exactly_the_readme_test_command() -> None:
    command = next(line for line in README.splitlines() if line.endswith("-m pytest"))
    assert command in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
