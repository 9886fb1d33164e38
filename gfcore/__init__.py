"""gfcore: the GuardianFlow library. Entry points, the CLI and tests call into it."""

__version__ = "0.1.0"
