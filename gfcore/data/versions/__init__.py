"""Immutable, content-addressed dataset versions on S3: manifests, the store, and the diff of two versions."""
