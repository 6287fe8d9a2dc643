"""Peak memory of the one JSON path on a body whose long ``x`` the fast reader cannot read.

A body of 400,000 rows ``[0,1,0,1,0]`` (4.6 MiB) whose last row is ragged, holds ``NaN`` or
``true``, parsed by ``validate_json(SpectraIn, ...)`` in this process: (peak RSS - RSS before
the parse) / body. Run each kind in a fresh process; to compare commits, point PYTHONPATH at
a checkout of each (``git archive <commit> eoc_ntk service | tar -x -C /tmp/base``)::

    PYTHONPATH=$PWD python bench/bench_json_refusals.py ragged   # also nan, true; --rows N
"""
from __future__ import annotations

import argparse
import gc
import os
import resource

from service.jsonbody import validate_json
from service.schemas import SpectraIn

LAST = {"ragged": b"[0,1,0,1]", "nan": b"[0,1,0,1,NaN]", "true": b"[0,1,0,true,1]"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=sorted(LAST))
    parser.add_argument("--rows", type=int, default=400_000)
    args = parser.parse_args(argv)
    body = (b'{"x": [' + b"[0,1,0,1,0]," * (args.rows - 1) + LAST[args.kind]
            + b'], "model": {"depth": 3, "activation": "relu"}}')
    gc.collect()
    before = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    try:
        validate_json(SpectraIn, body, 1 << 30)
        answer = "accepted by pydantic (refused later by check_data)"
    except Exception as exc:  # the refusal is the result
        errors = getattr(exc, "errors", None) or [{}]
        answer = f"{type(exc).__name__} {errors[0].get('type', '')}: {str(errors[0].get('msg', ''))[:70]}"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"| {args.kind} | {len(body) / 2**20:.2f} | {(peak - before) / len(body):.2f}x | {answer} |")


if __name__ == "__main__":
    main()
