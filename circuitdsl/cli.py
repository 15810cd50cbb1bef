"""The `circuitdsl` command: `check` files, print a circuit's `ir` as JSON, `run` a circuit and plot its traces,
`draw` its diagram, `export` it to NIR / NeuroML2 / ONNX, `convert` a NIR graph into a circuit."""

from __future__ import annotations

import argparse
import difflib
import functools
import gc
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import numpy as np

from circuitdsl import __version__
from circuitdsl.api import Elaborated, check, elaborate
from circuitdsl.elaborate.sandbox import Sandbox
from circuitdsl.errors import CircuitError
from circuitdsl.extras import describe_missing, missing_extra
from circuitdsl.ir.model import CircuitIR
from circuitdsl.limits import Limits
from circuitdsl.report import REPORT_VERSION, diagnostic_json, ir_schema
from circuitdsl.stats import stats

if TYPE_CHECKING:
    from circuitdsl.envs.swim import SwimLoop
    from circuitdsl.errors import Diagnostic

# Exit codes, the same for every command (`circuitdsl --help` says them too):
#   0 success; 1 circuit errors (or, for `fmt --check`, files that are not formatted); 2 a usage error (a bad
#   option or option value); 3 a missing optional dependency (the message names the extra) or an environment
#   problem (graphviz's `dot` missing, a file that cannot be read).
EXIT_OK, EXIT_ERRORS, EXIT_USAGE, EXIT_ENVIRONMENT = 0, 1, 2, 3


class UsageError(Exception):
    """A bad option value on the command line (exit status 2)."""


def _args(items: list[str]) -> dict[str, str]:
    """`--arg joints=9` pairs; values are read later in the language's own syntax."""
    values: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"bad --arg {item!r}: expected name=value")
        values[name.strip()] = value.strip()
    return values


