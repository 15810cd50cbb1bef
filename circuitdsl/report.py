"""Machine-readable output for tools in other languages: diagnostics as JSON (`check --format json`, the language
server) and the JSON Schema of the IR (`circuitdsl schema`)."""

from __future__ import annotations

from typing import Any

from circuitdsl.errors import Diagnostic
from circuitdsl.ir.model import SCHEMA_VERSION, CircuitIR

# The version of the `check --format json` document (its keys below); bumped when a key changes meaning.
REPORT_VERSION = 1


def diagnostic_json(diagnostic: Diagnostic) -> dict[str, Any]:
    """One diagnostic: code, severity, message, where (1-based line and column, end exclusive), hints."""
    span = diagnostic.span
    return {
        "code": diagnostic.code,
        "severity": "warning" if diagnostic.is_warning else "error",
        "kind": diagnostic.kind,
        "message": diagnostic.message,
        "file": span.file if span else None,
        "line": span.line if span else None,
        "column": span.column if span else None,
        "end": {"line": span.end_line, "column": span.end_column} if span else None,
        "source_line": diagnostic.source_line,
        "hints": list(diagnostic.notes),
    }


def ir_schema() -> dict[str, Any]:
    """The JSON Schema of `CircuitIR.to_json()`, with the IR's schema version."""
    schema = CircuitIR.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$comment"] = f"circuitdsl IR, schema_version {SCHEMA_VERSION}"
    return schema
