"""GuardianFlow's configuration: the schema and composition helpers."""

from gfcore.config.compose import (
    compose,
    normalise_argv,
    split_overrides,
    to_container,
    to_typed,
)
from gfcore.config.schema import Config

__all__ = ["Config", "compose", "normalise_argv", "split_overrides", "to_container", "to_typed"]
