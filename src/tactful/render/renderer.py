"""The renderer: a variation's content, its templates and a SubjectView in; rendered content, or
the reason it could not be rendered, out. Pure: no database, no clock, no web.

A template is compiled once per source and kept in a least-recently-used cache that belongs to the
renderer (one per process and catalog, held by whoever holds the catalog), never to the module.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from jinja2 import Template, TemplateError, TemplateSyntaxError, UndefinedError, meta
from jinja2.exceptions import SecurityError

from tactful.render.content import JSON, PathError, field_at, is_html, replaced, strings
from tactful.render.placeholders import find_placeholder
from tactful.render.sandbox import ROOTS, AtomPaths, Reading, make_environment, namespaces


class RenderReason(StrEnum):
    """Why content was or was not rendered. The walk goes on below on anything but `rendered`."""

    RENDERED = "rendered"
    ATOM_UNAVAILABLE = "atom_unavailable"
    """An atom read without a fallback was withheld or missing for this subject."""
    UNSAFE = "unsafe"
    """The sandbox refused something the template tried (an internal attribute, say)."""
    TEMPLATE_ERROR = "template_error"
    """The template does not compile, or failed on a value (a string where it added numbers)."""
    PLACEHOLDER = "placeholder_in_output"
    """The output holds template syntax or a placeholder token; it is never shown."""
    BAD_FIELD = "bad_field"
    """A template's path names no string field of the content."""
    BAD_SHAPE = "bad_shape"
    """The rendered content lost its placement's shape (an e-mail subject with a line break)."""


@dataclass(frozen=True, slots=True)
class RenderResult:
    """Rendered content, or why there is none. Never the values read: only atom names."""

    reason: RenderReason
    content: JSON = None
    field: str | None = None
    """The field whose template could not be rendered."""
    atoms_read: frozenset[str] = frozenset()
    fallbacks: frozenset[str] = frozenset()
    """Atoms asked for but withheld, missing or unusable, whose fallback applied (or, when not
    rendered, that had none)."""

    @property
    def rendered(self) -> bool:
        return self.reason is RenderReason.RENDERED


_FAILURES: tuple[tuple[type[Exception], RenderReason], ...] = (
    (SecurityError, RenderReason.UNSAFE),
    (UndefinedError, RenderReason.ATOM_UNAVAILABLE),
    (TemplateError, RenderReason.TEMPLATE_ERROR),
)
# What a template can raise on values it did not expect (`{{ computed.lifetime_value + 1 }}` with a
# string): an outcome for this subject, not a fault of the engine.
# A macro that calls itself recurses until Python stops it.
_VALUE_ERRORS = (TypeError, ValueError, ArithmeticError, LookupError, AttributeError, RecursionError)


_CHECKS_HELD = 4096
"""How many contents keep the check of what templates leave of them (a lineup holds far fewer
variations)."""


@dataclass(frozen=True, slots=True)
class _Compiled:
    template: Template
    roots: frozenset[str]
    """The source prefixes the template names: the only namespaces its world needs."""


