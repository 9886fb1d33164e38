"""Thin Hydra apps, one per MLproject entry point: compose config, call one gfcore function."""
