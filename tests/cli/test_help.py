"""Every `--help` reads as prose: a docstring's line breaks (where its source line was full) are
not line breaks on the screen. On a screen wide enough for every paragraph, each paragraph of
each help text, and each option's help, stands on one line: in the command's own help, and in
its group's list of commands."""

import inspect

import typer
from typer.testing import CliRunner

from driftloop.platform.cli.app import app

# Wider than any paragraph: what still breaks a line here is the help text, not the screen.
WIDE = "1000"


def _walk(command: object, path: list[str]):  # type: ignore[no-untyped-def]
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _walk(sub, [*path, name])


def _paragraphs(text: str | None) -> list[str]:
    """The paragraphs of a help text, each as one line."""
    return [" ".join(p.split()) for p in inspect.cleandoc(text or "").split("\n\n") if p.strip()]


def _lines(output: str) -> list[str]:
    """The screen's lines, box borders stripped and runs of spaces (between columns) made one."""
    return [" ".join(line.strip(" │╭╮╰╯─").split()) for line in output.splitlines()]


def test_every_help_paragraph_is_one_line_on_a_wide_screen() -> None:
    runner = CliRunner()
    broken: list[tuple[str, str]] = []
    checked = 0
    for path, command in _walk(typer.main.get_command(app), []):
        if getattr(command, "hidden", False):
            continue
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": WIDE, "TERMINAL_WIDTH": WIDE})
        assert result.exit_code == 0, (path, result.output)
        lines = _lines(result.output)
        expected = _paragraphs(command.help)  # type: ignore[attr-defined]
        expected += [" ".join(p.help.split()) for p in command.params if getattr(p, "help", None)]  # type: ignore[attr-defined]
        for sub in getattr(command, "commands", {}).values():  # a group lists each command's first paragraph
            if not sub.hidden:
                expected.append(_paragraphs(sub.help)[0])
        for paragraph in expected:
            checked += 1
            # inline code may be drawn without its backticks
            if not any(paragraph in line or paragraph.replace("`", "") in line for line in lines):
                broken.append((" ".join(path) or "driftloop", paragraph))
    assert checked > 100  # the walk reached every command, its options and its groups' listings
    assert broken == [], "\n".join(map(str, broken))
