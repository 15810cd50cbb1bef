"""Hostile input, bounded: every resource bomb, sandbox escape and crash found by the hostile-input probe.

Each bomb is generated here (kept small as text) and must fail with its error code, or elaborate, within a
memory ceiling measured by tracemalloc; nothing asserts a time.  Counts stand in for time where work could
run away (the instance and projection limits name the count at which they stopped).
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import circuitdsl
from circuitdsl.cli import main
from circuitdsl.ir.validate import InvalidIR
from circuitdsl.simulate import SimulationInputError, simulate

FILE = "bomb.circuit"
MiB = 2**20


def peak_of(action: Callable[[], Any]) -> tuple[Any, int]:
    """What `action` returns (or the CircuitError it raises) and the peak of memory it allocated."""
    tracemalloc.start()
    try:
        try:
            result: Any = action()
        except circuitdsl.CircuitError as error:
            result = error
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def fails_within(text: str, code: str, mib: int, limits: circuitdsl.Limits | None = None,
                 file: str = FILE) -> circuitdsl.CircuitError:
    """`text` fails with `code` (its first error) having allocated at most `mib` MiB."""
    try:  # the grammar, the libraries and the readers it needs (pandas, cect), loaded once before measuring
        circuitdsl.loads(text, file=file, limits=limits)
    except circuitdsl.CircuitError:
        pass
    error, peak = peak_of(lambda: circuitdsl.loads(text, file=file, limits=limits))
    assert isinstance(error, circuitdsl.CircuitError), f"no error for {text[:200]!r}"
    assert error.code == code, error.render()
    assert peak < mib * MiB, f"{peak / MiB:.1f} MiB allocated before {code}"
    return error


# ---- item 2: memory is bounded, limits trigger early and name the limit ---------------------------
BOMBS = {
    "forty-string-doublings": ('let s0 = "ab"\n' + "".join(f"let s{i + 1} = s{i} + s{i}\n" for i in range(40))
                               + "circuit A {\n}\n", "E708"),
    "random-p1-over-22000-squared": (("circuit A {\n  population a[n = 22000], b[n = 22000] : Graded\n"
                                     "  a -> b : random(p = 1)\n}\n"), "E703"),
    "spectral-half-a-million-modes": (("circuit A {\n  let X = grid(1000001, domain = [0, 1], periodic)\n"
                                      "  input u[c = 8, x = X]\n  population h[c = 8, x = X] : Identity\n"
                                      "  u -> h : operator(spectral, modes = 500000) over x\n}\n"), "E707"),
    "elm-memory-a-billion": (("import dendrites\ncircuit A {\n  input x[n = 4]\n"
                             "  population p[n = 4] : dendrites.ELM(memory = 1000000000)\n  x -> p : one_to_one\n}\n"),
                             "E706"),
    "neuron-param-ten-billion": (("neuron N {\n  param w[a = 100000, b = 100000] : free = 0\n  out = in\n}\n"
                                 "circuit A {\n  population p : N\n}\n"), "E706"),
    "multigrid-smoothing-a-billion": (("circuit A {\n  let X = grid(64, domain = [0, 1], periodic)\n"
                                      "  input u[x = X]\n  population h[x = X] : Identity\n"
                                      "  u -> h : operator(multigrid, levels = 3, smoothing = [1000000000, 1])\n}\n"),
                                      "E707"),
    "multigrid-levels-a-billion": (("circuit A {\n  let X = grid(64, domain = [0, 1], periodic)\n"
                                   "  input u[x = X]\n  population h[x = X] : Identity\n"
                                   "  u -> h : operator(multigrid, levels = 1000000000)\n}\n"), "E707"),
    "grid-of-ten-million": ("circuit A {\n  let X = grid(10000000)\n  input u[x = X]\n}\n", "E707"),
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_bombs_fail_with_their_code_in_bounded_memory(name: str) -> None:
    text, code = BOMBS[name]
    fails_within(text, code, 48)


def test_fifty_million_units_elaborate_without_listing_them() -> None:
    text = "circuit A {\n  input x\n  population p[k = 50000000] : Graded\n  x -> p\n}\n"
    circuitdsl.loads("circuit Warm {\n}\n", file=FILE)
    ir, peak = peak_of(lambda: circuitdsl.loads(text, file=FILE))
    assert not isinstance(ir, circuitdsl.CircuitError), ir.render()
    assert ir.units == 50_000_000 and ir.synapses == 50_000_000
    assert peak < 32 * MiB, f"{peak / MiB:.1f} MiB for a population of 50 million"


def test_instances_stop_at_the_limit_counted() -> None:
    text = "circuit S {\n  population p : Graded\n}\ncircuit A {\n  for i in 0 .. 100 {\n    for j in 0 .. 100 {\n" \
           "      s[i * 100 + j] = S()\n    }\n  }\n}\n"
    error = fails_within(text, "E704", 48, circuitdsl.Limits(instances=500))
    assert "this is instance 501, over the limit instances = 500" in error.render()


def test_repeated_projections_name_the_limit_not_what_is_left() -> None:
    text = "circuit A {\n  population p[n = 10] : Graded\n  for i in 0 .. 100000 {\n    p -> p : all_to_all\n  }\n}\n"
    error = fails_within(text, "E703", 48, circuitdsl.Limits(synapses=1000))
    rendered = error.render()
    assert "over the limit synapses = 1000" in rendered and "(1100 with the 1000 made before)" in rendered
    error = fails_within(text.replace("all_to_all", "one_to_one"), "E703", 48, circuitdsl.Limits(projections=50))
    assert "this is projection 51, over the limit projections = 50" in error.render()


@pytest.mark.parametrize(("item", "name"), [("loop_iterations=0", "loop_iterations"), ("units=x", "units"),
                                            ("nope=3", "nope"), ("units=1" + "0" * 19, "units")])
def test_bad_limit_options_are_refused(item: str, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "models/ncap_swimmer.circuit", "--limit", item]) == 2
    assert f"bad limit '{item}'" in capsys.readouterr().err


def test_every_limit_has_a_code_and_a_documented_default() -> None:
    from dataclasses import fields

    from circuitdsl.limits import CODE_OF

    text = (Path(__file__).resolve().parent.parent / "docs" / "limits.md").read_text(encoding="utf-8")
    for field in fields(circuitdsl.Limits):
        assert field.name in CODE_OF, field.name
        default = f"{field.default:_}".replace("_", " ")
        assert f"| `{field.name}` | {default} |" in text, f"docs/limits.md lacks `{field.name}` = {default}"


# ---- item 3: selections run in linear time -----------------------------------------------------------
@pytest.mark.parametrize(("pattern", "code"), [("^(a+)+$", "E902"), ("^" + "(a|aa)" * 40 + "$", "E902"),
                                               ("^(a)\\\\1$", "E801"), ("^" + "x" * 1001 + "$", "E711")])
def test_patterns_cannot_backtrack(tmp_path: Path, pattern: str, code: str) -> None:
    (tmp_path / "edges.csv").write_text("pre,post\n" + "a" * 5000 + "!,b\nb,c\n")
    text = (f'circuit A {{\n  net = connectome("edges.csv", neurons = {{"{pattern}"}}, sign = excitatory)\n'
            "  population N : Graded from net\n}\n")
    fails_within(text, code, 16, file=str(tmp_path / "main.circuit"))


# ---- item 4: the import sandbox ---------------------------------------------------------------------
def _tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


@pytest.mark.parametrize("path", ["../../../../../../../../etc/passwd", "/proc/self/environ", "/etc/passwd",
                                  "/dev/zero", "../outside.circuit", "/tmp/anything.circuit"])
def test_imports_stay_in_the_sandbox_and_never_echo(tmp_path: Path, path: str) -> None:
    _tree(tmp_path, {"outside.circuit": "neuron Secret {\n  out = in\n}\n", "project/main.circuit": ""})
    text = f'import "{path}"\ncircuit A {{\n}}\n'
    error = fails_within(text, "E104", 8, file=str(tmp_path / "project" / "main.circuit"))
    assert "root:" not in error.render() and "PATH=" not in error.render() and "Secret" not in error.render()
    assert error.span is not None and (error.span.line, error.span.column) == (1, 8)


def test_a_symlink_out_of_the_sandbox_is_refused(tmp_path: Path) -> None:
    _tree(tmp_path, {"secret/lib.circuit": "neuron Secret {\n  out = in\n}\n"})
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "lib.circuit").symlink_to(tmp_path / "secret" / "lib.circuit")
    fails_within('import "lib.circuit"\ncircuit A {\n}\n', "E104", 8, file=str(tmp_path / "project" / "m.circuit"))


def test_search_roots_and_absolute_paths_are_opt_in(tmp_path: Path) -> None:
    _tree(tmp_path, {"lib/cells.circuit": "neuron Cell {\n  out = in\n}\n",
                     "project/main.circuit": 'import "../lib/cells.circuit"\ncircuit A {\n  population p : Cell\n}\n',
                     "project/abs.circuit": f'import "{tmp_path}/lib/cells.circuit"\ncircuit A {{\n'
                                            "  population p : Cell\n}\n"})
    main_file, abs_file = tmp_path / "project" / "main.circuit", tmp_path / "project" / "abs.circuit"
    with pytest.raises(circuitdsl.CircuitError, match="outside the folders"):
        circuitdsl.load(main_file)
    with pytest.raises(circuitdsl.CircuitError, match="is an absolute path"):
        circuitdsl.load(abs_file)
    assert circuitdsl.load(main_file, sandbox=circuitdsl.Sandbox.around(main_file, [tmp_path / "lib"])).units == 1
    assert circuitdsl.load(abs_file, sandbox=circuitdsl.Sandbox.around(abs_file, allow_absolute=True)).units == 1
    assert main(["check", str(main_file), "--include", str(tmp_path / "lib")]) == 0
    assert main(["check", str(abs_file), "--allow-absolute"]) == 0


def test_data_files_resolve_next_to_the_file_never_through_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tree(tmp_path, {"edges.csv": "pre,post\nA,B\n", "project/main.circuit":
                     'circuit A {\n  net = connectome("edges.csv", sign = excitatory)\n'
                     "  population N : Graded from net\n}\n"})
    monkeypatch.chdir(tmp_path)  # edges.csv is in the working directory, not next to main.circuit
    with pytest.raises(circuitdsl.CircuitError) as info:
        circuitdsl.load(tmp_path / "project" / "main.circuit")
    span = info.value.span
    assert info.value.code == "E906" and span is not None and (span.line, span.column) == (2, 20)
    text = ('circuit A {\n  net = connectome("../../etc/passwd.csv", sign = excitatory)\n'
            "  population N : Graded from net\n}\n")
    error = fails_within(text, "E906", 8, file=str(tmp_path / "project" / "main.circuit"))
    assert "outside the folders" in error.render()



def test_weight_files_stay_in_the_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`from_file(...)` resolves like imports and data files: next to the circuit, never above its folder."""
    np.save(tmp_path / "w.npy", np.ones(3))
    body = ('circuit A {{\n  input x[n = 3]\n  population h[n = 3] : Graded\n'
            '  x -> h : one_to_one, weight = from_file("{}")\n}}\n')
    _tree(tmp_path, {"project/inside.circuit": body.format("../w.npy"), "project/ok.circuit": body.format("w.npy")})
    (tmp_path / "project" / "w.npy").write_bytes((tmp_path / "w.npy").read_bytes())
    monkeypatch.chdir(tmp_path)
    assert circuitdsl.load(tmp_path / "project" / "ok.circuit").parameters[0].init.rule == "data"
    with pytest.raises(circuitdsl.CircuitError) as info:
        circuitdsl.load(tmp_path / "project" / "inside.circuit")
    assert info.value.code == "E907" and "outside the folders" in info.value.render()

