import sys

from gfcore.cli import main

sys.exit(main())
