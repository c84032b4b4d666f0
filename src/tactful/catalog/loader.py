"""Read a catalog file: YAML with line numbers, section shapes, then the rules of `assemble.py`.

`check_catalog_file` returns every problem (the CLI prints them); `load_catalog` returns the
catalog or raises `CatalogError` carrying them all, so a deployment refuses to start on a bad map.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from tactful.catalog.assemble import Lines, assemble
from tactful.catalog.model import Catalog, CatalogProblem
from tactful.catalog.schemas import CatalogSchema
from tactful.errors import CatalogError

__all__ = ["CatalogProblem", "check_catalog_file", "load_catalog", "parse_catalog"]

PathLike = str | os.PathLike[str]


def load_catalog(path: PathLike) -> Catalog:
    """The catalog in `path`. Raises `CatalogError` (with `.problems`) if the file is invalid."""
    catalog, problems = _load(path)
    if catalog is None or problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise CatalogError(f"the catalog {os.fspath(path)} is invalid:\n{listed}", problems=problems)
    return catalog


def check_catalog_file(path: PathLike) -> list[CatalogProblem]:
    """Every problem in the catalog file `path`; empty when it is valid."""
    return _load(path)[1]


def parse_catalog(text: str, *, file: str = "<catalog>") -> tuple[Catalog | None, list[CatalogProblem]]:
    """Parse catalog text; `file` names it in problems. The catalog is `None` if any problem is fatal."""
    data, lines, problems = _read_yaml(text, file)
    if problems:
        return None, problems
    if not isinstance(data, dict):
        return None, [
            CatalogProblem(file, "the file is not a mapping", "start with 'controller:' and 'atoms:'")
        ]
    try:
        document = CatalogSchema.model_validate(data)
    except ValidationError as exc:
        return None, [_section_problem(file, lines, error) for error in exc.errors()]
    catalog, problems = assemble(document, file=file, lines=lines)
    return (catalog if not problems else None), problems


def _load(path: PathLike) -> tuple[Catalog | None, list[CatalogProblem]]:
    file = os.fspath(path)
    try:
        with open(file, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        return None, [CatalogProblem(file, f"cannot read the file ({exc})", "check the path and encoding")]
    return parse_catalog(text, file=file)


def _section_problem(file: str, lines: Lines, error: ErrorDetails) -> CatalogProblem:
    location = ".".join(str(part) for part in error["loc"])
    return CatalogProblem(
        file,
        f"'{location}': {error['msg']}",
        "see the format in the tactful.catalog package documentation",
        line=lines.sections.get(location.split(".")[0]),
    )


# -- YAML with line numbers and duplicate keys ---------------------------------------------------


@dataclass
class _Reading:
    lines: Lines = field(default_factory=Lines)
    problems: list[CatalogProblem] = field(default_factory=list)


def _read_yaml(text: str, file: str) -> tuple[object, Lines, list[CatalogProblem]]:
    reading = _Reading()
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            problem = CatalogProblem(file, "the file is empty", "declare 'controller:' and 'atoms:'")
            return None, reading.lines, [problem]
        _walk(node, (), file, reading)
        data: object = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = exc.problem or exc.context or "unreadable"
        column = f" (column {mark.column + 1})" if mark is not None else ""
        fix = f"fix the YAML syntax near line {line}{column}" if line else "fix the YAML syntax"
        return None, reading.lines, [CatalogProblem(file, f"malformed YAML: {what}", fix, line=line)]
    except yaml.YAMLError as exc:
        return None, reading.lines, [CatalogProblem(file, f"malformed YAML: {exc}", "fix the YAML syntax")]
    finally:
        loader.dispose()
    return data, reading.lines, reading.problems


def _pairs(node: yaml.Node) -> Iterator[tuple[str, int, yaml.Node]]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield str(key.value), key.start_mark.line + 1, value


def _walk(node: yaml.Node, path: tuple[str, ...], file: str, reading: _Reading) -> None:
    """Record where sections, atoms and properties start; report keys that appear twice (PyYAML
    would silently keep the last one, hiding half of a duplicated atom)."""
    seen: dict[str, int] = {}
    for key, line, value in _pairs(node):
        if key in seen:
            reading.problems.append(_duplicate(file, path, key, line, seen[key]))
        seen.setdefault(key, line)
        if path == ():
            reading.lines.sections[key] = line
        elif path == ("atoms",):
            reading.lines.atoms.setdefault(key, line)
        elif len(path) == 3 and path[0] == "atoms" and path[2] == "properties":
            reading.lines.properties.setdefault((path[1], key), line)
        elif len(path) == 2 and path[0] == "atoms":
            reading.lines.fields.setdefault((path[1], key), line)
        _walk(value, (*path, key), file, reading)
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _walk(item, (*path, "[]"), file, reading)


def _duplicate(file: str, path: tuple[str, ...], key: str, line: int, first: int) -> CatalogProblem:
    if path == ("atoms",):
        return CatalogProblem(
            file,
            f"duplicate atom (first declared on line {first})",
            "keep one declaration: merge the two or rename one",
            atom=key,
            line=line,
        )
    atom = path[1] if len(path) > 1 and path[0] == "atoms" else None
    where = ".".join(path[2:] if atom else path) or "the top level"
    return CatalogProblem(
        file,
        f"key '{key}' appears twice in {where} (first on line {first})",
        "remove one of them",
        atom=atom,
        line=line,
    )
