"""`guardianflow --help` and every command's help: each option described (a future one without a description fails
here), defaults shown, the commands listed once in their groups with examples, and `CMD --help` working for every
command. In-process and cheap: nothing but argparse runs."""

from __future__ import annotations

import argparse
import re
import shlex

import pytest

from gfcore.cli import build_parser, main
from gfcore.cli.data import VERBS, _verb_parser
from gfcore.cli.helptext import COMMAND_GROUPS, MAX_WIDTH, has_default


def parsers(parser: argparse.ArgumentParser, path: tuple[str, ...]):
    """(command path, parser) for `parser` and every sub-command under it."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from parsers(sub, (*path, name))


def every_parser():
    yield from parsers(build_parser(), ())
    yield from parsers(_verb_parser(), ("data",))  # `data VERB ...` is parsed by a parser of its own


ALL = list(every_parser())
COMMANDS = sorted({path for path, _ in ALL if path})


def test_every_argument_has_a_description():
    missing = []
    for path, parser in ALL:
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if isinstance(action, argparse._SubParsersAction):  # its commands carry the help, one line each
                helps = {choice.dest: choice.help for choice in action._choices_actions}
                missing += [f"{' '.join((*path, name))}: no help" for name in action.choices if not helps.get(name)]
                continue
            if not action.help or action.help is argparse.SUPPRESS or not action.help.strip():
                missing.append(f"guardianflow {' '.join(path)}: {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_every_default_is_shown():
    hidden = []
    for path, parser in ALL:
        formatter = parser._get_formatter()
        for action in parser._actions:
            if has_default(action) and str(action.default) not in formatter._expand_help(action):
                hidden.append(f"guardianflow {' '.join(path)}: {'/'.join(action.option_strings) or action.dest}")
    assert hidden == []


def help_of(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_option_help_says_its_default(capsys):
    text = " ".join(help_of(capsys, "metrics", "trend").split())  # one line per option, whatever the width
    assert "--days N runs that ended in the last N days (default: 90)" in text
    assert "(default: det.mAP50)" in text
    assert "(default: day)" in text
    assert "(default: False)" not in text and "(default: None)" not in text


def test_top_help_lists_each_command_once_in_groups_with_examples(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    text = help_of(capsys)
    names = sorted({path[0] for path in COMMANDS})
    for name in names:
        listed = [line for line in text.splitlines() if re.match(rf"\s{{4}}{re.escape(name)}\s{{2,}}\S", line)]
        assert len(listed) == 1, (name, listed)
    assert "{" not in text  # argparse's own {train,quant,...} list is not there too
    grouped = [name for _, _, members in COMMAND_GROUPS for name in members]
    assert sorted(grouped) == sorted(names)  # each command in exactly one group: none under `other`
    titles = [m.group(1) for m in re.finditer(r"^  ([A-Za-z][A-Za-z ]*): ", text, re.MULTILINE)]
    assert titles == [title for title, _, _ in COMMAND_GROUPS]
    assert "\nexamples:\n" in text and "guardianflow pipeline scenario=demo" in text
    assert "One module per command group" not in text  # the developers' docstring is not the users' text
    assert max(len(line) for line in text.splitlines()) <= 80


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_help_works(capsys, monkeypatch, path):
    monkeypatch.setenv("COLUMNS", "200")
    text = help_of(capsys, *path)
    assert text.startswith(f"usage: guardianflow {' '.join(path)}")
    assert max(len(line) for line in text.splitlines()) <= MAX_WIDTH


def test_a_misspelled_command_is_one_line_with_the_closest_name(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["metrics", "sumary"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines() == ["guardianflow: error: no command 'sumary' (did you mean summary?); "
                                "see `guardianflow metrics --help`"]


def examples(text: str) -> list[str]:
    """The command lines a help text shows (`  guardianflow ...`, a trailing backslash continuing one)."""
    joined = re.sub(r"\\\n\s*", "", text)
    return [m.group(1) for m in re.finditer(r"^\s+(guardianflow \S.*)$", joined, re.MULTILINE)]


def test_every_example_parses(capsys):
    """An example that argparse would refuse (an override after an option, an option renamed) fails here."""
    shown = set()
    for path in [(), *COMMANDS]:
        shown.update(examples(help_of(capsys, *path)))
    assert len(shown) > 30
    for line in sorted(shown):
        argv = shlex.split(line)[1:]
        args, unknown = build_parser().parse_known_args(argv)
        if args.command == "data" and args.overrides[:1] and args.overrides[0] in VERBS:
            _verb_parser().parse_args(args.overrides)
        assert unknown == [] or hasattr(args, "unknown"), line  # the verbs take what they explain themselves
