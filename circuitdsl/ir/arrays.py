"""`Array`: a numpy array inside the IR, compared by value and serialised to JSON as base64 bytes.

Large connectivity (connectome edges, sparse random projections) lives in arrays, never in one
Python object per synapse.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

_DTYPES = {"int32", "int64", "float32", "float64"}


class Array:
    """An immutable 1-D or N-D numeric array with value equality."""

    __slots__ = ("data",)

    def __init__(self, data: Any, dtype: str | None = None) -> None:
        array = np.array(data, dtype=dtype, copy=True)
        if array.dtype.name not in _DTYPES:
            array = array.astype("float64" if array.dtype.kind == "f" else "int64")
        array.setflags(write=False)
        self.data = array

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Array) and self.data.dtype == other.data.dtype
                and np.array_equal(self.data, other.data))

    def __hash__(self) -> int:
        return hash((self.data.dtype.name, self.data.shape, self.data.tobytes()))

    def __len__(self) -> int:
        return int(self.data.shape[0]) if self.data.ndim else 1

    def __repr__(self) -> str:
        return f"Array({self.data.tolist()!r}, dtype={self.data.dtype.name!r})"

    def to_json(self) -> dict[str, Any]:
        little = self.data.astype(self.data.dtype.newbyteorder("<"), copy=False)
        return {"dtype": self.data.dtype.name, "shape": list(self.data.shape),
                "data": base64.b64encode(little.tobytes()).decode("ascii")}

    @classmethod
    def from_json(cls, value: Any) -> Array:
        """An array from its JSON form (or a plain list); anything else is a ValueError, which the schema reports."""
        if isinstance(value, Array):
            return value
        try:
            if isinstance(value, dict) and {"dtype", "shape", "data"} <= value.keys():
                if not isinstance(value["dtype"], str) or value["dtype"] not in _DTYPES:
                    raise ValueError(f"unsupported array dtype {value['dtype']!r}")
                raw = base64.b64decode(value["data"])
                data = np.frombuffer(raw, dtype=np.dtype(value["dtype"]).newbyteorder("<"))
                return cls(data.reshape(value["shape"]).astype(value["dtype"]))
            return cls(value)
        except TypeError as error:  # a dict or a string where a number or a shape belongs
            raise ValueError(f"not an array: {error}") from None

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls.from_json, serialization=core_schema.plain_serializer_function_ser_schema(lambda a: a.to_json()))

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: core_schema.CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        """The JSON form `to_json` writes: dtype, shape and little-endian bytes in base64."""
        return {"type": "object", "additionalProperties": False, "required": ["dtype", "shape", "data"],
                "properties": {"dtype": {"enum": sorted(_DTYPES)},
                               "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                               "data": {"type": "string", "contentEncoding": "base64"}}}