# ---- item 5: tracebacks from check / load become CircuitErrors --------------------------------------
CSV_CIRCUIT = 'circuit A {\n  net = connectome("edges.csv", sign = data)\n  population N : Graded from net\n}\n'


@pytest.mark.parametrize(("csv", "needle"), [
    ("pre,post,sign\nA,B,1\nC\n", "line 3 has no 'post'"),
    ("pre,post,sign\nA,B\n", "line 2: 'sign' is '', not a number"),
    ("pre,post,count\nA,B,many\n", "line 2: 'count' is 'many', not a number"),
    ("pre,post,sign\nA,B,1,9\n", "line 2 has more fields than the header"),
    ("pre,post,sign\nA,B,1\nA,B,1,9\n", "Expected 3 fields in line 3, saw 4"),
    ("pre,post\n", "one edge a line"),
    ("", "No columns"),
    ("pre,post,sign\nA,B,2\n", "every sign must be +1 or -1"),
    ("pre,post,kind,sign\nA,B,magic,1\n", "unknown kind 'magic'"),
])
def test_broken_csv_files(tmp_path: Path, csv: str, needle: str) -> None:
    (tmp_path / "edges.csv").write_text(csv)
    error = fails_within(CSV_CIRCUIT, "E906", 16, file=str(tmp_path / "main.circuit"))
    assert needle in error.render(), error.render()


