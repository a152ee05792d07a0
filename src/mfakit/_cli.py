"""The ``mfakit`` command line: the terminal demo and the operator's commands.

``python -m mfakit COMMAND`` (or the ``mfakit`` script) runs :func:`main`. The operator's
commands work on a :class:`~mfakit.storage.sql.SQLStore` named by ``--database URL`` or
``MFAKIT_DATABASE_URL``; see ``docs/cli.md`` for every command with an example session.

Exit status (also in ``docs/cli.md``):

* ``0``: done.
* ``1``: the command was understood but could not be carried out (database unreachable,
  schema missing, keys missing or malformed, unknown subject, file not writable, ...).
* ``2``: usage error: bad arguments, including a missing or malformed database URL.
* ``130``: interrupted (Ctrl-C).

Every failure is **one** line on standard error, ``mfakit: error: ...``, never a
traceback. Messages are written here, not copied from drivers: a driver's message can quote
the URL with its password, or row contents. A URL is only ever shown with its password
masked (SECURITY.md 22: no secret in logs or output).

Audit: the commands that act on subjects or keys print each audit event as one line on
standard error, ``mfakit: audit: {JSON}``, naming the operator (ISM-1683, SECURITY.md 37).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import getpass
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, NoReturn, TextIO

from mfakit import _throttle
from mfakit._admin import REPORT_COLUMNS, Actor, ReportRow, RoleAuthorizer, _csv_cell
from mfakit._models import Event, Subject, validate_actor
from mfakit.exceptions import ConfigurationError, MFAError, StoreError
from mfakit.hazmat.secretbox import DEFAULT_KEYS_VARIABLE, Keyring

if TYPE_CHECKING:
    import sqlalchemy as sa

    from mfakit._service import MFA
    from mfakit.storage.sql import SQLStore
    from mfakit.typing import Clock

__all__ = [
    "DATABASE_VARIABLE",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "main",
]

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130
#: The environment variable ``--database`` falls back to.
DATABASE_VARIABLE: Final = "MFAKIT_DATABASE_URL"

#: The one role the command line's actor holds, and the only role allowed anything.
OPERATOR_ROLE: Final = "mfakit-cli-operator"
_AUDIT_PREFIX: Final = "mfakit: audit: "
_TABLE_COLUMNS: Final = (
    "subject_id",
    "tenant",
    "factors",
    "pending",
    "last_used_at",
    "locked",
    "suspended",
    "locked_until",
    "failures",
)
_MAX_NOTE: Final = 255


class CLIError(Exception):
    """A failure to report as one ``mfakit: error:`` line, with an exit status."""

    def __init__(self, message: str, status: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.status = status


def _usage(message: str) -> CLIError:
    return CLIError(message, EXIT_USAGE)


def _one_line(text: str) -> str:
    return " ".join(text.split())


# ------------------------------------------------------------------------------------------
# argument parsing
# ------------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one ``mfakit: error:`` line and status 2."""

    def error(self, message: str) -> NoReturn:
        """Print one line (no usage block) and exit with :data:`EXIT_USAGE`."""
        self.exit(EXIT_USAGE, f"mfakit: error: {_one_line(message)} (see '{self.prog} --help')\n")


def _table_prefix(value: str) -> str:
    if not value or not value.isascii() or not all(c.isalnum() or c == "_" for c in value):
        raise argparse.ArgumentTypeError("must be ASCII letters, digits and underscores")
    return value


def _minutes(value: str) -> int:
    try:
        minutes = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number of minutes") from None
    if minutes < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return minutes