class Renderer:
    """Renders templates over SubjectViews for one catalog's atom names.

    `atoms` are the catalog's atom names: a template's dotted path is resolved along them
    (`sandbox.py`). `cache_size` templates stay compiled, least recently used first out.
    """

    def __init__(self, atoms: Collection[str], *, cache_size: int = 512) -> None:
        self._paths = AtomPaths.of(atoms)
        self._environments = {True: make_environment(html=True), False: make_environment(html=False)}
        self._compiled = lru_cache(maxsize=cache_size)(self._compile)
        # What templates leave of a content reads nothing about the subject: it is checked once per
        # content object and set of templated fields (a lineup's variations live as long as this
        # renderer), so that a render checks only what it wrote. Plain content (no templates) keeps
        # its whole result, shared and never changed.
        self._static: dict[int, tuple[JSON, tuple[str, ...], str | None]] = {}
        self._plain: dict[int, tuple[JSON, RenderResult]] = {}

    def compile(self, source: str, *, html: bool) -> Template:
        """The compiled template for `source` (cached); `TemplateSyntaxError` if it does not compile."""
        return self._compiled(source, html).template

    def cache_info(self) -> tuple[int, int, int]:
        """(hits, misses, size) of the compiled-template cache."""
        info = self._compiled.cache_info()
        return info.hits, info.misses, info.currsize

    def render(self, content: JSON, templates: Mapping[str, str], view: Mapping[str, object]) -> RenderResult:
        """`content` with each templated field rendered over `view`, or the reason it cannot be.

        `view` is a SubjectView (reading an atom outside its Allowance raises `AtomNotAllowed`, a
        permitted atom with no value `KeyError`); nothing else reaches a template. The result's
        content never holds template syntax or a placeholder token: content that would is refused.
        """
        if not templates:  # plain content (most variations, every default): only the output check
            return self._plain_result(content)
        reading = Reading(view)
        fields: dict[str, str] = {}
        for path, source in templates.items():
            try:
                field_at(content, path)
            except PathError:
                return self._failed(RenderReason.BAD_FIELD, path, reading)
            try:
                compiled = self._compiled(source, is_html(path))
            except TemplateSyntaxError:
                return self._failed(RenderReason.TEMPLATE_ERROR, path, reading)
            try:
                fields[path] = str(compiled.template.render(namespaces(self._paths, reading, compiled.roots)))
            except _VALUE_ERRORS:
                return self._failed(RenderReason.TEMPLATE_ERROR, path, reading)
            except TemplateError as exc:
                reason = next(r for kind, r in _FAILURES if isinstance(exc, kind))
                return self._failed(reason, path, reading)
        problem = self._static_problem(content, tuple(fields))
        if problem is not None:
            return self._failed(RenderReason.PLACEHOLDER, problem, reading)
        for path, text in fields.items():
            if find_placeholder(text) is not None:
                return self._failed(RenderReason.PLACEHOLDER, path, reading)
        return _rendered(replaced(content, fields), reading)

    def _plain_result(self, content: JSON) -> RenderResult:
        known = self._plain.get(id(content))
        if known is not None and known[0] is content:  # the object held below: its id is still its own
            return known[1]
        result = _checked(replaced(content, {}), Reading({}))
        if len(self._plain) < _CHECKS_HELD:
            self._plain[id(content)] = (content, result)
        return result

    def _static_problem(self, content: JSON, paths: tuple[str, ...]) -> str | None:
        """The first field of `content` that holds a placeholder, the templated `paths` left out
        (their output is checked on each render)."""
        known = self._static.get(id(content))
        if known is not None and known[0] is content and known[1] == paths:
            return known[2]
        blank = replaced(content, dict.fromkeys(paths, ""))
        problem = next((path for path, text in strings(blank) if find_placeholder(text) is not None), None)
        if len(self._static) < _CHECKS_HELD:
            self._static[id(content)] = (content, paths, problem)
        return problem

    def _compile(self, source: str, html: bool) -> _Compiled:
        environment = self._environments[html]
        template = environment.from_string(source)
        named = meta.find_undeclared_variables(environment.parse(source))
        return _Compiled(template, frozenset(named & ROOTS))

    @staticmethod
    def _failed(reason: RenderReason, path: str, reading: Reading) -> RenderResult:
        return RenderResult(
            reason, field=path, atoms_read=frozenset(reading.read), fallbacks=frozenset(reading.absent)
        )


def _checked(output: JSON, reading: Reading) -> RenderResult:
    """`output` when no string of it holds template syntax or a placeholder token (invariant 9)."""
    for path, text in strings(output):
        if find_placeholder(text) is not None:
            return Renderer._failed(RenderReason.PLACEHOLDER, path, reading)
    return _rendered(output, reading)


def _rendered(output: JSON, reading: Reading) -> RenderResult:
    return RenderResult(
        RenderReason.RENDERED,
        output,
        atoms_read=frozenset(reading.read),
        fallbacks=frozenset(reading.absent),
    )
