"""`tactful ...`: the command line, thin over the services. Results a script may capture (a new key)
go to standard output alone; everything else (progress, tables, hints) goes to standard error."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from tactful.catalog.loader import check_catalog_file, load_catalog
from tactful.catalog.minimisation import retention_warnings
from tactful.catalog.report import records_of_processing, render_records_markdown
from tactful.cli_audiences import audiences_app
from tactful.cli_privacy import privacy_app
from tactful.cli_shared import (
    AsJson,
    DatabaseUrl,
    Host,
    Port,
    Workers,
    _Command,
    _context,
    _fail,
    _progress,
    _reaching,
    _settings,
    _typer,
    err,
    out,
)
from tactful.cli_simulate import simulate
from tactful.collect import quarantine
from tactful.config import Settings
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.db import migrate as run_migrations
from tactful.errors import TactfulError
from tactful.keys import service as keys_service
from tactful.keys.schemas import Scope
from tactful.main import default_catalog_path, run_server, workers_need_redis
from tactful.types import utcnow

app = _typer("Tactful: personalization that knows where the line is.")
keys_app = _typer("API keys: create, list, revoke.")
secret_app = _typer("The key-encryption key.")
catalog_app = _typer("The data catalog: check it, report on it, see what senders send that it lacks.")
audit_app = _typer("The hash-chained audit log.")
retention_app = _typer("Retention: drop what outlived its period.")
app.add_typer(keys_app, name="keys")
app.add_typer(secret_app, name="secret")
app.add_typer(catalog_app, name="catalog")
app.add_typer(audit_app, name="audit")
app.add_typer(retention_app, name="retention")
app.add_typer(privacy_app, name="privacy")
app.add_typer(audiences_app, name="audiences")
app.command("simulate", cls=_Command)(simulate)


def _serve(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    run_server(settings, host=host, port=port, workers=workers)


def port_in_use(host: str, port: int) -> bool:
    """Whether `host:port` cannot be listened on (another server holds it), tried as the server
    will bind it (address reuse on, so a port a closed server left in TIME_WAIT counts as free)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return False  # the server will say what is wrong with the host
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError:
            return True
    return False


def _require_free_port(host: str, port: int, command: str) -> None:
    if port_in_use(host, port):
        raise _fail(
            f"port {port} on {host} is already in use (another server?): "
            f"pick a free one with --port, e.g. `tactful {command} --port {port % 65535 + 1}`"
        )


@app.command(cls=_Command)
def serve(
    host: Host = "127.0.0.1", port: Port = 8000, database_url: DatabaseUrl = None, workers: Workers = 1
) -> None:
    """Serve the HTTP API (docs at /docs)."""
    settings = _settings(database_url)
    refused = workers_need_redis(settings, workers)
    if refused is not None:
        raise _fail(refused)
    _require_free_port(host, port, "serve")
    with _context(settings):
        pass  # refuse early, with the fix, when the database is not migrated
    _serve(settings, host, port, workers)


def _migrate_main(settings: Settings) -> None:
    with _reaching(settings.database_url):
        run_migrations(settings.database_url)


@app.command(cls=_Command)
def migrate(database_url: DatabaseUrl = None) -> None:
    """Bring the database schema up to date."""
    settings = _settings(database_url)
    _migrate_main(settings)
    keystore = Keystore(settings.keystore_url, secret_key=settings.secret_key.get_secret_value())
    with _reaching(settings.keystore_url, "keystore"):
        keystore.create_schema()
    database = Database(settings.database_url)
    try:
        # Quarantined payloads that earlier versions kept in clear are sealed now.
        with _reaching(settings.database_url), database.session() as session:
            sealed = quarantine.seal_legacy(session, keystore=keystore)
    finally:
        database.dispose()
        keystore.dispose()
    if sealed:
        err.print(f"sealed {sealed:,} quarantined messages kept in clear by an earlier version")
    err.print("[green]database and keystore are up to date[/]")


SimulateFirst = Annotated[
    int,
    typer.Option(
        "--simulate", metavar="N", min=0, help="Before serving, simulate N visitors over the last day."
    ),
]


@app.command(cls=_Command)
def demo(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    database_url: DatabaseUrl = None,
    simulate_first: SimulateFirst = 0,
) -> None:
    """Migrate, seed the demo shop (once), print the keys and URLs, and serve."""
    from tactful.cli_simulate import print_summary, run_simulation
    from tactful.demo.placements import try_it
    from tactful.demo.seed import already_seeded, seed
    from tactful.demo.simulate import SimulationConfig

    settings = _settings(database_url)
    base = f"http://{host}:{port}"
    # Before any work: a port taken would otherwise fail only after seeding and the banner.
    _require_free_port(host, port, "demo")
    _migrate_main(settings)
    with _context(settings) as context:
        with context.session() as session:
            seeded = already_seeded(session)
        if seeded:  # no traffic again; placements an older demo lacks are added
            report = seed(context, now=utcnow())
        else:
            with _progress() as progress:
                task = progress.add_task("seeding the demo shop", total=None)

                def advance(done: int, total: int) -> None:
                    progress.update(task, completed=done, total=total)

                report = seed(context, now=utcnow(), progress=advance)
        tried = try_it(context, base_url=base)
        simulated = (
            run_simulation(context, SimulationConfig(visitors=simulate_first, days=1))
            if simulate_first
            else None
        )
    err.print(report.summary(), soft_wrap=True)
    if simulated is not None:
        print_summary(simulated)
    if report.seeded:
        # Plain lines, never wrapped or cut: these are meant to be copied.
        err.print("\n[bold]API keys[/] (shown once; store them now):")
        for scope, key in report.keys.items():
            err.print(f"  {scope!s:<7} {key}", soft_wrap=True)
    err.print(f"\nAPI: {base}   docs: {base}/docs   readiness: {base}/readyz\n", soft_wrap=True)
    err.print("\n".join(tried), soft_wrap=True, highlight=False, markup=False)
    _serve(settings, host, port)


