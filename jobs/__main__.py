"""``python -m jobs [--burst] [--check]``: same as ``eoc-ntk worker``."""
import sys

from .worker import main

if __name__ == "__main__":
    sys.exit(main())
