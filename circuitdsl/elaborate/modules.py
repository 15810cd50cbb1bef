"""Files and libraries: reading, parsing once, resolving imports, and the scope of each module.

`import "motifs.circuit"` is relative to the importing file and brings its definitions in unqualified;
`import "motifs.circuit" as m` reaches them as `m.Segment`.  `import celegans` loads a library shipped in
circuitdsl/library/, reached as `celegans.X`.  The standard library (`std`) is visible everywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from circuitdsl import ast
from circuitdsl.elaborate.evaluate import Abort, Evaluator
from circuitdsl.elaborate.scope import Scope
from circuitdsl.elaborate.values import LIBRARY_BUILTINS, Definition, Namespace
from circuitdsl.errors import CircuitError, Reporter, Span, did_you_mean
from circuitdsl.parser import parse

STD_LIBRARY = "std"


def library_names() -> list[str]:
    folder = resources.files("circuitdsl").joinpath("library")
    return sorted(p.name[: -len(".circuit")] for p in folder.iterdir() if p.name.endswith(".circuit"))


@dataclass
class ModuleScope:
    """One loaded file: its AST and the scope holding its definitions, imports and constants."""

    name: str
    module: ast.Module
    scope: Scope
    definitions: list[Definition] = field(default_factory=list)


class Loader:
    """Loads modules once each; imports form a tree walked depth-first, so a cycle is seen on the stack."""

    def __init__(self, reporter: Reporter, root: Scope) -> None:
        self.reporter = reporter
        self.root = root
        self.loaded: dict[str, ModuleScope] = {}
        self.stack: list[str] = []
        self.std: Scope | None = None

    def std_scope(self) -> Scope:
        if self.std is None:
            std = self.load_library(STD_LIBRARY, None, with_std=False)
            self.std = Scope(parent=self.root, names=dict(std.scope.names))
        return self.std

    def load_text(self, text: str, name: str) -> ModuleScope:
        return self._load(name, text, None, with_std=True)

    def load_file(self, path: str, span: Span | None) -> ModuleScope:
        key = os.path.normpath(path)
        if key in self.stack:
            chain = " -> ".join([*self.stack[self.stack.index(key):], key])
            raise self.reporter.fail("E102", f"cyclic import of '{key}'", span, [f"import chain: {chain}"])
        if key in self.loaded:
            return self.loaded[key]
        if Path(path).exists() and not Path(path).is_file() and not Path(path).is_dir():
            # /dev/zero, /dev/stdin, a FIFO: reading would never end (or never start)
            raise self.reporter.fail("E104", f"cannot read '{path}': not a regular file", span)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise self.reporter.fail("E101", f"no such file '{path}'", span) from None
        except (OSError, ValueError) as error:  # ValueError: not UTF-8, or a NUL byte in the path
            raise self.reporter.fail("E104", f"cannot read '{path}': {error}", span) from None
        return self._load(key, text, span, with_std=True)

    def load_library(self, name: str, span: Span | None, with_std: bool = True) -> ModuleScope:
        key = f"<library {name}>"
        if key in self.loaded:
            return self.loaded[key]
        resource = resources.files("circuitdsl").joinpath("library", f"{name}.circuit")
        if not resource.is_file():
            raise self.reporter.fail("E103", f"unknown library '{name}'", span,
                                     [did_you_mean(name, library_names()),
                                      f"libraries: {', '.join(library_names())}"])
        loaded = self._load(key, resource.read_text(encoding="utf-8"), span, with_std=with_std,
                            display=f"{name}.circuit")
        for builtin_name, builtin in LIBRARY_BUILTINS.get(name, {}).items():
            loaded.scope.define(builtin_name, builtin, None, "builtin", self.reporter)
        return loaded

    def _load(self, key: str, text: str, span: Span | None, with_std: bool, display: str | None = None) -> ModuleScope:
        file = display or key
        self.reporter.sources[file] = text
        try:
            module = parse(text, file)
        except CircuitError as error:  # keep an imported file's syntax error: the importer skips the import
            self.reporter.diagnostics.extend(error.diagnostics)
            raise CircuitError(self.reporter.errors) from None
        scope = Scope(parent=self.std_scope() if with_std else self.root)
        loaded = ModuleScope(file, module, scope)
        self.stack.append(key)
        try:
            self._declare(loaded, key)
        finally:
            self.stack.pop()
        self.loaded[key] = loaded
        return loaded

    def _declare(self, loaded: ModuleScope, key: str) -> None:
        evaluator = Evaluator(self.reporter)
        directory = os.path.dirname(key) if not key.startswith("<") else ""
        for item in loaded.module.items:
            try:
                if isinstance(item, ast.ImportFile):
                    self._import_file(loaded, item, directory)
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
                continue

    def _import_file(self, loaded: ModuleScope, item: ast.ImportFile, directory: str) -> None:
        path = os.path.join(directory, item.path.value) if directory else item.path.value
        imported = self.load_file(path, item.path.span)
        if item.alias is not None:
            loaded.scope.define(item.alias.name, Namespace(item.path.value, imported), item.alias.span, "import",
                                self.reporter)
            return
        for definition in imported.definitions:
            existing = loaded.scope.names.get(definition.name)
            if existing is not None and existing.value is definition:
                continue  # the same file imported twice (directly, or through two imports): harmless
            loaded.scope.define(definition.name, definition, item.span, "definition", self.reporter)
