"""`tactful privacy ...`: privacy requests from the command line, filed as the operator.

    request TYPE --user-id … | --anonymous-id … | --email …   file one (the server's jobs run it)
    status ID                                                   its status, due date and receipt
    export ID --output FILE                                     run it here if open; write its package
    export --user-id … [--output FILE]                          file an access request, run it here
    erase --user-id …                                           file an erasure, run it here (asks)
    recipient ID RECIPIENT --status sent|failed|not_required    what became of telling one recipient
    reapply                                                     erase again, after a restore, whoever
                                                                the erasure log names

Whoever runs the command line holds the databases: the requests it files are the operator's
(`verified_by: operator`, no key id). The request id goes to standard output alone; the receipt of
`export` and `erase` too, as JSON; progress and tables go to standard error. `export --output`
writes the package opened (the operator's copy: audited, not one of the link's uses).
"""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, get_args

import typer
from pydantic import ValidationError
from rich.table import Table

from tactful.cli_shared import _context, _fail, _progress, _settings, err
from tactful.errors import KeyDestroyed, TactfulError
from tactful.rights import answering
from tactful.rights import exports as exports_service
from tactful.rights import recipients as recipients_service
from tactful.rights import requests as requests_service
from tactful.rights.due import RequestType
from tactful.rights.jobs import JobRunner, RunOutcome
from tactful.rights.schemas import NamedBy, RecipientMark, RequestRecord, VerifiedBy
from tactful.types import utcnow

if TYPE_CHECKING:
    from tactful.api.context import AppContext

privacy_app = typer.Typer(no_args_is_help=True, help="Privacy requests: file, follow, export, erase.")

UserId = Annotated[str | None, typer.Option("--user-id", metavar="ID", help="The person's user id.")]
AnonymousId = Annotated[
    str | None, typer.Option("--anonymous-id", metavar="ID", help="Only this browser or device.")
]
Email = Annotated[
    str | None, typer.Option("--email", metavar="ADDRESS", help="Found through the blind index.")
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        metavar="URL",
        help="SQLAlchemy URL of the main database [default: TACTFUL_DATABASE_URL]",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="JSON on standard output, for scripts.")]
Changes = Annotated[
    list[str] | None,
    typer.Option(
        "--change", metavar="TRAIT=VALUE", help="Rectification: a trait's corrected value (JSON or text)."
    ),
]


def _named(user_id: str | None, anonymous_id: str | None, email: str | None) -> tuple[NamedBy, str]:
    given = [
        (kind, value)
        for kind, value in (
            (NamedBy.USER_ID, user_id),
            (NamedBy.ANONYMOUS_ID, anonymous_id),
            (NamedBy.EMAIL, email),
        )
        if value
    ]
    if len(given) != 1:
        raise _fail("name the person with exactly one of --user-id, --anonymous-id and --email")
    return given[0]


def _changes(items: list[str] | None) -> dict[str, object] | None:
    if not items:
        return None
    found: dict[str, object] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise _fail(f"--change takes TRAIT=VALUE, not {item!r}")
        try:
            found[name] = json.loads(text)
        except ValueError:
            found[name] = text  # plain text needs no quotes
    return found


def _file(
    kind: RequestType,
    named: tuple[NamedBy, str],
    database_url: str | None,
    *,
    changes: dict[str, object] | None = None,
    run: bool,
) -> RequestRecord:
    with _context(_settings(database_url)) as context:
        try:
            with context.session() as session:
                record = requests_service.file_request(
                    session,
                    keystore=context.keystore,
                    policy=context.policy_context(),
                    calendar=requests_service.calendar_of(context.settings.privacy),
                    kind=kind,
                    named_by=named[0],
                    value=named[1],
                    verified_by=VerifiedBy.OPERATOR,
                    key_id=None,
                    at=utcnow(),
                    actor="cli",
                    changes=changes,
                )
        except TactfulError as exc:
            raise _fail(exc.message) from exc
        if run:
            _run_here(context, record)
        with context.session() as session:
            return requests_service.get_request(session, public_id=record.public_id) or record


