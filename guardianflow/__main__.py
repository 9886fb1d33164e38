"""`python -m guardianflow`: the `guardianflow` command."""

import sys

from gfcore.cli import console

if __name__ == "__main__":
    sys.exit(console())
