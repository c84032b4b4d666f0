"""The publish-time lint: a template that could show a placeholder, read an atom the catalog does not
declare, or put into copy what the catalog keeps out of it is refused, with its line and the fix.

A template is refused for:
- `syntax_error`: it does not parse or compile (an unknown filter, an unclosed tag);
- `no_fallback`: it reads an atom without a fallback (`analysis.py` says exactly what counts);
- `undeclared_atom`: it reads a path that names no atom of the catalog;
- `copy_forbidden`: it reads an atom the catalog keeps out of copy, by the atom's own
  `copy_forbidden` flag or by a `never_in_copy` category rule (named in the message);
- `placeholder_text`: its own text holds template syntax or a placeholder token (a `{% raw %}`
  block, a merge tag pasted from another system: `placeholders.py`);
- `unknown_name`, `not_an_atom`, `shadowed`: it names something other than an atom by its full
  name (`{{ name }}`, `{{ traits }}`, `{% set traits = ... %}`): nothing but atoms exists here;
- `unsafe_attribute`: it reaches for an internal attribute (`{{ ''.__class__ }}`);
- `tag_not_allowed`: `extends`, `include` or `import` (a template stands alone);
- `conditional_without_else`: `x if test` without `else` (it would print nothing, silently).

A variation is also refused when a template's path names no string field of its content
(`bad_field`) or when its plain content holds a placeholder (`placeholder_text`); an e-mail's
variation when it lacks an e-mail's shape (`email_shape`) or templates a link (`field_not_templatable`,
`email.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from jinja2 import TemplateSyntaxError

from tactful.catalog.categories import Category, closest
from tactful.catalog.levels import highest
from tactful.catalog.model import Catalog
from tactful.render.analysis import Analysis, Finding, Position, Read, analyse
from tactful.render.content import JSON, PathError, field_at, is_html, strings
from tactful.render.placeholders import find_placeholder
from tactful.render.sandbox import make_environment
from tactful.types import Level


class LintCode(StrEnum):
    SYNTAX_ERROR = "syntax_error"
    NO_FALLBACK = "no_fallback"
    UNDECLARED_ATOM = "undeclared_atom"
    COPY_FORBIDDEN = "copy_forbidden"
    PLACEHOLDER_TEXT = Finding.PLACEHOLDER_TEXT.value
    UNKNOWN_NAME = Finding.UNKNOWN_NAME.value
    NOT_AN_ATOM = Finding.NOT_AN_ATOM.value
    SHADOWED = Finding.SHADOWED.value
    UNSAFE_ATTRIBUTE = Finding.UNSAFE_ATTRIBUTE.value
    TAG_NOT_ALLOWED = Finding.TAG_NOT_ALLOWED.value
    NO_ELSE = Finding.NO_ELSE.value
    BAD_FIELD = "bad_field"
    EMAIL_SHAPE = "email_shape"
    NOT_TEMPLATABLE = "field_not_templatable"


@dataclass(frozen=True, slots=True)
class TemplateProblem:
    """One reason a template cannot be published: where, what, and how to fix it."""

    code: LintCode
    message: str
    fix: str
    line: int | None = None
    atom: str | None = None
    field: str | None = None
    """The content field whose template it is (in a variation)."""

    def __str__(self) -> str:
        where = [f"field '{self.field}'"] if self.field else []
        where += [f"line {self.line}"] if self.line is not None else []
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}; {self.fix}" if prefix else f"{self.message}; {self.fix}"


@dataclass(frozen=True, slots=True)
class TemplateCheck:
    """What the lint found: the atoms read, the level they put the template at, and the problems."""

    atoms: frozenset[str]
    level: Level
    problems: tuple[TemplateProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def template_level(atoms: Iterable[str], catalog: Catalog) -> Level:
    """The level of whatever reads `atoms`: the highest of theirs; `1:all` for none. Atoms the
    catalog does not declare are left out (the lint refuses them)."""
    return highest((Level.ALL, *(catalog.atoms[a].level for a in atoms if a in catalog.atoms)))


def lint_template(source: str, *, catalog: Catalog, html: bool = False) -> TemplateCheck:
    """Check one template against `catalog`; `html` for a field rendered with autoescaping."""
    environment = make_environment(html=html)
    try:
        tree = environment.parse(source)
        environment.compile(tree)
    except TemplateSyntaxError as exc:
        problem = TemplateProblem(
            LintCode.SYNTAX_ERROR,
            f"the template does not compile: {exc.message}",
            "fix the syntax; Jinja's is described at https://jinja.palletsprojects.com/templates/",
            line=exc.lineno,
        )
        return TemplateCheck(frozenset(), Level.ALL, (problem,))
    analysis = analyse(tree, catalog.atoms.keys())
    problems = [*_read_problems(analysis, catalog), *_note_problems(analysis)]
    problems.sort(key=lambda p: (p.line or 0, p.code))
    return TemplateCheck(analysis.atoms, template_level(analysis.atoms, catalog), tuple(problems))


def lint_variation(content: JSON, templates: Mapping[str, str], *, catalog: Catalog) -> TemplateCheck:
    """Check a variation's content and every template in it; problems name their field."""
    problems: list[TemplateProblem] = []
    atoms: set[str] = set()
    for path, source in templates.items():
        try:
            field_at(content, path)
        except PathError as exc:
            problems.append(
                TemplateProblem(
                    LintCode.BAD_FIELD,
                    f"the template's field does not exist as text: {exc}",
                    "give the content a string field at this path (the copy without personalization)",
                    field=path,
                )
            )
            continue
        check = lint_template(source, catalog=catalog, html=is_html(path))
        atoms |= check.atoms
        problems += [_in_field(p, path) for p in check.problems]
    for path, text in strings(content):
        if path in templates:
            continue  # a templated field's plain text is replaced when rendered
        found = find_placeholder(text)
        if found is not None:
            problems.append(_placeholder(found, line=None, field=path))
    return TemplateCheck(frozenset(atoms), template_level(atoms, catalog), tuple(problems))


