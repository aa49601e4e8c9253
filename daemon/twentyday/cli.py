"""The ``twentyday`` command: a thin click layer over the library.

Each command parses options, calls one library function and prints. Domain
errors become one line on stderr and the error's exit code, never a traceback.
Listing commands take ``--json`` and then print machine-readable output only.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import os
import sys
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

import click

from twentyday import __version__, logs
from twentyday import config as config_module
from twentyday.canonical import parse_iso
from twentyday.compliance.evaluate import Policy
from twentyday.crypto import keys
from twentyday.errors import (
    ConfigError,
    IntegrityError,
    InvalidArgument,
    KeyMaterialError,
    NotFoundError,
    ParseError,
    TwentydayError,
)
from twentyday.hardening import forbid_core_dumps
from twentyday.status import Status, read_status
from twentyday.store import accounting as accounting_module
from twentyday.store import alerts as alerts_module
from twentyday.store import clock, db, outbox, schema
from twentyday.store import search as search_module
from twentyday.store.alerts import Scope
from twentyday.store.archive import Archive
from twentyday.store.disclosures import disclosing_actor, require_purpose
from twentyday.store.summary import Window, compliance_summary
from twentyday.store.verify import verify_archive

if TYPE_CHECKING:
    from twentyday.pipeline.dry_run import DryRun
    from twentyday.store.disposition import Disposal
    from twentyday.store.migrate_index import IndexMigrationReport
    from twentyday.store.object_holds import HoldSync

# serve, ingest, init, create, keys add-recipient, smtp-user, report and alerts deliver import their modules
# when they run:
# those pull in aiosmtpd, watchdog and the whole pipeline, a start-up cost every other command
# would pay. All of them are below the CLI (the import contract checks it): no cycle hides here.
DEFAULT_CONFIG = "/etc/twentyday/twentyday.toml"
F = TypeVar("F", bound=Callable[..., Any])


class Cli(click.Group):
    """Turns every expected failure into one clear line and a stable exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TwentydayError as error:
            click.echo(f"twentyday: {error}", err=True)
            ctx.exit(error.exit_code)
        except db.ERRORS as error:
            click.echo(f"twentyday: index error: {error}", err=True)
            ctx.exit(TwentydayError.exit_code)
        except OSError as error:
            click.echo(f"twentyday: {error.filename or ''}: {error.strerror or error}", err=True)
            ctx.exit(TwentydayError.exit_code)


def now() -> datetime:
    return datetime.now(UTC)


def load_config(ctx: click.Context) -> config_module.Config:
    path = ctx.obj["config"]
    config = config_module.load(path)
    logs.configure(config.log_level)
    return config


def open_archive(ctx: click.Context) -> Archive:
    return Archive(load_config(ctx))


def read_passphrase(passphrase_file: Path | None, *, confirm: bool) -> bytes:
    if passphrase_file is not None:
        try:
            text = passphrase_file.read_text().rstrip("\r\n")
        except OSError as error:
            raise KeyMaterialError(f"{passphrase_file}: cannot read passphrase file: {error.strerror}") from None
        return text.encode()
    value: str = click.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm)
    return value.encode()


def load_identity(identity: Path, passphrase_file: Path | None) -> keys.Identity:
    passphrase = read_passphrase(passphrase_file, confirm=False) if keys.is_protected(identity) else None
    return keys.load_identity(identity, passphrase)


def json_option(function: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON only.")(function)


def parse_time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        raise click.BadParameter("expected ISO 8601 with an offset, e.g. 2026-03-01T00:00:00-05:00",
                                 param_hint=option) from None


def _cell(value: object) -> str:
    """A table cell on one line: a control character from input is shown escaped, never obeyed."""
    text = "" if value is None else str(value)
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[object]], count: str,
               right: frozenset[int] = frozenset()) -> None:
    """An aligned table with a header row, then ``count`` on a line of its own.

    ``right``: the columns (by position) of numbers, aligned to the right."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max([_width(header), *(_width(row[n]) for row in cells)]) for n, header in enumerate(headers)]
    click.echo(_table_line(headers, widths, right))
    for row in cells:
        click.echo(_table_line(row, widths, right))
    click.echo(count)


def _table_line(row: Sequence[str], widths: Sequence[int], right: frozenset[int]) -> str:
    padded = [(" " * (width - _width(text)) + text) if n in right else (text + " " * (width - _width(text)))
              for n, (text, width) in enumerate(zip(row, widths, strict=True))]
    return "  ".join(padded).rstrip()


def echo_json_array(items: Iterable[object]) -> None:
    """``json.dumps(list(items), indent=2, ensure_ascii=False)``, the same text, printed an element at a time."""
    opened = False
    for item in items:
        element = "\n".join("  " + line for line in json.dumps(item, indent=2, ensure_ascii=False).splitlines())
        click.echo(("[\n" if not opened else ",\n") + element, nl=False)
        opened = True
    click.echo("\n]" if opened else "[]")


#: A streamed table's columns are as wide as its header and first rows need (later rows may push a line).
TABLE_PAGE = 100


def echo_table_stream(headers: Sequence[str], rows: Iterable[Sequence[object]], noun: str,
                      right: frozenset[int] = frozenset()) -> None:
    """:func:`echo_table` for rows that come one by one: printed as they come, then ``N noun``.

    The columns are sized by the header and the first :data:`TABLE_PAGE` rows (read before
    anything is printed); a longer cell later on widens only its own line."""
    iterator = iter(rows)
    page = [[_cell(value) for value in row] for row in itertools.islice(iterator, TABLE_PAGE)]
    widths = [max([_width(header), *(_width(row[n]) for row in page)]) for n, header in enumerate(headers)]
    click.echo(_table_line(headers, widths, right))
    count = 0
    for cells in itertools.chain(page, ([_cell(value) for value in row] for row in iterator)):
        click.echo(_table_line(cells, widths, right))
        count += 1
    click.echo(f"{count} {noun}")


@click.group(cls=Cli)
@click.version_option(__version__)
@click.option("--config", "config_path", envvar="TWENTYDAY_CONFIG", default=DEFAULT_CONFIG,
              show_default=True, type=click.Path(path_type=Path), help="Configuration file (or TWENTYDAY_CONFIG).")
@click.pass_context
def cli(ctx: click.Context, config_path: Path) -> None:
    """twentyday: capture personal-account messages as sealed federal records (44 U.S.C. 2911)."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config_path


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--no-passphrase", is_flag=True, help="Write an UNPROTECTED demo identity (never for real records).")
@click.option("--passphrase-file", type=click.Path(path_type=Path), help="Read the identity passphrase from a file.")
@click.option("--demo/--no-demo", default=False, help="Ingest three demo messages (on time, late, copied).")
def init(directory: Path, no_passphrase: bool, passphrase_file: Path | None, demo: bool) -> None:
    """Create a self-contained local archive in DIRECTORY: config, officer identity, data, inbox."""
    from twentyday.initialise import init_archive

    forbid_core_dumps()  # the new identity, the passphrase and the daemon's secrets are in memory
    passphrase = None if no_passphrase else read_passphrase(passphrase_file, confirm=True)
    report = init_archive(directory, passphrase=passphrase, demo=demo, now=now())
    click.echo(f"config:    {report.config_path}")
    click.echo(f"archive:   {report.data_dir}")
    click.echo(f"inbox:     {report.inbox}/<custodian-id>/")
    click.echo(f"identity:  {report.identity_path}  ({report.fingerprint})")
    click.echo("           The officer identity is kept beside the archive, NOT in the daemon's data")
    click.echo("           directory; move it off this host for real use. The daemon holds only")
    click.echo(f"           {report.public_path.name}.")
    if not report.protected:
        click.echo("           WARNING: UNPROTECTED demo identity (no passphrase).")
    if demo:
        click.echo(f"demo:      {report.demo_records} records ingested")
    click.echo(f"next:      twentyday --config {report.config_path} serve")


