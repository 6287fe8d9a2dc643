"""``python -m workers [--burst]``: same as ``eoc-ntk worker``."""
from eoc_ntk.cli import main

if __name__ == "__main__":
    main(["worker", *__import__("sys").argv[1:]])