@pytest.mark.parametrize(("arrays", "needle"), [
    ({"pre": np.zeros((2, 2), np.int64), "post": np.zeros((2, 2), np.int64)}, "shape (2, 2)"),
    ({"pre": np.array([0.5]), "post": np.array([1.0])}, "not whole numbers"),
    ({"pre": np.array([0])}, "the arrays pre and post"),
    ({"pre": np.array([0, 1]), "post": np.array([1])}, "differ in length"),
    ({"pre": np.array([-1]), "post": np.array([0])}, "outside the"),
])
def test_broken_npz_files(tmp_path: Path, arrays: dict[str, np.ndarray], needle: str) -> None:
    np.savez(tmp_path / "edges.npz", **arrays)  # type: ignore[arg-type]
    text = CSV_CIRCUIT.replace("edges.csv", "edges.npz").replace("sign = data", "sign = excitatory")
    error = fails_within(text, "E906", 16, file=str(tmp_path / "main.circuit"))
    assert needle in error.render(), error.render()


def test_a_text_file_named_npz_or_npy(tmp_path: Path) -> None:
    (tmp_path / "edges.npz").write_text("pre,post\nA,B\n")
    text = CSV_CIRCUIT.replace("edges.csv", "edges.npz").replace("sign = data", "sign = excitatory")
    fails_within(text, "E906", 16, file=str(tmp_path / "main.circuit"))