def _natural(text: str) -> int:
    """An argparse type: a whole number >= 0 (a seed)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, not {value}")
    return value


def _circuit_command(commands: Any, name: str, help: str) -> argparse.ArgumentParser:
    """A subcommand about one circuit of a file: FILE, --circuit NAME, --arg NAME=VALUE."""
    command: argparse.ArgumentParser = commands.add_parser(name, help=help)
    command.add_argument("file")
    command.add_argument("--circuit", help="which circuit of the file (default: the last one)")
    command.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE", help="a circuit argument")
    return command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="circuitdsl", description="A declarative language for neural circuits.",
                                     epilog="exit codes: 0 ok, 1 circuit errors, 2 usage, 3 missing optional "
                                     "dependency or environment")
    parser.add_argument("--version", action="version", version=f"circuitdsl {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    check_cmd = commands.add_parser("check", help="check .circuit files and print a summary of each circuit")
    check_cmd.add_argument("files", nargs="+")
    check_cmd.add_argument("--stats", action="store_true", help="also print units, synapses per kind, free and "
                           "fixed parameters and the effective rank of the initial weight matrix")
    check_cmd.add_argument("--circuit", help="check only this circuit of each file (default: every circuit whose "
                           "arguments all have defaults)")
    check_cmd.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE",
                           help="a circuit argument (checks the last circuit of each file, or --circuit's)")
    check_cmd.add_argument("--format", choices=["text", "json"], default="text",
                           help="text: summaries on stdout, diagnostics on stderr (default); json: one JSON "
                           "document on stdout")
    fmt_cmd = commands.add_parser("fmt", help="format .circuit files in place (or standard input to standard "
                                  "output)")
    fmt_cmd.add_argument("files", nargs="*", help="files to format; none, or '-', formats standard input")
    fmt_cmd.add_argument("--check", action="store_true", help="change nothing; name each file that is not "
                         "formatted and exit 1 if there is one")
    fmt_cmd.add_argument("--diff", action="store_true", help="change nothing; print what would change as a "
                         "unified diff")
    commands.add_parser("schema", help="print the JSON Schema of the IR that `ir` prints")
    commands.add_parser("lsp", help="run the language server on standard input and output (the 'lsp' extra)")
    ir_cmd = _circuit_command(commands, "ir", "print a circuit's elaborated IR as JSON")
    run_cmd = _circuit_command(commands, "run", "simulate a circuit (torch backend) and plot its activity traces")
    run_cmd.add_argument("--steps", type=int, default=200, help="time steps to simulate (default 200)")
    run_cmd.add_argument("--input", action="append", default=[], metavar="NAME=VALUE|FILE.npy",
                         help="an input: a constant, or a .npy array [shape] or [time, shape]; others are 0")
    run_cmd.add_argument("--seed", type=_natural, default=0,
                         help="seed (>= 0) of the parameters' init rules (and of --env)")
    run_cmd.add_argument("--env", choices=["swim"], help="close the loop through a world: 'swim' = the dm-control "
                         "swimmer (input q = joint angles, output torque = actions)")
    run_cmd.add_argument("--plot", metavar="OUT.png", help="write the traces as a figure (.png, .svg, .pdf)")
    run_cmd.add_argument("--save", metavar="OUT.npz", help="write the traces as arrays, one per signal")
    run_cmd.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                         help="the floating-point type to simulate in (default float32)")
    run_cmd.add_argument("--record", action="append", default=[], metavar="NAME,NAME",
                         help="also record these, by name: a neuron state (RS.v), a neuron's let or spike (h1.spk)")
    draw_cmd = _circuit_command(commands, "draw", "draw a circuit's diagram (DOT text on stdout, or an image with -o)")
    draw_cmd.add_argument("-o", "--output", metavar="OUT.svg", help="write .svg, .png, .pdf (these need graphviz's "
                          "`dot`) or .dot; without it, DOT text goes to stdout")
    draw_cmd.add_argument("--view", choices=["folded", "unrolled"], default="folded",
                          help="folded: a box per population, repeats folded ×N (default); unrolled: one node per "
                          "neuron")
    draw_cmd.add_argument("--depth", type=int, metavar="N",
                          help="folded view: draw sub-circuits nested deeper than N as one box each")
    export_cmd = _circuit_command(commands, "export", "write a circuit as NIR (.nir), NeuroML2 + LEMS (.nml) or a "
                                  "stateful ONNX step (.onnx), with a fidelity report beside it")
    export_cmd.add_argument("-o", "--output", required=True, metavar="OUT.nir|OUT.net.nml|OUT.onnx")
    convert_cmd = commands.add_parser("convert", help="convert a NIR graph (.nir) into a .circuit file (weights in a "
                                      ".npz beside it), with a fidelity report")
    convert_cmd.add_argument("file", metavar="MODEL.nir")
    convert_cmd.add_argument("-o", "--output", required=True, metavar="OUT.circuit")
    for command in (export_cmd, convert_cmd):
        command.add_argument("--allow-lossy", action="store_true",
                             help="write the result even where parts cannot be converted (the report lists them)")
        command.add_argument("--dt", type=float, metavar="SECONDS",
                             help="the time step (default: the circuit's or graph's own, else 1e-4 s)")
    export_cmd.add_argument("--seed", type=_natural, default=0, help="seed (>= 0) of the parameters' init rules")
    export_cmd.add_argument("--input", action="append", default=[], metavar="NAME=VALUE",
                            help="NeuroML2: hold an input port at this constant (default 1)")
    export_cmd.add_argument("--steps", type=int, default=100,
                            help="NeuroML2: steps the LEMS simulation runs and is compared over (default 100)")
    from circuitdsl.sweep.command import add_command

    add_command(commands)
    for command in (check_cmd, ir_cmd, run_cmd, draw_cmd, export_cmd, convert_cmd):
        command.add_argument("--limit", action="append", default=[], metavar="NAME=N",
                             help="raise a resource limit, e.g. units=100000000 (docs/limits.md)")
        command.add_argument("--include", action="append", default=[], metavar="DIR",
                             help="a folder imports and data files may also be read from (docs/limits.md)")
        command.add_argument("--allow-absolute", action="store_true",
                             help="let imports and data files name absolute paths")
    return parser


class _Command(Protocol):
    """A command-line entry point: its arguments, or sys.argv's when none are given."""

    def __call__(self, argv: Sequence[str] | None = None) -> int: ...


