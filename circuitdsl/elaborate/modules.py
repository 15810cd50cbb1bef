"""Files and libraries: reading, parsing once, resolving imports, and the scope of each module.

`import "motifs.circuit"` is relative to the importing file and brings its definitions in unqualified;
`import "motifs.circuit" as m` reaches them as `m.Segment`.  `import celegans` loads a library shipped in
circuitdsl/library/, reached as `celegans.X`.  The standard library (`std`) is visible everywhere.

Imported files are found first (read, parsed, their imports followed with an explicit stack, so a chain of
thousands of files neither recurses nor hides a cycle), then declared dependencies first.  Every path stays
inside the sandbox (circuitdsl/elaborate/sandbox.py), and the files read are counted against the limits.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from circuitdsl import ast
from circuitdsl.elaborate.evaluate import Abort, Evaluator, Poisoned
from circuitdsl.elaborate.sandbox import Sandbox
from circuitdsl.elaborate.scope import Binding, Scope
from circuitdsl.elaborate.values import LIBRARY_BUILTINS, Definition, Namespace
from circuitdsl.errors import CircuitError, Problem, Reporter, Span, did_you_mean
from circuitdsl.limits import Limits
from circuitdsl.parser import parse

STD_LIBRARY = "std"
SUFFIX = ".circuit"


def library_names() -> list[str]:
    folder = resources.files("circuitdsl").joinpath("library")
    return sorted(p.name[: -len(SUFFIX)] for p in folder.iterdir() if p.name.endswith(SUFFIX))


@functools.cache
def _library(name: str) -> tuple[str, ast.Module]:
    """A shipped library's text and AST, parsed once per process (the AST is immutable)."""
    text = resources.files("circuitdsl").joinpath("library", f"{name}{SUFFIX}").read_text(encoding="utf-8")
    return text, parse(text, f"{name}{SUFFIX}")


@dataclass
class ModuleScope:
    """One loaded file: its AST and the scope holding its definitions, imports and constants."""

    name: str
    module: ast.Module
    scope: Scope
    definitions: list[Definition] = field(default_factory=list)


@dataclass
class _Found:
    """A file read and parsed, not yet declared; `imports` maps each import's path text to the file it names."""

    module: ast.Module | None  # None: a syntax error (reported)
    imports: dict[str, str] = field(default_factory=dict)


