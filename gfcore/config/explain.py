"""Hydra's and OmegaConf's composition errors as one line for a person: the override, what was wrong with it, and
what to give instead (the type wanted, or the valid names with "did you mean"), never OmegaConf's
`full_key: ... reference_type=...` block or Hydra's hint to append with `+`."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import fields, is_dataclass

from gfcore.core import suggest

# OmegaConf's names of the types it converts to, as a person asks for them
WANTED = {"Integer": "a whole number", "Float": "a number", "Boolean": "true or false", "String": "text",
          "Bytes": "text", "Path": "a path"}
# Dict nodes whose keys are names a person chose: what one of them is called
NAMED_ENTRIES = {"rules": "rule", "triggers": "trigger", "budgets_ms": "site budget"}

KeysAt = Callable[[str], Iterable[str]]  # the keys a config node has, by its dotted path ('' for the root)


def one_line(exc: BaseException, overrides: Iterable[str] = (), keys_at: KeysAt | None = None) -> str | None:
    """The one-line message for a composition error, or None where it is not one of the kinds known here."""
    from hydra.errors import MissingConfigException, OverrideParseException

    if isinstance(exc, MissingConfigException):
        return _missing_option(exc)
    if isinstance(exc, OverrideParseException):
        first = str(exc).strip().splitlines()[0]
        return (f"an override Hydra cannot read: {first}; write key=value (a list: key=[a,b]; quote spaces: "
                "key='a b')")
    error = next((e for e in (exc, exc.__cause__) if getattr(e, "full_key", None)), None)
    if error is None:
        return None
    text, key = str(getattr(error, "msg", error)), str(error.full_key)
    if re.match(r"Key '.*' (is )?not in", text):
        return _unknown_key(key, error, list(overrides), keys_at)
    value, wanted, options = _wanted(text)
    if wanted is None:
        return None
    value = _value_of(key, overrides) or value or "?"
    given = _given(key, overrides) or f"{key}={value}"
    return f"{given}: wants {wanted}, got {value!r}{suggest.did_you_mean(value, options)}"


def _wanted(text: str) -> tuple[str | None, str | None, list[str]]:
    """(the value given, the type wanted, the valid values where there are a few) from OmegaConf's message."""
    m = re.match(r"Value '(.*)' of type '\w+' could not be converted to (\w+)", text)
    if m:
        return m.group(1), WANTED.get(m.group(2), m.group(2).lower()), []
    m = re.match(r"Value '(.*)' is not a valid bool", text)
    if m:
        return m.group(1), WANTED["Boolean"], []
    m = re.match(r"Invalid value '(.*)', expected one of \[(.*)\]", text)
    if m:
        options = [o.strip() for o in m.group(2).split(",")]
        return m.group(1), f"one of {', '.join(options)}", options
    return None, None, []


def _unknown_key(key: str, error: BaseException, overrides: list[str], keys_at: KeysAt | None) -> str:
    parent, _, leaf = key.rpartition(".")
    names = _names_at(parent, error, keys_at)
    what = NAMED_ENTRIES.get(parent)
    if what:
        adds = parent != "triggers" and not suggest.close(leaf, names)  # a new rule, not a typo of one
        return suggest.unknown(what, leaf, names) + (f"; `+{parent}.NAME=...` adds one" if adds else "")
    given = _given(key, overrides, prefix=True) or key
    full = [f"{parent}.{n}" if parent else n for n in names]
    where = f"{parent} has" if parent else "the top-level keys are"
    hint = suggest.did_you_mean(key, full)
    if hint or not names:
        return f"{given}: no key {key}" + (hint or f"; `+{key}=...` adds it")
    return f"{given}: no key {key}; {where} {suggest.listed(names)}"


def _names_at(parent: str, error: BaseException, keys_at: KeysAt | None) -> list[str]:
    """The keys of the node the unknown key was looked for in: its dataclass's fields, else the composed config's."""
    node_type = getattr(error, "object_type", None)
    if is_dataclass(node_type):
        return [f.name for f in fields(node_type) if not f.name.startswith("_")]
    if keys_at is not None:
        try:
            return list(keys_at(parent))
        except Exception:  # noqa: BLE001  only for the hint: the error itself is said without it
            return []
    return []


def _missing_option(exc: BaseException) -> str | None:
    missing = getattr(exc, "missing_cfg_file", None) or ""
    group, _, option = missing.rpartition("/")
    if not group:
        return None
    options = list(getattr(exc, "options", None) or [])
    return (f"{group}={option}: Could not find '{missing}'{suggest.did_you_mean(option, options)}; "
            f"the {group} options are {suggest.listed(options) or 'none'}")


def _given(key: str, overrides: Iterable[str], prefix: bool = False) -> str | None:
    """The override as given for `key` (or, with `prefix`, for a key below it)."""
    for override in overrides:
        name = override.split("=", 1)[0].lstrip("+~")
        if name == key or (prefix and name.startswith(f"{key}.")):
            return override
    return None


def _value_of(key: str, overrides: Iterable[str]) -> str | None:
    given = _given(key, overrides)
    return given.split("=", 1)[1] if given and "=" in given else None
