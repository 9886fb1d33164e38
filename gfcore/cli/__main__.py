import sys

from gfcore.cli import console

sys.exit(console())
