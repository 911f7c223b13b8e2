import sys

from fptlib.cli import main

sys.exit(main())