def _in_field(problem: TemplateProblem, path: str) -> TemplateProblem:
    return TemplateProblem(problem.code, problem.message, problem.fix, problem.line, problem.atom, path)


# -- reads ----------------------------------------------------------------------------------------


def _read_problems(analysis: Analysis, catalog: Catalog) -> list[TemplateProblem]:
    problems: list[TemplateProblem] = []
    reported: set[tuple[LintCode, str, int]] = set()

    def add(code: LintCode, read: Read, message: str, fix: str) -> None:
        if (code, read.atom, read.line) not in reported:
            reported.add((code, read.atom, read.line))
            problems.append(TemplateProblem(code, message, fix, read.line, read.atom))

    for read in analysis.reads:
        if not read.declared:
            guess = _closest(read.atom, catalog)
            add(
                LintCode.UNDECLARED_ATOM,
                read,
                f"{read.atom} is not an atom the catalog declares",
                f"did you mean {guess}?" if guess else "declare it in the catalog, or read a declared atom",
            )
            continue
        refusal = _copy_refusal(read, catalog)
        if refusal is not None:
            add(LintCode.COPY_FORBIDDEN, read, refusal, "leave it out of the copy")
        if not read.covered:
            add(LintCode.NO_FALLBACK, read, f"{read.atom} has no fallback", _fallback_fix(read))
    return problems


def _copy_refusal(read: Read, catalog: Catalog) -> str | None:
    atom = catalog.atoms[read.atom]
    if atom.copy_forbidden:
        return f"{atom.name} may not be put into copy (the catalog marks it copy_forbidden)"
    # An event atom's properties may differ in category: reading one shows that one; testing the
    # event shows none of them; printing the whole event shows them all.
    prop = atom.find_property(read.rest[0]) if read.rest else None
    if prop is not None:
        categories: tuple[Category, ...] = (atom.category_info, prop.category)
    elif read.position is Position.TEST and not read.rest:
        categories = (atom.category_info,)
    else:
        categories = atom.categories
    for category in categories:
        rule = catalog.copy_rule(category.name)
        if rule is not None:
            return (
                f"{atom.name} is of category {category.name}, which the catalog's copy rule "
                f"never_in_copy: {rule} keeps out of copy"
            )
    return None


def _fallback_fix(read: Read) -> str:
    name = ".".join(read.path)
    atom = read.atom
    if read.position is Position.TEST:
        return f"test it first: {{% if {atom} and <the test> %}}"
    if read.rest:
        return f"wrap it in {{% if {atom} %}}…{{% endif %}} (a default cannot stand in for {name})"
    return (
        f"write {{{{ {atom} | default('…') }}}} with the words to show instead, "
        f"or wrap it in {{% if {atom} %}}…{{% endif %}}"
    )


def _closest(name: str, catalog: Catalog) -> str | None:
    return closest(name, catalog.atoms)


# -- everything else ------------------------------------------------------------------------------

_NOTES: Mapping[Finding, tuple[LintCode, str, str]] = {
    Finding.UNKNOWN_NAME: (
        LintCode.UNKNOWN_NAME,
        "'{subject}' is not defined here",
        "read atoms by their full name, such as traits.first_name or context.location.country",
    ),
    Finding.NOT_AN_ATOM: (
        LintCode.NOT_AN_ATOM,
        "'{subject}' is used without naming an atom",
        "name the atom in full, such as {subject}.<name>, with a constant name",
    ),
    Finding.SHADOWED: (
        LintCode.SHADOWED,
        "'{subject}' is assigned to, and it names where atoms come from",
        "choose another variable name",
    ),
    Finding.UNSAFE_ATTRIBUTE: (
        LintCode.UNSAFE_ATTRIBUTE,
        "'{subject}' is an internal attribute, which the sandbox refuses",
        "remove it: templates read atoms and their plain values only",
    ),
    Finding.TAG_NOT_ALLOWED: (
        LintCode.TAG_NOT_ALLOWED,
        "'{subject}' is not available: a template stands alone",
        "write the text into this template",
    ),
    Finding.NO_ELSE: (
        LintCode.NO_ELSE,
        "a conditional expression without 'else' prints nothing when its test fails",
        "add an else: {{{{ a if test else 'words to show instead' }}}}",
    ),
}


def _note_problems(analysis: Analysis) -> list[TemplateProblem]:
    problems: list[TemplateProblem] = []
    for note in dict.fromkeys(analysis.notes):
        if note.finding is Finding.PLACEHOLDER_TEXT:
            problems.append(_placeholder(note.subject, line=note.line, field=None))
            continue
        code, message, fix = _NOTES[note.finding]
        problems.append(
            TemplateProblem(code, message.format(subject=note.subject), fix.format(subject=note.subject),
                            line=note.line)
        )  # fmt: skip
    return problems


def _placeholder(token: str, *, line: int | None, field: str | None) -> TemplateProblem:
    return TemplateProblem(
        LintCode.PLACEHOLDER_TEXT,
        f"the text holds '{token}', which reads as a placeholder and would be shown as it is",
        "write the words to show, or read an atom with a fallback: "
        "{{ traits.first_name | default('there') }}",
        line=line,
        field=field,
    )
