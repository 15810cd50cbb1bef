"""A sweep spec (TOML): variants of a circuit (or the MLP) x tasks x body sizes x trainers x seeds, checked whole
before anything runs.

    [sweep]                          # name, output and report folders (relative to the spec), seeds (a count or a
                                     # list), workers
    [task]                           # env ("swim" | "swimmer6", or a list), joints (int or list), episode_steps,
                                     # eval_episodes
    [[trainer]]                      # name = "none" (the return at init) | "es", its settings, and optionally its
                                     # own joints and seeds
    [[variant]]                      # name, model (a .circuit path relative to the spec, or "mlp"), args: circuit
                                     # arguments; a list of values is a grid over them

Every mistake (an unknown key, an unknown env or trainer, a circuit argument or value the circuit rejects) is a
CircuitError pointing at the spec's line, with a did-you-mean, raised by `load` before any cell runs.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from circuitdsl.errors import CircuitError, Reporter, Span, did_you_mean

ArgValue = str | int | float | bool
ENVS = ("swim", "swimmer6")
TRAINERS: dict[str, dict[str, Any]] = {"none": {}, "es": {"generations": 20, "population": 8, "sigma": 0.02, "lr": 0.01,
                               "weight_decay": 0.005, "eval_every": 5, "backend": "jax"}}
KEYS = {"sweep": {"name", "output", "report", "seeds", "workers"},
        "task": {"env", "joints", "episode_steps", "eval_episodes"},
        "trainer": {"name", "joints", "seeds", *TRAINERS["es"]},
        "variant": {"name", "model", "args"}}
MAX_UNITS = 100_000  # a grid larger than this is refused before it is expanded


@dataclass(frozen=True)
class Unit:
    """One run: a variant's circuit with its arguments, on one task and body, trained one way, from one seed."""

    variant: str
    model: str
    args: dict[str, ArgValue]
    env: str
    joints: int
    trainer: str
    settings: dict[str, Any]
    seed: int
    episode_steps: int
    eval_episodes: int

    @property
    def cell(self) -> str:
        """The grid cell, every coordinate but the seed, as readable text."""
        args = ", ".join(f"{k}={v}" for k, v in self.args.items())
        return f"{self.variant}{f' [{args}]' if args else ''} | {self.env} | {self.joints} joints | {self.trainer}"

    @property
    def run_id(self) -> str:
        """A stable id of the unit: the hash of everything that decides its result."""
        text = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:16]


@dataclass
class Spec:
    """A parsed, checked sweep spec."""

    path: Path
    name: str
    output: Path
    workers: int
    report: Path
    units: list[Unit] = field(default_factory=list)

    @property
    def variants(self) -> list[str]:
        """The variant names in the spec's order (the report lists them so)."""
        return list(dict.fromkeys(unit.variant for unit in self.units))


def load(path: str | Path, output: str | Path | None = None) -> Spec:
    """Read and check a spec; every circuit variant is elaborated once per body size, so a bad argument fails here.
    `output`, when given, replaces the spec's results folder (and its report folder, when the spec names none)."""
    path = Path(path)
    reporter = Reporter()
    try:
        text = path.read_text()
    except OSError as error:
        raise reporter.fail("E104", f"cannot read sweep spec '{path}': {error.strerror}", None) from None
    reporter.sources[str(path)] = text
    checker = _Checker(path, text, reporter)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise reporter.fail("E001", f"not valid TOML: {error}", checker.at_position(str(error))) from None
    checked = checker.spec(data)
    if output is not None:
        if checked.report == checked.output:
            checked.report = Path(output)
        checked.output = Path(output)
    return checked