def _show(record: RequestRecord, as_json: bool) -> None:
    body = {
        "id": record.public_id,
        "type": record.type.value,
        "status": record.status.value,
        "regimes": [r.value for r in record.regimes],
        "received_at": record.received_at.isoformat(),
        "due_at": record.effective_due_at.isoformat(),
        "flags": [f.code.value for f in record.flags],
        "receipt": record.receipt,
    }
    if as_json:
        sys.stdout.write(json.dumps(body) + "\n")
        return
    table = Table(title=f"privacy request {record.public_id}")
    table.add_column("field")
    table.add_column("value", overflow="fold")
    for name, value in body.items():
        table.add_row(name, value if isinstance(value, str) else json.dumps(value))
    err.print(table)


@privacy_app.command("request")
def request(
    kind: Annotated[RequestType, typer.Argument(metavar="TYPE", help="access, erasure, objection, ...")],
    user_id: UserId = None,
    anonymous_id: AnonymousId = None,
    email: Email = None,
    change: Changes = None,
    database_url: DatabaseUrl = None,
) -> None:
    """File a request the operator verified; print its id (the server runs its job)."""
    record = _file(
        kind, _named(user_id, anonymous_id, email), database_url, changes=_changes(change), run=False
    )
    sys.stdout.write(record.public_id + "\n")


