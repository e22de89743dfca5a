"""Checking tool arguments against their JSON schema: the small subset tools use.

Tool parameters are flat objects of strings, numbers, booleans and nulls with lengths,
bounds, enums and defaults. The ``jsonschema`` package handles all of JSON Schema, but
importing it costs about 1.8 s here (its format checkers build a grammar at import), which
the first answer of a freshly started server would pay. This module checks the subset
below and refuses a schema that uses anything else, so nothing is silently unchecked;
its messages follow jsonschema's wording.

Supported keywords: ``type`` (a name or a list of names), ``properties``, ``required``,
``additionalProperties`` (a boolean), ``minLength``/``maxLength``, ``minimum``/``maximum``,
``enum``, ``default``, ``description``, ``title``, ``items`` (a schema).
"""

from __future__ import annotations

from typing import Any

KNOWN = {"type", "properties", "required", "additionalProperties", "minLength", "maxLength", "minimum",
         "maximum", "enum", "default", "description", "title", "items"}
TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


class SchemaProblem(ValueError):
    """The schema itself uses something this checker does not support, or is malformed."""


def check_schema(schema: Any, where: str = "parameters") -> None:
    """Raise SchemaProblem unless ``schema`` is a schema this module can enforce."""
    if not isinstance(schema, dict):
        raise SchemaProblem(f"{where} must be a JSON object, got {type(schema).__name__}")
    unknown = sorted(set(schema) - KNOWN)
    if unknown:
        raise SchemaProblem(f"{where} uses unsupported keyword(s) {unknown}; supported: {sorted(KNOWN)}")
    types = schema.get("type", [])
    for t in [types] if isinstance(types, str) else types:
        if t not in TYPES:
            raise SchemaProblem(f"{where}: {t!r} is not a JSON type; use one of {sorted(TYPES)}")
    props = schema.get("properties", {})
    if not isinstance(props, dict):
        raise SchemaProblem(f"{where}: 'properties' must be an object")
    for name, sub in props.items():
        check_schema(sub, f"{where}/{name}")
    if not isinstance(schema.get("required", []), list):
        raise SchemaProblem(f"{where}: 'required' must be a list of names")
    if "additionalProperties" in schema and not isinstance(schema["additionalProperties"], bool):
        raise SchemaProblem(f"{where}: 'additionalProperties' must be true or false here")
    if "items" in schema:
        check_schema(schema["items"], f"{where}/items")


def problems(schema: dict, value: Any, path: str = "") -> list[tuple[str, str]]:
    """What is wrong with ``value`` against ``schema``: ``(path, message)`` pairs ("" = the value itself)."""
    out: list[tuple[str, str]] = []
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(TYPES[t](value) for t in names):
            wanted = repr(names[0]) if len(names) == 1 else repr(names)
            return [(path, f"{value!r} is not of type {wanted}")]
    if "enum" in schema and value not in schema["enum"]:
        out.append((path, f"{value!r} is not one of {schema['enum']!r}"))
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            out.append((path, f"{value!r} should be non-empty" if schema["minLength"] == 1
                        else f"{value!r} is too short"))
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            out.append((path, f"{value[:40]!r}… is too long (the limit is {schema['maxLength']} characters)"))
    if TYPES["number"](value):
        if "minimum" in schema and value < schema["minimum"]:
            out.append((path, f"{value!r} is less than the minimum of {schema['minimum']!r}"))
        if "maximum" in schema and value > schema["maximum"]:
            out.append((path, f"{value!r} is greater than the maximum of {schema['maximum']!r}"))
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                out.append((path, f"{name!r} is a required property"))
        if schema.get("additionalProperties") is False:
            extra = [k for k in value if k not in props]
            if extra:
                names = ", ".join(repr(k) for k in extra)
                out.append((path, f"Additional properties are not allowed ({names} was unexpected)"))
        for name, sub in props.items():
            if name in value:
                out.extend(problems(sub, value[name], f"{path}/{name}" if path else name))
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            out.extend(problems(schema["items"], item, f"{path}/{i}" if path else str(i)))
    return out