def test_data_rows_are_limited_before_reading_on(tmp_path: Path) -> None:
    np.savez(tmp_path / "edges.npz", pre=np.zeros(5000, np.int64), post=np.ones(5000, np.int64))
    text = CSV_CIRCUIT.replace("edges.csv", "edges.npz").replace("sign = data", "sign = excitatory")
    error = fails_within(text, "E710", 16, circuitdsl.Limits(data_rows=1000), file=str(tmp_path / "main.circuit"))
    assert "over the limit data_rows = 1000" in error.render()


@pytest.mark.parametrize(("rule", "code", "column", "needle"), [
    ("pairs([[99999999999999999999, 0]])", "E303", 12, "unit 99999999999999999999 is out of range"),
    ("pairs([[0.5, 1]])", "E301", 12, "pair entries must be whole numbers, not a float (0.5)"),
    ("one_to_one, delay = learnable(max = 0)", "E301", 48, "not an int (0)"),
])
def test_rule_arguments(rule: str, code: str, column: int, needle: str) -> None:
    error = fails_within(f"circuit A {{\n  population p[n = 2] : Graded\n  p -> p : {rule}\n}}\n", code, 16)
    assert needle in error.render() and error.span is not None and error.span.column == column, error.render()


def test_elm_without_branches() -> None:
    text = "import dendrites\ncircuit A {\n  input x[n = 4]\n  population p[n = 4] : dendrites.ELM(branches = 0)\n" \
           "  x -> p : one_to_one\n}\n"
    fails_within(text, "E301", 16)


