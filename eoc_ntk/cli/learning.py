"""The ``eoc-ntk dynamics``, ``learning-curve`` and ``predict`` commands (docs/learning.md).

Both take the data FILE (``.npy``, CSV, or an ``.npz`` of ``x`` and optionally ``y``: the
service's upload rules, :mod:`eoc_ntk.core.labelled_files`) and, unless the ``.npz`` holds ``y``,
the labels as ``--labels FILE`` (``.npy`` of shape (n,) or (n, k), or CSV: one row per point,
one column per output) or ``--label-column N`` (column N of a CSV or ``.npy`` data FILE,
counted from 0, negative from the end, taken out of the inputs). They compute
locally, or on a running service with ``--server URL``. :func:`add_commands` registers them
on the CLI's sub-parsers (:mod:`eoc_ntk.cli`).
"""
from __future__ import annotations

import io
import json
import math

import numpy as np

from eoc_ntk.core.activations import parse_activation
from eoc_ntk.core.errors import InvalidParameterError
from eoc_ntk.core.labelled_files import is_npz, load_labelled_points, split_label_column
from eoc_ntk.core.point_files import load_points
from eoc_ntk.learning.dynamics import DEFAULT_STEPS, INIT_MODES, dynamics
from eoc_ntk.learning.regression import learning_curve, predict

__all__ = ["add_commands", "load_labelled"]

_ACT_HELP = "relu | abs | linear | leaky_relu[:SLOPE] | A,B for phi(s) = A*s + B*|s| (default relu)"


