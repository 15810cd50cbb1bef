"""The `circuitdsl` command: `check` files, print a circuit's `ir` as JSON."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from circuitdsl.api import check, elaborate
from circuitdsl.elaborate.limits import Limits
from circuitdsl.errors import CircuitError


def _args(items: list[str]) -> dict[str, str]:
    """`--arg joints=9` pairs; values are read later in the language's own syntax."""
    values: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise SystemExit(f"circuitdsl: bad --arg {item!r}: expected name=value")
        values[name.strip()] = value.strip()
    return values


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="circuitdsl", description="A declarative language for neural circuits.")
    commands = parser.add_subparsers(dest="command", required=True)
    check_cmd = commands.add_parser("check", help="check .circuit files and print a summary of each circuit")
    check_cmd.add_argument("files", nargs="+")
    ir_cmd = commands.add_parser("ir", help="print a circuit's elaborated IR as JSON")
    ir_cmd.add_argument("file")
    ir_cmd.add_argument("--circuit", help="which circuit of the file (default: the last one)")
    ir_cmd.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE", help="a circuit argument")
    for command in (check_cmd, ir_cmd):
        command.add_argument("--limit", action="append", default=[], metavar="NAME=N",
                             help="raise a resource limit, e.g. units=100000000")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    try:
        limits = Limits.parse(options.limit)
    except ValueError as error:
        print(f"circuitdsl: {error}", file=sys.stderr)
        return 2
    if options.command == "check":
        return _check(options.files, limits)
    try:
        result = elaborate(options.file, options.circuit, _args(options.arg), limits)
    except CircuitError as error:
        print(error.render(), file=sys.stderr)
        return 1
    for warning in result.warnings:
        print(warning.render(), file=sys.stderr)
    try:
        print(result.ir.to_json())
    except BrokenPipeError:  # `circuitdsl ir ... | head`: the reader left; that is not an error
        sys.stderr.close()
    return 0


def _check(files: list[str], limits: Limits) -> int:
    status = 0
    for file in files:
        try:
            results = check(file, limits)
        except CircuitError as error:
            print(error.render(), file=sys.stderr)
            status = 1
            continue
        for result in results:
            for warning in result.warnings:
                print(warning.render(), file=sys.stderr)
            print(f"{file}: {result.ir.summary()}")
    return status


if __name__ == "__main__":
    sys.exit(main())
