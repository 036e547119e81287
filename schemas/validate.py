"""JSON Schema validation of publisher input, with errors that name the field."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError


@cache
def validator(name: str) -> Draft202012Validator:
    """The validator for ``schemas/<name>.schema.json`` (loaded once)."""
    text = resources.files("schemas").joinpath(f"{name}.schema.json").read_text("utf-8")
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _describe(error: ValidationError) -> str:
    path = "/".join(str(p) for p in error.absolute_path) or "(record)"
    return f"{path}: {error.message}"


def errors(name: str, data: Any) -> list[str]:
    """Every schema violation of ``data`` against schema ``name``, as 'field/path: message'."""
    found = sorted(validator(name).iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    return [_describe(e) for e in found]
