"""GuardianFlow's configuration: the schema and composition helpers."""

from gfcore.config.compose import (
    compose,
    hydra_output_dir,
    normalise_argv,
    split_overrides,
    to_container,
    to_typed,
)
from gfcore.config.schema import Config

__all__ = ["Config", "compose", "hydra_output_dir", "normalise_argv", "split_overrides", "to_container", "to_typed"]
