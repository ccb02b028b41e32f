"""The shape of weir's JSON output: its version, and JSON Schema generated from the TypedDicts that
type each `to_dict()` (so what mypy checks the code against is what `weir schema` publishes).

A schema here is an object's promise to a program that reads it. `SCHEMA_VERSION` goes up when a
key is removed or changes meaning; keys may be added without it (a reader should ignore keys it does
not know, and the published schemas allow them).

Why not pydantic's TypeAdapter(...).json_schema(): it would make a compiled dependency of one
command, and the few type forms weir's outputs use (below) convert in a page.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, NotRequired, Required, Union, get_args, get_origin, get_type_hints, is_typeddict

__all__ = ["SCHEMA_VERSION", "DRAFT", "json_schema_of"]

#: The version of every JSON object weir prints (`schema_version` in each).
SCHEMA_VERSION: Literal[2] = 2
#: The JSON Schema dialect weir's schemas are written in.
DRAFT = "https://json-schema.org/draft/2020-12/schema"

_SCALARS: dict[Any, dict[str, Any]] = {int: {"type": "integer"}, float: {"type": "number"}, str: {"type": "string"},
                                       bool: {"type": "boolean"}, type(None): {"type": "null"}}


def json_schema_of(tp: Any, closed: bool = False) -> dict[str, Any]:
    """The JSON Schema of values of type `tp`: a TypedDict (an object with exactly its keys, each
    required unless NotRequired), list/tuple, dict[str, X], X | None, Literal, int/float/str/bool,
    Any. `closed`: objects allow no other keys (how the tests check that a schema names every key
    the code writes; the published schemas are open, so a reader of version 1 reads later output)."""
    if tp is Any:
        return {}
    if tp in _SCALARS:
        return dict(_SCALARS[tp])
    if is_typeddict(tp):
        # (with string annotations, Python 3.11 counts a NotRequired key as required: read the marks here)
        hints = get_type_hints(tp, include_extras=True)
        optional = {k for k, v in hints.items() if get_origin(v) is NotRequired or (
            not tp.__total__ and get_origin(v) is not Required)}
        hints = {k: get_args(v)[0] if get_origin(v) in (NotRequired, Required) else v for k, v in hints.items()}
        properties = {k: json_schema_of(v, closed) for k, v in hints.items()}
        out: dict[str, Any] = {"type": "object", "properties": properties,
                               "required": [k for k in hints if k not in optional]}
        if tp.__doc__ and not tp.__doc__.startswith(tp.__name__ + "("):
            out["description"] = " ".join(tp.__doc__.split())
        if closed:
            out["additionalProperties"] = False
        return out
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        return {"enum": list(args)} if len(args) > 1 else {"const": args[0]}
    if origin in (Union, types.UnionType):
        return {"anyOf": [json_schema_of(a, closed) for a in args]}
    if origin in (list, tuple, typing.Sequence) and (origin is not tuple or len(args) == 2 and args[1] is Ellipsis
                                                       or not args):
        return {"type": "array", "items": json_schema_of(args[0], closed) if args else {}}
    if origin is tuple:  # a fixed-length tuple
        return {"type": "array", "prefixItems": [json_schema_of(a, closed) for a in args],
                "minItems": len(args), "maxItems": len(args)}
    if origin is dict:
        if args and args[0] is not str:
            raise TypeError(f"JSON object keys are strings: {tp}")
        return {"type": "object", "additionalProperties": json_schema_of(args[1], closed) if args else {}}
    raise TypeError(f"no JSON Schema for {tp!r}")
