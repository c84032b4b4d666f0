"""What a template reads, found in its syntax tree (`jinja2.nodes`) without running it.

Every dotted path that starts at a source prefix (`traits.first_name`, `context.location.country`,
also `traits['first_name']`) is one read. Its atom is the shortest prefix of the path the catalog
declares, as the sandbox resolves it (`sandbox.py`); what follows is an attribute of the value
(`traits.first_name.upper()` reads `traits.first_name`). A path with no declared prefix is an
undeclared atom, named by the whole path.

Each read is marked `covered` when the template has a fallback for it. Precisely, a read of atom A
is covered when one of these holds, and nothing else counts:

1. it is the value of a `default` (or `d`) filter whose fallback is a literal: a string with
   something besides spaces in it, or a number (`{{ traits.first_name | default('there') }}`);
   the filter must take A itself, not something computed from it;
2. it stands as a test: the whole test of an `{% if %}`, `{% elif %}` or `x if test else y`, an
   operand of `and`, `or` or `not` within one, or the operand of `is defined` / `is undefined`
   (a withheld or missing atom is false there, so the test is the fallback);
3. it sits in the branch that runs only when a test guards A: the body of `{% if %}` or `{% elif %}`,
   or the first value of `x if test else y`, where the test is A itself, `A is defined`, or an
   `and` of which one operand guards A; within an `and`, the right side is guarded by the left
   (`{% if A and A == 'SE' %}` covers both reads). An `else` branch, an `or` and a `not` guard
   nothing.

A read anywhere else (printed bare, compared, looped over, passed to a filter other than `default`,
assigned with `{% set %}`) is not covered: when the atom is withheld or missing the template cannot
render, and the lint refuses it at publish time.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from enum import StrEnum

from jinja2 import meta, nodes

from tactful.render.placeholders import find_placeholder
from tactful.render.sandbox import ROOTS


class Position(StrEnum):
    """Where a read sits, for the wording of the fix."""

    OUTPUT = "output"
    TEST = "test"


@dataclass(frozen=True, slots=True)
class Read:
    """One place a template reads an atom."""

    atom: str
    path: tuple[str, ...]
    """The whole dotted path as written: the atom's steps, then any attributes of its value."""
    line: int
    covered: bool
    declared: bool
    position: Position = Position.OUTPUT

    @property
    def rest(self) -> tuple[str, ...]:
        """The steps after the atom's name (`("upper",)` for `traits.first_name.upper`)."""
        return self.path[self.atom.count(".") + 1 :]


class Finding(StrEnum):
    """What the tree shows that is not an atom read."""

    NOT_AN_ATOM = "not_an_atom"
    """A source prefix used other than as the start of an atom's full name."""
    SHADOWED = "shadowed"
    """A source prefix assigned to (`{% set traits = ... %}`, a loop variable, a macro argument)."""
    UNKNOWN_NAME = "unknown_name"
    UNSAFE_ATTRIBUTE = "unsafe_attribute"
    PLACEHOLDER_TEXT = "placeholder_text"
    TAG_NOT_ALLOWED = "tag_not_allowed"
    NO_ELSE = "conditional_without_else"


@dataclass(frozen=True, slots=True)
class Note:
    finding: Finding
    line: int
    subject: str
    """What it is about: a name, an attribute, a tag, or the text found."""


@dataclass
class Analysis:
    reads: list[Read] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    @property
    def atoms(self) -> frozenset[str]:
        """Every declared atom the template reads."""
        return frozenset(r.atom for r in self.reads if r.declared)


_DEFAULT_FILTERS = frozenset({"default", "d"})
_NOT_ALLOWED: tuple[tuple[type[nodes.Node], str], ...] = (
    (nodes.Extends, "extends"),
    (nodes.Include, "include"),
    (nodes.Import, "import"),
    (nodes.FromImport, "from ... import"),
)


def path_of(node: nodes.Node) -> tuple[str, ...] | None:
    """The dotted path `node` spells from a source prefix (`traits.first_name`), or None."""
    steps: list[str] = []
    while True:
        if isinstance(node, nodes.Getattr):
            steps.append(node.attr)
            node = node.node
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
        ):
            steps.append(node.arg.value)
            node = node.node
        elif isinstance(node, nodes.Name) and node.ctx == "load" and node.name in ROOTS:
            steps.append(node.name)
            return tuple(reversed(steps))
        else:
            return None


def atom_of(path: tuple[str, ...], atoms: Collection[str]) -> tuple[str, bool]:
    """The atom a path reads: its shortest declared prefix, else the whole path (undeclared)."""
    for end in range(2, len(path) + 1):
        name = ".".join(path[:end])
        if name in atoms:
            return name, True
    return ".".join(path), False


def analyse(tree: nodes.Template, atoms: Collection[str]) -> Analysis:
    """The reads of a parsed template, given the catalog's atom names, and anything else the lint
    must know about it."""
    walker = _Walker(atoms)
    walker.statements(tree.body, frozenset())
    walker.other_findings(tree)
    return walker.result