def _text(what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        # The rule for every actor an audit event names: printable and bounded, so a
        # value cannot forge a line of a text audit log.
        try:
            return validate_actor(value)
        except MFAError:
            raise argparse.ArgumentTypeError(
                f"{what} must be 1 to {_MAX_NOTE} printable characters"
            ) from None

    return check


_FORMATTER: Final = argparse.RawDescriptionHelpFormatter


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def _database_options() -> _Parser:
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("database")
    group.add_argument(
        "--database",
        metavar="URL",
        help=(
            f"SQLAlchemy database URL (default: ${DATABASE_VARIABLE}), such as "
            "sqlite:///var/lib/app/mfa.db or postgresql+psycopg://app@db/app"
        ),
    )
    group.add_argument(
        "--table-prefix",
        metavar="PREFIX",
        type=_table_prefix,
        default="mfakit_",
        help="prefix of mfakit's table names (default: mfakit_)",
    )
    return parent


def _operator_options() -> _Parser:
    parent = _Parser(add_help=False)
    parent.add_argument(
        "--operator",
        metavar="ID",
        type=_text("--operator"),
        help="who runs the command, recorded in the audit events (default: your OS user name)",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The ``mfakit`` argument parser with every subcommand."""
    parser = _Parser(
        prog="mfakit",
        description=(
            "Multi-factor authentication toolkit: a terminal demo, and the operator's\n"
            "commands for a database of mfakit records."
        ),
        epilog=(
            "exit status: 0 done, 1 failed (database, keys, unknown subject, ...), "
            "2 usage error, 130 interrupted.\n"
            "Run 'mfakit COMMAND --help' for a command's options and examples."
        ),
        formatter_class=_FORMATTER,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    database, operator = _database_options(), _operator_options()

    demo = commands.add_parser(
        "demo",
        help="enrol your phone's authenticator app and sign in, in the terminal",
        description=(
            "A walk-through with your own phone: scan the QR code with Google or Microsoft\n"
            "Authenticator (or any TOTP app), confirm with a code, sign in with a fresh one\n"
            "and watch the same code being refused a second time. Reads answers from\n"
            "standard input, so it can be scripted.\n\n"
            "The enrolment is remembered in a SQLite file (by default in your data\n"
            "directory), so the next run only asks for a code. The demo's encryption key\n"
            "is kept in a file next to it (PATH with the suffix .key, mode 0600). That is\n"
            "for the demo only: in production, keys come from MFAKIT_KEYS."
        ),
        epilog=_examples(
            "mfakit demo                      # first run: QR code, then a code",
            "mfakit demo                      # later runs: just a code",
            "mfakit demo --reset              # forget the enrolment and start over",
            "mfakit demo --memory --no-qr     # keep nothing, show only the manual key",
        ),
        formatter_class=_FORMATTER,
    )
    demo.add_argument("--account", default="demo@example.com", help="account name in the app")
    demo.add_argument("--issuer", default="mfakit demo", help="issuer name in the app")
    demo.add_argument("--no-qr", action="store_true", help="print only the manual key")
    where = demo.add_mutually_exclusive_group()
    where.add_argument(
        "--database",
        metavar="PATH",
        type=Path,
        default=None,
        help=(
            "SQLite file for the demo's enrolment (default: "
            "$XDG_DATA_HOME/mfakit/demo.sqlite3, or ~/.local/share/mfakit/demo.sqlite3)"
        ),
    )
    where.add_argument(
        "--memory", action="store_true", help="keep nothing: store the enrolment in memory"
    )
    demo.add_argument(
        "--reset",
        "--forget",
        dest="reset",
        action="store_true",
        help="forget the stored enrolment and its key, and enrol again",
    )

    key = commands.add_parser(
        "generate-key",
        help="print a new key for MFAKIT_KEYS",
        description=(
            "Print a new AES-256 key entry (KEYID:BASE64URL) for MFAKIT_KEYS. Keys are\n"
            "comma-separated, the first one encrypts: to rotate, put the new entry first\n"
            "and keep the old ones after it until 'mfakit rotate-keys' has run."
        ),
        epilog=_examples(
            "mfakit generate-key",
            'export MFAKIT_KEYS="$(mfakit generate-key --key-id k2026),$MFAKIT_KEYS"',
        ),
        formatter_class=_FORMATTER,
    )
    key.add_argument("--key-id", default=None, help="key id (default: date and random suffix)")

    schema = commands.add_parser(
        "schema",
        help="create, upgrade or show the version of mfakit's tables",
        description=(
            "Manage mfakit's tables in the database: 'create' makes the tables that do not\n"
            "exist yet (idempotent), 'upgrade' brings them to this mfakit's schema version\n"
            "(run it after upgrading mfakit, before serving requests), 'version' prints\n"
            "the version recorded in the database."
        ),
        epilog=_examples(
            "mfakit schema create --database sqlite:///var/lib/app/mfa.db",
            "MFAKIT_DATABASE_URL=postgresql+psycopg://app@db/app mfakit schema upgrade",
            "mfakit schema version --table-prefix mfa_",
        ),
        formatter_class=_FORMATTER,
    )
    schema_actions = schema.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (
        ("create", "create the tables that do not exist yet"),
        ("upgrade", "upgrade the tables to this mfakit's schema version"),
        ("version", "print the schema version recorded in the database"),
    ):
        schema_actions.add_parser(
            name, help=text, description=text.capitalize() + ".", parents=[database]
        )

    commands.add_parser(
        "rotate-keys",
        parents=[database, operator],
        help="re-encrypt every secret under the current key",
        description=(
            "Re-encrypt every stored secret (TOTP seeds, phone numbers, e-mail addresses)\n"
            "under the first key of MFAKIT_KEYS. List the old keys after the new one: they\n"
            "are needed to decrypt. Safe while the application runs. Prints how many\n"
            "records were re-encrypted and which old keys stored records still need."
        ),
        epilog=_examples(
            'MFAKIT_KEYS="new:...,old:..." mfakit rotate-keys --database sqlite:///mfa.db',
        ),
        formatter_class=_FORMATTER,
    )

    report = commands.add_parser(
        "report",
        parents=[database, operator],
        help="the user management report: who enrolled what, who is locked",
        description=(
            "The facade's user management report for every subject the store knows (every\n"
            "subject with a credential, pending or active). The store does not hold your\n"
            "users' names or e-mail addresses, and the command line does not know your\n"
            "policy: username, email and display_name are empty, questions_need_update\n"
            "is false and mfa_required follows mfakit's default policy. A host that needs\n"
            "them calls MFA.report_csv() with its own users.\n\n"
            "The CSV is RFC 4180 (every cell quoted, CRLF line ends) and safe to open in a\n"
            "spreadsheet: a cell starting with = + - @ is prefixed with ' (OWASP)."
        ),
        epilog=_examples(
            "mfakit report",
            "mfakit report --tenant practice-42 --format csv --output report.csv",
        ),
        formatter_class=_FORMATTER,
    )
    report.add_argument(
        "--tenant", type=_text("--tenant"), help="report on this tenant only (default: all)"
    )
    report.add_argument("--format", choices=("table", "csv"), default="table", help="output format")
    report.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")

    for name, text, details in (
        (
            "reset",
            "reset a subject's MFA: they must enrol again",
            "Remove every credential of the subject (pending ones included) and clear\n"
            "their failures and lock. At their next sign-in they enrol again.",
        ),
        (
            "unlock",
            "clear a subject's lock or suspension",
            "Clear the subject's failure count and any lock, temporary or suspended.",
        ),
    ):
        command = commands.add_parser(
            name,
            parents=[database, operator],
            help=text,
            description=(
                f"{details}\nRecorded as an administrative action by the operator "
                "(--operator or your OS user name)."
            ),
            epilog=_examples(
                f'mfakit {name} u-1234 --reason "ticket 5521: new phone"',
                f"mfakit {name} -- -starts-with-a-dash",
            ),
            formatter_class=_FORMATTER,
        )
        command.add_argument("subject_id", metavar="SUBJECT_ID", help="the subject's id")
        command.add_argument(
            "--reason", type=_text("--reason"), help="why, recorded in the audit lines"
        )

    purge = commands.add_parser(
        "purge",
        parents=[database, operator],
        help="delete expired challenges",
        description=(
            "Delete challenges that expired more than --keep-for minutes ago. An expired\n"
            "SMS or e-mail challenge can still be resent for a while, hence the default\n"
            "of ten minutes. Run it periodically (cron, a systemd timer)."
        ),
        epilog=_examples("mfakit purge", "mfakit purge --keep-for 0"),
        formatter_class=_FORMATTER,
    )
    purge.add_argument(
        "--keep-for",
        metavar="MINUTES",
        type=_minutes,
        default=10,
        help="keep challenges this long past their expiry (default: 10)",
    )
    return parser


# ------------------------------------------------------------------------------------------
# running
# ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Run:
    """What a command needs besides its arguments."""

    args: argparse.Namespace
    stdin: TextIO
    stdout: TextIO
    stderr: TextIO
    environ: Mapping[str, str]
    clock: Clock | None
    #: The database URL with its password masked, once known (for error messages).
    where: str | None = None

    def say(self, text: str) -> None:
        print(text, file=self.stdout, flush=True)


class _AuditLines:
    """An :class:`~mfakit.typing.EventSink` printing ``mfakit: audit: {JSON}`` lines.

    Only events that name an actor are printed: the operator's actions and their effects
    (``RESET``, ``CREDENTIAL_REMOVED``, ``UNLOCKED``, ``KEYS_ROTATED``, the report's own
    ``POLICY_DECIDED``). The policy evaluations behind the report's ``mfa_required``
    column change nothing and name no actor, so they are left out. Every line also names
    the operator and the ``--reason`` text, since the facade's events have no field for
    free text. Events carry no secret (SECURITY.md 22), so every field is printed.
    """

    def __init__(self, out: TextIO, operator: str, note: str | None) -> None:
        self.out = out
        self.operator = operator
        self.note = note

    def emit(self, event: Event) -> None:
        """Print ``event`` as one JSON line, if it names an actor."""
        if event.actor is None:
            return
        record: dict[str, Any] = {
            "event": event.type.value,
            "at": event.at.isoformat(),
            "subject_id": event.subject_id,
            "tenant": event.tenant,
            "factor": event.factor,
            "credential_id": event.credential_id,
            "actor": event.actor,
            "reason": event.reason,
            "detail": dict(event.detail),
            "operator": self.operator,
            "via": "mfakit-cli",
        }
        if self.note is not None:
            record["note"] = self.note
        # ensure_ascii: no character of a subject id can break the line.
        line = json.dumps(record, default=str, ensure_ascii=True, sort_keys=True)
        print(_AUDIT_PREFIX + line, file=self.out, flush=True)


def _operator(run: _Run) -> str:
    given: str | None = getattr(run.args, "operator", None)
    if given is not None:
        return given
    try:
        name = getpass.getuser()
    except Exception:  # no user name in the environment or the password database
        name = ""
    if name and name.isprintable() and len(name) <= _MAX_NOTE:
        return name
    uid = getattr(os, "getuid", None)
    return f"uid-{uid()}" if uid is not None else "unknown-operator"


def _database_url(run: _Run) -> sa.URL:
    """The parsed URL from ``--database`` or the environment (a usage error if malformed)."""
    text = run.args.database or run.environ.get(DATABASE_VARIABLE)
    if not text:
        raise _usage(f"no database: pass --database URL or set {DATABASE_VARIABLE}")
    try:
        import sqlalchemy as sa
    except ImportError:
        raise CLIError("this command needs SQLAlchemy: pip install 'mfakit[sql]'") from None
    try:
        url = sa.make_url(text)
    except Exception:  # never echo the text: it may hold a password
        raise _usage(
            "the database URL is malformed; expected for example sqlite:///path/mfa.db "
            "or postgresql+psycopg://user@host/db"
        ) from None
    run.where = url.render_as_string(hide_password=True)
    return url


def _open_store(run: _Run, *, create_file: bool = False) -> SQLStore:
    """Open the store named on the command line; SQLite files must exist unless creating."""
    url = _database_url(run)
    from sqlalchemy import exc

    from mfakit.storage.sql import SQLStore

    if url.get_backend_name() == "sqlite" and not create_file:
        database = url.database or ""
        memory = database in ("", ":memory:") or url.query.get("mode") == "memory"
        if not memory and not database.startswith("file:") and not Path(database).exists():
            # Connecting would create an empty file: say what is wrong instead.
            raise CLIError(
                f"database file {database} does not exist "
                "(create the tables with 'mfakit schema create')"
            )
    try:
        url.get_dialect()  # an unknown dialect is a usage error, not an operational one
    except exc.NoSuchModuleError:
        raise _usage(f"unknown database dialect in {run.where}") from None
    # Anything else (a missing driver, a refused URL) is a StoreError without the URL,
    # reported by main() with the masked URL in front.
    return SQLStore(url, table_prefix=run.args.table_prefix)


def _schema_ready(run: _Run, store: SQLStore) -> None:
    from mfakit.storage.sql import SCHEMA_VERSION

    found = store.schema_version()
    prefix = run.args.table_prefix
    if found is None:
        raise CLIError(
            f"no mfakit tables with prefix {prefix!r} in {run.where}; "
            "run 'mfakit schema create' first"
        )
    if found > SCHEMA_VERSION:
        raise CLIError(
            f"the schema in {run.where} is version {found}, newer than this mfakit "
            f"supports ({SCHEMA_VERSION}); upgrade mfakit"
        )
    if found < SCHEMA_VERSION:
        raise CLIError(f"the schema in {run.where} is version {found}; run 'mfakit schema upgrade'")


def _facade(
    run: _Run, store: SQLStore, keyring: Keyring, *, note: str | None = None
) -> tuple[MFA, Actor]:
    """A facade on ``store`` whose authorizer lets the operator actor do what the CLI does.

    The operator holds the database credentials, so they could change any record
    directly; refusing them here would protect nothing. They are still an
    :class:`~mfakit.Actor` going through an :class:`~mfakit.Authorizer`, so every change
    goes through the same code, with the same audit events naming them, as a host's
    administrator (SECURITY.md 37). ``same_tenant=False``: the operator works across
    tenants, like a host's own support staff.
    """
    from mfakit._clock import SystemClock
    from mfakit._service import MFA
    from mfakit.factors.totp import TOTP

    operator = _operator(run)
    actor = Actor(id=operator, roles=frozenset({OPERATOR_ROLE}))
    allowed = {OPERATOR_ROLE}
    mfa = MFA(
        store=store,
        keyring=keyring,
        # A facade needs one factor; none of these commands verifies or enrols anything.
        factors=[TOTP(issuer="mfakit")],
        clock=run.clock if run.clock is not None else SystemClock(),
        events=_AuditLines(run.stderr, operator, note),
        authorizer=RoleAuthorizer(
            {"reset": allowed, "unlock": allowed, "report": allowed}, same_tenant=False
        ),
    )
    return mfa, actor


def _no_keys() -> Keyring:
    # reset, unlock, report and purge neither encrypt nor decrypt anything, so they do not
    # need MFAKIT_KEYS (an operator who unlocks users need not hold the encryption keys).
    # The facade requires a keyring; this one is never used and dies with the process.
    return Keyring.ephemeral()


def _known_subject(store: SQLStore, subject_id: str) -> Subject:
    """The subject as the store knows it (tenant from its credentials), or an error."""
    try:
        Subject(id=subject_id)
    except MFAError as error:
        raise _usage(f"SUBJECT_ID: {error}") from None
    credentials = store.list_credentials(subject_id)
    if not credentials and store.get_lock_state(subject_id).version == 0:
        raise CLIError(f"unknown subject {subject_id!r}: no credential and no lock state")
    return Subject(id=subject_id, tenant=credentials[0].tenant if credentials else None)


# ------------------------------------------------------------------------------------------
# commands
# ------------------------------------------------------------------------------------------
def _cmd_generate_key(run: _Run) -> int:
    try:
        entry = Keyring.generate_key(run.args.key_id)
    except MFAError as error:
        raise _usage(f"--key-id: {error}") from None
    run.say(entry)
    return EXIT_OK


def _cmd_demo(run: _Run) -> int:
    from mfakit._demo import default_database, run_demo

    args = run.args
    database = None if args.memory else (args.database or default_database(run.environ))
    return run_demo(
        account=args.account,
        issuer=args.issuer,
        show_qr=not args.no_qr,
        stdin=run.stdin,
        stdout=run.stdout,
        database=database,
        reset=args.reset,
        clock=run.clock,
    )


def _cmd_schema(run: _Run) -> int:
    from mfakit.storage.sql import SCHEMA_VERSION

    action = run.args.action
    store = _open_store(run, create_file=action == "create")
    prefix = run.args.table_prefix
    try:
        if action == "version":
            found = store.schema_version()
            if found is None:
                raise CLIError(f"no mfakit tables with prefix {prefix!r} in {run.where}")
            run.say(str(found))
        elif action == "upgrade":
            _schema_ready_for_upgrade(run, store)
            run.say(f"schema version {store.upgrade()} in {run.where} (prefix {prefix})")
        else:
            before = store.schema_version()
            if before is not None and before > SCHEMA_VERSION:
                _schema_ready(run, store)  # raises: newer than this mfakit
            store.create_schema()
            if before is None:
                run.say(f"created schema version {SCHEMA_VERSION} in {run.where} (prefix {prefix})")
            else:
                run.say(f"schema version {before} already in {run.where} (prefix {prefix})")
    finally:
        store.close()
    return EXIT_OK


def _schema_ready_for_upgrade(run: _Run, store: SQLStore) -> None:
    from mfakit.storage.sql import SCHEMA_VERSION

    found = store.schema_version()
    if found is None or found > SCHEMA_VERSION:
        _schema_ready(run, store)  # raises with the explanation


def _cmd_rotate_keys(run: _Run) -> int:
    from mfakit._service import UNENCRYPTED_SECRET_FACTORS

    keyring = Keyring.from_env(DEFAULT_KEYS_VARIABLE, environ=run.environ)
    store = _open_store(run)
    try:
        _schema_ready(run, store)
        mfa, _actor = _facade(run, store, keyring)
        rotated = mfa.rotate_keys()
        run.say(f"re-encrypted {rotated} secret(s) under key {keyring.primary_key_id}")
        # Which old keys do stored records still need? Encrypted secrets name their key in
        # the blob header; recovery-code tags start with kidlen || key id (secretbox docs).
        needed: dict[str, int] = {}
        for credential in store.iter_credentials():
            if credential.factor == "recovery_codes":
                for key_id in _recovery_tag_key_ids(credential.secret):
                    needed[key_id] = needed.get(key_id, 0) + 1
            elif credential.factor not in UNENCRYPTED_SECRET_FACTORS and credential.secret:
                key_id = keyring.key_id_of(credential.secret)
                needed[key_id] = needed.get(key_id, 0) + 1
    finally:
        store.close()
    old = list(keyring.key_ids[1:])
    still = sorted(k for k in needed if k != keyring.primary_key_id)
    if still:
        run.say(
            "still needed by stored records (keep them in MFAKIT_KEYS): "
            + ", ".join(f"{k} ({needed[k]} record(s))" for k in still)
        )
    if old and not set(old) & set(still):
        run.say(
            f"no stored record needs {', '.join(old)} any more; remove from MFAKIT_KEYS "
            "once codes and sign-ins in flight have expired (10 minutes)"
        )
    return EXIT_OK


def _recovery_tag_key_ids(secret: bytes) -> set[str]:
    try:
        tags = [bytes.fromhex(t) for t in json.loads(secret.decode("ascii"))]
        return {t[1 : 1 + t[0]].decode("ascii") for t in tags if t}
    except (ValueError, TypeError, IndexError, UnicodeDecodeError):
        return {"(unreadable recovery-code batch)"}


def _subjects_in(store: SQLStore) -> list[Subject]:
    """Every subject with a credential, with the tenant its credentials carry."""
    tenants: dict[str, str | None] = {}
    for credential in store.iter_credentials():
        tenants.setdefault(credential.subject_id, credential.tenant)
    subjects = [Subject(id=sid, tenant=tenant) for sid, tenant in tenants.items()]
    subjects.sort(key=lambda s: (s.tenant is not None, s.tenant or "", s.id))
    return subjects


def _cmd_report(run: _Run) -> int:
    store = _open_store(run)
    try:
        _schema_ready(run, store)
        mfa, actor = _facade(run, store, _no_keys())
        subjects = _subjects_in(store)
        tenant: str | None = run.args.tenant
        tenants = (
            [tenant] if tenant is not None else list(dict.fromkeys(s.tenant for s in subjects))
        )
        rows: list[ReportRow] = []
        for each in tenants:
            rows += mfa.report(actor, each, [s for s in subjects if s.tenant == each])
    finally:
        store.close()
    text = _csv(rows) if run.args.format == "csv" else _table(rows)
    if run.args.output is None or run.args.output == "-":
        run.stdout.write(text)
        run.stdout.flush()
        return EXIT_OK
    try:
        # newline="": the CSV's CRLF line ends (RFC 4180) are written as they are.
        with open(run.args.output, "w", encoding="utf-8", newline="") as out:
            out.write(text)
    except OSError as error:
        raise CLIError(f"cannot write {run.args.output}: {error.strerror or error}") from None
    run.say(f"wrote {len(rows)} row(s) to {run.args.output}")
    return EXIT_OK


def _csv(rows: Sequence[ReportRow]) -> str:
    """Exactly what :meth:`~mfakit.MFA.report_csv` writes for these rows."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL)
    writer.writerow(REPORT_COLUMNS)
    for row in rows:
        writer.writerow([_csv_cell(getattr(row, name)) for name in REPORT_COLUMNS])
    return out.getvalue()


def _table_cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        return f"{value.astimezone(dt.timezone.utc):%Y-%m-%dT%H:%M:%S}Z"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or "-"
    return str(value)


def _table(rows: Sequence[ReportRow]) -> str:
    """Aligned columns for a terminal: the columns the store can fill, then a count."""
    cells = [list(_TABLE_COLUMNS)]
    cells += [[_table_cell(getattr(row, name)) for name in _TABLE_COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(_TABLE_COLUMNS))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(f"{len(rows)} subject(s)")
    return "\n".join(lines) + "\n"


def _cmd_subject(run: _Run) -> int:
    store = _open_store(run)
    try:
        _schema_ready(run, store)
        mfa, actor = _facade(run, store, _no_keys(), note=run.args.reason)
        subject = _known_subject(store, run.args.subject_id)
        if run.args.command == "reset":
            removed = mfa.admin_reset(actor, subject)
            run.say(
                f"reset {subject.id}: removed {removed} credential(s) and cleared the lock; "
                "they enrol again at their next sign-in"
            )
        else:
            before = store.get_lock_state(subject.id)
            locked = _throttle.is_locked(before, mfa.clock.now())
            mfa.admin_unlock(actor, subject)
            was = "suspended" if before.suspended else "locked" if locked else None
            state = f"was {was}" if was else "was not locked"
            run.say(f"unlocked {subject.id} ({state}, {before.failures} failure(s) cleared)")
    finally:
        store.close()
    return EXIT_OK


def _cmd_purge(run: _Run) -> int:
    store = _open_store(run)
    try:
        _schema_ready(run, store)
        mfa, _actor = _facade(run, store, _no_keys())
        deleted = mfa.purge_expired(keep_for=dt.timedelta(minutes=run.args.keep_for))
    finally:
        store.close()
    run.say(f"deleted {deleted} expired challenge(s)")
    return EXIT_OK


_COMMANDS: Final[Mapping[str, Callable[[_Run], int]]] = {
    "demo": _cmd_demo,
    "generate-key": _cmd_generate_key,
    "schema": _cmd_schema,
    "rotate-keys": _cmd_rotate_keys,
    "report": _cmd_report,
    "reset": _cmd_subject,
    "unlock": _cmd_subject,
    "purge": _cmd_purge,
}


@contextlib.contextmanager
def _streams(stdout: TextIO, stderr: TextIO) -> Iterator[None]:
    """Send argparse's own output (help, errors) to the given streams."""
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        yield


def _failure(run: _Run, error: BaseException) -> CLIError:
    """Turn an exception into the one line to print; messages are never a driver's."""
    where = f"{run.where}: " if run.where else ""
    if isinstance(error, CLIError):
        return error
    if isinstance(error, StoreError):
        # StoreError messages name the operation and error classes only (never row data).
        return CLIError(f"database {where}{error}")
    if isinstance(error, ConfigurationError):
        return CLIError(str(error))  # e.g. MFAKIT_KEYS; never contains key material
    if isinstance(error, MFAError):
        return CLIError(f"{type(error).__name__}: {error}")
    if isinstance(error, OSError):
        name = f" {error.filename}" if error.filename else ""
        return CLIError(f"cannot use{name}: {error.strerror or type(error).__name__}")
    # Anything else is a bug; its message may quote data, so only its type is shown.
    return CLIError(f"unexpected {type(error).__name__} (a bug in mfakit? please report it)")


def main(
    argv: Sequence[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Clock | None = None,
) -> int:
    """Run the ``mfakit`` command line and return its exit status.

    Args:
        argv: The arguments after the program name; ``sys.argv[1:]`` by default.
        stdin: Where the demo reads answers (default ``sys.stdin``).
        stdout: Where results go (default ``sys.stdout``).
        stderr: Where errors and audit lines go (default ``sys.stderr``).
        environ: Where ``MFAKIT_DATABASE_URL`` and ``MFAKIT_KEYS`` are looked up
            (default :data:`os.environ`).
        clock: The time source (default the system clock); tests pass a ``FakeClock``.

    Returns:
        :data:`EXIT_OK`, :data:`EXIT_FAILURE`, :data:`EXIT_USAGE` or
        :data:`EXIT_INTERRUPTED`. ``--help`` returns 0. Nothing is raised.
    """
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    try:
        with _streams(out, err):
            args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help (0) or a usage error (2, already printed)
        code = done.code
        return code if isinstance(code, int) else EXIT_USAGE
    run = _Run(
        args=args,
        stdin=stdin if stdin is not None else sys.stdin,
        stdout=out,
        stderr=err,
        environ=environ if environ is not None else os.environ,
        clock=clock,
    )
    try:
        return _COMMANDS[args.command](run)
    except KeyboardInterrupt:
        print("mfakit: error: interrupted", file=err, flush=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``mfakit report | head``): nothing more to say to it.
        _silence(out)
        return EXIT_FAILURE
    except Exception as error:
        failure = _failure(run, error)
        print(f"mfakit: error: {_one_line(str(failure))}", file=err, flush=True)
        return failure.status


def _silence(stream: IO[str]) -> None:
    """Point a dead stdout at /dev/null so the interpreter's final flush stays quiet."""
    with contextlib.suppress(Exception):
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