@cli.command()
@click.pass_context
def create(ctx: click.Context) -> None:
    """Create the archive the config describes (data_dir, daemon secrets, index, inbox folders)."""
    from twentyday.initialise import archive_ledger_key, make_inbox, pin_ledger_key

    config = load_config(ctx)
    if (config.data_dir / "index.db").exists():
        raise ConfigError("an archive already exists there", path=str(config.path), key="data_dir")
    if config.index is not None:
        from twentyday.store.nodes import holds_archive

        if holds_archive(config.index):
            raise ConfigError("that database holds an archive already; to add an intake node to it, copy "
                              "data_dir/secrets from one of its nodes instead (README, 'Beyond one machine')",
                              path=str(config.path), key="store.index")
    recipients = tuple(keys.load_recipient(path) for path in config.recipients)
    Archive.create(config, recipients).close()
    ledger_key = archive_ledger_key(config)
    try:
        pin_ledger_key(config.path, ledger_key, replace=True)  # a new archive: its key is the one to pin
    except PermissionError:  # a config the daemon's account cannot write: better so, the officer pins it
        click.echo(f"pin it:    add to [keys] in {config.path}: ledger_key = \"{ledger_key}\"")
    for custodian in config.custodians:
        make_inbox(config.folder_path / custodian.id)
    click.echo(f"archive:   {config.data_dir}")
    click.echo(f"inbox:     {config.folder_path}/<custodian-id>/")
    click.echo(f"sealed to: {', '.join(r.fingerprint for r in recipients)}")
    click.echo(f"pinned:    keys.ledger_key = {ledger_key}")


@cli.group(name="keys")
def keys_group() -> None:
    """Officer identities and recipients."""


@keys_group.command(name="generate")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--label", default="records officer", show_default=True, help="Name written into the key files.")
@click.option("--no-passphrase", is_flag=True, help="Write an UNPROTECTED identity (demo only).")
@click.option("--passphrase-file", type=click.Path(path_type=Path), help="Read the passphrase from a file.")
def keys_generate(path: Path, label: str, no_passphrase: bool, passphrase_file: Path | None) -> None:
    """Generate an officer identity at PATH (PKCS#8, 0600) and its public key at PATH.pub."""
    forbid_core_dumps()  # the new private key and its passphrase are in this process's memory
    passphrase = None if no_passphrase else read_passphrase(passphrase_file, confirm=True)
    recipient = keys.generate_identity(path, label, passphrase)
    click.echo(f"identity:    {path}")
    click.echo(f"public key:  {keys.public_path(path)}")
    click.echo(f"fingerprint: {recipient.fingerprint}")
    click.echo(f"signing key: {recipient.signer}  (signs this officer's disclosures)")
    if passphrase is None:
        click.echo("WARNING: UNPROTECTED identity (no passphrase): whoever reads the file can open every record.")


@keys_group.command(name="add-signing")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--passphrase-file", type=click.Path(path_type=Path), help="Read the passphrase from a file.")
def keys_add_signing(path: Path, passphrase_file: Path | None) -> None:
    """Add a disclosure-signing key (Ed25519) to an identity made before them; rewrites PATH.pub."""
    passphrase = read_passphrase(passphrase_file, confirm=False) if keys.is_protected(path) else None
    recipient = keys.add_signing_key(path, passphrase)
    click.echo(f"identity:    {path}  ({recipient.fingerprint})")
    click.echo(f"signing key: {recipient.signer}")
    click.echo(f"public key:  {keys.public_path(path)}: copy it where keys.recipients names this officer's key")


@keys_group.command(name="fingerprint")
@click.argument("path", type=click.Path(path_type=Path))
def keys_fingerprint(path: Path) -> None:
    """Print the fingerprint of a public key file (or of an identity's .pub beside it)."""
    public = path if not keys.public_path(path).exists() else keys.public_path(path)
    recipient = keys.load_recipient(public)
    click.echo(f"{recipient.fingerprint}  {recipient.label}")


@keys_group.command(name="add-recipient")
@click.argument("public_key", type=click.Path(path_type=Path))
@click.pass_context
def keys_add_recipient(ctx: click.Context, public_key: Path) -> None:
    """Seal future captures to another public key too (officer, escrow); updates the config."""
    from twentyday.recipients import add_recipient

    recipient = add_recipient(ctx.obj["config"], public_key)
    click.echo(f"added {recipient.fingerprint} ({recipient.label}); future captures are sealed to it")


@keys_group.command(name="list")
@click.pass_context
def keys_list(ctx: click.Context) -> None:
    """List the recipients the daemon seals to, and who holds escrowed daemon secrets."""
    config = load_config(ctx)
    for path in config.recipients:
        recipient = keys.load_recipient(path)
        click.echo(f"recipient  {recipient.fingerprint}  {recipient.label}  {path}")
    with Archive(config) as archive:
        holders = archive.escrow_holders()
    for holder in holders:
        click.echo(f"escrow     {holder.fingerprint}  {holder.label}  since {holder.at}")


@keys_group.command(name="pin-ledger")
@click.option("--write", is_flag=True, help="Write the key into the config's [keys] table (when none is pinned).")
@click.pass_context
def keys_pin_ledger(ctx: click.Context, write: bool) -> None:
    """Show the archive's ledger key, to pin it in the config (keys.ledger_key) for verify."""
    from twentyday.initialise import archive_ledger_key, pin_ledger_key

    config = load_config(ctx)
    key = archive_ledger_key(config)
    click.echo(f"ledger key: {key}")
    if config.ledger_key == key:
        click.echo("already pinned in the config")
    elif config.ledger_key:
        raise IntegrityError(f"the config pins {config.ledger_key}: the archive's ledger key was replaced, "
                             "or the config names another archive")
    elif write:
        pin_ledger_key(config.path, key)
        click.echo(f"pinned in {config.path}")
    else:
        click.echo("Pin it only from a copy of the archive you trust (compare it with the key the officer "
                   "recorded at init); then rerun with --write, or add to [keys]:")
        click.echo(f'ledger_key = "{key}"')


@keys_group.command(name="rotate-ledger")
@click.pass_context
def keys_rotate_ledger(ctx: click.Context) -> None:
    """Replace the daemon's ledger-signing key (serve stopped): the old key signs the handover to the new one."""
    from twentyday.rotate import rotate_ledger_key

    rotation = rotate_ledger_key(ctx.obj["config"])
    click.echo(f"ledger key: {rotation.current}")
    click.echo(f"handed over from {rotation.former} at ledger entry {rotation.handover_seq}; "
               f"head {rotation.head.text()} signed with the new key")
    click.echo(f"kept:       {rotation.kept} (the former public key)")
    click.echo(f"escrow:     the daemon secrets sealed again to {rotation.recipients} recipient(s)")
    if rotation.config_written:
        click.echo("pinned:     keys.ledger_key and keys.former_ledger_keys written to the config; start serve")
    else:
        click.echo("Put these two lines in [keys] of the config (replacing ledger_key), then start serve:")
        for line in rotation.config_lines():
            click.echo(line)


@cli.command(name="smtp-user")
@click.argument("user")
@click.option("--password-file", type=click.Path(path_type=Path), help="Read the password from a file (else prompt).")
@click.pass_context
def smtp_user(ctx: click.Context, user: str, password_file: Path | None) -> None:
    """Add a user to smtp.auth_file (scrypt-hashed); mail then needs AUTH as that user."""
    from twentyday.intake.smtp_auth import add_user

    config = load_config(ctx)
    if config.smtp.auth_file is None:
        raise ConfigError("set smtp.auth_file first", path=str(config.path), key="smtp.auth_file")
    password = read_passphrase(password_file, confirm=True).decode()
    add_user(config.smtp.auth_file, user, password)
    click.echo(f"{user} can now deliver to the forwarding address (reload 'serve' to take effect: "
               "systemctl reload twentyday, or SIGHUP)")