class _Walker:
    def __init__(self, atoms: Collection[str]) -> None:
        self.atoms = atoms
        self.result = Analysis()
        self.testing = 0
        """Above zero while inside a test: a read there wants a test-shaped fix."""

    # -- statements --------------------------------------------------------------------------------

    def statements(self, body: list[nodes.Node], guards: frozenset[str]) -> None:
        for node in body:
            self.node(node, guards)

    def node(self, node: nodes.Node, guards: frozenset[str]) -> None:
        if isinstance(node, nodes.If):
            self.branch(node, guards)
            return
        if isinstance(node, nodes.CondExpr):
            guarded = self.test(node.test, guards)
            self.node(node.expr1, guards | guarded)
            if node.expr2 is None:
                self.note(Finding.NO_ELSE, node, "if")
            else:
                self.node(node.expr2, guards)
            return
        if isinstance(node, nodes.Filter) and self.default_of_atom(node, guards):
            return
        path = path_of(node)
        if path is not None:
            self.read(path, node, covered=False, guards=guards)
            return
        self.check_node(node)
        for child in node.iter_child_nodes():
            self.node(child, guards)

    def branch(self, node: nodes.If, guards: frozenset[str]) -> None:
        guarded = self.test(node.test, guards)
        self.statements(node.body, guards | guarded)
        for alternative in node.elif_:
            self.branch(alternative, guards)
        self.statements(node.else_, guards)

    def test(self, node: nodes.Node, guards: frozenset[str]) -> frozenset[str]:
        """Record the reads of a test; return the atoms it guards when it is true."""
        path = path_of(node)
        if path is not None:
            atom = self.read(path, node, covered=True, guards=guards, position=Position.TEST)
            return frozenset({atom}) if atom is not None else frozenset()
        if isinstance(node, nodes.Test) and node.name in ("defined", "undefined"):
            inner = path_of(node.node)
            if inner is not None and not node.args and not node.kwargs:
                atom = self.read(inner, node.node, covered=True, guards=guards, position=Position.TEST)
                if atom is not None and node.name == "defined":
                    return frozenset({atom})
                return frozenset()
        if isinstance(node, nodes.And):
            left = self.test(node.left, guards)
            right = self.test(node.right, guards | left)
            return left | right
        if isinstance(node, nodes.Or):
            self.test(node.left, guards)
            self.test(node.right, guards)
            return frozenset()
        if isinstance(node, nodes.Not):
            self.test(node.node, guards)
            return frozenset()
        self.testing += 1
        try:
            self.node(node, guards)
        finally:
            self.testing -= 1
        return frozenset()

    def default_of_atom(self, node: nodes.Filter, guards: frozenset[str]) -> bool:
        """A `default` filter straight on an atom with a literal fallback: a covered read."""
        if node.name not in _DEFAULT_FILTERS or node.node is None:
            return False
        path = path_of(node.node)
        if path is None:
            return False
        fallback = node.args[0] if node.args else None
        for keyword in node.kwargs:
            if keyword.key == "default_value":
                fallback = keyword.value
        atom, _ = atom_of(path, self.atoms)
        exact = atom.count(".") + 1 == len(path)
        literal = isinstance(fallback, nodes.Const) and _shows_something(fallback.value)
        self.read(path, node.node, covered=exact and literal, guards=guards)
        for child in (*node.args, *node.kwargs):
            self.node(child, guards)
        return True

    def read(
        self,
        path: tuple[str, ...],
        node: nodes.Node,
        *,
        covered: bool,
        guards: frozenset[str],
        position: Position = Position.OUTPUT,
    ) -> str | None:
        line = node.lineno
        if self.testing:
            position = Position.TEST
        if len(path) == 1:
            self.note(Finding.NOT_AN_ATOM, node, path[0])
            return None
        for step in path[1:]:
            if step.startswith("_"):
                self.note(Finding.UNSAFE_ATTRIBUTE, node, step)
        atom, declared = atom_of(path, self.atoms)
        # Attributes of the value (`.upper`) raise when the atom is missing, so only an exact read
        # can stand as a test or take a default.
        exact = atom.count(".") + 1 == len(path)
        covered = (covered and exact) or atom in guards
        self.result.reads.append(Read(atom, path, line, covered, declared, position))
        return atom

    # -- whatever is not a read ---------------------------------------------------------------------

    def check_node(self, node: nodes.Node) -> None:
        text = node.data if isinstance(node, nodes.TemplateData) else getattr(node, "value", None)
        if isinstance(node, nodes.TemplateData | nodes.Const) and isinstance(text, str):
            found = find_placeholder(text)
            if found is not None:
                self.note(Finding.PLACEHOLDER_TEXT, node, found)
        elif isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            self.note(Finding.UNSAFE_ATTRIBUTE, node, node.attr)
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
            and node.arg.value.startswith("_")
        ):
            self.note(Finding.UNSAFE_ATTRIBUTE, node, node.arg.value)
        elif isinstance(node, nodes.Name) and node.name in ROOTS:
            if node.ctx == "load":
                self.note(Finding.NOT_AN_ATOM, node, node.name)
            else:
                self.note(Finding.SHADOWED, node, node.name)
        else:
            for kind, tag in _NOT_ALLOWED:
                if isinstance(node, kind):
                    self.note(Finding.TAG_NOT_ALLOWED, node, tag)

    def other_findings(self, tree: nodes.Template) -> None:
        unknown = meta.find_undeclared_variables(tree) - ROOTS
        for name in sorted(unknown):
            first = next((n for n in tree.find_all(nodes.Name) if n.name == name), None)
            self.result.notes.append(Note(Finding.UNKNOWN_NAME, first.lineno if first else 1, name))

    def note(self, finding: Finding, node: nodes.Node, subject: str) -> None:
        self.result.notes.append(Note(finding, node.lineno, subject))


def _shows_something(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        return bool(value.strip())
    return isinstance(value, int | float)
