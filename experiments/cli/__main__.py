"""``python -m xbarsim.experiments.cli`` runs the ``xbarsim`` command line."""
import sys

from xbarsim.experiments.cli.main import main

sys.exit(main())
