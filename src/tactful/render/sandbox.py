"""The sandbox a template runs in: Jinja2's immutable sandbox, nothing in it but the view's atoms.

A template names an atom by its full name (`{{ traits.first_name }}`,
`{{ context.location.country }}`). Each source prefix (`context`, `traits`, `events`, `computed`)
is a small namespace object: reading `traits.first_name` from it asks the SubjectView for the atom
`traits.first_name`, and `context.location` gives the namespace one level down until the path names
an atom. The first path along the way that the catalog declares is the atom; what follows it is an
attribute of the atom's value (the static analysis of `analysis.py` splits paths the same way).

An atom the view withholds (`AtomNotAllowed`), has no value for (`KeyError`), holds as null, or
holds as a string that looks like a placeholder ("*|FNAME|*", "{{x}}") comes back as an
`AtomUndefined`: false in an `{% if %}` and replaced by `default(...)`, while printing it, iterating
it, comparing it or doing arithmetic with it raises, so the renderer reports it could not render
instead of writing an empty or placeholder string. Values are only ever data: they are passed to a
compiled template, never parsed as one (invariant 14).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from jinja2 import StrictUndefined
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from tactful.catalog.model import SOURCE_PREFIX
from tactful.policy.allowance import AtomNotAllowed
from tactful.render.placeholders import has_placeholder

ROOTS: frozenset[str] = frozenset(SOURCE_PREFIX)
"""The names a template may use at its top level: the atoms' source prefixes."""


class AtomUndefined(StrictUndefined):
    """An atom or name with no value to show. Unlike Jinja's `StrictUndefined` it is false in a
    test, so `{% if traits.first_name %}` is a fallback; everything else still raises."""

    __slots__ = ()

    def __bool__(self) -> bool:  # type: ignore[override]  # StrictUndefined raises here
        return False


MAX_SIZE = 100_000
"""The longest string or list a template may make by multiplying, and the largest power it may take."""


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with `*` and `**` bounded: `{{ 'x' * 10**9 }}` would otherwise take
    a process's memory in one render. (Intercepted operators are not folded at compile time either.)"""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > 64:
            raise SecurityError("the exponent is too large")
        if operator == "*":
            for sized, times in ((left, right), (right, left)):
                sequence = isinstance(sized, str | list | tuple) and isinstance(times, int)
                if sequence and len(sized) * times > MAX_SIZE:
                    raise SecurityError("the result would be too long")
        return super().call_binop(context, operator, left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        # A namespace's only attributes without an underscore in front are the next steps of an
        # atom's name, which the sandbox's own check (below) would let through every time: they are
        # taken directly. Every other name, and every other object, goes through that check.
        if type(obj) is Namespace and not attribute.startswith("_"):
            return obj._step(attribute)
        return super().getattr(obj, attribute)


def make_environment(*, html: bool) -> ImmutableSandboxedEnvironment:
    """A sandbox with autoescaping for HTML fields, strict undefined values and no globals: no
    `range`, `lipsum` (placeholder text by design), `cycler`, `joiner`, `namespace` or `dict`."""
    environment = _Sandbox(
        autoescape=html,
        undefined=AtomUndefined,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    environment.globals.clear()
    return environment


@dataclass
class Reading:
    """What one render read: atoms with a value, and atoms it asked for in vain (withheld or
    missing), so that the decision log can say which fallbacks applied."""

    view: Mapping[str, object]
    read: set[str] = field(default_factory=set)
    absent: set[str] = field(default_factory=set)

    def value(self, atom: str) -> object:
        try:
            value = self.view[atom]
        except (AtomNotAllowed, KeyError):
            return self.missing(atom)
        if value is None or (isinstance(value, str) and has_placeholder(value)):
            # A stored placeholder is no name: the fallback applies, as if it were missing.
            return self.missing(atom)
        self.read.add(atom)
        if isinstance(value, str) and type(value) is not str:
            # A str subclass such as markupsafe's Markup would be printed unescaped: plain text only.
            return str.__str__(value)
        return value

    def missing(self, atom: str) -> AtomUndefined:
        self.absent.add(atom)
        return AtomUndefined(name=atom)


@dataclass(frozen=True)
class AtomPaths:
    """The catalog's atom names, and every proper prefix of one: enough to walk a dotted path."""

    atoms: frozenset[str]
    prefixes: frozenset[str]

    @classmethod
    def of(cls, atoms: Collection[str]) -> AtomPaths:
        names = frozenset(atoms)
        prefixes = {name.rsplit(".", depth)[0] for name in names for depth in range(1, name.count(".") + 1)}
        return cls(names, frozenset(prefixes))


class Namespace:
    """One step of an atom's name (`traits`, `context.location`). Its only attributes are the next
    steps: the sandbox refuses names with underscores in front, and nothing else is here."""

    __slots__ = ("_path", "_paths", "_reading")
    _path: str
    _paths: AtomPaths
    _reading: Reading

    def __init__(self, path: str, paths: AtomPaths, reading: Reading) -> None:
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_paths", paths)
        object.__setattr__(self, "_reading", reading)

    def __getattr__(self, step: str) -> object:
        if step.startswith("_"):
            raise AttributeError(step)
        return self._step(step)

    def __getitem__(self, step: object) -> object:
        if not isinstance(step, str) or step.startswith("_"):
            return AtomUndefined(name=f"{self._path}[{step!r}]")
        return self._step(step)

    def _step(self, step: str) -> object:
        # Private, as every attribute of a namespace: a public method would shadow an atom's name.
        path = f"{self._path}.{step}"
        if path in self._paths.atoms:
            return self._reading.value(path)
        if path in self._paths.prefixes:
            return Namespace(path, self._paths, self._reading)
        return self._reading.missing(path)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("a template cannot change what it reads")

    # Not iterable: without this, Python would iterate through `__getitem__(0)`, `(1)`, ... forever.
    __iter__ = None

    def __str__(self) -> str:
        # Printing a namespace would show nothing useful, and an empty string hides a mistake.
        return str(AtomUndefined(name=self._path))

    def __repr__(self) -> str:
        return f"Namespace({self._path!r})"


def namespaces(paths: AtomPaths, reading: Reading, roots: Collection[str] = ROOTS) -> dict[str, Any]:
    """The template's whole world: one namespace per source prefix among `roots` (the prefixes a
    template names; any other name it uses is undefined, as it is in the whole world)."""
    return {root: Namespace(root, paths, reading) for root in roots}