def _chain(root: Path, n: int, cycle: bool) -> Path:
    for i in range(n):
        target = f"f{i + 1}.circuit" if i + 1 < n else ("f0.circuit" if cycle else None)
        body = f'import "{target}"\n' if target else ""
        (root / f"f{i}.circuit").write_text(body + f"neuron N{i} {{\n  out = in\n}}\n")
    (root / "main.circuit").write_text('import "f0.circuit"\ncircuit A {\n  population p : N0\n}\n')
    return root / "main.circuit"


def test_a_chain_of_250_imports_loads(tmp_path: Path) -> None:
    assert circuitdsl.load(_chain(tmp_path, 250, cycle=False)).units == 1


def test_a_cycle_of_500_files_is_e102_without_recursion(tmp_path: Path) -> None:
    path = _chain(tmp_path, 500, cycle=True)
    error, peak = peak_of(lambda: circuitdsl.load(path))
    assert isinstance(error, circuitdsl.CircuitError) and error.code == "E102", error
    assert "f499.circuit -> " in error.render() and peak < 64 * MiB


def test_imports_are_counted_and_their_depth_limited(tmp_path: Path) -> None:
    path = _chain(tmp_path, 30, cycle=False)
    for limits, needle in ((circuitdsl.Limits(imports=10), "over the limit imports = 10"),
                           (circuitdsl.Limits(import_depth=10), "over the limit import_depth = 10")):
        with pytest.raises(circuitdsl.CircuitError) as info:
            circuitdsl.load(path, limits=limits)
        assert info.value.code == "E709" and needle in info.value.render()


@pytest.mark.parametrize(("extra", "needle"), [
    (["--seed", "-1"], "expected a whole number >= 0"),
    (["--plot", "out.xyz"], "name a .png, .svg or .pdf file"),
    (["--save", "no/such/folder/t.npz"], "does not exist"),
    (["--input", "q=text.npy"], "is not a .npy array"),
])
def test_run_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                     extra: list[str], needle: str) -> None:
    swimmer = Path(__file__).resolve().parent.parent / "models" / "ncap_swimmer.circuit"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "text.npy").write_text("not an array\n")
    if extra[0] == "--seed":  # argparse refuses it: usage on stderr, exit status 2
        with pytest.raises(SystemExit) as info:
            main(["run", str(swimmer), "--steps", "2", *extra])
        assert info.value.code == 2
    else:
        assert main(["run", str(swimmer), "--steps", "2", *extra]) == 2
    assert needle in capsys.readouterr().err


