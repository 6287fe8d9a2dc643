"""The ``eoc-ntk`` console script.

- ``eoc-ntk serve`` (the API) and ``eoc-ntk worker`` (an RQ worker);
- ``eoc-ntk spectrum FILE --depth L --activation relu``: eigenvalues and condition number of K/n;
- ``eoc-ntk sweep FILE --depths 1:100 --activations relu,abs --plot out.png``: condition
  number vs depth with the depth limit;
- ``eoc-ntk dynamics FILE --labels Y --depth L`` and ``eoc-ntk learning-curve FILE --label-column -1
  --depth L --sizes 50,100``: what the spectrum means for training on your labels (:mod:`eoc_ntk.cli.learning`);
- ``eoc-ntk reproduce --out DIR``: the paper-reproduction report on scikit-learn's digits.

``spectrum`` and ``sweep`` compute locally, or on a running service with ``--server URL``
(``--api-key`` or ``EOC_NTK_API_KEY``); both show a progress bar on stderr (``--quiet`` hides
it) and print JSON with ``--json``.

``serve`` and ``worker`` are plugins: the packages :mod:`service` and :mod:`jobs` register them
in the entry-point group ``eoc_ntk.commands`` (``pyproject.toml``), and this module looks them
up by name, so the CLI never imports the service or the job machinery. Without the
``[service]`` extra they say which ``pip install`` they need.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from importlib.metadata import entry_points

from eoc_ntk import analyze, plots
from eoc_ntk.cli import learning as cli_learning
from eoc_ntk.client import ApiError, Client
from eoc_ntk.core.activations import is_smooth, parse_activation, parse_activations
from eoc_ntk.core.jsonsafe import to_jsonable
from eoc_ntk.core.labelled_files import load_labelled_points
from eoc_ntk.core.model import Model
from eoc_ntk.core.sweep import activation_sweep
from eoc_ntk.core.validation import parse_depths
from eoc_ntk.reproduce import reproduce
from eoc_ntk.reproduce_smooth import SMOOTH_DEPTHS

__all__ = ["main", "ProgressBar"]

_FILE_HELP = "data: .npy, CSV (one point per line, no header), or .npz of x (and y)"


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class ProgressBar:
    """A one-line progress bar on a terminal (``[#####.....]  50%  3.1 s elapsed, ~3.1 s left``).

    Silent when disabled or when ``stream`` is not a terminal (a file or a pipe gets no ``\\r``
    frames). The estimate left is ``elapsed * (1 - p) / p`` at progress ``p`` (the API's
    ``eta_seconds``).
    """

    def __init__(self, label: str, stream=None, enabled: bool = True, width: int = 30):
        self.label, self.stream, self.width = label, stream or sys.stderr, width
        self.enabled = enabled and _is_terminal(self.stream)
        self.start = time.monotonic()
        self.fraction = -1.0

    def __call__(self, fraction: float) -> None:
        fraction = min(1.0, max(0.0, float(fraction)))
        if not self.enabled or fraction == self.fraction:
            return
        self.fraction = fraction
        done = int(round(fraction * self.width))
        elapsed = time.monotonic() - self.start
        eta = f", ~{elapsed * (1.0 - fraction) / fraction:.1f} s left" if 0.0 < fraction < 1.0 else ""
        self.stream.write(f"\r{self.label} [{'#' * done}{'.' * (self.width - done)}] {fraction:4.0%}"
                          f"  {elapsed:.1f} s elapsed{eta}\x1b[K")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.fraction >= 0:
            self.stream.write("\n")
            self.stream.flush()


def _client(args) -> Client:
    return Client(args.server, api_key=args.api_key or os.environ.get("EOC_NTK_API_KEY") or None,
                  timeout=args.timeout)


def _fmt(v) -> str:
    return "inf" if v is None or (isinstance(v, float) and math.isinf(v)) else f"{float(v):.6g}"


def _compute(args, label: str, remote, local, plot) -> dict:
    """``remote(client, bar)`` on ``--server`` or ``local(bar)`` here, under a progress bar; the result
    JSON-safe (infinities as None), drawn by ``plot(result, path)`` when ``--plot`` is given."""
    bar = ProgressBar(label, enabled=not (args.quiet or args.json))
    try:
        if args.server:
            with _client(args) as client:
                result = remote(client, bar)
        else:
            result = local(bar)
    finally:
        bar.close()
    result = to_jsonable(result)
    if args.plot:
        width, height = args.size if args.size else (None, None)
        plot(result, args.plot, width=width, height=height, dpi=args.dpi)
    return result


def _figure_size(text: str) -> tuple[float, float]:
    """``--size 7.5x4.2``: width and height of the figure in inches."""
    parts = text.lower().replace("*", "x").split("x")
    try:
        width, height = (float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size {text!r}: give WIDTHxHEIGHT in inches, e.g. 7.5x4.2") from None
    return width, height


def _plot_options(p, what: str) -> None:
    p.add_argument("--plot", metavar="OUT", default=None, help=f"write {what} to OUT (.png, .pdf, .svg or .eps)")
    p.add_argument("--size", metavar="WxH", type=_figure_size, default=None,
                   help="figure size in inches for --plot (default 7.5x4.2)")
    p.add_argument("--dpi", type=int, default=None, help="resolution of a --plot PNG (default 300)")


def _points(path: str):
    """The points of the data FILE: ``.npy``, CSV, or the ``x`` of an ``.npz`` (its ``y`` unused here)."""
    return load_labelled_points(path)[0]


def _spectrum(args) -> int:
    x = _points(args.file)
    act = parse_activation(args.activation)
    result = _compute(args, f"spectrum depth {args.depth}",
                      lambda client, bar: client.spectrum(x, depth=args.depth, activation=act, sigma_w=args.sigma_w,
                                                          sigma_b=args.sigma_b, progress=bar),
                      lambda bar: analyze(x, Model(args.depth, activation=act, sigma_w=args.sigma_w,
                                                   sigma_b=args.sigma_b), progress=bar),
                      plots.plot_spectrum)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"n = {result['n']}, m0 = {result['m0']}, depth {args.depth}, activation {act.label} "
          f"({_model_text(act, result['model'])})")
    print(f"lambda_min = {_fmt(result['lambda_min'])}   lambda_max = {_fmt(result['lambda_max'])}   "
          f"condition number = {_fmt(result['condition_number'])}")
    if result["singular"]:
        print(f"singular: {result.get('singular_reason')}")
    icd = result.get("icd")
    if icd:
        print(f"ICD: max relative error {_fmt(icd['max_rel_error'])}; Weyl bounds lambda_min in "
              f"[{_fmt(icd['lambda_min_bounds'][0])}, {_fmt(icd['lambda_min_bounds'][1])}], lambda_max in "
              f"[{_fmt(icd['lambda_max_bounds'][0])}, {_fmt(icd['lambda_max_bounds'][1])}]")
    if args.plot:
        print(f"plot written to {args.plot}")
    return 0


def _model_text(act, model: dict) -> str:
    """``a = .., b = .., Delta = ..`` for the family; ``sigma_w = .., sigma_b = .., q* = ..`` for a smooth one."""
    if is_smooth(act):
        eoc = " (edge of chaos)" if model.get("chi") == 1.0 else f", chi = {_fmt(model.get('chi'))}"
        slope = model.get("variance_slope")
        stability = (f"; q* repels: variance-map slope {slope:.4g} > 1 (docs/math.md §9)"
                     if isinstance(slope, float) and slope >= 1.0 else "")
        return (f"sigma_w = {_fmt(model['sigma_w'])}, sigma_b = {_fmt(model['sigma_b'])}, "
                f"q* = {_fmt(model.get('q_star'))}{eoc}{stability}")
    return f"a = {act.a:g}, b = {act.b:g}, Delta = {model['delta']:.4g}"


def _sweep(args) -> int:
    x = _points(args.file)
    depths = parse_depths(args.depths)
    acts = parse_activations(args.activations)
    result = _compute(args, f"sweep {len(depths)} depths x {len(acts)} activations",
                      lambda client, bar: client.sweep(x, depths=depths, activations=acts, sigma_w=args.sigma_w,
                                                       sigma_b=args.sigma_b, progress=bar),
                      lambda bar: activation_sweep(x, depths, acts, sigma_w=args.sigma_w, sigma_b=args.sigma_b,
                                                   progress=bar),
                      plots.plot_sweep)
    if args.json:
        print(json.dumps(result))
        return 0
    labels = [a.label for a in acts]
    width = max(12, *(len(label) + 2 for label in labels))
    print("depth".rjust(6) + "".join(label.rjust(width) for label in labels))
    for i, d in enumerate(result["depths"]):
        print(str(d).rjust(6) + "".join(_fmt(r["condition_number"][i]).rjust(width) for r in result["results"]))
    print("limit".rjust(6) + "".join(_limit_text(r).rjust(width) for r in result["results"]))
    for act, r in zip(acts, result["results"], strict=True):
        if is_smooth(act):
            print(f"{act.label}: {_model_text(act, r['activation'])}")
    singular: dict[str, list[str]] = {}  # one line per set of depths and reason, naming each activation
    for act, r in zip(acts, result["results"], strict=True):
        if r.get("singular_reason"):
            key = f"at depth {_singular_depths(result['depths'], r)}: {r['singular_reason']}"
            singular.setdefault(key, []).append(act.label)
    for key, names in singular.items():
        print(f"{', '.join(names)}: cond = inf (singular) {key}")
    for act, r in zip(acts, result["results"], strict=True):
        if r.get("limit_note"):
            print(f"{act.label}: limit n/a: {r['limit_note']}")
    if args.plot:
        print(f"plot written to {args.plot}")
    return 0


def _limit_text(r: dict) -> str:
    """The limit row's cell: "n/a" where the limit is not defined (``limit_note`` says why), "inf" where singular."""
    if r.get("limit_note") or (r.get("limit_condition_number") is None and r.get("delta", 1) == 0):
        return "n/a"
    return _fmt(r.get("limit_condition_number"))


def _singular_depths(depths: list, r: dict) -> str:
    found = [d for d, s in zip(depths, r["singular"], strict=True) if s]
    return ", ".join(map(str, found[:10])) + (", ..." if len(found) > 10 else "")


def _reproduce(args) -> int:
    bar = ProgressBar("reproduce", enabled=not args.quiet)
    try:
        smooth = (SMOOTH_DEPTHS if args.smooth_depths is None else () if args.smooth_depths.strip().lower() == "none"
                  else parse_depths(args.smooth_depths))
        path = reproduce(args.out, n=args.n, seed=args.seed, progress=bar, smooth_depths=smooth)
    finally:
        bar.close()
    print(f"report written to {path}")
    return 0


def _remote_options(p) -> None:
    p.add_argument("--server", metavar="URL", default=None,
                   help="send the work to a running service (e.g. http://127.0.0.1:8000) instead of computing here")
    p.add_argument("--api-key", default=None, help="API key for --server (default: $EOC_NTK_API_KEY)")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for a job on --server")
    _local_options(p)


def _local_options(p) -> None:
    p.add_argument("--sigma-w", type=float, default=None, help="weight std (default: the edge of chaos)")
    p.add_argument("--sigma-b", type=float, default=0.0, help="bias std (default 0)")
    p.add_argument("--json", action="store_true", help="print the result as JSON (infinities as null)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    _debug_option(p)


def _debug_option(p) -> None:
    p.add_argument("--debug", action="store_true", help="on an error, print the traceback, not one line")


#: Plugin commands (entry-point group ``eoc_ntk.commands``) and the extra that provides each.
PLUGIN_GROUP = "eoc_ntk.commands"
PLUGINS = {"serve": ("run the REST API (same as python -m service)", "service"),
           "worker": ("run an RQ worker on REDIS_URL (--check: is one of this host alive?)", "service")}


def _plugin(name: str):
    """The ``main(argv)`` registered for command ``name``, or None when it is not installed."""
    for ep in entry_points(group=PLUGIN_GROUP):
        if ep.name == name:
            return ep.load()
    return None


def _run_plugin(name: str, argv: list[str]) -> int:
    extra = PLUGINS.get(name, ("", "service"))[1]
    missing = f"eoc-ntk {name}: needs the [{extra}] extra: pip install 'eoc-ntk[{extra}]'"
    try:
        plugin = _plugin(name)
        if plugin is None:
            print(missing, file=sys.stderr)
            return 1
        return int(plugin(argv) or 0)
    except ModuleNotFoundError as exc:
        print(f"{missing} (missing module {exc.name})", file=sys.stderr)
        return 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="eoc-ntk", description="Infinite-width NTK spectra at the edge of chaos.")
    sub = parser.add_subparsers(dest="command", required=True)

    plugin_names = dict.fromkeys([*PLUGINS, *(ep.name for ep in entry_points(group=PLUGIN_GROUP))])
    for name in plugin_names:
        helptext = PLUGINS.get(name, (f"plugin command {name}",))[0]
        sub.add_parser(name, help=helptext + " (options: eoc-ntk %s --help)" % name, add_help=False)

    act_help = ("relu | abs | linear | leaky_relu[:SLOPE] | A,B for phi(s) = A*s + B*|s|, or a smooth one: "
                "erf | tanh | gelu | silu (swish), at the edge of chaos for --sigma-b (give --sigma-b > 0, e.g. 0.1)")
    spec = sub.add_parser("spectrum", help="eigenvalues and condition number of K/n for one model")
    spec.add_argument("file", help=_FILE_HELP)
    spec.add_argument("--depth", type=int, required=True, help="number of weight layers l >= 1")
    spec.add_argument("--activation", default="relu", help=act_help + " (default relu)")
    _plot_options(spec, "the sorted eigenvalues")
    _remote_options(spec)
    spec.set_defaults(func=_spectrum)

    sweep = sub.add_parser("sweep", help="condition number of K/n vs depth per activation, with the depth limit")
    sweep.add_argument("file", help=_FILE_HELP)
    sweep.add_argument("--depths", default="1:100", help="e.g. 1:100, 1:200:10 or 1,2,5,10 (default 1:100)")
    sweep.add_argument("--activations", default="relu,abs",
                       help="comma- or ;-separated list, each " + act_help + " (default relu,abs)")
    _plot_options(sweep, "the plot")
    _remote_options(sweep)
    sweep.set_defaults(func=_sweep)

    # dynamics, learning-curve, predict (docs/learning.md)
    cli_learning.add_commands(sub, _remote_options, _compute, _local_options)

    rep = sub.add_parser("reproduce", help="the paper's claims on scikit-learn's digits: a markdown report with "
                         "figures")
    rep.add_argument("--out", default="eoc-ntk-report", help="output folder (default ./eoc-ntk-report)")
    rep.add_argument("--n", type=int, default=200, help="number of digits used (default 200)")
    rep.add_argument("--seed", type=int, default=0, help="seed of the subsample (default 0)")
    rep.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    rep.add_argument("--smooth-depths", default=None, metavar="DEPTHS",
                     help="depths of the section on ReLU, abs, erf, tanh, GELU, SiLU at their edge of chaos "
                          "(default 1,2,3,5,7,10,15,20,30,50,70,100, about 3 CPU minutes; 'none' leaves it out)")
    _debug_option(rep)
    rep.set_defaults(func=_reproduce)

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in plugin_names:  # the plugin parses its own options
        return _run_plugin(argv[0], argv[1:])
    args = parser.parse_args(argv)
    try:
        status = args.func(args)
        sys.stdout.flush()  # inside the try: a reader gone away is answered here, not at exit
        return status
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except KeyboardInterrupt:
        print(f"eoc-ntk {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if getattr(args, "debug", False):
            raise
        print(f"eoc-ntk {args.command}: error: {_one_line(exc, args)}", file=sys.stderr)
        return _exit_status(exc)


def _exit_status(exc: Exception) -> int:
    """2 for bad arguments or files, 1 for the service's errors and anything else."""
    if isinstance(exc, (ApiError, TimeoutError, ConnectionError)) or _is_http_error(exc):
        return 1
    return 2 if isinstance(exc, (ValueError, TypeError, OSError)) else 1


def _is_http_error(exc: Exception) -> bool:
    """An httpx transport or protocol error (the client's), told apart without importing httpx here."""
    return any(c.__module__.startswith("httpx") for c in type(exc).__mro__)


def _one_line(exc: Exception, args) -> str:
    """The error as one line: what failed, and for a service that cannot be reached, which URL."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if _is_http_error(exc) and getattr(args, "server", None):
        return (f"cannot talk to the service at {args.server}: {text} "
                "(is it running? start one with 'eoc-ntk serve'; --debug shows the traceback)")
    if not isinstance(exc, (ValueError, TypeError, OSError, ApiError, TimeoutError)):
        return f"{type(exc).__name__}: {text} (--debug shows the traceback)"
    return text


def _quiet_broken_pipe() -> int:
    """The reader of stdout went away (``eoc-ntk ... --json | head``): stop without a traceback.

    stdout is pointed at devnull so that the interpreter's final flush does not fail again.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
    return 0

