"""The registry tests use the module-scoped `trained_store` of tests/conftest.py."""

NAME = "demo.local-plant1.yard.ppe"