class _Checker:
    """Checks a spec's tables, with each error at the line of the key it is about."""

    def __init__(self, path: Path, text: str, reporter: Reporter) -> None:
        self.path, self.text, self.reporter = path, text, reporter
        self.lines = text.split("\n")
        self.section: tuple[str, int] | None = None  # the table being checked, for error places
        self.variant_index: dict[str, int] = {}  # a variant's name -> its [[variant]] table

    def spec(self, data: dict[str, Any]) -> Spec:
        self.keys(data, {"sweep", "task", "trainer", "variant"}, "table")
        sweep, task = data.get("sweep", {}), data.get("task", {})
        for table, keys in (("sweep", sweep), ("task", task)):
            self.section = (table, 0)
            if not isinstance(keys, dict):
                raise self.fail("E301", f"'{table}' is a table, written [{table}]", self.where(table))
            self.keys(keys, KEYS[table], f"key of [{table}]")
        self.section = ("sweep", 0)
        seeds = self.seeds(sweep.get("seeds", 1), "seeds")
        output = self.path.parent / str(sweep.get("output", f"results/{self.path.stem}"))
        report = self.path.parent / str(sweep["report"]) if "report" in sweep else output
        workers = self.number(sweep.get("workers", 2), int, "workers", 1)
        self.section = ("task", 0)
        envs = self.listed(task.get("env", "swim"), str, "env")
        for env in envs:
            self.member(env, ENVS, "env", "swimmer task")
        joints = self.bodies(task.get("joints", 5))
        steps = self.number(task.get("episode_steps", 1000), int, "episode_steps", 1)
        episodes = self.number(task.get("eval_episodes", 1), int, "eval_episodes", 1)
        variants: list[tuple[str, str, dict[str, ArgValue]]] = []
        for i, variant in enumerate(self.tables(data, "variant")):
            self.section = ("variant", i)
            variants += self.variant(variant)
            self.variant_index.setdefault(variants[-1][0], i)
        if not variants:
            raise self.fail("E204", "a sweep needs at least one [[variant]]", None)
        units: list[Unit] = []
        for i, trainer in enumerate(self.tables(data, "trainer") or [{"name": "none"}]):
            self.section = ("trainer", i)
            name, settings, own_joints, own_seeds = self.trainer(trainer)
            # seed-major: a sweep stopped part-way has every cell at fewer seeds, not some cells at none
            grid = itertools.product(own_seeds or seeds, variants, envs, own_joints or joints)
            for seed, (vname, model, args), env, body in grid:
                units.append(Unit(vname, model, args, env, body, name, settings, seed, steps, episodes))
                if len(units) > MAX_UNITS:
                    raise self.fail("E704", f"the sweep has more than {MAX_UNITS} runs", None)
        self.check_circuits(units)
        return Spec(self.path, str(sweep.get("name", self.path.stem)), output, workers, report, units)

    def variant(self, table: dict[str, Any]) -> list[tuple[str, str, dict[str, ArgValue]]]:
        """One [[variant]]: its model and every combination of its argument lists."""
        self.keys(table, KEYS["variant"], "key of [[variant]]")
        model = str(table.get("model", ""))
        name = str(table.get("name", Path(model).stem or "variant"))
        args = table.get("args", {})
        if not isinstance(args, dict):
            raise self.fail("E301", "args is a table of circuit arguments, e.g. args = { signs = \"none\" }",
                            self.where("args"))
        if model == "mlp":
            if args:
                raise self.fail("E203", f"variant '{name}': the MLP takes no circuit arguments",
                                self.where("args"))
            return [(name, model, {})]
        file = self.path.parent / model
        if not model or not file.is_file():
            raise self.fail("E104", f"variant '{name}': no circuit file '{model}' (paths are relative to the spec)",
                            self.where("model"), ['model = "mlp" for the MLP baseline'])
        grid = {k: self.listed(v, (str, int, float, bool), k) for k, v in args.items()}
        return [(name, str(file), dict(zip(grid, combo, strict=True))) for combo in itertools.product(*grid.values())]

    def trainer(self, table: dict[str, Any]) -> tuple[str, dict[str, Any], list[int], list[int]]:
        self.keys(table, KEYS["trainer"], "key of [[trainer]]")
        name = str(table.get("name", "none"))
        self.member(name, TRAINERS, "name", "trainer")
        settings: dict[str, Any] = dict(TRAINERS[name])
        for key, value in table.items():
            if key in ("name", "joints", "seeds"):
                continue
            if key not in settings:
                raise self.fail("E203", f"trainer '{name}' has no setting '{key}'", self.where(key),
                                [f"settings: {', '.join(settings) or 'none'}"])
            settings[key] = self.number(value, type(settings[key]), key, 0) if key != "backend" else value
        if name == "es":
            self.member(str(settings["backend"]), ("torch", "jax"), "backend", "backend")
            if settings["population"] < 2 or settings["population"] % 2:
                raise self.fail("E801", f"population must be an even number >= 2, not {settings['population']}",
                                self.where("population"))
        joints = self.bodies(table["joints"]) if "joints" in table else []
        seeds = self.seeds(table["seeds"], "seeds") if "seeds" in table else []
        return name, settings, joints, seeds

    def check_circuits(self, units: list[Unit]) -> None:
        """Elaborate each distinct (model, args, joints) once: an argument the circuit rejects fails here."""
        seen: set[str] = set()
        from circuitdsl.envs.controllers import load_circuit

        for unit in units:
            key = json.dumps([unit.model, unit.args, unit.joints], sort_keys=True)
            if unit.model == "mlp" or key in seen:
                continue
            seen.add(key)
            self.section = ("variant", self.variant_index[unit.variant])
            try:
                load_circuit(Path(unit.model), unit.joints, unit.args)
            except CircuitError as error:
                first = error.diagnostics[0]
                name = next((k for k in unit.args if first.span is not None and k in first.span.file), None)
                where = f"{name} = {unit.args[name]!r}" if name else str(first.span)
                raise self.fail(first.code, f"variant '{unit.variant}': {first.message}",
                                self.where(name or "model"),
                                [*first.notes, f"at {where}, {unit.joints} joints"]) from None

    # ---- small readers, each failing at the key's line -------------------------------------------------
    def keys(self, table: dict[str, Any], allowed: set[str], what: str) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail("E203", f"unknown {what} '{key}'", self.where(key),
                                [did_you_mean(key, allowed), f"expected: {', '.join(sorted(allowed))}"])

    def tables(self, data: dict[str, Any], name: str) -> list[dict[str, Any]]:
        tables = data.get(name, [])
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            raise self.fail("E301", f"'{name}' is a list of tables, written [[{name}]]", self.where(name))
        return tables

    def member(self, value: str, allowed: Any, key: str, what: str) -> None:
        if value not in allowed:
            raise self.fail("E201", f"unknown {what} '{value}'", self.where(key),
                            [did_you_mean(value, allowed), f"expected: {', '.join(allowed)}"])

    def listed(self, value: object, kind: type | tuple[type, ...], key: str) -> list[Any]:
        values = value if isinstance(value, list) else [value]
        for v in values:
            if not isinstance(v, kind) or (isinstance(v, bool) and kind in (int, float)):
                raise self.fail("E301", f"'{key}' takes {getattr(kind, '__name__', 'plain')} values, not {v!r}",
                                self.where(key))
        return list(values)

    def number(self, value: object, kind: type, key: str, least: float) -> Any:
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool) or value < least:  # type: ignore[operator]
            raise self.fail("E301", f"'{key}' must be {'an' if kind is int else 'a'} {kind.__name__} >= {least:g}, "
                                    f"not {value!r}", self.where(key))
        return value

    def bodies(self, value: object) -> list[int]:
        """Body sizes: the swimmer has at least 2 joints."""
        return [self.number(v, int, "joints", 2) for v in self.listed(value, int, "joints")]

    def seeds(self, value: object, key: str) -> list[int]:
        if isinstance(value, int) and not isinstance(value, bool):
            return list(range(self.number(value, int, key, 1)))
        return [self.number(v, int, key, 0) for v in self.listed(value, int, key)]

    def where(self, key: str) -> Span | None:
        """The line that sets `key` in the current section (the table being checked), as a span."""
        start, end = self._section_lines()
        pattern = re.compile(rf"(^|[\s{{,])({re.escape(key)})\s*=")
        for i in range(start, end):
            match = pattern.search(self.lines[i].split("#")[0])
            if match:
                return Span(file=str(self.path), line=i + 1, column=match.start(2) + 1, end_line=i + 1,
                            end_column=match.end(2) + 1)
        return None

    def _section_lines(self) -> tuple[int, int]:
        """[first, last) line indices of the current section: the `index`-th `[name]` / `[[name]]` table."""
        if self.section is None:
            return 0, len(self.lines)
        name, index = self.section
        header = re.compile(rf"^\s*\[\[?\s*{re.escape(name)}\s*\]\]?")
        starts = [i for i, line in enumerate(self.lines) if header.match(line)]
        if index >= len(starts):
            return 0, len(self.lines)
        start = starts[index]
        end = next((i for i in range(start + 1, len(self.lines)) if self.lines[i].lstrip().startswith("[")),
                   len(self.lines))
        return start, end

    def at_position(self, message: str) -> Span | None:
        match = re.search(r"line (\d+), column (\d+)", message)
        if not match:
            return None
        line, column = int(match.group(1)), int(match.group(2))
        return Span(file=str(self.path), line=line, column=column, end_line=line, end_column=column + 1)

    def fail(self, code: str, message: str, span: Span | None, notes: list[str | None] | None = None) -> CircuitError:
        return self.reporter.fail(code, message, span, notes or [])