@privacy_app.command("status")
def status(
    request_id: Annotated[str, typer.Argument(metavar="ID", help="The request's id (prq_...).")],
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """A request's status, due date and receipt. Exit 1 if no request has this id."""
    with _context(_settings(database_url)) as context, context.session() as session:
        record = requests_service.get_request(session, public_id=request_id)
    if record is None:
        raise _fail(f"no privacy request has the id {request_id!r}")
    _show(record, as_json)


def _run_here(context: AppContext, record: RequestRecord) -> None:
    from tactful.api.privacy_jobs import job_context

    kind = record.type
    with _progress() as progress:
        task = progress.add_task(f"{kind.value} {record.public_id}", total=None)

        def advance(step: str, done: int, total: int) -> None:
            progress.update(task, description=f"{kind.value}: {step}", completed=done, total=total)

        outcome = JobRunner(job_context(context)).run(record.id, on_step=advance)
    if outcome is not RunOutcome.COMPLETED:
        err.print(f"the job stopped: {outcome.value} (the server retries it; see `tactful privacy status`)")


def _write_package(context: AppContext, record: RequestRecord, output: Path) -> None:
    """Write the request's package, opened, to `output` (created 0600, never over another file)."""
    keystore = context.keystore.cached()
    with context.session() as session:
        row = exports_service.of_request(session, request_id=record.id)
        opened = None
        if row is not None and row.expires_at > utcnow():
            opened = exports_service.open_export(
                session, keystore=keystore, settings=context.settings, row=row
            )
        if opened is not None and opened.path.is_file():
            exports_service.audit_written(session, keystore=keystore, opened=opened, at=utcnow())
        else:
            opened = None
    if opened is None:
        raise _fail(f"request {record.public_id} has no package to write (nothing held, expired or used up)")
    try:
        descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise _fail(f"{output} exists already: name a new file") from None
    except OSError as exc:
        raise _fail(f"cannot write {output}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(descriptor, "wb") as target, opened.path.open("rb") as source, _progress() as progress:
            task = progress.add_task(f"writing {output.name}", total=opened.size)
            for chunk in opened.chunks(source):
                target.write(chunk)
                progress.advance(task, len(chunk))
    except (KeyDestroyed, OSError) as exc:
        output.unlink(missing_ok=True)
        raise _fail(f"the package could not be written ({type(exc).__name__})") from None


@privacy_app.command("export")
def export(
    request_id: Annotated[
        str | None, typer.Argument(metavar="[ID]", help="An access or portability request (prq_...).")
    ] = None,
    user_id: UserId = None,
    anonymous_id: AnonymousId = None,
    email: Email = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write the package (a zip) to this new file."),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Run an access request here and print its receipt as JSON; with --output, write its package.

    Name a request by its id (one still open runs here first), or a person (an access request is
    filed for them). The package is written opened: keep the file as safe as the data in it."""
    named = [v for v in (user_id, anonymous_id, email) if v]
    if (request_id is None) == (not named):
        raise _fail("name either a request id or a person (--user-id, --anonymous-id or --email)")
    if request_id is None:
        # Filed only: it is open, so it runs once, below, as a request named by its id does.
        record = _file(RequestType.ACCESS, _named(user_id, anonymous_id, email), database_url, run=False)
        request_id = record.public_id
    with _context(_settings(database_url)) as context:
        with context.session() as session:
            found = requests_service.get_request(session, public_id=request_id)
        if found is None:
            raise _fail(f"no privacy request has the id {request_id!r}")
        if found.type not in (RequestType.ACCESS, RequestType.PORTABILITY):
            raise _fail(
                f"request {request_id} is {found.type.value}: only access and portability have packages"
            )
        if found.status.open:
            _run_here(context, found)
            with context.session() as session:
                found = requests_service.get_request(session, public_id=request_id) or found
        if output is not None:
            _write_package(context, found, output)
    _show(found, as_json=True)


@privacy_app.command("erase")
def erase(
    user_id: UserId = None,
    anonymous_id: AnonymousId = None,
    email: Email = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask: erasure cannot be undone.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """File an erasure and run it here: every store, then the keys; print its receipt as JSON."""
    named = _named(user_id, anonymous_id, email)
    if not yes and not typer.confirm(
        f"Erase everything held about this {named[0].value}? This cannot be undone"
    ):
        raise typer.Exit(1)
    record = _file(RequestType.ERASURE, named, database_url, run=True)
    _show(record, as_json=True)


Told = StrEnum(  # type: ignore[misc]  # the API's choices, so that the two never differ
    "Told", {value: value for value in get_args(RecipientMark.model_fields["status"].annotation)}
)


@privacy_app.command("recipient")
def recipient(
    request_id: Annotated[str, typer.Argument(metavar="ID", help="The request's id (prq_...).")],
    key: Annotated[str, typer.Argument(metavar="RECIPIENT", help="The recipient's key in the catalog.")],
    told: Annotated[Told, typer.Option("--status", help="What became of telling them.")],
    detail: Annotated[
        str | None,
        typer.Option("--detail", metavar="TEXT", help="Your reference (a ticket), not personal data."),
    ] = None,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Mark what became of telling one recipient of an erasure, rectification or restriction
    (GDPR Art. 19), audited; print the request's tasks. Exit 1 for an unknown request or recipient."""
    try:  # the API's checks: a detail of at most 200 characters, storable
        mark = RecipientMark(status=told.value, detail=detail)
    except ValidationError as exc:
        raise _fail(f"--detail: {exc.errors()[0]['msg']}") from exc
    with _context(_settings(database_url)) as context:
        try:
            with context.session() as session:
                row = answering.mark_recipient(
                    session, keystore=context.keystore, public_id=request_id, recipient=key,
                    status=recipients_service.NoticeStatus(mark.status), detail=mark.detail, key_id=None,
                    at=utcnow(),
                )  # fmt: skip
                tasks = recipients_service.tasks(
                    session, catalog=context.policy_context().catalog, request_id=row.id
                )
        except TactfulError as exc:
            raise _fail(exc.message) from exc
    rows = [{"recipient": t.recipient, "name": t.name, "status": t.status.value} for t in tasks]
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    table = Table(title=f"recipients of {request_id}")
    for column in ("recipient", "name", "status"):
        table.add_column(column)
    for task in rows:
        table.add_row(task["recipient"], task["name"], task["status"])
    err.print(table)


@privacy_app.command("reapply")
def reapply_log(as_json: AsJson = False, database_url: DatabaseUrl = None) -> None:
    """Re-apply the erasure log to both databases: run it after restoring a backup (the server does
    at every start). Prints how many erased subjects the restore had brought back, and what went."""
    from tactful.rights.reapply import reapply

    with _context(_settings(database_url)) as context:
        done = reapply(
            database=context.db,
            keystore=context.keystore,
            settings=context.settings,
            at=utcnow(),
            redis=context.redis,
        )
    body = {
        "erased_subjects_logged": done.logged,
        "found_again": done.restored,
        "rows_removed": done.removed,
        "keys_destroyed": done.keys,
        "log_entries_expired": done.expired,
    }
    if as_json:
        sys.stdout.write(json.dumps(body) + "\n")
        return
    table = Table(title="erasure log re-applied")
    table.add_column("what")
    table.add_column("count", justify="right")
    for name, value in body.items():
        table.add_row(name.replace("_", " "), str(value))
    err.print(table)
