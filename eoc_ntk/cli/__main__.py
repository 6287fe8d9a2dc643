"""``python -m eoc_ntk.cli``: the ``eoc-ntk`` command."""
import sys

from eoc_ntk.cli import main

sys.exit(main())
