"""`tactful ...`: the command line, thin over the services. Results a script may capture (a new key)
go to standard output alone; everything else (progress, tables, hints) goes to standard error."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from tactful.api.context import AppContext
from tactful.api.logs import uvicorn_log_config
from tactful.catalog.loader import check_catalog_file, load_catalog
from tactful.catalog.report import records_of_processing, render_records_markdown
from tactful.collect import quarantine
from tactful.config import Settings, load_settings
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.db import migrate as run_migrations
from tactful.errors import TactfulError
from tactful.keys import service as keys_service
from tactful.keys.schemas import Scope
from tactful.main import build_context, create_app, default_catalog_path
from tactful.types import utcnow

app = typer.Typer(no_args_is_help=True, help="Tactful: personalization that knows where the line is.")
keys_app = typer.Typer(no_args_is_help=True, help="API keys: create, list, revoke.")
secret_app = typer.Typer(no_args_is_help=True, help="The key-encryption key.")
catalog_app = typer.Typer(no_args_is_help=True, help="The data catalog: check it, report on it.")
audit_app = typer.Typer(no_args_is_help=True, help="The hash-chained audit log.")
retention_app = typer.Typer(no_args_is_help=True, help="Retention: drop what outlived its period.")
app.add_typer(keys_app, name="keys")
app.add_typer(secret_app, name="secret")
app.add_typer(catalog_app, name="catalog")
app.add_typer(audit_app, name="audit")
app.add_typer(retention_app, name="retention")

err = Console(stderr=True)
out = Console()

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url", help="SQLAlchemy URL of the main database [default: TACTFUL_DATABASE_URL]"
    ),
]
Host = Annotated[str, typer.Option(help="Interface to listen on.")]
Port = Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)]


def _settings(database_url: str | None = None) -> Settings:
    overrides: dict[str, object] = {}
    if database_url:
        overrides["database_url"] = database_url
    return load_settings(**overrides)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


@contextmanager
def _context(settings: Settings) -> Iterator[AppContext]:
    try:
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


def _serve(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    # Uvicorn's access log carries client addresses and query strings: Tactful logs requests itself.
    # Records with exceptions are reduced to type and location (tracebacks can quote request data).
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        access_log=False,
        log_config=uvicorn_log_config(settings.log_level),
    )


@app.command()
def serve(host: Host = "127.0.0.1", port: Port = 8000, database_url: DatabaseUrl = None) -> None:
    """Serve the HTTP API (docs at /docs)."""
    settings = _settings(database_url)
    with _context(settings):
        pass  # refuse early, with the fix, when the database is not migrated
    _serve(settings, host, port)


@app.command()
def migrate(database_url: DatabaseUrl = None) -> None:
    """Bring the database schema up to date."""
    settings = _settings(database_url)
    run_migrations(settings.database_url)
    keystore = Keystore(settings.keystore_url, secret_key=settings.secret_key.get_secret_value())
    keystore.create_schema()
    database = Database(settings.database_url)
    try:
        # Quarantined payloads that earlier versions kept in clear are sealed now.
        with database.session() as session:
            sealed = quarantine.seal_legacy(session, keystore=keystore)
    finally:
        database.dispose()
        keystore.dispose()
    if sealed:
        err.print(f"sealed {sealed:,} quarantined messages kept in clear by an earlier version")
    err.print("[green]database and keystore are up to date[/]")


@app.command()
def demo(host: Host = "127.0.0.1", port: Port = 8000, database_url: DatabaseUrl = None) -> None:
    """Migrate, seed the demo shop (once), print the keys and URLs, and serve."""
    from tactful.demo.seed import seed

    settings = _settings(database_url)
    run_migrations(settings.database_url)
    with _context(settings) as context, _progress() as progress:
        task = progress.add_task("seeding the demo shop", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report = seed(context, now=utcnow(), progress=advance)
    err.print(report.summary())
    if report.keys:
        # Plain lines, never wrapped or cut: these are meant to be copied.
        err.print("\n[bold]API keys[/] (shown once; store them now):")
        for scope, key in report.keys.items():
            err.print(f"  {scope!s:<7} {key}", soft_wrap=True)
    else:
        err.print("already seeded: keys are not shown again (create one with `tactful keys create`)")
    base = f"http://{host}:{port}"
    err.print(f"\nAPI: {base}   docs: {base}/docs   readiness: {base}/readyz\n", soft_wrap=True)
    _serve(settings, host, port)


@keys_app.command("create")
def keys_create(
    scope: Annotated[Scope, typer.Option(help="write (web pages), server (backends) or admin.")],
    name: Annotated[str, typer.Option(help="What the key is for.")] = "",
    database_url: DatabaseUrl = None,
) -> None:
    """Create a key and print it alone on standard output (it is not shown again)."""
    with _context(_settings(database_url)) as context, context.session() as session:
        _key, plaintext = keys_service.create_key(
            session,
            keystore=context.keystore,
            name=name or f"{scope} key",
            scope=scope,
            at=utcnow(),
            actor="cli",
        )
    sys.stdout.write(plaintext + "\n")


@keys_app.command("list")
def keys_list(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per key, for scripts.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """List keys (never their secrets)."""
    with _context(_settings(database_url)) as context, context.session() as session:
        keys = keys_service.list_keys(session)
    rows = [
        {
            "id": str(key.id),
            "name": key.name,
            "scope": str(key.scope),
            "prefix": key.prefix,
            "created": key.created_at.isoformat(timespec="seconds"),
            "revoked": key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else None,
        }
        for key in keys
    ]
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(row) + "\n")
        return
    table = Table()
    for column in ("id", "name", "scope", "prefix", "created", "revoked"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            *(row[column] or "" for column in ("id", "name", "scope", "prefix", "created", "revoked"))
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key id, its prefix as listed, or the whole key.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke a key; every process refuses it from its next request."""
    with _context(_settings(database_url)) as context:
        try:
            key_id = keys_service.key_id_of(key)
            with context.session() as session:
                keys_service.revoke_key(
                    session, keystore=context.keystore, key_id=key_id, at=utcnow(), actor="cli"
                )
        except TactfulError as exc:
            raise _fail(exc.message) from exc
    err.print(f"[green]revoked[/] {key_id}")