def test_a_run_that_would_record_too_much_is_refused_before_it_starts(capsys: pytest.CaptureFixture[str]) -> None:
    """`--steps 10**10` for a 22-unit circuit would record 2.2e11 values (880 GB, and hours): refused by the limit
    trace_values, counted before anything is compiled or allocated; raised, the same run goes ahead."""
    touch = str(Path(__file__).resolve().parent.parent / "models" / "celegans_touch.circuit")
    assert main(["run", touch, "--steps", str(10**10)]) == 2
    assert ("error[E712]: 10000000000 steps of 22 recorded units are 220000000000 values, over the limit "
            "trace_values = 500000000; if that is really meant, raise it: --limit trace_values=N") in capsys.readouterr().err
    assert main(["run", touch, "--steps", "5", "--limit", "trace_values=100"]) == 2  # 110 values: over
    assert "over the limit trace_values = 100" in capsys.readouterr().err
    assert main(["run", touch, "--steps", "5", "--limit", "trace_values=110"]) == 0  # exactly the limit: runs
    swimmer = circuitdsl.load(Path(touch).parent / "ncap_swimmer.circuit")  # recorded states count too
    with pytest.raises(SimulationInputError, match="100 steps of 32 recorded units"):  # 31 and the clock
        simulate(swimmer, 100, record=["osc_d.t"], limits=circuitdsl.Limits(trace_values=3100))


# ---- item 7: what check passed and the runtime refused --------------------------------------------------
@pytest.mark.parametrize(("text", "code", "line", "column"), [
    (("import dendrites\ncircuit A {\n  input x\n  input c[segment = 1]\n"
     "  population p[n = 4] : dendrites.ActiveDendrites(segments = 1, k = 100)\n  x -> p\n  c -> p.context\n}\n"),
     "E302", 5, 25),
    (("neuron N(dt: time = 1 ms) {\n  state v = 1e308\n  dv/dt = -v / (1 ms)\n  out = v\n}\n"
     "circuit A {\n  population p : N\n}\n"), "E801", 2, 13),
    ("circuit A {\n  input x\n  output y\n  y = clamp(x, 0, 1e308)\n}\n", "E801", 4, 19),
    ("circuit A {\n  input x\n  population p : Graded\n  x -> p : weight = 1e39\n}\n", "E801", 4, 21),
])
def test_values_the_runtime_cannot_hold(text: str, code: str, line: int, column: int) -> None:
    error = fails_within(text, code, 16)
    assert error.span is not None and (error.span.line, error.span.column) == (line, column), error.render()


# ---- item 9: from_json checks meaning -----------------------------------------------------------------
def _swimmer_json() -> dict[str, Any]:
    return json.loads(circuitdsl.load(Path(__file__).resolve().parent.parent / "models" / "ncap_swimmer.circuit")
                      .to_json())


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(last) if last.isdigit() else last] = value
    return mutate


@pytest.mark.parametrize(("mutate", "needle"), [
    (_set("schema_version", 999), "schema_version 999"),
    (_set("schema_version", -1), "schema_version -1"),
    (_set("projections.0.synapses", 10**15), "over the limit synapses"),
    (_set("projections.0.target", "nowhere"), "no population 'nowhere'"),
    (_set("projections.0.port", "nowhere"), "has no input 'nowhere'"),
    (_set("projections.0.weight.param", "nowhere"), "no parameter 'nowhere'"),
    (_set("projections.0.source", {"node": "ref", "source": "nowhere"}), "no population or input 'nowhere'"),
    (_set("projections.0.source", {"node": "shared", "index": 3}), "no shared entry 3"),
    (_set("inputs.0.shape.0.size", 0), "has size 0"),
    (_set("inputs.0.shape.0.size", -3), "has size -3"),
    (_set("populations.0.model", "Nothing"), "no neuron model 'Nothing'"),
    (_set("parameters.0.init.args", [float("nan")]), "is not a finite number"),
    (_set("parameters.0.shape", [0]), "sizes are >= 1"),
    (_set("parameters.0.init", {"rule": "random_sign", "args": []}), "random_sign takes 1 arguments, not 0"),
    (_set("parameters.0.init", {"rule": "orthogonal", "args": [1.0]}), "orthogonal draws a matrix"),
    (_set("parameters.0.init", {"rule": "low_rank", "args": [2.5, 1.0]}), "low_rank draws a matrix"),
])
def test_from_json_checks_meaning(mutate: Callable[[dict[str, Any]], None], needle: str) -> None:
    data = _swimmer_json()
    mutate(data)
    with pytest.raises(InvalidIR, match=needle.replace("(", r"\(").replace(")", r"\)")):
        circuitdsl.CircuitIR.from_json(json.dumps(data))