@cli.command()
@click.pass_context
def serve(ctx: click.Context) -> None:
    """Run the daemon until SIGTERM: intake sources, pipeline, scheduler."""
    from twentyday.daemon import serve as run_daemon

    run_daemon(load_config(ctx))


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--custodian", help="Custodian id (default: route from the item's own headers).")
@click.option("--dry-run", is_flag=True,
              help="Print what would be read (parser, counts, how times were read); store nothing.")
@json_option
@click.pass_context
def ingest(ctx: click.Context, paths: tuple[Path, ...], custodian: str | None, dry_run: bool, as_json: bool) -> None:
    """Ingest files once, through the same pipeline as the daemon; reports each file."""
    from twentyday.pipeline import process as pipeline

    if dry_run:
        ingest_dry_run(ctx, paths, custodian, as_json)
        return
    outcomes = []
    with open_archive(ctx) as archive:
        if archive.config.index is not None:  # a node of an archive others may serve: its secrets must be the archive's
            from twentyday.store.nodes import check_node

            check_node(archive.conn, archive.secrets, f"{archive.data_dir}/secrets")
        if custodian is not None and archive.config.custodian(custodian) is None:
            raise NotFoundError(f"no custodian {custodian!r} in {archive.config.path}")
        for path in paths:  # all checked before any is ingested
            check_ingestable(path)
        for path in paths:
            item = pipeline.Item(path.name, "cli", now(), path=path, custodian_id=custodian)
            with terminal_progress(path.name) as progress:
                outcome = pipeline.process(archive, item, progress)
            outcomes.append(outcome)
            if not as_json:
                click.echo(f"{outcome.state:<12} {outcome.source}  {outcome.capture_id}  {outcome.detail}")
        # The alerts of what was ingested, as serve's scheduler re-evaluates them after each batch.
        archive.evaluate_alerts(now(), Scope.touched(o.result for o in outcomes))
    if as_json:
        click.echo(json.dumps([{"source": o.source, "state": o.state, "capture_id": o.capture_id,
                                "detail": o.detail} for o in outcomes], indent=2))
    if any(o.state in {"quarantined", "held"} for o in outcomes):
        ctx.exit(ParseError.exit_code)  # HeldForReview is a ParseError too


def check_ingestable(path: Path) -> None:
    """``ingest`` reads regular files; an export folder (Telegram, signal-export, imessage-exporter) is
    taken whole by the watched folder, or zipped first, so the capture is one sealed item."""
    if path.is_dir() and not path.is_symlink():
        raise NotFoundError(f"{path}: a folder; zip it first (zip -r export.zip FOLDER) and give the zip, "
                            "or drop the folder into the custodian's watched folder")
    if not path.is_file():
        raise NotFoundError(f"{path}: no such file (or not a regular file)")


@contextlib.contextmanager
def terminal_progress(name: str) -> Iterator[Callable[[int], None] | None]:
    """Progress on stderr for a person at a terminal; None (today's output only) for scripts and logs."""
    from twentyday.pipeline.progress import TerminalProgress

    stream = sys.stderr
    if not stream.isatty():
        yield None
        return
    progress = TerminalProgress(stream, name)
    try:
        yield progress
    finally:
        progress.finish()


def ingest_dry_run(ctx: click.Context, paths: tuple[Path, ...], custodian: str | None, as_json: bool) -> None:
    """``ingest --dry-run``: the config's custodians give the zone and locale; no archive is opened."""
    from twentyday.pipeline import dry_run

    config = load_config(ctx)
    if custodian is not None and config.custodian(custodian) is None:
        raise NotFoundError(f"no custodian {custodian!r} in {config.path}")
    for path in paths:
        check_ingestable(path)
    readable = True
    for path in paths:
        with terminal_progress(path.name) as progress:
            summary = dry_run.read_file(config, path, custodian, progress)
        readable = readable and summary.readable
        if as_json:
            click.echo(json.dumps(summary.as_json(), ensure_ascii=False))
        else:
            echo_dry_run(summary)
    if not readable:
        ctx.exit(ParseError.exit_code)  # as ingest: the file would be quarantined or held


def echo_dry_run(summary: DryRun) -> None:
    """One file's dry run, for a person: the outcome, then one fact per line."""
    click.echo(f"{summary.outcome:<12} {_cell(summary.source)}")
    if summary.code:
        click.echo(f"  reason:     {summary.code}: {_cell(summary.reason)}")
    if summary.parser:
        click.echo(f"  parser:     {summary.parser}")
    if summary.custodian:
        locale = summary.locale or "none (day/month order from the file, else held)"
        click.echo(f"  custodian:  {summary.custodian} (zone {summary.zone}, locale {locale})")
    if summary.outcome == "unrouted":
        click.echo("  (give --custodian ID to read it as that custodian's)")
    if not summary.parser or summary.outcome == "unrouted":
        return
    click.echo(f"  records:    {summary.records} ({summary.undated} undated, {summary.incomplete} incomplete, "
               f"{summary.deleted} deleted, {summary.edited} edited)")
    events = ", ".join(f"{kind} {count}" for kind, count in sorted(summary.events.items())) or "none"
    click.echo(f"  events:     {events}")
    if summary.first is not None and summary.last is not None:
        click.echo(f"  messages:   {summary.first.isoformat()} to {summary.last.isoformat()}")
    for number, reading in enumerate(summary.readings):
        order = {True: "day first", False: "month first", None: "no day/month order"}[reading.day_first]
        label = "times read:" if number == 0 else ""
        click.echo(f"  {label:<11} {reading.count} as {_cell(reading.layout)}; {order}, decided by "
                   f"{reading.decided_by}; zone {reading.zone}")


def filter_options(function: F) -> F:
    """The search filters, for every command that selects records by them (search, export)."""
    for option in reversed((
        click.option("--custodian", help="Custodian id."),
        click.option("--conversation", help="Conversation (exact)."),
        click.option("--participant", help="Sender or recipient (address, number or name)."),
        click.option("--platform", help="email, whatsapp, signal, telegram, ..."),
        click.option("--status", type=click.Choice(["copied", "on_time", "late", "undated"])),
        click.option("--since", help="Created at or after (ISO 8601 with offset)."),
        click.option("--until", help="Created before (ISO 8601 with offset)."),
        click.option("--text", help="Words that must all appear (blind index: whole words only)."),
    )):
        function = option(function)
    return function


@cli.command()
@filter_options
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 1_000_000))
@json_option
@click.pass_context
def search(ctx: click.Context, custodian: str | None, conversation: str | None, participant: str | None,
           platform: str | None, status: str | None, since: str | None, until: str | None,
           text: str | None, limit: int, as_json: bool) -> None:
    """Find records by metadata and words. Shows metadata only; nothing is decrypted."""
    filters = search_module.Filters(custodian, conversation, participant, platform, status,
                                    parse_time(since, "--since"), parse_time(until, "--until"), text, limit)
    # Printed as the rows come (the first long before the last of a large result), inside the
    # archive's lifetime: the rows are read from its open connection.
    with open_archive(ctx) as archive:
        rows = search_module.search(archive, filters)
        if as_json:
            echo_json_array(rows)
            return
        echo_table_stream(("ID", "CUSTODIAN", "PLATFORM", "CONVERSATION", "CREATED", "STATUS", "DAYS LATE",
                           "DIRECTION", "SENDER"),
                          ((row["id"], row["custodian"], row["platform"], row["conversation"],
                            row["created_at"] or "(undated)", row["status"],
                            row["days_late"] if row["status"] == "late" else "", row["direction"], row["sender"])
                           for row in rows), "record(s)", right=frozenset({6}))


def identity_options(function: F) -> F:
    function = click.option("--passphrase-file", type=click.Path(path_type=Path),
                            help="Read the identity passphrase from a file (else prompt).")(function)
    function = click.option("--identity", "identity_path", required=True, type=click.Path(path_type=Path),
                            help="Officer identity (private key file).")(function)
    return function