class Loader:
    """Loads modules once each: files found with an explicit stack (a cycle is an import of a file still on it),
    then declared in dependency order."""

    def __init__(self, reporter: Reporter, root: Scope, limits: Limits | None = None,
                 sandbox: Sandbox | None = None) -> None:
        self.reporter = reporter
        self.root = root
        self.limits = limits or Limits()
        self.sandbox = sandbox  # None: the folder of the first file loaded (Sandbox.around it)
        self.loaded: dict[str, ModuleScope] = {}
        self.found: dict[str, _Found] = {}
        self.std: Scope | None = None

    def std_scope(self) -> Scope:
        if self.std is None:
            std = self.load_library(STD_LIBRARY, None, with_std=False)
            self.std = Scope(parent=self.root, names=dict(std.scope.names))
        return self.std

    def load_text(self, text: str, name: str) -> ModuleScope:
        self.sandbox = self.sandbox or Sandbox.around(name)
        self._find(name, text)
        return self._declare_found(name)

    def load_file(self, path: str, span: Span | None) -> ModuleScope:
        key = os.path.normpath(path)
        self.sandbox = self.sandbox or Sandbox.around(key)
        self._find(key, self._read(key, span))
        return self._declare_found(key)

    def load_library(self, name: str, span: Span | None, with_std: bool = True) -> ModuleScope:
        key = f"<library {name}>"
        if key in self.loaded:
            return self.loaded[key]
        if name not in library_names():
            raise self.reporter.fail("E103", f"unknown library '{name}'", span,
                                     [did_you_mean(name, library_names()),
                                      f"libraries: {', '.join(library_names())}"])
        text, module = _library(name)
        self.reporter.sources[f"{name}{SUFFIX}"] = text
        loaded = self._declare(key, module, with_std)
        for builtin_name, builtin in LIBRARY_BUILTINS.get(name, {}).items():
            loaded.scope.define(builtin_name, builtin, None, "builtin", self.reporter)
        return loaded

    # ---- finding files -------------------------------------------------------------------------------
    def _find(self, top: str, text: str) -> None:
        """Read and parse `top` and every file it imports, depth first with an explicit stack."""
        self.found[top] = self._parsed(top, text)
        path, on_path = [(top, iter(self._imports(self.found[top])))], {top}
        while path:
            key, pending = path[-1]
            item = next(pending, None)
            if item is None:
                on_path.discard(key)
                path.pop()
                continue
            try:
                child, child_text = self._child(key, item, [k for k, _ in path], on_path)
            except CircuitError:  # reported; the importer goes on without it
                continue
            self.found[key].imports[item.path.value] = child
            if child_text is not None:
                self.found[child] = self._parsed(child, child_text)
                path.append((child, iter(self._imports(self.found[child]))))
                on_path.add(child)

    def _child(self, key: str, item: ast.ImportFile, chain: list[str], on_path: set[str]) -> tuple[str, str | None]:
        """The file an import names, checked against the sandbox, the cycles and the limits, and its text when
        it is read for the first time."""
        span = item.path.span
        child = self._resolve(key, item.path.value, span)
        if child in on_path:
            cycle = " -> ".join([*chain[chain.index(child):], child])
            raise self.reporter.fail("E102", f"cyclic import of '{child}'", span, [f"import chain: {cycle}"])
        if child in self.found:
            return child, None
        self._check_limits(len(chain), span)
        return child, self._read(child, span)

    def _check_limits(self, depth: int, span: Span) -> None:
        if len(self.found) >= self.limits.imports:
            raise self.reporter.fail("E709", f"this import reads file {len(self.found) + 1}, "
                                     f"{self.limits.over('imports')}", span, [self.limits.hint("imports")])
        if depth >= self.limits.import_depth:
            raise self.reporter.fail("E709", f"this import is {depth} files deep, {self.limits.over('import_depth')}",
                                     span, [self.limits.hint("import_depth")])

    def _resolve(self, key: str, name: str, span: Span) -> str:
        if not name.endswith(SUFFIX):
            raise self.reporter.fail("E104", f"cannot import '{name[:200]}': imports name {SUFFIX} files", span,
                                     ["a library is imported without quotes: import celegans"])
        try:
            return (self.sandbox or Sandbox.around(key)).resolve(name, os.path.dirname(key), "the import")
        except Problem as problem:
            raise self.reporter.fail(problem.code, problem.message, span, problem.notes) from None

    def _read(self, key: str, span: Span | None) -> str:
        path = Path(key)
        if path.exists() and not path.is_file():  # a folder, /dev/zero, a FIFO: reading would never end
            raise self.reporter.fail("E104", f"cannot read '{key}': not a regular file", span)
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise self.reporter.fail("E101", f"no such file '{key}'", span) from None
        except (OSError, ValueError) as error:  # ValueError: not UTF-8, or a NUL byte in the path
            raise self.reporter.fail("E104", f"cannot read '{key}': {error}", span) from None

    def _parsed(self, key: str, text: str) -> _Found:
        self.reporter.sources[key] = text
        try:
            return _Found(parse(text, key))
        except CircuitError as error:  # keep an imported file's syntax error: the importer skips the import
            self.reporter.diagnostics.extend(d for d in error.diagnostics if d not in self.reporter.diagnostics)
            return _Found(None)

    @staticmethod
    def _imports(found: _Found) -> list[ast.ImportFile]:
        return [] if found.module is None else [i for i in found.module.items if isinstance(i, ast.ImportFile)]

    # ---- declaring -----------------------------------------------------------------------------------
    def _declare_found(self, top: str) -> ModuleScope:
        """Declare `top` after everything it imports (post-order of the import graph, found cycles left out)."""
        order, seen, stack = [], set(), [(top, False)]
        while stack:
            key, done = stack.pop()
            if done:
                order.append(key)
            elif key not in seen and key not in self.loaded:
                seen.add(key)
                stack.append((key, True))
                stack.extend((child, False) for child in reversed(self.found[key].imports.values()))
        for key in order:
            module = self.found[key].module
            if module is not None and key not in self.loaded:  # a file with a syntax error stays undeclared
                self._declare(key, module, True)
        if top not in self.loaded:
            raise CircuitError(self.reporter.errors)
        return self.loaded[top]

    def _declare(self, key: str, module: ast.Module, with_std: bool) -> ModuleScope:
        scope = Scope(parent=self.std_scope() if with_std else self.root)
        loaded = ModuleScope(module.file, module, scope)
        self.loaded[key] = loaded
        evaluator = Evaluator(self.reporter, limits=self.limits)
        for item in module.items:
            try:
                if isinstance(item, ast.ImportFile):
                    self._import_file(loaded, item, key)
                elif isinstance(item, ast.ImportLibrary):
                    library = self.load_library(item.name.name, item.name.span)
                    alias = item.alias or item.name
                    loaded.scope.define(alias.name, Namespace(item.name.name, library), alias.span, "import",
                                        self.reporter)
                elif isinstance(item, ast.Definition):
                    definition = Definition(item, loaded)
                    if loaded.scope.define(item.name.name, definition, item.name.span, "definition", self.reporter):
                        loaded.definitions.append(definition)
                elif isinstance(item, ast.Let):
                    value = evaluator.constant(item.value, loaded.scope, f"the constant '{item.name.name}'")
                    loaded.scope.define(item.name.name, value, item.name.span, "let", self.reporter)
            except (Abort, CircuitError):
                if isinstance(item, ast.Let):  # later uses of a failed constant fail quietly, not as E201
                    loaded.scope.names.setdefault(item.name.name, Binding(Poisoned(), item.name.span, "poisoned", True))
        return loaded

    def _import_file(self, loaded: ModuleScope, item: ast.ImportFile, key: str) -> None:
        child = self.found[key].imports.get(item.path.value) if key in self.found else None
        imported = self.loaded.get(child) if child is not None else None
        if imported is None:  # not found, unreadable, outside the sandbox, cyclic or with a syntax error: reported
            return
        if item.alias is not None:
            loaded.scope.define(item.alias.name, Namespace(item.path.value, imported), item.alias.span, "import",
                                self.reporter)
            return
        for definition in imported.definitions:
            existing = loaded.scope.names.get(definition.name)
            if existing is not None and existing.value is definition:
                continue  # the same file imported twice (directly, or through two imports): harmless
            loaded.scope.define(definition.name, definition, item.span, "definition", self.reporter)
