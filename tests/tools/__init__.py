"""Tools the tests (and docs/screenshots.py) use that are not part of GuardianFlow: headless Chromium."""