@secret_app.command("rotate")
def secret_rotate(
    new_secret: Annotated[
        str,
        typer.Option(
            envvar="TACTFUL_NEW_SECRET_KEY",
            prompt="New secret key",
            hide_input=True,
            confirmation_prompt=True,
            help="The new key-encryption secret (or TACTFUL_NEW_SECRET_KEY).",
        ),
    ],
) -> None:
    """Re-wrap every subject key under a new TACTFUL_SECRET_KEY, then switch the setting to it."""
    settings = _settings()
    if len(new_secret) < 32:
        raise _fail("the new secret must be at least 32 characters")
    keystore = Keystore(settings.keystore_url, secret_key=settings.secret_key.get_secret_value())
    try:
        with _progress() as progress:
            task = progress.add_task("re-wrapping keys", total=None)
            count = keystore.rotate(
                new_secret, progress=lambda d, t: progress.update(task, completed=d, total=t)
            )
    except TactfulError as exc:
        raise _fail(exc.message) from exc
    finally:
        keystore.dispose()
    err.print(f"[green]re-wrapped {count} keys.[/] Now set TACTFUL_SECRET_KEY to the new secret and restart.")


@catalog_app.command("check")
def catalog_check(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Validate a catalog file; exit 1 and explain every problem if it is invalid."""
    problems = check_catalog_file(file)
    for problem in problems:
        err.print(f"[red]✗[/] {problem}")
    if problems:
        raise typer.Exit(1)
    err.print(f"[green]✓[/] {file} is valid")


@catalog_app.command("report")
def catalog_report(
    out_dir: Annotated[
        Path, typer.Option("--out", help="Directory for records-of-processing.{md,json}")
    ] = Path(),
    catalog: Annotated[Path | None, typer.Option(help="Catalog file [default: the configured one]")] = None,
) -> None:
    """Write the GDPR Art. 30 records of processing as Markdown and JSON."""
    settings = _settings()
    path = catalog or settings.catalog_path or Path(default_catalog_path())
    try:
        loaded = load_catalog(path)
    except TactfulError as exc:
        raise _fail(exc.message) from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "records-of-processing.md").write_text(render_records_markdown(loaded), encoding="utf-8")
    (out_dir / "records-of-processing.json").write_text(
        json.dumps(records_of_processing(loaded), indent=2, default=str), encoding="utf-8"
    )
    err.print(f"[green]wrote[/] {out_dir / 'records-of-processing.md'} and .json")


@audit_app.command("verify")
def audit_verify(
    database_url: DatabaseUrl = None,
    expect_head: Annotated[
        str | None,
        typer.Option(
            help="A head recorded earlier, as SEQ:HASH: fail if the log no longer reaches it unchanged "
            "(a truncated tail)"
        ),
    ] = None,
) -> None:
    """Check the audit log's keyed hash chain; print its head (SEQ:HASH) on standard output, to be
    kept elsewhere and passed back with --expect-head. Exit 1 on the first broken link."""
    from tactful.audit import service as audit_service

    try:
        expected = None if expect_head is None else audit_service.parse_anchor(expect_head)
    except TactfulError as exc:
        raise _fail(exc.message) from exc
    with _context(_settings(database_url)) as context, context.session() as session:
        report = audit_service.verify(session, keystore=context.keystore, expect_head=expected)
    head = (
        "0:" + audit_service.GENESIS if report.head_seq is None else f"{report.head_seq}:{report.head_hash}"
    )
    if not report.ok:
        err.print(f"head {head}")
        raise _fail(
            f"audit chain broken at entry {report.first_bad_seq}: {report.problem} ({report.detail}); "
            f"{report.checked} entries verified before it"
        )
    out.print(head, soft_wrap=True, highlight=False)
    keyed = "no keyed segment yet" if report.keyed_from is None else f"keyed from entry {report.keyed_from}"
    err.print(f"[green]audit chain intact[/] ({report.checked} entries, {keyed})")


@retention_app.command("run")
def retention_run(database_url: DatabaseUrl = None) -> None:
    """Delete every atom, event, quarantined message and message id past its retention (idempotent)."""
    from tactful.rights.retention import run_retention

    with _context(_settings(database_url)) as context, context.session() as session:
        removed = run_retention(session, catalog=context.catalog, settings=context.settings, at=utcnow())
    table = Table(title="retention sweep")
    table.add_column("store")
    table.add_column("removed", justify="right")
    for store, count in removed.items():
        table.add_row(store, f"{count:,}")
    err.print(table)