def load_labelled(path: str, labels: str | None, label_column: int | None) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` from the data file and its labels: the ``y`` of an ``.npz`` data file, or exactly one
    of ``--labels FILE`` and ``--label-column N`` (the column taken out by
    :func:`eoc_ntk.core.labelled_files.split_label_column`, the service's ``?label_column=``)."""
    x, y = load_labelled_points(path)
    if y is not None:
        if labels is not None or label_column is not None:
            option = "--labels" if labels is not None else "--label-column"
            raise InvalidParameterError(f"{path} carries its labels (the .npz member y): drop {option}",
                                        param="labels" if labels is not None else "label_column")
        return x, y
    if (labels is None) == (label_column is None):
        raise InvalidParameterError("give exactly one of --labels FILE and --label-column N "
                                    "(or an .npz data file holding x and y)", param="labels")
    if labels is not None:
        return x, _read_labels(labels)
    if _is_npz_file(path):
        raise InvalidParameterError(f"--label-column applies to a CSV or .npy data file (one matrix); {path} is an "
                                    ".npz: save the labels in it as y, or give --labels FILE", param="label_column")
    assert label_column is not None  # exactly one of labels and label_column, checked above
    return split_label_column(x, label_column, name="--label-column")


def _is_npz_file(path: str) -> bool:
    with open(path, "rb") as fh:
        return is_npz(fh.read(4))


def _read_labels(path: str) -> np.ndarray:
    """Labels of shape (n,) or (n, k) from a ``.npy`` file or a CSV file (one column: shape (n,))."""
    with open(path, "rb") as fh:
        raw = fh.read()
    if raw[:6] == b"\x93NUMPY" or path.lower().endswith(".npy"):
        try:
            arr = np.load(io.BytesIO(raw), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise InvalidParameterError(f"--labels {path} is not a readable .npy array "
                                        f"({exc})", param="labels") from exc
        return np.asarray(arr)
    arr = load_points(path)
    return arr[:, 0] if arr.shape[1] == 1 else arr


def _fmt(v) -> str:
    return "never" if v is None or (isinstance(v, float) and math.isinf(v)) else f"{float(v):.6g}"


def _rate(result: dict, name: str) -> str:
    """A rate of :meth:`Dynamics.to_dict`, with its power of two where it leaves float64."""
    scaled = result.get("scaled")
    if result[name] is not None or not scaled:
        return _fmt(result[name])
    return f"{scaled[name]:.6g} x 2^{-scaled['exponent']} (outside float64)"


def _model_kwargs(args) -> dict:
    act = parse_activation(args.activation)
    return {"depth": args.depth, "activation": act, "sigma_w": args.sigma_w, "sigma_b": args.sigma_b}


def _dynamics(args, compute) -> int:
    x, y = load_labelled(args.file, args.labels, args.label_column)
    act = parse_activation(args.activation)
    steps = [int(s) for s in args.steps.split(",")] if args.steps else list(DEFAULT_STEPS)

    def local(bar):
        bar(0.0)
        out = dynamics(x, y, **_model_kwargs(args), learning_rate=args.learning_rate, steps=steps,
                       init=args.init).to_dict()
        bar(1.0)
        return out

    result = compute(args, f"dynamics depth {args.depth}",
                     lambda client, bar: client.dynamics(x, y, depth=args.depth, activation=act, sigma_w=args.sigma_w,
                                                         sigma_b=args.sigma_b, learning_rate=args.learning_rate,
                                                         steps=steps, init=args.init, progress=bar),
                     local, None)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"n = {result['n']}, outputs = {result['outputs']}, depth {args.depth}, activation {act.label}")
    print(f"largest rate at which the linearised, infinite-width model converges: 2/lambda_max = "
          f"{_rate(result, 'max_learning_rate')}; learning rate used = {_rate(result, 'learning_rate')}")
    print(f"share of |y|^2 never fitted (null space of K) = {_fmt(result['unreachable_fraction'])}")
    print("step".rjust(10) + "train loss".rjust(16))
    for t, loss in zip(result["steps"], result["train_loss"], strict=True):
        print(str(t).rjust(10) + ("overflow" if loss is None else f"{loss:.6g}").rjust(16))
    print("steps to reduce the loss " + ", ".join(f"{f}x: {_fmt(v)}" for f, v in result["steps_to"].items()))
    return 0


def _learning(args, compute) -> int:
    x, y = load_labelled(args.file, args.labels, args.label_column)
    act = parse_activation(args.activation)
    sizes = [int(s) for s in args.sizes.split(",")]

    def local(bar):
        bar(0.0)
        out = learning_curve(x, y, **_model_kwargs(args), sizes=sizes, ridge=args.ridge, splits=args.splits,
                             seed=args.seed).to_dict()
        bar(1.0)
        return out

    result = compute(args, f"learning curve depth {args.depth}",
                     lambda client, bar: client.learning_curve(x, y, depth=args.depth, activation=act, sizes=sizes,
                                                               sigma_w=args.sigma_w, sigma_b=args.sigma_b,
                                                               ridge=args.ridge, splits=args.splits, seed=args.seed,
                                                               progress=bar),
                     local, None)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"n = {result['n']}, depth {args.depth}, activation {act.label}, ridge {args.ridge:g}, "
          f"{args.splits} splits: held-out test MSE predicted (eigenlearning, finite pool) vs measured (kernel "
          "regression; std over the splits)")
    print("size".rjust(8) + "predicted".rjust(14) + "measured".rjust(14) + "std".rjust(12) + "gap".rjust(10))
    for i, m in enumerate(result["sizes"]):
        gap = result["relative_gap"][i]
        print(str(m).rjust(8) + _fmt(result["predicted_test_mse"][i]).rjust(14)
              + _fmt(result["measured_test_mse"][i]).rjust(14) + _fmt(result["measured_std"][i]).rjust(12)
              + ("-" if gap is None else f"{gap:+.0%}").rjust(10))
    return 0


def _predict(args) -> int:
    """Kernel-regression outputs at the ``--test`` points: one line per point, comma-separated columns."""
    x, y = load_labelled(args.file, args.labels, args.label_column)
    x_test = load_labelled_points(args.test)[0]
    out = predict(x, y, x_test, depth=args.depth, activation=args.activation, sigma_w=args.sigma_w,
                  sigma_b=args.sigma_b, ridge=args.ridge)
    if args.json:
        print(json.dumps(out.tolist()))
        return 0
    for row in out.reshape(out.shape[0], -1):
        print(",".join(repr(float(v)) for v in row))
    return 0


def _common(p, remote_options) -> None:
    p.add_argument("file", help="data: .npy, CSV (one point per line, no header), or .npz of x and y")
    p.add_argument("--labels", metavar="FILE", default=None,
                   help="labels: .npy of shape (n,) or (n, k), or CSV with one row per point")
    p.add_argument("--label-column", metavar="N", type=int, default=None,
                   help="take the labels from column N of the data file (0-based; -1 the last) instead")
    p.add_argument("--depth", type=int, required=True, help="number of weight layers l >= 1")
    p.add_argument("--activation", default="relu", help=_ACT_HELP)
    remote_options(p)
    p.set_defaults(plot=None)


def add_commands(sub, remote_options, compute, local_options) -> None:
    """Register ``dynamics``, ``learning-curve`` and ``predict`` on the CLI's sub-parsers.

    ``local_options(parser)`` adds the options of a command computed here only (``predict``:
    ``--sigma-w``, ``--sigma-b``, ``--json``, ``--quiet``, ``--debug``).
    ``remote_options(parser)`` adds ``--server``, ``--json``, ...; ``compute(args, label, remote,
    local, plot)`` runs remotely or locally under a progress bar (:func:`eoc_ntk.cli._compute`)."""
    dyn = sub.add_parser("dynamics", help="training loss of gradient descent at infinite width, on your labels")
    _common(dyn, remote_options)
    dyn.add_argument("--learning-rate", type=float, default=None,
                     help="eta > 0 (default 1 / lambda_max(K/n): half of 2 / lambda_max(K/n), the largest rate at "
                          "which the linearised, infinite-width model converges)")
    dyn.add_argument("--steps", default=None, help="comma-separated step counts (default 0,1,10,100,1000,10000)")
    dyn.add_argument("--init", choices=INIT_MODES, default="zero",
                     help="nngp: also the loss expected from random initial outputs")
    dyn.set_defaults(func=lambda args: _dynamics(args, compute))

    lc = sub.add_parser("learning-curve", help="predicted vs measured test MSE of NTK regression per training size")
    _common(lc, remote_options)
    lc.add_argument("--sizes", required=True, help="comma-separated training-set sizes, each in [1, n - 1]")
    lc.add_argument("--ridge", type=float, default=0.0, help="ridge per training point (default 0)")
    lc.add_argument("--splits", type=int, default=5, help="random subsets per size (default 5)")
    lc.add_argument("--seed", type=int, default=0, help="seed of the subsets (default 0)")
    lc.set_defaults(func=lambda args: _learning(args, compute))

    pred = sub.add_parser("predict", help="outputs of the trained infinite-width network (NTK regression) at "
                                          "--test points")
    _common(pred, local_options)
    pred.add_argument("--test", metavar="FILE", required=True, help="test points: .npy, CSV or the x of an .npz")
    pred.add_argument("--ridge", type=float, default=0.0,
                      help="ridge per training point (default 0: the minimum-norm interpolant)")
    pred.set_defaults(func=_predict)
