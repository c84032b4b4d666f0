"""A variation's content: typed JSON, and the fields of it that templates fill.

    content   {"headline": "Welcome", "body_html": "<p>New in running</p>", "blocks": [{"text": ""}]}
    templates {"headline": "Hi {{ traits.first_name | default('there') }}", "blocks.0.text": "..."}

A template's key is the path of a string field in the content: keys of objects and indexes of
lists joined by dots. The field must exist and hold a string (the copy without personalization);
the rendered template replaces it. A field whose last key is `html` or ends in `_html` is HTML, and
its template is autoescaped; every other field is plain text and rendered as written.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TypeAlias

JSON: TypeAlias = dict[str, "JSON"] | list["JSON"] | str | int | float | bool | None
"""Typed JSON content: nested objects, lists, strings, numbers, booleans (and null)."""


class PathError(ValueError):
    """A template's path names no string field of the content."""


def is_html(path: str) -> bool:
    last = path.rsplit(".", 1)[-1]
    return last == "html" or last.endswith("_html")


def steps(path: str) -> list[str]:
    return path.split(".") if path else []


def field_at(content: JSON, path: str) -> str:
    """The string at `path`; `PathError` when there is none."""
    value = content
    for step in steps(path):
        value = _child(value, step, path)
    if not isinstance(value, str):
        raise PathError(f"'{path}' holds {_kind(value)}, not a string")
    return value


def replaced(content: JSON, fields: Mapping[str, str]) -> JSON:
    """A copy of `content` with each path of `fields` set to its string (paths already checked)."""
    copy = _copy(content)
    for path, text in fields.items():
        *parents, last = steps(path)
        holder = copy
        for step in parents:
            holder = _child(holder, step, path)
        if isinstance(holder, dict):
            holder[last] = text
        elif isinstance(holder, list):
            holder[int(last)] = text
    return copy


def strings(content: JSON, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in `content` (keys included), with the path where it sits."""
    if isinstance(content, str):
        yield path, content
    elif isinstance(content, dict):
        for key, value in content.items():
            where = f"{path}.{key}" if path else key
            yield where, key
            yield from strings(value, where)
    elif isinstance(content, list):
        for index, value in enumerate(content):
            yield from strings(value, f"{path}.{index}" if path else str(index))


def _child(value: JSON, step: str, path: str) -> JSON:
    if isinstance(value, dict):
        if step not in value:
            raise PathError(f"'{path}': the content has no field '{step}'")
        return value[step]
    if isinstance(value, list):
        if not step.isdigit() or int(step) >= len(value):
            raise PathError(f"'{path}': '{step}' is not an index of a list of {len(value)}")
        return value[int(step)]
    raise PathError(f"'{path}': '{step}' is below {_kind(value)}")


def _kind(value: JSON) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"


def _copy(content: JSON) -> JSON:
    if isinstance(content, dict):
        return {key: _copy(value) for key, value in content.items()}
    if isinstance(content, list):
        return [_copy(value) for value in content]
    return content