def purpose_option(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Refuse a blank purpose before the archive is opened or a passphrase asked for."""
    try:
        return require_purpose(value)
    except InvalidArgument as error:
        raise click.BadParameter(str(error)) from None


@cli.command()
@click.argument("record_id")
@identity_options
@click.option("--purpose", required=True, callback=purpose_option,
              help="Why the record is opened (goes into the accounting of disclosures).")
@click.option("--recipient", default="self", show_default=True, help="To whom the content is disclosed.")
@click.option("--actor", default=None, help="Who opens it, recorded beside the account that runs the command.")
@json_option
@click.pass_context
def show(ctx: click.Context, record_id: str, identity_path: Path, passphrase_file: Path | None, purpose: str,
         recipient: str, actor: str | None, as_json: bool) -> None:
    """Decrypt and print one record (or, given a cap-… id, what is sealed about a capture: its own
    name, the full reason it was kept, its SMTP envelope). Every use is recorded as a disclosure
    first; an attempt that cannot open it is recorded again as "failed". Needs the officer identity
    and the archive's index only, never the daemon's secrets; the disclosure is signed with the identity."""
    forbid_core_dumps()  # the decrypted identity and the record's plaintext stay in this process
    opener = search_module.open_capture if record_id.startswith("cap-") else search_module.open_record
    with Archive(load_config(ctx), officer=True) as archive:
        identity = load_identity(identity_path, passphrase_file)
        document = opener(archive, record_id, identity, purpose=purpose, recipient=recipient, actor=actor, clock=now)
    if as_json or "content" not in document:
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    content = document.pop("content")
    for name, value in document.items():
        click.echo(f"{name + ':':<17}{json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value}")
    click.echo(f"{'subject:':<17}{content['subject']}")
    for attachment in content["attachments"]:
        state = "omitted" if attachment["omitted"] else f"{attachment['size']} bytes"
        click.echo(f"{'attachment:':<17}{attachment['name']} ({attachment['content_type']}, {state})")
    click.echo("")
    click.echo(content["body"])


def _required_text(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Refuse a blank value of a required option before the archive is opened or a passphrase asked for."""
    if value is not None and not value.strip():
        raise click.BadParameter("must not be blank")
    return value


@cli.command(name="export")
@click.option("--format", "export_format", required=True, type=click.Choice(["eml", "mbox", "jsonl", "html", "bagit"]),
              help="eml/mbox: mail as received, byte for byte; jsonl: one JSON object per record; html: a "
                   "transcript per conversation; bagit: a BagIt bag for NARA (EML, JSON, HTML, metadata).")
@identity_options
@click.option("--purpose", required=True, callback=purpose_option,
              help="Why the records are disclosed (goes into the accounting of disclosures).")
@click.option("--recipient", required=True, callback=_required_text, help="The recipient's name (person or agency).")
@click.option("--recipient-address", required=True, callback=_required_text,
              help="The recipient's address (5 U.S.C. 552a(c)(1) asks for name and address).")
@click.option("--zip-passphrase-file", type=click.Path(path_type=Path),
              help="Encrypt as an AES-256 zip (WinZip AE-2; 7-Zip opens it) with the passphrase in this 0600 "
                   "file; give the passphrase to the recipient separately. Not the identity's --passphrase-file.")
@click.option("--to", "to_key", metavar="PUBLIC-KEY",
              help="Encrypt to the recipient's age public key (age1..., or a file holding it); they run "
                   "'age -d -i KEY export.age > export.zip'.")
@click.option("--record", "record_ids", multiple=True, metavar="ID", help="A record to export (repeatable).")
@filter_options
@click.option("--actor", default=None, help="Who exports, recorded beside the account that runs the command.")
@click.option("--out", "out_path", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="The encrypted export to write (must not exist).")
@click.pass_context
def export_command(ctx: click.Context, export_format: str, identity_path: Path, passphrase_file: Path | None,
                   purpose: str, recipient: str, recipient_address: str, zip_passphrase_file: Path | None,
                   to_key: str | None, record_ids: tuple[str, ...], custodian: str | None, conversation: str | None,
                   participant: str | None, platform: str | None, status: str | None, since: str | None,
                   until: str | None, text: str | None, actor: str | None, out_path: Path) -> None:
    """Export records to a recipient outside the archive, encrypted, with a dissemination notice.

    Needs the officer's identity (--identity, its passphrase from --passphrase-file or a prompt),
    --purpose, --recipient and --recipient-address, and one way to encrypt: --zip-passphrase-file
    (an AES-256 zip) or --to (age). The export is accounted for as ONE disclosure, naming every
    record, before anything is decrypted; 'twentyday audit' lists it."""
    from twentyday.export import build, seal

    if (zip_passphrase_file is None) == (to_key is None):
        raise click.UsageError("choose how the export is encrypted: --zip-passphrase-file FILE or --to PUBLIC-KEY "
                               "(one of them)")
    if out_path.exists() or out_path.is_symlink():
        raise InvalidArgument(f"{out_path} exists: an export never overwrites a file", argument="out")
    forbid_core_dumps()  # the identity and the records' plaintext stay in this process
    filters = None
    if any(v is not None for v in (custodian, conversation, participant, platform, status, since, until, text)):
        filters = search_module.Filters(custodian, conversation, participant, platform, status,
                                        parse_time(since, "--since"), parse_time(until, "--until"), text)
    request = build.ExportRequest(export_format, purpose, recipient, recipient_address, record_ids, filters, actor)
    build.check_request(request)
    # Read before anything is opened: a bad passphrase file or key refuses the export with nothing accounted.
    zip_passphrase = seal.read_zip_passphrase(zip_passphrase_file) if zip_passphrase_file is not None else None
    age_key = seal.age_recipient(to_key) if to_key is not None else None
    config = load_config(ctx)
    # --text needs the daemon's keyed hashes (the blind index); otherwise the officer's side never reads secrets/.
    with Archive(config, officer=text is None) as archive:
        identity = load_identity(identity_path, passphrase_file)
        selected = build.prepare(archive, identity, request)
        container: seal.Container = (seal.PassphraseZip(out_path, zip_passphrase) if zip_passphrase is not None
                                     else seal.AgeZip(out_path, age_key))
        result = build.export(archive, identity, request, selected, container,
                              notice=config.dissemination_notice, clock=now)
    click.echo(f"export:     {out_path}  ({export_format}, "
               f"{'AES-256 zip' if zip_passphrase is not None else 'age'})")
    click.echo(f"disclosure: {result.disclosure.id}  {len(result.disclosure.subjects)} record(s) to "
               f"{result.disclosure.recipient} ({result.disclosure.recipient_address})")
    click.echo(f"exported:   {len(result.exported)} record(s) in {result.files} file(s)")
    for record_id, reason in sorted(result.left_out.items()):
        click.echo(f"left out:   {record_id}: {reason}")
    if result.failed is not None:
        click.echo(f"accounted:  {result.failed.id} ({len(result.failed.subjects)} record(s) not opened, as failed)")


@cli.command()
@json_option
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV only (RFC 4180): a header row, one row per disclosure.")
@click.option("--participant", metavar="PERSON",
              help="Only disclosures of records PERSON sent or received, each with only PERSON's records: "
                   "an individual's request for the accounting (5 U.S.C. 552a(c)(3)).")
@click.option("--since", help="Disclosures at or after (ISO 8601 with offset).")
@click.option("--until", help="Disclosures before (ISO 8601 with offset).")
@click.pass_context
def audit(ctx: click.Context, as_json: bool, as_csv: bool, participant: str | None, since: str | None,
          until: str | None) -> None:
    """The accounting of disclosures: who opened or exported what, when, why and for whom."""
    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    request = accounting_module.Request(participant, parse_time(since, "--since"), parse_time(until, "--until"))
    with open_archive(ctx) as archive:
        found = accounting_module.listing(archive.conn, request)
    if as_json:
        click.echo(json.dumps([accounting_module.as_row(d) for d in found], indent=2, ensure_ascii=False))
        return
    if as_csv:
        out = io.StringIO(newline="")
        writer = csv.writer(out)  # RFC 4180: CRLF line ends, quotes doubled
        writer.writerow(accounting_module.FIELDS)
        writer.writerows(accounting_module.csv_cells(d) for d in found)
        click.echo(out.getvalue(), nl=False)
        return
    about = f" of records about {participant}" if participant is not None else ""
    echo_table(("AT", "ACTION", "ACTOR", "RECIPIENT", "PURPOSE", "RECORDS"),
               [(d.at, d.action, d.actor, accounting_module.recipient_text(d), d.purpose, len(d.subjects))
                for d in found], f"{len(found)} disclosure(s){about}", right=frozenset({5}))


@cli.command()
@click.option("--head", "head", metavar="HEAD",
              help="A signed head the daemon published (seq:hash:time:signature), or a file of them "
                   "(one per line, or the daemon's log): fails when the archive does not contain it.")
@json_option
@click.pass_context
def verify(ctx: click.Context, head: str | None, as_json: bool) -> None:
    """Prove blobs, index and ledger agree; name every missing, altered or unaccounted object.

    Signatures are checked with the key pinned in the config (keys.ledger_key), never the archive's own.
    Reads the index read-only and no secret: the verify timer's user may not write the archive."""
    config = load_config(ctx)
    signers = keys.signers(tuple(keys.load_recipient(path) for path in config.recipients))
    report = verify_archive(config, head, signers)
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        for note in report.notes:
            click.echo(f"note: {note}", err=True)
        for problem in report.problems:
            click.echo(str(problem))
        if report.adopted is not None:
            click.echo(f"adopted: {report.adopted.text()}")
        checked = (f", {report.heads_checked} published head(s) found in it"
                   if head is not None or report.bucket_head else "")
        if report.objects is not None:
            checked += f", {report.objects} objects ({report.object_bytes} bytes) in the bucket"
        past = (f" ({report.past_checkpoint} entr{'y' if report.past_checkpoint == 1 else 'ies'} after the last "
                "signed checkpoint, each an officer-signed disclosure)"
                if report.past_checkpoint and report.head and report.head != report.checkpoint else "")
        click.echo(f"{'OK' if report.ok else 'FAILED'}: {report.ledger_entries} ledger entries, "
                   f"{report.captures} captures, {report.records} records, {report.blobs} blobs, "
                   f"{report.sealed_bytes} sealed bytes{checked}; head {report.head or '(none)'}{past}")
    if not report.ok:
        ctx.exit(IntegrityError.exit_code)


@cli.command()
@json_option
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """What the daemon is doing now: running or not, the spool, each custodian's last capture, open
    alerts by kind, the ledger head and serve's last verify.

    Reads only (no key, nothing written), so a health check may run it as a user who can read the
    archive. Exits 0 whenever it could read these; it judges nothing (test the --json fields)."""
    report = read_status(load_config(ctx), now())
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
        return
    for label, value in status_lines(report):
        click.echo(f"{label:<13} {_cell(value)}")
    click.echo("")
    echo_table(["CUSTODIAN", "LAST CAPTURE", "CHANNEL"],
               [[c.custodian or "(no custodian)", c.last_capture_at.isoformat() if c.last_capture_at else "never",
                 c.channel or ""] for c in report.custodians],
               f"{len(report.custodians)} custodian(s)")
    click.echo("")
    echo_table(["ALERT KIND", "OPEN", "ESCALATED"], [[a.kind, a.open, a.escalated] for a in report.alerts],
               f"{sum(a.open for a in report.alerts)} open alert(s)", right=frozenset({1, 2}))


def status_lines(report: Status) -> list[tuple[str, str]]:
    """The head of ``status``'s human output: one labelled line per fact."""
    daemon = report.daemon
    running = ("unknown (cannot read serve.pid)" if daemon.running is None
               else f"running (pid {daemon.pid})" if daemon.running else "not running")
    spool = f"{report.spool.items} item(s) waiting"
    if report.spool.oldest_at is not None:
        spool += f", the oldest since {report.spool.oldest_at.isoformat()} ({report.spool_oldest_age_seconds:.0f} s)"
    ledger = report.ledger
    head = f"entry {ledger.seq} {ledger.hash}" if ledger.seq else "empty"
    head += (f"; signed {ledger.signed_seq} {ledger.signed_hash} at {ledger.signed_at}"
             if ledger.signed_seq is not None else "; no signed checkpoint yet")
    run = report.last_verify
    if run is not None:
        verified = {"ok": f"ok, {run.ledger_entries} ledger entries",
                    "problems": f"{run.problems} problem(s): {run.detail}",
                    "error": f"did not finish ({run.detail})"}.get(run.result, run.result)
        verified = f"{run.finished_at.isoformat()}: {verified}"
    elif report.verify_every_hours <= 0:
        verified = "none kept (serve's integrity check is off: alerts.verify_every_hours = 0)"
    elif not report.ledger_key_pinned:
        verified = "none kept (serve's integrity check needs keys.ledger_key)"
    else:
        verified = f"none kept yet (serve runs it a minute after start, then every {report.verify_every_hours:g} h)"
    blobs = ("in the index (the embedded store)" if report.blobs == "index"
             else f"{report.blobs} (Object Lock, COMPLIANCE)")
    return [("daemon", running), ("spool", spool), ("ledger head", head), ("last verify", verified),
            ("sealed blobs", blobs)]


@cli.command()
@click.option("--to", "to", type=click.Path(path_type=Path, dir_okay=False), metavar="CONFIG",
              help="Move this (embedded) archive into the one CONFIG names: its data_dir, its S3 bucket "
                   "([store] blobs) and/or its PostgreSQL index ([store] index), then verify both. The source "
                   "is only read; serve must be stopped.")
@click.option("--batch", "batch", type=click.IntRange(min=1), default=None, metavar="N",
              help="With --to: captures whose rows are rewritten in one transaction (default 200).")
@json_option
@click.pass_context
def migrate(ctx: click.Context, to: Path | None, batch: int | None, as_json: bool) -> None:
    """Upgrade an archive written by an earlier twentyday (serve does the same at start).

    Rows of tables the ledger did not cover then are adopted into it, in the migration's
    transaction, signed with the daemon's key: verify holds them to the ledger from then on.

    With --to CONFIG: move the archive's sealed blobs into an S3 bucket with Object Lock and/or its
    index into PostgreSQL (a stopped run goes on where it stopped when run again), then verify both
    archives and compare them."""
    if to is not None:
        _migrate_to(ctx, to, batch, as_json)
        return
    if batch is not None:
        raise click.UsageError("--batch goes with --to")
    with open_archive(ctx) as archive:
        before, adoption, head = archive.opened_at_version, archive.adoption, archive.ledger_head()
    after = len(schema.MIGRATIONS)
    if as_json:
        click.echo(json.dumps({"from_schema": before, "schema": after, "head_seq": head.seq,
                               "adopted": adoption.as_json() if adoption is not None else None}, indent=2))
        return
    click.echo(f"schema {after}" + (f" (migrated from {before})" if before != after else ", nothing to migrate"))
    if adoption is not None:
        click.echo(f"adopted: {adoption.text()}; signed at ledger entry {head.seq}")


def _migrate_to(ctx: click.Context, to: Path, batch: int | None, as_json: bool) -> None:
    """``migrate --to CONFIG`` (store/migrate_blobs.py, store/migrate_index.py): serve kept off the source,
    then both verified."""
    import time

    from twentyday.spool import backlog
    from twentyday.status import daemon_state, hold_serve_lock
    from twentyday.store.migrate_blobs import BATCH_CAPTURES, COMPARED, MigrationReport, agreement, migrate_blobs
    from twentyday.store.migrate_index import migrate_to_postgresql

    forbid_core_dumps()  # the daemon's secrets pass through this process
    source = load_config(ctx)
    target = config_module.load(to)
    # The source's index is its data_dir/index.db; the target's too, or in PostgreSQL (store/migrate_index.py).
    if source.index is not None:
        raise ConfigError("this archive's index is in PostgreSQL; 'migrate --to' moves an archive whose index is "
                          "in SQLite", path=str(source.path), key="store.index")
    running = daemon_state(source.data_dir)
    if running.running:
        raise IntegrityError(f"{source.data_dir}: twentyday serve is running on this archive"
                             + (f" (pid {running.pid})" if running.pid else "")
                             + "; stop it before 'migrate --to' (what it stores meanwhile would not be moved)")
    waiting = backlog(source.data_dir / "spool").items
    if waiting:
        raise IntegrityError(f"{source.data_dir}: {waiting} item(s) wait in the spool; run serve until they are "
                             "stored, stop it, then migrate (else they would stay behind)")
    last_said = [time.monotonic()]

    def progress(report: MigrationReport) -> None:
        if not as_json and time.monotonic() - last_said[0] >= 10:
            last_said[0] = time.monotonic()
            click.echo(f"migrate: {report.captures} captures, {report.objects} objects, {report.sealed_bytes} "
                       "sealed bytes so far", err=True)

    def copy_progress(table: str, copied: int, rows: int) -> None:
        if not as_json and time.monotonic() - last_said[0] >= 10:
            last_said[0] = time.monotonic()
            click.echo(f"migrate: copying the index into PostgreSQL: {table}, {copied} of {rows} rows", err=True)

    index_moved: IndexMigrationReport | None = None
    moved: MigrationReport | None
    with hold_serve_lock(source.data_dir):  # no serve starts on the source while its blobs are moved
        if target.index is not None:
            index_moved = migrate_to_postgresql(source, target, batch_captures=batch or BATCH_CAPTURES,
                                                blob_progress=progress, copy_progress=copy_progress)
            moved = index_moved.blobs
        else:
            moved = migrate_blobs(source, target, batch_captures=batch or BATCH_CAPTURES, progress=progress)
        signers = keys.signers(tuple(keys.load_recipient(path) for path in source.recipients))
        found = agreement(source, target, signers)
    if as_json:
        click.echo(json.dumps({"moved": moved.as_json() if moved is not None else None,
                               "index": index_moved.as_json() if index_moved is not None else None,
                               "source": found.source.as_json(),
                               "target": found.target.as_json(), "compared": [*COMPARED, "blob_digests"],
                               "blob_digests": {"source": found.source_blob_digests,
                                                "target": found.target_blob_digests},
                               "differences": found.differences, "agree": found.ok}, indent=2))
    else:
        if moved is not None:
            click.echo(f"moved:    {moved.captures} captures, {moved.objects} objects, {moved.sealed_bytes} sealed "
                       f"bytes into {moved.bucket} ({moved.seconds:.1f} s)")
        if index_moved is not None:
            _say_index_moved(index_moved)
        if moved is not None and moved.resumed:
            click.echo(f"          going on from an earlier run, which had moved {moved.earlier_captures} "
                       f"captures ({moved.earlier_objects} objects found in the bucket, not written again)"
                       + ("; the source had changed since, so its index was copied again" if moved.recopied else ""))
        for side, report in (("source", found.source), ("target", found.target)):
            for note in report.notes:
                click.echo(f"note: {side}: {note}", err=True)
            for problem in report.problems:
                click.echo(f"{side}: {problem}")
            objects = f", {report.objects} objects" if report.objects is not None else ""
            click.echo(f"{side + ':':9} {'OK' if report.ok else 'FAILED'}: {report.ledger_entries} ledger entries, "
                       f"{report.captures} captures, {report.records} records, {report.blobs} blobs, "
                       f"{report.sealed_bytes} sealed bytes{objects}")
        for difference in found.differences:
            click.echo(f"differ:   {difference}")
        if found.ok:
            click.echo(f"agree:    the same ledger (head {found.target.head or '(none)'}), captures, records, blobs, "
                       f"sealed bytes and blob digests (sha256 of every blob's id and digest: "
                       f"{found.target_blob_digests})")
            click.echo(f"next:     run serve with {to}; the source archive is unchanged")
    if not found.ok:
        ctx.exit(IntegrityError.exit_code)


def _say_index_moved(report: IndexMigrationReport) -> None:
    if report.copy is not None:
        click.echo(f"copied:   the index, {report.copy.total_rows} rows of {len(report.copy.rows)} tables, into "
                   f"{report.database} ({report.copy.seconds:.1f} s)")
    else:
        click.echo(f"copied:   the index into {report.database} by an earlier run (going on from it)")
    if report.compared:
        click.echo("          compared row by row with the index it was copied from: alike")
    if report.intermediate_removed:
        click.echo("          the index of pointers in the new data_dir removed (the index is in PostgreSQL)")


@cli.command()
@click.argument("destination", type=click.Path(path_type=Path))
@click.pass_context
def backup(ctx: click.Context, destination: Path) -> None:
    """Copy the archive (one consistent snapshot of the index) and the daemon's secrets into DESTINATION.

    Safe while serve runs. Run it as the daemon's user; copy the config directory beside it.
    DESTINATION must not exist. Useless without an officer key: that is never in it."""
    from twentyday.backup import backup_archive

    forbid_core_dumps()  # the daemon's secrets pass through this process
    report = backup_archive(load_config(ctx), destination)
    click.echo(f"backup:    {report.destination}  ({report.index_bytes} bytes of index)")
    click.echo(f"head:      {report.head.text()}")
    click.echo("           also in HEAD; keep it off this host with the published heads")


@cli.group(invoke_without_command=True)
@click.option("--custodian", help="Only this custodian's alerts.")
@click.option("--as-of", "as_of", metavar="TIME",
              help="What was (or will be) open at TIME (ISO 8601 with offset): evaluated against the archive "
                   "as it stood then; nothing is written.")
@click.option("--all", "show_all", is_flag=True, help="Resolved and closed alerts too, with their facts.")
@json_option
@click.pass_context
def alerts(ctx: click.Context, custodian: str | None, as_of: str | None, show_all: bool, as_json: bool) -> None:
    """Open alerts: late captures, gaps, reminders, deletions, undated records, quarantined items.

    'alerts close ID --note TEXT' closes an event alert with a note; 'alerts deliveries' shows what
    was sent where; 'alerts deliver' sends what is due now."""
    if ctx.invoked_subcommand is not None:
        return
    at = parse_time(as_of, "--as-of")
    with open_archive(ctx) as archive:
        if at is not None:
            found = alerts_module.alerts_as_of(archive.conn, clock.findings(archive.conn, archive.config, at, as_of=at,
                                                                            custodian=custodian),
                                               at, Policy.from_config(archive.config), custodian)
        else:
            found = alerts_module.open_alerts(archive.conn, custodian, include_resolved=show_all)
        disabled = outbox.disabled_endpoints(archive.conn)
    for sink, endpoint, since in disabled:  # a fact, on stderr so that --json stays machine-readable
        click.echo(f"{sink} endpoint {endpoint} answered HTTP 410 at {since}: disabled, alerts not sent to it",
                   err=True)
    full = show_all or at is not None
    if as_json:
        click.echo(json.dumps([a.as_json(full) for a in found], indent=2, ensure_ascii=False))
        return
    def state(alert: alerts_module.Alert) -> str:
        if alert.resolved_at is not None:
            return f"{'closed' if alert.closed_by else 'resolved'} {alert.resolved_at}"
        return "escalated" if alert.escalated_at is not None else "open"

    what = "alert(s)" if show_all else "open alert(s)"
    echo_table(("ID", "SEVERITY", "KIND", "CUSTODIAN", "CONVERSATION", "OPENED", "STATE", "COUNT", "DETAIL"),
               [(a.id if a.id is not None else "-", a.severity, a.kind, a.custodian or "-", a.conversation or "-",
                 a.opened_at, state(a), a.count, a.detail) for a in found],
               f"{len(found)} {what}{f' as of {at.isoformat()}' if at is not None else ''}", right=frozenset({0, 7}))


def local_time(moment: datetime, zone: ZoneInfo) -> str:
    """A time as people read it: in the custodian's zone, to the minute, with the zone's abbreviation."""
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


@cli.command()
@click.option("--custodian", help="Only this custodian.")
@click.option("--since", help="Records created at or after (ISO 8601 with offset).")
@click.option("--until", help="Records created before (ISO 8601 with offset).")
@click.option("--as-of", "as_of", help="The archive as it stood then (ISO 8601 with offset; default now).")
@json_option
@click.pass_context
def compliance(ctx: click.Context, custodian: str | None, since: str | None, until: str | None, as_of: str | None,
               as_json: bool) -> None:
    """Per custodian: records by status and direction, days late, open alerts, conversations at risk
    with the date by which each must be exported. Metadata only; needs no key."""
    window = Window(parse_time(as_of, "--as-of") or now(), parse_time(since, "--since"),
                    parse_time(until, "--until"), custodian)
    with Archive(load_config(ctx), officer=True) as archive:
        if custodian is not None and archive.config.custodian(custodian) is None:
            raise NotFoundError(f"no custodian {custodian!r} in {archive.config.path}")
        summaries = compliance_summary(archive.conn, archive.config, window)
        rule = f"{archive.config.deadline_rule}/{archive.config.deadline_days}d"
    if as_json:
        click.echo(json.dumps({"as_of": window.as_of.isoformat(),
                               "since": window.since.isoformat() if window.since else None,
                               "until": window.until.isoformat() if window.until else None,
                               "deadline_rule": rule, "custodians": [s.as_json() for s in summaries]},
                              indent=2, ensure_ascii=False))
        return
    click.echo(f"As of {window.as_of.isoformat()}; deadline rule {rule}.")
    echo_table(("CUSTODIAN", "NAME", "RECORDS", "COPIED", "ON TIME", "LATE", "UNDATED", "SENT", "RECEIVED",
                "MAX LATE", "MEDIAN LATE", "OPEN ALERTS", "AT RISK"),
               [(s.custodian, s.name, s.records, *(s.by_status[k] for k in ("copied", "on_time", "late", "undated")),
                 s.by_direction["sent"], s.by_direction["received"],
                 "" if s.max_days_late is None else f"{s.max_days_late}d",
                 "" if s.median_days_late is None else f"{s.median_days_late:g}d", s.open_alerts, len(s.at_risk))
                for s in summaries], f"{len(summaries)} custodian(s)", right=frozenset(range(2, 13)))
    risks = [(s, risk) for s in summaries for risk in s.at_risk]
    if risks:
        click.echo("")
        echo_table(("CUSTODIAN", "CONVERSATION", "PLATFORM", "COVERED UNTIL", "EXPORT BY", "STATE"),
                   [(s.custodian, r.conversation, r.platform, local_time(r.covered_until, s.zone),
                     local_time(r.export_by, s.zone), "passed" if r.passed else "due")
                    for s, r in risks], f"{len(risks)} conversation(s) at risk")


@cli.command()
@click.option("--html", "html_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the report here: one self-contained HTML page (no script, no network).")
@click.option("--unauthorized-disposition", "disposition", is_flag=True,
              help="Instead: a DRAFT notice to NARA under 36 CFR 1230.14 (Markdown) of the deleted-message and "
                   "disappearing-messages findings, to standard output or --out.")
@click.option("--out", "out_path", type=click.Path(path_type=Path, dir_okay=False),
              help="With --unauthorized-disposition: write the Markdown here (0600) instead of standard output.")
@click.option("--as-of", "as_of", help="The archive as it stood then (ISO 8601 with offset; default now).")
@click.option("--custodian", help="Only this custodian.")
@click.option("--evidence", metavar="CUSTODIAN", help="Add the factual evidence pack of this custodian.")
@click.pass_context
def report(ctx: click.Context, html_path: Path | None, disposition: bool, out_path: Path | None, as_of: str | None,
           custodian: str | None, evidence: str | None) -> None:
    """A page a records officer hands to a supervisor: per custodian the counts and a timeline of each
    chat conversation's coverage (holes, late records and deletions marked). Metadata only; needs no key.

    With --unauthorized-disposition, a draft notice to NARA (36 CFR 1230.14) instead."""
    if disposition and evidence is not None:
        raise click.UsageError("--evidence goes with --html")
    if not disposition and out_path is not None:
        raise click.UsageError("--out goes with --unauthorized-disposition (--html names its own file)")
    moment = parse_time(as_of, "--as-of") or now()
    if disposition and html_path is None:
        from twentyday import report_disposition

        with Archive(load_config(ctx), officer=True) as archive:
            draft = report_disposition.render(report_disposition.gather(archive, as_of=moment, custodian=custodian))
        if out_path is None:
            click.echo(draft, nl=False)
            return
        write_private(out_path, draft)
        click.echo(f"report:    {out_path}")
    elif html_path is not None and not disposition:
        from twentyday.report import gather, render

        with Archive(load_config(ctx), officer=True) as archive:
            page = render(gather(archive, as_of=moment, custodian=custodian, evidence=evidence))
        write_private(html_path, page)
        click.echo(f"report:    {html_path}")
    else:
        raise click.UsageError("choose one of --html PATH and --unauthorized-disposition")


def write_private(path: Path, text: str) -> None:
    """Names and times of people: readable by its owner only, like the index it comes from."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.fchmod(descriptor, 0o600)  # a file that was there keeps its mode otherwise
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text)


@alerts.command(name="deliveries")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 1_000_000))
@json_option
@click.pass_context
def alerts_deliveries(ctx: click.Context, limit: int, as_json: bool) -> None:
    """The alert outbox, newest first: each delivery's sink, recipient, state, attempts and last error."""
    with open_archive(ctx) as archive:
        rows = outbox.deliveries(archive.conn, limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    echo_table(("ID", "ALERT", "EVENT", "SINK", "RECIPIENT", "STATE", "TRIES", "LAST ERROR", "CREATED", "SETTLED"),
               [(r["id"], r["alert_id"] or "-", r["event"], r["sink"], r["recipient"], r["state"], r["attempts"],
                 r["last_error"] or "-", r["created_at"][:19],
                 (r["settled_at"] or f"next {r['next_attempt_at'] or '-'}")[:24]) for r in rows],
               f"{len(rows)} deliveries", right=frozenset({0, 1, 6}))


@alerts.command(name="deliver")
@click.option("--as-of", "as_of", help="Deliver as if it were this time (ISO 8601 with offset): due retries, digests.")
@click.pass_context
def alerts_deliver(ctx: click.Context, as_of: str | None) -> None:
    """Send the alert deliveries due now, once (what 'serve' does every few seconds)."""
    from twentyday.notify.deliver import Deliverer

    moment = parse_time(as_of, "--as-of")
    with open_archive(ctx) as archive:
        done = Deliverer(archive, clock=(lambda: moment) if moment is not None else now).drain()
    click.echo(f"{done.fanned_out} alert event(s) fanned out, {done.digests} digest(s) queued; "
               f"{done.attempted} attempt(s): {done.delivered} delivered, {done.retried} to retry, "
               f"{done.failed} failed, {done.disabled} disabled")
    if done.failed:  # a retry to come is no failure; a delivery given up is
        ctx.exit(TwentydayError.exit_code)


@alerts.command("close")
@click.argument("alert_id", type=int)
@click.option("--note", required=True, help="Why it is closed, in your own words (kept with the alert, ledgered).")
@click.option("--actor", default=None, help="Who closes it, recorded beside the account that runs the command.")
@click.pass_context
def alerts_close(ctx: click.Context, alert_id: int, note: str, actor: str | None) -> None:
    """Close an event alert (a late capture, a deleted message, ...) with a note; ledgered with who closed it."""
    with open_archive(ctx) as archive:
        closed = archive.close_alert(alert_id, note, disclosing_actor(actor), now())
    click.echo(f"closed alert {closed.id} ({closed.kind}) by {closed.closed_by}")


@cli.group(name="hold")
def hold_group() -> None:
    """Legal holds: a matter's filter that freezes the disposition of every record it matches, now and later."""


@hold_group.command(name="add")
@click.option("--name", required=True, help="The matter (case, request) the hold is for.")
@click.option("--reason", required=True, help="Why the records must be kept (ledgered with the hold).")
@click.option("--custodian", help="Only this custodian's records.")
@click.option("--conversation", help="Only this conversation (exact).")
@click.option("--participant", help="Records this sender or recipient is in (address, number or name).")
@click.option("--since", help="Records created at or after (ISO 8601 with offset); undated records are held too.")
@click.option("--until", help="Records created before (ISO 8601 with offset); undated records are held too.")
@click.option("--text", help="Words that must all appear; kept only as blind-index tokens, never as words.")
@click.option("--expires", help="When the hold ends by itself (ISO 8601 with offset; default: until released).")
@click.option("--actor", default=None, help="Who places it, recorded beside the account that runs the command.")
@identity_options
@click.pass_context
def hold_add(ctx: click.Context, name: str, reason: str, custodian: str | None, conversation: str | None,
             participant: str | None, since: str | None, until: str | None, text: str | None, expires: str | None,
             actor: str | None, identity_path: Path, passphrase_file: Path | None) -> None:
    """Place a legal hold, signed with the officer's key. Nothing a custodian receives mentions it."""
    from twentyday.store import holds, object_holds

    moment = now()
    # --text needs the daemon's keyed hashes (the blind index); without it the officer's side suffices.
    with Archive(load_config(ctx), officer=text is None) as archive:
        identity = load_identity(identity_path, passphrase_file)
        search_module.require_configured_signer(archive, identity)
        scope = holds.HoldFilter(custodian, conversation, participant, parse_time(since, "--since"),
                                 parse_time(until, "--until"),
                                 tuple(archive.term_tokens(text)) if text is not None else None)
        row = holds.place_hold(archive.conn, name=name, reason=reason, scope=scope,
                               expires=parse_time(expires, "--expires"), placed_by=disclosing_actor(actor),
                               identity=identity, at=moment)
        count = holds.count_matching(archive.conn, row)
        click.echo(f"placed hold {row['id']} ({row['name']}): {count} record(s) held now, and every later one "
                   "it matches")
        if archive.objects is not None:  # committed: now the bucket's legal holds follow it
            _echo_hold_sync(object_holds.after_place(archive.conn, archive.objects, row, moment))


def _echo_hold_sync(done: HoldSync) -> None:
    click.echo(done.text())
    if done.failed:
        raise IntegrityError(done.failure())


@hold_group.command(name="list")
@json_option
@click.pass_context
def hold_list(ctx: click.Context, as_json: bool) -> None:
    """Every hold, active, expired or released, with the count of records each matches now."""
    from twentyday.store import holds

    moment = now()
    with Archive(load_config(ctx), officer=True) as archive:
        found = [holds.public(r, moment, holds.count_matching(archive.conn, r)) for r in holds.holds(archive.conn)]
    if as_json:
        click.echo(json.dumps(found, indent=2, ensure_ascii=False))
        return
    echo_table(("ID", "NAME", "STATE", "PLACED", "BY", "RECORDS", "EXPIRES"),
               [(h["id"], h["name"], h["state"], h["placed_at"], h["placed_by"], h["records"], h["expires_at"] or "-")
                for h in found], f"{len(found)} hold(s)", right=frozenset({5}))


@hold_group.command(name="show")
@click.argument("hold_id")
@json_option
@click.pass_context
def hold_show(ctx: click.Context, hold_id: str, as_json: bool) -> None:
    """One hold: who placed it and when, its scope, the records it matches now, expiry and release."""
    from twentyday.store import holds

    moment = now()
    with Archive(load_config(ctx), officer=True) as archive:
        row = holds.hold(archive.conn, hold_id)
        document = holds.public(row, moment, holds.count_matching(archive.conn, row))
    if as_json:
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    scope = document.pop("scope")
    for name, value in document.items():
        click.echo(f"{name + ':':<16}{'-' if value is None else value}")
    for name, value in scope.items():
        if value is not None:
            click.echo(f"{'scope.' + name + ':':<16}{value}")


@hold_group.command(name="release")
@click.argument("hold_id")
@click.option("--reason", required=True, help="Why the hold ends (ledgered with it).")
@click.option("--actor", default=None, help="Who releases it, recorded beside the account that runs the command.")
@identity_options
@click.pass_context
def hold_release(ctx: click.Context, hold_id: str, reason: str, actor: str | None, identity_path: Path,
                 passphrase_file: Path | None) -> None:
    """Release a hold, signed with the officer's key: its records follow their retention rules again."""
    from twentyday.store import holds, object_holds

    moment = now()
    with Archive(load_config(ctx), officer=True) as archive:
        identity = load_identity(identity_path, passphrase_file)
        search_module.require_configured_signer(archive, identity)
        row = holds.release_hold(archive.conn, hold_id, reason=reason, released_by=disclosing_actor(actor),
                                 identity=identity, at=moment)
        click.echo(f"released hold {row['id']} ({row['name']}) at {row['released_at']}")
        if archive.objects is not None:
            _echo_hold_sync(object_holds.after_release(archive.conn, archive.objects, row, moment))


@hold_group.command(name="sync")
@json_option
@click.pass_context
def hold_sync(ctx: click.Context, as_json: bool) -> None:
    """Set the bucket's legal holds as the active holds say, on every capture a hold may have held.

    Finishes what a failure after 'hold add' or 'hold release' left, and takes off what an expired
    hold held. Writes nothing in the index; idempotent."""
    from twentyday.store import object_holds

    with Archive(load_config(ctx), officer=True) as archive:
        if archive.objects is None:
            click.echo("the sealed blobs are in the index ([store] blobs names no bucket): nothing to set")
            return
        done = object_holds.sync(archive.conn, archive.objects, now())
    if as_json:
        click.echo(json.dumps(done.as_json(), indent=2, ensure_ascii=False))
        if done.failed:
            raise IntegrityError(done.failure())
        return
    _echo_hold_sync(done)


@cli.group(name="retention")
def retention_group() -> None:
    """Disposition: plan what each record's own retention rule lets go, approve it, destroy it."""


def _echo_plan(row: dict[str, Any], as_json: bool) -> None:
    body = json.loads(row["body"])
    if as_json:
        click.echo(json.dumps({k: v for k, v in row.items() if k != "body"} | body, indent=2, ensure_ascii=False))
        return
    click.echo(f"plan {row['id']} ({row['state']}) as of {row['as_of']}, by {row['author']}"
               + (f", approved by {row['approver']} at {row['approved_at']}" if row["approver"] else ""))
    echo_table(("RECORD", "CUSTODIAN", "SCHEDULE", "AUTHORITY", "ELIGIBLE SINCE", "CAPTURES"),
               [(r["id"], r["custodian"], r["schedule"], r["authority"], r["eligible_since"], ", ".join(r["captures"]))
                for r in body["records"]], f"{len(body['records'])} record(s) eligible, in "
               f"{len(body['captures'])} capture(s)")
    for label, items in (("deferred", body["deferred"]), ("refused", body["refused"])):
        for item in items:
            click.echo(f"{label}: {item['id']}: {item['reason']}")
    for item in body["held"]:
        click.echo(f"held: {item['id']}: by {', '.join(item['holds'])}")
    counts = body["counts"]
    click.echo(f"{counts['considered']} record(s) considered: {counts['permanent']} permanent, {counts['not_yet']} "
               f"not yet eligible, {counts['rule_not_read']} with a rule not read (kept as permanent)")


@retention_group.command(name="plan")
@click.option("--as-of", "as_of", help="Eligible at this time (ISO 8601 with offset; default now).")
@click.option("--actor", default=None, help="Who plans, recorded beside the account that runs the command.")
@identity_options
@json_option
@click.pass_context
def retention_plan(ctx: click.Context, as_of: str | None, actor: str | None, identity_path: Path,
                   passphrase_file: Path | None, as_json: bool) -> None:
    """Store and print a disposition plan: the records eligible under their own rules, never permanent or held."""
    from twentyday.store import disposition

    moment = now()
    with Archive(load_config(ctx), officer=True) as archive:
        identity = load_identity(identity_path, passphrase_file)
        search_module.require_configured_signer(archive, identity)
        row = disposition.make_plan(archive.conn, archive.config, as_of=parse_time(as_of, "--as-of") or moment,
                                    identity=identity, author=disclosing_actor(actor), at=moment)
    _echo_plan(row, as_json)


@retention_group.command(name="show")
@click.argument("plan_id")
@json_option
@click.pass_context
def retention_show(ctx: click.Context, plan_id: str, as_json: bool) -> None:
    """A stored disposition plan, its state and approval."""
    from twentyday.store import disposition

    with Archive(load_config(ctx), officer=True) as archive:
        row = disposition.plan(archive.conn, plan_id)
    _echo_plan(row, as_json)


@retention_group.command(name="approve")
@click.argument("plan_id")
@click.option("--actor", default=None, help="Who approves, recorded beside the account that runs the command.")
@identity_options
@click.pass_context
def retention_approve(ctx: click.Context, plan_id: str, actor: str | None, identity_path: Path,
                      passphrase_file: Path | None) -> None:
    """Approve a plan as the second officer (another signing key than the plan's author)."""
    from twentyday.store import disposition

    with Archive(load_config(ctx), officer=True) as archive:
        identity = load_identity(identity_path, passphrase_file)
        search_module.require_configured_signer(archive, identity)
        row = disposition.approve(archive.conn, plan_id, identity=identity, approver=disclosing_actor(actor),
                                  at=now())
    click.echo(f"approved plan {row['id']} by {row['approver']} at {row['approved_at']}")


@retention_group.command(name="dispose")
@click.option("--plan", "plan_id", required=True, help="The plan to carry out (only what it listed is destroyed).")
@click.option("--actor", default=None, help="Who disposes, recorded beside the account that runs the command.")
@identity_options
@json_option
@click.pass_context
def retention_dispose(ctx: click.Context, plan_id: str, actor: str | None, identity_path: Path,
                      passphrase_file: Path | None, as_json: bool) -> None:
    """Destroy what an (approved) plan listed: data keys and sealed bytes; write the certificate of destruction."""
    from twentyday.store import disposition

    with Archive(load_config(ctx), officer=True) as archive:
        identity = load_identity(identity_path, passphrase_file)
        search_module.require_configured_signer(archive, identity)
        done = disposition.dispose(archive.conn, archive.config, plan_id, identity=identity,
                                   disposed_by=disclosing_actor(actor), at=now(), objects=archive.objects)
    certificate = done.certificate
    if done.finishing:
        _echo_disposal_finished(done, as_json)
        return
    if archive.config.index is not None:  # facts, on stderr so that --json stays machine-readable
        click.echo("note: the index is in PostgreSQL: the destroyed rows were deleted and their space vacuumed, "
                   "but copies of their pages (the keyslots included) stay in the server's write-ahead log, its "
                   "replicas and its backups until the agency's PostgreSQL retention recycles them", err=True)
    elif done.checkpoint[0]:
        click.echo("note: another process was reading the index, so the checkpoint did not finish: the pages that "
                   "held what was destroyed stay in index.db (and index.db-wal) until a checkpoint completes",
                   err=True)
    if as_json:
        refused = {"objects_not_deleted": done.objects_refused} if done.objects_refused else {}
        click.echo(json.dumps(certificate | refused, indent=2, ensure_ascii=False))
        _raise_objects_refused(done.objects_refused)
        return
    for item in certificate["skipped"]:
        click.echo(f"skipped: {item['id']}: {item['reason']}")
    click.echo(f"certificate {certificate['id']}: {certificate['record_count']} record(s) destroyed in "
               f"{len(certificate['captures'])} capture(s) under plan {certificate['plan']}, "
               f"{len(certificate['skipped'])} skipped")
    deleted = sum(len(c.get("objects", [])) for c in certificate["captures"]) - len(done.objects_refused)
    if any("objects" in c for c in certificate["captures"]):
        click.echo(f"{deleted} object version(s) deleted from the bucket")
    _raise_objects_refused(done.objects_refused)


def _raise_objects_refused(refused: list[dict[str, Any]]) -> None:
    """Each version the bucket kept, on its own line, then the error (the certificate is committed)."""
    for item in refused:
        click.echo(f"not deleted: {item['key']} version {item['version_id']} ({item['capture']}): {item['error']}",
                   err=True)
    if refused:
        raise IntegrityError(f"the bucket kept {len(refused)} object version(s) the certificate destroyed: "
                             "'twentyday verify' names them; 'twentyday retention dispose' run again for the plan "
                             "deletes them")


def _echo_disposal_finished(done: Disposal, as_json: bool) -> None:
    certificate = done.certificate
    if as_json:
        click.echo(json.dumps({"certificate": certificate["id"], "plan": certificate["plan"],
                               "objects_deleted": done.objects_finished,
                               "objects_not_deleted": done.objects_refused}, indent=2, ensure_ascii=False))
    else:
        click.echo(f"plan {certificate['plan']} was disposed of under certificate {certificate['id']}: "
                   f"{done.objects_finished} object version(s) it destroyed that the bucket still held deleted now")
    _raise_objects_refused(done.objects_refused)


def main() -> None:
    try:
        cli(prog_name="twentyday")
    except ConfigError as error:  # raised before a command's context exists
        click.echo(f"twentyday: {error}", err=True)
        raise SystemExit(error.exit_code) from None
