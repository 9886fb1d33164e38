"""Offline runs: a box that cannot reach the tracking server records into a local MLflow store (runs, pipeline
steps, artifacts, models and their registration), and `guardianflow sync` later publishes each ended run on the
server with its original params, metric steps and timestamps, artifacts, tags and status, and registers its
models there as `candidate` (what needs the server happens at sync; the run's tag `gf.offline` says so).

    store    where the local store lives, switching a process (and what it starts) to it
    publish  copying ended offline runs to the server
"""
