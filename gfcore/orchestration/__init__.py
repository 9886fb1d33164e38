"""Runs that start other runs: the entry-point app wrapper, the one launcher of this project's entry points
(local `mlflow run`, a SLURM job), the pipeline's steps and cache, compare, sweep parents, reproduce and the result
tables of parents."""
