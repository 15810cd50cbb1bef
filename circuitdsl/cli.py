"""The `circuitdsl` command: `check` files, print a circuit's `ir` as JSON, `run` a circuit and plot its traces,
`draw` its diagram."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from circuitdsl.api import check, elaborate
from circuitdsl.elaborate.limits import Limits
from circuitdsl.elaborate.sandbox import Sandbox
from circuitdsl.errors import CircuitError
from circuitdsl.ir.model import CircuitIR
from circuitdsl.simulate import SimulationInputError, read_input, simulate
from circuitdsl.stats import stats

if TYPE_CHECKING:
    from circuitdsl.envs.swim import SwimLoop


def _args(items: list[str]) -> dict[str, str]:
    """`--arg joints=9` pairs; values are read later in the language's own syntax."""
    values: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise SystemExit(f"circuitdsl: bad --arg {item!r}: expected name=value")
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
    parser = argparse.ArgumentParser(prog="circuitdsl", description="A declarative language for neural circuits.")
    commands = parser.add_subparsers(dest="command", required=True)
    check_cmd = commands.add_parser("check", help="check .circuit files and print a summary of each circuit")
    check_cmd.add_argument("files", nargs="+")
    check_cmd.add_argument("--stats", action="store_true", help="also print units, synapses per kind, free and "
                           "fixed parameters and the effective rank of the initial weight matrix")
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
    draw_cmd = _circuit_command(commands, "draw", "draw a circuit's diagram (DOT text on stdout, or an image with -o)")
    draw_cmd.add_argument("-o", "--output", metavar="OUT.svg", help="write .svg, .png, .pdf (these need graphviz's "
                          "`dot`) or .dot; without it, DOT text goes to stdout")
    draw_cmd.add_argument("--view", choices=["folded", "unrolled"], default="folded",
                          help="folded: a box per population, repeats folded ×N (default); unrolled: one node per "
                          "neuron")
    draw_cmd.add_argument("--depth", type=int, metavar="N",
                          help="folded view: draw sub-circuits nested deeper than N as one box each")
    for command in (check_cmd, ir_cmd, run_cmd, draw_cmd):
        command.add_argument("--limit", action="append", default=[], metavar="NAME=N",
                             help="raise a resource limit, e.g. units=100000000 (docs/limits.md)")
        command.add_argument("--include", action="append", default=[], metavar="DIR",
                             help="a folder imports and data files may also be read from (docs/limits.md)")
        command.add_argument("--allow-absolute", action="store_true",
                             help="let imports and data files name absolute paths")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    try:
        limits = Limits.parse(options.limit)
    except ValueError as error:
        print(f"circuitdsl: {error}", file=sys.stderr)
        return 2
    if options.command == "check":
        return _check(options, limits)
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
        return _run(result.ir, options)
    if options.command == "draw":
        return _draw(result.ir, options)
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
    status = 0
    for file in options.files:
        try:
            results = check(file, limits, _sandbox(options, file))
        except CircuitError as error:
            print(error.render(), file=sys.stderr)
            status = 1
            continue
        for result in results:
            for warning in result.warnings:
                print(warning.render(), file=sys.stderr)
            print(f"{file}: {result.ir.summary()}")
            if options.stats:
                print(stats(result.ir).format())
    return status


def _run(ir: CircuitIR, options: argparse.Namespace) -> int:
    """Simulate, print one line per signal (range of values), and write the figure / arrays asked for."""
    try:
        loop = _swim_loop(ir, options.seed) if options.env == "swim" else None
        traces = simulate(ir, options.steps, {k: read_input(v) for k, v in _args(options.input).items()},
                          options.seed, loop)
    except SimulationInputError as error:
        print(f"circuitdsl: {error}", file=sys.stderr)
        return 2
    for name, values in traces.signals.items():
        print(f"{name:>12} ({traces.kinds[name]}, {values.shape[1]} units): min {values.min():+.4g}, "
              f"max {values.max():+.4g}, mean {values.mean():+.4g}")
    if loop is not None:
        print(f"swim return over {options.steps} steps: {loop.total_reward:.1f} (at most {options.steps})")
    if options.save:
        np.savez(options.save, **traces.signals)
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
        return 1
    print(f"diagram written to {options.output}")
    return 0


def _swim_loop(ir: CircuitIR, seed: int) -> SwimLoop:
    """The swimmer whose joints match the circuit's input `q` and output `torque`."""
    ports = {p.name: p for p in ir.inputs}
    outputs = {o.name: o for o in ir.outputs}
    if "q" not in ports or "torque" not in outputs or len(ports["q"].shape) != 1:
        raise SimulationInputError(f"--env swim needs an input q[joint] and an output torque[joint]; circuit "
                                   f"'{ir.name}' has inputs {sorted(ports)} and outputs {sorted(outputs)}")
    from circuitdsl.envs.swim import SwimLoop

    return SwimLoop(ports["q"].shape[0].size, seed)


if __name__ == "__main__":
    sys.exit(main())
