"""GuardianFlow's entry points, one thin Hydra app each: `python -m guardianflow.train` and so on (MLproject runs
the same modules). `python -m guardianflow` is the `guardianflow` command."""