def test_from_json_refuses_deep_nesting_without_recursion() -> None:
    data = _swimmer_json()
    data["outputs"][0]["pieces"][0]["expr"] = "HOLE"
    deep = '{"node": "unary", "op": "-", "x": ' * 5000 + '{"node": "const", "value": 1}' + "}" * 5000
    text = json.dumps(data).replace('"HOLE"', deep)
    for bad in (text, "[" * 5000 + "]" * 5000):
        with pytest.raises(InvalidIR, match="nests 50"):
            circuitdsl.CircuitIR.from_json(bad)


# ---- item 10: messages and counts ----------------------------------------------------------------------
def test_a_declaration_in_a_loop_says_so() -> None:
    error = fails_within("circuit A {\n  for i in 0 .. 2 {\n    population p : Graded\n  }\n}\n", "E202", 16)
    assert "declared again on every pass of a loop" in error.render() and "already defined at" not in error.render()


def test_stats_count_input_projections_apart(capsys: pytest.CaptureFixture[str]) -> None:
    swimmer = Path(__file__).resolve().parent.parent / "models" / "ncap_swimmer.circuit"
    assert main(["check", "--stats", str(swimmer)]) == 0
    assert "synapses: 22 chemical, 8 input" in capsys.readouterr().out


# ---- 2,000 chained lets: shared subexpressions keep the IR small and shallow -----------------------------
def test_two_thousand_chained_lets_serialise_and_read_back() -> None:
    lets = "".join(f"  let a{i + 1} = a{i} + a{i}\n" for i in range(2000))
    ir = circuitdsl.loads(f"circuit A {{\n  input x\n  output y\n  let a0 = x\n{lets}  y = a2000\n}}\n", file=FILE)
    assert circuitdsl.CircuitIR.from_json(ir.to_json()) == ir



def test_expression_size_is_limited() -> None:
    text = "circuit A {\n  input q\n  output y\n  y = " + " + ".join(["q"] * 60) + "\n}\n"
    error = fails_within(text, "E708", 16, circuitdsl.Limits(expression_size=50))
    assert "over the limit expression_size = 50" in error.render()


# ---- IR read back from hostile JSON: refused with a ValueError, or compiled and stepped --------------------
IR_VALUES = [0, -1, 1, 2, 3, 10**15, -3, 0.5, 1e308, "x", "", None, True, [], {}, [0], "Bd", "q", "osc_d", 99]


def _leaf_paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, dict):
        return [p for key, value in node.items() for p in _leaf_paths(value, (*path, key))]
    if isinstance(node, list):
        return [p for i, value in enumerate(node) for p in _leaf_paths(value, (*path, i))]
    return [path]


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(st.data())
def test_mutated_ir_is_refused_or_runs(data: st.DataObject) -> None:
    torch = pytest.importorskip("torch")
    tree = _swimmer_json()
    paths = [p for p in _leaf_paths(tree) if p[-1] != "data"]
    for _ in range(data.draw(st.integers(1, 3))):
        *parents, last = data.draw(st.sampled_from(paths))
        node: Any = tree
        for key in parents:
            node = node[key]
        node[last] = data.draw(st.sampled_from(IR_VALUES))
    try:
        ir = circuitdsl.CircuitIR.from_json(json.dumps(tree))
    except ValueError:  # InvalidIR, or pydantic's ValidationError for the schema
        return
    module = circuitdsl.compile(ir, backend="torch")
    outputs, _ = module({p.name: torch.zeros(1, *(a.size for a in p.shape)) for p in ir.inputs})
    assert set(outputs) == {o.name for o in ir.outputs}