def _exit_codes(command: Callable[[Sequence[str] | None], int]) -> _Command:
    """A usage error exits 2 and a missing optional dependency 3, each as one line on stderr, never a traceback."""

    @functools.wraps(command)
    def run(argv: Sequence[str] | None = None) -> int:
        try:
            return command(argv)
        except UsageError as error:
            print(f"circuitdsl: {error}", file=sys.stderr)
            return EXIT_USAGE
        except ImportError as error:
            print(f"circuitdsl: {describe_missing(error)}", file=sys.stderr)
            return EXIT_ENVIRONMENT

    return run


@_exit_codes
def main(argv: Sequence[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    if options.command == "sweep":
        from circuitdsl.sweep.command import main as sweep_main

        return sweep_main(options)
    if options.command in _WITHOUT_CIRCUIT:
        return _WITHOUT_CIRCUIT[options.command](options)
    try:
        limits = Limits.parse(options.limit)
    except ValueError as error:
        print(f"circuitdsl: {error}", file=sys.stderr)
        return 2
    if options.command == "check":
        return _check(options, limits)
    if options.command == "convert":
        return _interop(options, None)
    if options.command == "run" and (problem := _run_options(options)):
        print(f"circuitdsl: {problem}", file=sys.stderr)
        return 2
    sandbox = _sandbox(options, options.file)
    try:
        result = elaborate(options.file, options.circuit, _args(options.arg), limits, sandbox=sandbox)
    except CircuitError as error:
        print(error.render(), file=sys.stderr)
        return 1
    for warning in result.warnings:
        print(warning.render(), file=sys.stderr)
    if options.command == "run":
        return _run(result.ir, options, limits)
    if options.command == "draw":
        return _draw(result.ir, options)
    if options.command == "export":
        return _interop(options, result.ir)
    try:
        print(result.ir.to_json())
    except BrokenPipeError:  # `circuitdsl ir ... | head`: the reader left; that is not an error
        sys.stderr.close()
    return 0


def _sandbox(options: argparse.Namespace, file: str) -> Sandbox:
    """The folders `file` may read imports and data from: its own, and those of --include."""
    return Sandbox.around(file, options.include, options.allow_absolute)


def _run_options(options: argparse.Namespace) -> str | None:
    """What is wrong with `run`'s options, found before anything is simulated (None when nothing is)."""
    if options.steps < 1:
        return "--steps must be at least 1"
    if options.plot and Path(options.plot).suffix.lower() not in (".png", ".svg", ".pdf"):
        return f"cannot plot to {options.plot!r}: name a .png, .svg or .pdf file"
    for option, path in (("--plot", options.plot), ("--save", options.save)):
        if path and not Path(path).resolve().parent.is_dir():
            return f"cannot write {option} {path!r}: the folder {str(Path(path).parent)!r} does not exist"
    return None


def _check(options: argparse.Namespace, limits: Limits) -> int:
    """Check every file (one missing extra or broken file does not stop the others) and report as text or JSON."""
    checked = [_check_file(file, options, limits) for file in options.files]
    status = EXIT_OK
    if any(c.errors for c in checked):
        status = EXIT_ERRORS
    if any(c.missing for c in checked):
        status = EXIT_ENVIRONMENT
    if options.format == "json":
        print(json.dumps(_check_json(checked, options.stats, status), indent=2))
        return status
    for c in checked:
        if c.errors:
            print("\n\n".join(d.render() for d in c.errors), file=sys.stderr)
        if c.missing is not None:
            print(f"{c.file}: not checked: {describe_missing(c.missing)}", file=sys.stderr)
        for result in c.results:
            for warning in result.warnings:
                print(warning.render(), file=sys.stderr)
            print(f"{c.file}: {result.ir.summary()}")
            if options.stats:
                print(stats(result.ir).format())
    return status


@dataclass
class _Checked:
    """What checking one file found: its circuits, its errors, or the optional module it needs."""

    file: str
    results: list[Elaborated] = field(default_factory=list)
    errors: list[Diagnostic] = field(default_factory=list)
    missing: ImportError | None = None


def _check_file(file: str, options: argparse.Namespace, limits: Limits) -> _Checked:
    """Every circuit of the file that stands alone, or the one --circuit/--arg name; a missing extra is noted,
    so that the other files are still checked."""
    try:
        sandbox = _sandbox(options, file)
        if options.circuit is None and not options.arg:
            return _Checked(file, check(file, limits, sandbox))
        return _Checked(file, [elaborate(file, options.circuit, _args(options.arg), limits, sandbox=sandbox)])
    except CircuitError as error:
        return _Checked(file, errors=error.diagnostics)
    except ImportError as error:
        if missing_extra(error) is None:
            raise
        return _Checked(file, missing=error)


def _check_json(checked: list[_Checked], with_stats: bool, status: int) -> dict[str, Any]:
    """The `check --format json` document: per file its circuits, its diagnostics and a missing extra."""
    files = []
    for c in checked:
        circuits = [{"name": r.ir.name, "summary": r.ir.summary(),
                     **({"stats": stats(r.ir).format()} if with_stats else {})} for r in c.results]
        warnings = [w for r in c.results for w in r.warnings]
        missing = None if c.missing is None else {"module": c.missing.name, "extra": missing_extra(c.missing),
                                                  "message": describe_missing(c.missing)}
        files.append({"file": c.file, "circuits": circuits,
                      "diagnostics": [diagnostic_json(d) for d in [*c.errors, *warnings]], "missing": missing})
    return {"version": REPORT_VERSION, "exit_code": status, "files": files}


def _fmt(options: argparse.Namespace) -> int:
    """Format files in place, or only name (--check) or show (--diff) what would change; '-' is stdin."""
    check_only, diff = options.check, options.diff
    status = EXIT_OK
    for file in options.files or ["-"]:
        try:
            text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            print(f"circuitdsl: cannot read {file}: {error}", file=sys.stderr)
            status = max(status, EXIT_ENVIRONMENT)
            continue
        name = "<stdin>" if file == "-" else file
        try:
            from circuitdsl.fmt import format_source  # here: `check` needs no formatter

            formatted = format_source(text, name)
        except CircuitError as error:
            print(error.render(), file=sys.stderr)
            status = max(status, EXIT_ERRORS)
            continue
        if diff:
            sys.stdout.writelines(difflib.unified_diff(text.splitlines(keepends=True),
                                                       formatted.splitlines(keepends=True), name, name))
        if check_only and formatted != text:
            print(name)
            status = max(status, EXIT_ERRORS)
        elif not (check_only or diff):
            if file == "-":
                sys.stdout.write(formatted)
            elif formatted != text:
                Path(file).write_text(formatted, encoding="utf-8")
    return status


def _schema(options: argparse.Namespace) -> int:
    print(json.dumps(ir_schema(), indent=2))
    return EXIT_OK


def _lsp(options: argparse.Namespace) -> int:
    from circuitdsl.lsp import serve

    serve()
    return EXIT_OK


# Commands about no one circuit (no --limit, no elaboration): run before the others.
_WITHOUT_CIRCUIT: dict[str, Callable[[argparse.Namespace], int]] = {"fmt": _fmt, "schema": _schema, "lsp": _lsp}


def _run(ir: CircuitIR, options: argparse.Namespace, limits: Limits) -> int:
    """Simulate, print one line per signal (range of values), and write the figure / arrays asked for."""
    from circuitdsl.simulate import SimulationInputError, read_input, simulate  # here: `check` runs nothing

    try:
        loop = _swim_loop(ir, options.seed) if options.env == "swim" else None
        record = [name.strip() for names in options.record for name in names.split(",") if name.strip()]
        traces = simulate(ir, options.steps, {k: read_input(v) for k, v in _args(options.input).items()},
                          options.seed, loop, record, options.dtype, limits)
    except SimulationInputError as error:
        print(f"circuitdsl: {error}", file=sys.stderr)
        return 2
    for name, values in traces.signals.items():
        print(f"{name:>12} ({traces.kinds[name]}, {values.shape[1]} units): min {values.min():+.4g}, "
              f"max {values.max():+.4g}, mean {values.mean():+.4g}")
    if loop is not None:
        print(f"swim return over {options.steps} steps: {loop.total_reward:.1f} (at most {options.steps})")
    if options.save:
        np.savez(options.save, allow_pickle=True, **traces.signals)  # the default; named, no array takes its place
        print(f"traces written to {options.save}")
    if options.plot:
        from circuitdsl.plot import plot_traces

        plot_traces(traces, options.plot)
        print(f"figure written to {options.plot}")
    return 0


def _draw(ir: CircuitIR, options: argparse.Namespace) -> int:
    """Print the diagram as DOT text, or write it where -o says, in the format its suffix names."""
    from circuitdsl.draw import GraphvizNotInstalled, draw, render

    if options.output and Path(options.output).suffix.lower().lstrip(".") not in render.FORMATS:
        print(f"circuitdsl: cannot draw to {options.output!r}: name a .svg, .png, .pdf or .dot file", file=sys.stderr)
        return 2
    if options.depth is not None and options.depth < 0:
        print(f"circuitdsl: --depth must be 0 or more, not {options.depth}", file=sys.stderr)
        return 2
    graph = draw(ir, options.view, options.depth)
    if options.output is None:
        try:
            print(graph.source, end="")
        except BrokenPipeError:  # `circuitdsl draw ... | head`
            sys.stderr.close()
        return 0
    try:
        render.write(graph, options.output)
    except (GraphvizNotInstalled, OSError) as error:
        print(f"circuitdsl: {error}", file=sys.stderr)
        return EXIT_ENVIRONMENT
    print(f"diagram written to {options.output}")
    return 0


def _interop(options: argparse.Namespace, ir: CircuitIR | None) -> int:
    """`export` (ir given) or `convert`: print the fidelity report, which is also written beside the output."""
    from circuitdsl.interop import api

    try:
        if ir is None:
            report = api.convert(options.file, options.output, options.dt, options.allow_lossy)[1]
        else:
            inputs = _constants(options.input)
            report = api.export(ir, options.output, options.allow_lossy, options.dt, options.seed, inputs,
                                options.steps)
    except CircuitError as error:
        print(error.render(), file=sys.stderr)
        return 1
    except (ValueError, OSError) as error:
        print(f"circuitdsl: {error}", file=sys.stderr)
        return 2
    print(report.render())
    print(f"written: {options.output} (report: {options.output}.fidelity.txt)")
    return 0


def _constants(items: list[str]) -> dict[str, float]:
    """`--input name=1.5` pairs as numbers."""
    values = {}
    for name, value in _args(items).items():
        try:
            values[name] = float(value)
        except ValueError:
            raise ValueError(f"--input {name}={value}: expected a number") from None
    return values


def _swim_loop(ir: CircuitIR, seed: int) -> SwimLoop:
    """The swimmer whose joints match the circuit's input `q` and output `torque`."""
    from circuitdsl.simulate import SimulationInputError

    ports = {p.name: p for p in ir.inputs}
    outputs = {o.name: o for o in ir.outputs}
    if "q" not in ports or "torque" not in outputs or len(ports["q"].shape) != 1:
        raise SimulationInputError(f"--env swim needs an input q[joint] and an output torque[joint]; circuit "
                                   f"'{ir.name}' has inputs {sorted(ports)} and outputs {sorted(outputs)}")
    from circuitdsl.envs.swim import SwimLoop

    return SwimLoop(ports["q"].shape[0].size, seed)


def entry() -> NoReturn:
    """The `circuitdsl` process: `main()` on the command line's arguments, then exit with its status.

    What the command leaves (the parsed file, its IR: hundreds of thousands of objects for a large circuit) is
    moved out of the garbage collector's reach first: Python collects several times while it exits, each time
    walking every object alive, which took a quarter of a 10,000-line `check`.  The objects are still freed;
    only the collections over them are skipped."""
    status = main()
    gc.freeze()
    sys.exit(status)


if __name__ == "__main__":
    entry()
