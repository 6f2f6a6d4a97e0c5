"""``python -m lungai.cli`` runs the command line (used by Slicer's background runner)."""

import sys

from lungai.cli.main import main

sys.exit(main())