@keys_app.command("create", cls=_Command)
def keys_create(
    scope: Annotated[Scope, typer.Option(help="write (web pages), server (backends) or admin.")],
    name: Annotated[str, typer.Option(metavar="NAME", help="What the key is for.")] = "",
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


@keys_app.command("list", cls=_Command)
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


@keys_app.command("revoke", cls=_Command)
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key id, its prefix as listed, or the whole key.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke a key; every process refuses it from its next request. Exit 1 if it was already
    revoked (nothing changes)."""
    now = utcnow()
    with _context(_settings(database_url)) as context:
        try:
            key_id = keys_service.key_id_of(key)
            with context.session() as session:
                info = keys_service.revoke_key(
                    session, keystore=context.keystore, key_id=key_id, at=now, actor="cli"
                )
        except TactfulError as exc:
            raise _fail(exc.message) from exc
    if info.revoked_at is not None and info.revoked_at != now:
        when = info.revoked_at.isoformat(timespec="seconds")
        raise _fail(f"key {key_id} was already revoked at {when}; nothing changed")
    err.print(f"[green]revoked[/] {key_id}")


@secret_app.command("rotate", cls=_Command)
def secret_rotate(
    new_secret: Annotated[
        str,
        typer.Option(
            envvar="TACTFUL_NEW_SECRET_KEY",
            prompt="New secret key",
            hide_input=True,
            confirmation_prompt=True,
            metavar="SECRET",
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


@catalog_app.command("check", cls=_Command)
def catalog_check(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A catalog file.")],
) -> None:
    """Validate a catalog file; exit 1 and explain every problem if it is invalid."""
    problems = check_catalog_file(file)
    for problem in problems:
        err.print(f"[red]✗[/] {problem}")
    if problems:
        raise typer.Exit(1)
    for warning in retention_warnings(load_catalog(file)):  # minimisation defaults: warned, not refused
        err.print(f"[yellow]![/] {escape(str(warning))}", soft_wrap=True)
    err.print(f"[green]✓[/] {file} is valid")


@catalog_app.command("report", cls=_Command)
def catalog_report(
    out_dir: Annotated[
        Path, typer.Option("--out", metavar="DIR", help="Directory for records-of-processing.{md,json}")
    ] = Path(),
    catalog: Annotated[
        Path | None, typer.Option(metavar="FILE", help="Catalog file [default: the configured one]")
    ] = None,
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


@catalog_app.command("drift", cls=_Command)
def catalog_drift(as_json: AsJson = False, database_url: DatabaseUrl = None) -> None:
    """Show the fields senders send that the catalog does not declare (dropped before storage and
    counted), most frequent first: declare the ones you need, or stop sending them."""
    from tactful.collect import service as collect_service

    with _context(_settings(database_url)) as context, context.session() as session:
        found = collect_service.catalog_drift(session)
    if as_json:
        rows = [{"field": f.field, "count": f.count, "aggregate": f.aggregate} for f in found.fields]
        sys.stdout.write(json.dumps({"total": found.total, "fields": rows}) + "\n")
        return
    if not found.fields:
        err.print("[green]no undeclared fields received[/]: every field sent is in the catalog")
        return
    table = Table(title=f"undeclared fields dropped ({found.total:,} in all)")
    table.add_column("field", overflow="fold")
    table.add_column("count", justify="right")
    for item in found.fields:
        table.add_row(escape(item.field), f"{item.count:,}")
    out.print(table)


@audit_app.command("verify", cls=_Command)
def audit_verify(
    database_url: DatabaseUrl = None,
    expect_head: Annotated[
        str | None,
        typer.Option(
            metavar="SEQ:HASH",
            help="A head recorded earlier, as SEQ:HASH: fail if the log no longer reaches it unchanged "
            "(a truncated tail)",
        ),
    ] = None,
) -> None:
    """Check the audit log's keyed hash chain; print its head (SEQ:HASH) on standard output, to be
    kept elsewhere and passed back with --expect-head. Exit 1 on the first broken link."""
    from tactful.audit import service as audit_service
    from tactful.audit import verification as audit_verification

    try:
        expected = None if expect_head is None else audit_verification.parse_anchor(expect_head)
    except TactfulError as exc:
        raise _fail(exc.message) from exc
    with _context(_settings(database_url)) as context, context.session() as session:
        report = audit_verification.verify(session, keystore=context.keystore, expect_head=expected)
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


@retention_app.command("run", cls=_Command)
def retention_run(
    database_url: DatabaseUrl = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would go, per store and category; change nothing.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Delete or anonymise every event, atom, quarantined message, message id and decision past its
    retention, as the catalog says (idempotent); the server also runs this on its own schedule."""
    from tactful.cli_retention import run_sweep

    run_sweep(_settings(database_url), dry_run=dry_run, as_json=as_json)
