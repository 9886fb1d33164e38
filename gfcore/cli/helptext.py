"""How `guardianflow` and its commands explain themselves: one parser class and help formatter for every command
(paragraphs fitted to the terminal, indented lines kept as written, each option's default shown, sub-commands as
COMMAND), and the user's text of `guardianflow --help`: what it does, the commands grouped, examples."""

from __future__ import annotations

import argparse
import shutil
import textwrap
from typing import NoReturn

MAX_WIDTH = 100  # wider help lines are hard to read, however wide the terminal

ABOUT = ("GuardianFlow trains, quantizes and benchmarks YOLO safety-detection models per site, and records every "
         "run, model version and decision in MLflow.")  # two lines in an 80-column terminal

# (group, what its commands are about, commands); every command is in exactly one group (tests/cli/test_help.py)
COMMAND_GROUPS = (
    ("run", "entry points as MLflow runs in the scenario's site experiment",
     ("train", "quant", "infer", "sweep", "compare", "pipeline", "run", "reproduce", "resume", "names")),
    ("registry", "registered models, their versions and aliases",
     ("models", "versions", "challenge", "promote", "rollback", "alias")),
    ("fleet", "every site's models and figures", ("metrics", "experiments", "site")),
    ("automation", "rules and triggers over the fleet", ("alerts", "optimize")),
    ("data", "datasets and their versions", ("data",)),
    ("stack", "the tracking server and what runs could not send it", ("stack", "sync")),
    ("old folders", "existing experiment folders, run and recorded as they are", ("scan", "list", "wrap")),
    ("MOT", "multi-object tracking", ("eval-mot",)),
)

EXAMPLES = """examples:
  # train -> quant -> infer on generated data (a laptop CPU, minutes)
  guardianflow pipeline scenario=demo
  # a train run with an override; the run id is the last line it prints
  guardianflow train scenario=smoke train.epochs=5
  # the registered models, then one model's versions with aliases and figures
  guardianflow models
  guardianflow versions demo.local-plant1.yard.ppe
  # candidate against champion on the same data, then promote behind a gate
  guardianflow challenge demo.local-plant1.yard.ppe
  guardianflow promote demo.local-plant1.yard.ppe \\
      --require 'det.mAP50>=champion-0.005'
  # the fleet: one row per site model, then the open alerts
  guardianflow metrics summary
  guardianflow alerts list

learn more: `guardianflow COMMAND --help` for a command's options and examples; README.md and docs/ in the
project for the guides."""


def help_width() -> int:
    """The width argparse would use (the terminal's, less 2), at most MAX_WIDTH."""
    return min(shutil.get_terminal_size().columns - 2, MAX_WIDTH)


def has_default(action: argparse.Action) -> bool:
    """Whether `action` has a default worth saying: not None, not a flag's False/True, not empty."""
    default = action.default
    if default is None or default is argparse.SUPPRESS or isinstance(default, bool):
        return False
    return not (isinstance(default, (str, list, tuple)) and not default)


class HelpFormatter(argparse.HelpFormatter):
    """Descriptions and epilogs: paragraphs reflow, indented lines (commands, examples) stay as written. Options:
    `(default: X)` added where the help does not say its default. Sub-commands: shown as COMMAND, not `{a,b,c}`."""

    def __init__(self, prog: str, **kwargs) -> None:
        kwargs.setdefault("width", help_width())
        super().__init__(prog, **kwargs)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out: list[str] = []
        paragraph: list[str] = []

        def flush() -> None:
            if paragraph:
                out.extend(textwrap.wrap(" ".join(paragraph), width, initial_indent=indent,
                                         subsequent_indent=indent, break_on_hyphens=False))
                paragraph.clear()

        for line in text.splitlines():
            if line.strip() and not line.startswith(" "):
                paragraph.append(line.strip())
                continue
            flush()
            out.append(indent + line.rstrip() if line.strip() else "")
        flush()
        return "\n".join(out)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if text is argparse.SUPPRESS or not has_default(action) or "default" in text.lower():
            return text
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"

    def _metavar_formatter(self, action: argparse.Action, default_metavar: str):
        if isinstance(action, argparse._SubParsersAction) and action.metavar is None:
            return lambda size: ("COMMAND",) * size
        return super()._metavar_formatter(action, default_metavar)


class SubCommands(argparse._SubParsersAction):
    """add_parser with the command's one-line help as its description when it has none of its own, so that
    `guardianflow CMD --help` starts with what CMD does."""

    def add_parser(self, name: str, **kwargs) -> argparse.ArgumentParser:
        text = kwargs.get("help")
        if kwargs.get("description") is None and text:
            kwargs["description"] = text[0].upper() + text[1:] + ("" if text.endswith((".", ")")) else ".")
        return super().add_parser(name, **kwargs)


class Parser(argparse.ArgumentParser):
    """Every parser of `guardianflow`: add_subparsers makes the sub-commands' parsers of this class too."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self.register("action", "parsers", SubCommands)

    def add_subparsers(self, **kwargs) -> argparse._SubParsersAction:
        kwargs.setdefault("help", f"one of the commands below; `{self.prog} COMMAND --help` for its options")
        return super().add_subparsers(**kwargs)

    def _check_value(self, action: argparse.Action, value) -> None:
        if isinstance(action, argparse._SubParsersAction) and value not in action.choices:  # not all 28 listed
            from gfcore.core.suggest import did_you_mean

            raise argparse.ArgumentError(None, f"no command {value!r}{did_you_mean(value, action.choices)}")
        super()._check_value(action, value)

    def error(self, message: str) -> NoReturn:
        """One line, as the command's other errors, saying where to read how (not argparse's usage block)."""
        self.exit(2, f"guardianflow: error: {message}; see `{self.prog} --help`\n")


def overview(commands: dict[str, str]) -> str:
    """`guardianflow --help`'s description: ABOUT, then each command once, in its group, with its one-line help
    (`commands`: name -> help). A command no group names is listed under `other`, not hidden."""
    grouped = [name for _, _, names in COMMAND_GROUPS for name in names]
    groups = [*COMMAND_GROUPS]
    rest = tuple(name for name in commands if name not in grouped)
    if rest:
        groups.append(("other", "", rest))
    column = max(len(name) for name in commands) + 6
    width = help_width()
    lines = [ABOUT, "", "commands:"]
    for title, about, names in groups:
        lines.append(f"  {title}: {about}" if about else f"  {title}")
        for name in names:
            if name in commands:
                text = commands[name].replace("%%", "%")
                lines.extend(textwrap.wrap(text, max(width, column + 30), initial_indent=f"    {name:<{column - 4}}",
                                           subsequent_indent=" " * column, break_on_hyphens=False))
    return "\n".join(lines)
