"""What every `tactful` command module shares: the Typer classes (flags shown without a value type),
the consoles (results to standard output, everything else to standard error), the common options,
settings with one-line errors, and the process context over a database that can be reached.

    cli ─┬─ cli_privacy, cli_retention, cli_simulate ──▶ cli_shared (this module)
         └─ the services, through `_context` (tactful.main.build_context)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError
from typer._click.core import Context, Parameter  # Typer's own copy of Click, which its classes use
from typer.core import TyperCommand, TyperGroup, TyperOption

from tactful.api.context import AppContext
from tactful.config import Settings, load_settings
from tactful.db import make_engine
from tactful.errors import ConfigurationError, TactfulError
from tactful.main import build_context


def _plain_flags(params: list[Parameter]) -> list[Parameter]:
    """On/off options shown without a value type: `--json`, not `--json <bool>` (Typer's help shows
    the type of every option, its own `--help` included, unless it has a metavar)."""
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
    return params


class _Group(TyperGroup):
    def get_params(self, ctx: Context) -> list[Parameter]:
        return _plain_flags(super().get_params(ctx))


class _Command(TyperCommand):
    def get_params(self, ctx: Context) -> list[Parameter]:
        return _plain_flags(super().get_params(ctx))


def _typer(help: str) -> typer.Typer:
    return typer.Typer(cls=_Group, no_args_is_help=True, help=help)


err = Console(stderr=True)
out = Console()

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        metavar="URL",
        help="SQLAlchemy URL of the main database [default: TACTFUL_DATABASE_URL]",
    ),
]
Host = Annotated[str, typer.Option(metavar="HOST", help="Interface to listen on.")]
Port = Annotated[int, typer.Option(metavar="PORT", help="Port to listen on.", min=1, max=65535)]
Workers = Annotated[
    int, typer.Option(metavar="N", min=1, help="Server processes (more than one needs Redis).")
]
AsJson = Annotated[bool, typer.Option("--json", help="JSON on standard output, for scripts.")]


def _settings(database_url: str | None = None) -> Settings:
    overrides: dict[str, object] = {}
    if database_url:
        overrides["database_url"] = database_url
    try:
        return load_settings(**overrides)
    except ConfigurationError as exc:
        raise _fail(exc.message) from None


def _fail(message: str, code: int = 1) -> typer.Exit:
    # One line per problem, never wrapped: a person reads it, a script may grep it.
    for line in message.splitlines() or [""]:
        err.print(f"[bold red]error:[/] {escape(line)}", soft_wrap=True, highlight=False)
    return typer.Exit(code)


def shown_url(url: str) -> str:
    """A database URL fit to print: without its password."""
    try:
        # `URL.set(password=None)` would keep the password: None there means "unchanged".
        return make_url(url)._replace(password=None).render_as_string(hide_password=False)
    except ArgumentError:
        return "(unparsable URL)"


def _unreachable(url: str, what: str, exc: Exception) -> typer.Exit:
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    detail = reason[0] if reason else type(exc).__name__
    return _fail(f"cannot use the {what} at {shown_url(url)}: {detail} (check TACTFUL_{what.upper()}_URL)")


@contextmanager
def _reaching(url: str, what: str = "database") -> Iterator[None]:
    """Turn a database that cannot be reached (or opened) into one line that names it."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        raise _unreachable(url, what, exc) from None


def _probe(url: str, what: str) -> None:
    engine = make_engine(url)
    try:
        with _reaching(url, what), engine.connect():
            pass
    finally:
        engine.dispose()


@contextmanager
def _context(settings: Settings) -> Iterator[AppContext]:
    _probe(settings.database_url, "database")
    _probe(settings.keystore_url, "keystore")
    try:
        with _reaching(settings.database_url):
            context = build_context(settings)
    except TactfulError as exc:
        raise _fail(exc.message) from exc
    try:
        yield context
    finally:
        context.db.dispose()
        context.keystore.dispose()


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
    )
