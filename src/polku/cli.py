"""The `polku` command: serve, worker, migrate, replay, keys, users, demo, import."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

import click

from polku import __version__
from polku.errors import PolkuError
from polku.ops.logs import configure_logging
from polku.settings import SETTINGS, Secret, Settings, SettingsError, load
from polku.signals.cli import signals

__all__ = ["main"]


def _settings(ctx: click.Context, /, **overrides: Any) -> Settings:
    try:
        return load(**overrides)
    except SettingsError as exc:
        raise click.UsageError(str(exc), ctx) from exc


_ENV_HELP = "\n".join(f"  {s.env}: {s.help}" for s in SETTINGS)


@click.group(
    help="Polku: omnichannel customer-journey platform.\n\n"
    "Every option can also be set with POLKU_* environment variables; "
    "see `polku settings`.",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="polku")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def main(verbose: bool) -> None:
    # Settings are loaded again by each command (with its options); here only the log
    # format is needed. A bad value of another variable is the command's to report.
    try:
        log_format = load().log_format
    except SettingsError:
        log_format = "text"
    configure_logging(log_format, verbose)


def database_option(func: Any) -> Any:
    func = click.option(
        "--data-dir",
        type=click.Path(file_okay=False),
        default=None,
        help="Folder of the embedded SQLite database (POLKU_DATA_DIR, default ./polku-data).",
    )(func)
    func = click.option(
        "--log",
        "log_url",
        default=None,
        help="Event log URL: nats://host:4222 for the production mode's JetStream log "
        "(POLKU_LOG_URL). Default: a table in the database (embedded mode).",
    )(func)
    return click.option(
        "--database",
        "database_url",
        default=None,
        help="Database URL, e.g. postgresql://localhost/polku (POLKU_DATABASE_URL). "
        "Default: the embedded SQLite file.",
    )(func)


def _failed(exc: PolkuError) -> click.ClickException:
    """A Polku error as the command's error message: what happened and what to do."""
    return click.ClickException(f"{exc.message} {exc.hint or ''}".strip())


@main.command()
@database_option
@click.option("--host", default=None, help="Address to listen on (POLKU_HOST, default 127.0.0.1).")
@click.option(
    "--port", type=int, default=None, help="Port to listen on (POLKU_PORT, default 8080)."
)
@click.pass_context
def serve(ctx: click.Context, /, **options: Any) -> None:
    """Run the HTTP API and the pipeline (migrates the database first).

    The pipeline consumers run in a child process by default (POLKU_PIPELINE=process);
    on a fresh database the default workspace, a write key and an admin token are created
    and printed once.
    """
    import uvicorn

    from polku.app import create_app
    from polku.gctune import tune_for_throughput
    from polku.runtime import Runtime

    settings = _settings(ctx, **options)
    try:
        runtime = Runtime.open(settings)
        created = runtime.bootstrap()
    except PolkuError as exc:
        raise _failed(exc) from exc
    url = f"http://{settings.host}:{settings.port}"
    click.echo(f"Polku {__version__} on {url}  (database: {_where(settings)})")
    if settings.uses_nats:
        click.echo(f"  log:         {settings.log_url} (run `polku worker` to project it)")
    if created is not None:
        key, token = created
        click.echo("Created the default workspace on this fresh database:")
        click.echo(f"  write key:   {key}    (send events: HTTP Basic username)")
        click.echo(
            f"  admin token: {token.token}    (read APIs: Authorization: Bearer ...;"
            " shown only now)"
        )
    click.echo(f"  API docs:    {url}/docs")
    app = create_app(settings, runtime)
    tune_for_throughput()
    try:
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            access_log=False,
            log_config=None,  # uvicorn's records go through Polku's handler (text or JSON)
        )
    finally:
        runtime.close()


def _where(settings: Settings) -> str:
    if settings.is_sqlite:
        return str((settings.data_dir / "polku.db").resolve())
    return settings.sqlalchemy_url.split("@")[-1]


@main.command()
@database_option
@click.pass_context
def migrate(ctx: click.Context, /, **options: Any) -> None:
    """Create or upgrade the database schema to the newest version.

    In the production mode (--log nats://...) it also creates or updates the JetStream
    stream (retention, replicas, max age: see `polku settings`) and the partitions.
    """
    from polku.runtime import migrate as run_migrations

    settings = _settings(ctx, **options)
    try:
        run_migrations(settings)
    except PolkuError as exc:
        raise _failed(exc) from exc
    click.echo(f"Database is up to date: {_where(settings)}")
    if settings.uses_nats:
        click.echo(
            f"Stream {settings.nats_stream} is up to date on {settings.log_url} "
            f"({settings.partitions} partitions, {settings.nats_replicas} replica(s), "
            f"max age {settings.nats_max_age_days:g} days)"
        )


@main.command()
@database_option
@click.pass_context
def replay(ctx: click.Context, /, **options: Any) -> None:
    """Rebuild every projection (identity graph, profiles) from the log.

    Stop `polku serve` first: replay deletes the projections and reads the whole log again.
    """
    from polku.runtime import Runtime, replay_partitions

    settings = _settings(ctx, **options)
    if settings.uses_nats:
        try:
            seen = replay_partitions(settings, echo=click.echo)
        except PolkuError as exc:
            raise _failed(exc) from exc
        click.echo(f"Done: {seen} events processed.")
        return
    runtime = Runtime.open(settings)
    pipeline = runtime.pipeline
    assert pipeline is not None
    try:
        head = runtime.log.head()
        click.echo(f"Replaying {head} events…")
        seen = pipeline.replay()
        click.echo(f"Done: {seen} events processed by {len(pipeline.consumers)} consumers.")
    finally:
        runtime.close()


@main.command()
@database_option
@click.option(
    "--id",
    "worker_id",
    default=None,
    help="Name of this worker in the partition leases (default: host name and process id).",
)
@click.option(
    "--metrics-port",
    type=int,
    default=None,
    help="Serve Prometheus metrics on this port (default: none).",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    help="Address the metrics endpoint listens on.",
)
@click.pass_context
def worker(
    ctx: click.Context,
    /,
    worker_id: str | None,
    metrics_port: int | None,
    metrics_host: str,
    **options: Any,
) -> None:
    """Project the production mode's NATS log into PostgreSQL (the pipeline's consumers).

    Run as many as you like, on as many machines: they share the log's partitions among
    them and take over the partitions of one that stops. Stops cleanly on SIGTERM.
    """
    import os
    import socket

    from polku.runtime import run_worker

    settings = _settings(ctx, **options)
    name = worker_id or f"{socket.gethostname()}-{os.getpid()}"

    def ready(running: Any) -> None:
        if metrics_port is not None:
            from polku.ops.metrics import serve_metrics

            serve_metrics(metrics_host, metrics_port)
        click.echo(f"Polku worker {name} ready (log: {settings.log_url})")

    try:
        run_worker(settings, name, ready=ready)
    except PolkuError as exc:
        raise _failed(exc) from exc


@main.group()
def keys() -> None:
    """Create and list write keys (send events) and admin tokens (read and manage)."""


@keys.command("create")
@database_option
@click.option("--workspace", default="default", show_default=True, help="Workspace id.")
@click.option(
    "--source",
    "source_name",
    default="web",
    show_default=True,
    help="Source name: web, app, pos, ...",
)
@click.pass_context
def keys_create(ctx: click.Context, /, workspace: str, source_name: str, **options: Any) -> None:
    """Create a write key for a source; SDKs send it as the HTTP Basic username."""
    from polku.access.actions import create_write_key
    from polku.storage.engine import make_engine, writing
    from polku.storage.migrate import upgrade

    engine = make_engine(_settings(ctx, **options))
    upgrade(engine)
    with writing(engine) as conn:
        key = create_write_key(conn, workspace, source_name)
    click.echo(key)


@keys.command("create-admin")
@database_option
@click.option("--workspace", default="default", show_default=True, help="Workspace id.")
@click.option("--name", default="admin", show_default=True, help="Who or what uses the token.")
@click.pass_context
def keys_create_admin(ctx: click.Context, /, workspace: str, name: str, **options: Any) -> None:
    """Create an admin token (shown once; only its hash is stored)."""
    from polku.access.actions import create_admin_token
    from polku.storage.engine import make_engine, writing
    from polku.storage.migrate import upgrade

    engine = make_engine(_settings(ctx, **options))
    upgrade(engine)
    with writing(engine) as conn:
        token = create_admin_token(conn, workspace, name)
    click.echo(token.token)


@keys.command("list")
@database_option
@click.pass_context
def keys_list(ctx: click.Context, /, **options: Any) -> None:
    """List write keys and admin tokens (tokens by prefix only)."""
    from polku.access.queries import list_admin_tokens, list_write_keys
    from polku.storage.engine import make_engine
    from polku.storage.migrate import upgrade

    engine = make_engine(_settings(ctx, **options))
    upgrade(engine)
    with engine.connect() as conn:
        click.echo("Write keys:")
        for row in list_write_keys(conn):
            state = "revoked" if row["revoked"] else "active"
            click.echo(f"  {row['write_key']}  {row['workspace_id']}/{row['source_name']}  {state}")
        click.echo("Admin tokens:")
        for row in list_admin_tokens(conn):
            state = "revoked" if row["revoked"] else "active"
            click.echo(f"  {row['token_prefix']}…  {row['workspace_id']}  {row['name']}  {state}")


@main.command()
@database_option
@click.option("--host", default=None, help="Address to listen on (POLKU_HOST, default 127.0.0.1).")
@click.option(
    "--port", type=int, default=None, help="Port to listen on (POLKU_PORT, default 8080)."
)
@click.option(
    "--rate", type=float, default=20.0, show_default=True, help="Simulated events per second."
)
@click.option(
    "--shoppers",
    type=int,
    default=None,
    help="Stop after this many simulated shoppers (default: run until Ctrl-C).",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Random seed of the shoppers.")
@click.pass_context
def demo(
    ctx: click.Context, /, rate: float, shoppers: int | None, seed: int, **options: Any
) -> None:
    """Serve Polku with a demo store and stream simulated shoppers into it.

    The demo workspace gets a Finnish outdoor retailer first (stores in six cities with
    their hours and holidays, a catalogue, stock, customers with orders, a return and a
    click and collect order; running it again adds nothing). Then shoppers browse the web
    shop anonymously, log in on the app, and buy at store tills with their loyalty card;
    watch their profiles form and try the commerce APIs with the printed commands.
    """
    import threading

    import uvicorn

    from polku.access.actions import create_admin_token
    from polku.app import create_app
    from polku.demo.feed import feed_shoppers
    from polku.demo.journeys import enable_journeys
    from polku.demo.mailbox import DemoMailbox
    from polku.demo.store import curl_examples, ensure_write_key, seed_demo_store
    from polku.demo.users import DEMO_PASSWORD, ensure_demo_users
    from polku.runtime import Runtime
    from polku.storage.engine import writing

    settings = _settings(ctx, **options)
    mailbox: DemoMailbox | None = None
    if not settings.smtp_url.reveal():  # journeys' email goes to a mailbox on this machine
        mailbox = DemoMailbox(settings.data_dir.resolve() / "demo-mail")
        mailbox.start()
        settings = settings.replace(smtp_url=Secret(mailbox.url))
    # The simulated shoppers live faster than real time: journeys follow their clock.
    settings = settings.replace(journeys_clock="events")
    runtime = Runtime.open(settings)
    with writing(runtime.engine) as conn:
        key = ensure_write_key(conn, "demo", "demo-simulator")
        token = create_admin_token(conn, "demo", "demo")
    click.echo("Seeding the demo store (Pohjoisretki: stores, catalogue, stock, customers)…")
    try:
        if settings.uses_nats:
            runtime.log.start()
        report = seed_demo_store(runtime, "demo")
    except PolkuError as exc:
        runtime.close()
        raise _failed(exc) from exc
    journeys = enable_journeys(runtime.engine, "demo")
    users = ensure_demo_users(runtime.engine, "demo")
    url = f"http://{settings.host}:{settings.port}"
    click.echo(f"Polku demo on {url}  (database: {_where(settings)})")
    click.echo(f"  write key:    {key}")
    click.echo(f"  admin token:  {token.token}")
    click.echo(f"  API docs:     {url}/docs")
    click.echo(
        f"  demo store:   {len(report.profiles)} customers with history, "
        f"{report.products} products; added now: {report.locations_created} locations, "
        f"{report.stock_counts} stock counts, {report.events_appended} history events"
    )
    for what, command in curl_examples(report, url, token.token):
        click.echo(f"  {what}:\n    {command}")
    click.echo(
        f"  newest events: curl -H 'Authorization: Bearer {token.token}' "
        f"{url}/v1/debugger/events?limit=5"
    )
    click.echo(
        f"  profiles:      curl -H 'Authorization: Bearer {token.token}' '{url}/v1/profiles?q=a'"
    )
    click.echo(
        f"  rejected:      curl -H 'Authorization: Bearer {token.token}' "
        f"{url}/v1/debugger/rejections"
    )
    click.echo(
        f"  buying signals: curl -H 'Authorization: Bearer {token.token}' "
        f"'{url}/v1/signals?limit=5'"
    )
    click.echo(
        f"  Kamppi's store queue, live: curl -N -H 'Authorization: Bearer {token.token}' "
        f"'{url}/v1/signals/live?queue=store:store-hki-kamppi'"
    )
    click.echo(
        f"  journeys:      {len(journeys)} ready-made journeys enabled, on the shoppers' "
        f"clock: curl -H 'Authorization: Bearer {token.token}' {url}/v1/journeys"
    )
    click.echo(
        f"  why (not) sent: curl -H 'Authorization: Bearer {token.token}' "
        f"'{url}/v1/journeys/abandoned-cart/trace?profile=<profile_id>'"
    )
    if mailbox is not None:
        click.echo(
            f"  email sent:    {mailbox.folder}/index.txt lists every message; "
            "each is an .eml file beside it"
        )
    click.echo(f"  console:       {url}/console/  (password for every demo user: {DEMO_PASSWORD})")
    for role, email, stores in users:
        where = f" ({', '.join(stores)})" if stores else ""
        click.echo(f"    {role + ':':13} {email}{where}")
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, runtime),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            access_log=False,
            log_config=None,
        )
    )
    stop = threading.Event()
    feeder = threading.Thread(
        target=feed_shoppers,
        kwargs={
            "url": url,
            "write_key": key,
            "rate": rate,
            "shoppers": shoppers,
            "seed": seed,
            "stop": stop,
            "echo": click.echo,
            "ready": lambda: server.started,
        },
        name="polku-demo-feed",
        daemon=True,
    )
    feeder.start()
    try:
        server.run()
    finally:
        stop.set()
        runtime.close()
        if mailbox is not None:
            mailbox.stop()


@main.group()
def users() -> None:
    """Console users: create the first admin, list users, set a password (docs/console.md)."""


def _password(from_stdin: bool) -> str:
    """The new password: one line of standard input, or asked twice without echo."""
    if from_stdin:
        line = sys.stdin.readline()
        if not line.strip():
            raise click.UsageError("--password-stdin: standard input held no password.")
        return line.rstrip("\r\n")
    password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@users.command("create")
@database_option
@click.argument("email")
@click.option(
    "--role",
    type=click.Choice(["admin", "marketer", "agent", "store_staff"]),
    required=True,
    help="What the user may do: admin, marketer, agent or store_staff.",
)
@click.option(
    "--store",
    "stores",
    multiple=True,
    help="A store (location id) a store_staff user works for; repeat for several.",
)
@click.option("--workspace", default="default", show_default=True, help="Workspace id.")
@click.option(
    "--locale",
    type=click.Choice(["fi", "en"]),
    default=None,
    help="The console's language for the user (default: the browser's).",
)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.pass_context
def users_create(
    ctx: click.Context,
    /,
    email: str,
    role: str,
    stores: tuple[str, ...],
    workspace: str,
    locale: str | None,
    password_stdin: bool,
    **options: Any,
) -> None:
    """Create a console user (the first admin: `polku users create EMAIL --role admin`)."""
    from polku.access.actions import DEFAULT_WORKSPACE, ensure_default_workspace
    from polku.console.actions import create_user
    from polku.storage.engine import make_engine, writing
    from polku.storage.migrate import upgrade

    engine = make_engine(_settings(ctx, **options))
    try:
        upgrade(engine)
        if workspace == DEFAULT_WORKSPACE:
            with writing(engine) as conn:
                created = ensure_default_workspace(conn)
            if created is not None:  # shown once, as `polku serve` would have
                key, token = created
                click.echo("Created the default workspace on this fresh database:")
                click.echo(f"  write key:   {key}")
                click.echo(f"  admin token: {token.token}    (shown only now)")
        user = create_user(
            engine, workspace, email, role, _password(password_stdin), stores, locale
        )
    except PolkuError as exc:
        raise _failed(exc) from exc
    finally:
        engine.dispose()
    where = f" for {', '.join(user.stores)}" if user.stores else ""
    click.echo(f"Created {user.role} {user.email}{where} in workspace {user.workspace_id}.")


@users.command("list")
@database_option
@click.pass_context
def users_list(ctx: click.Context, /, **options: Any) -> None:
    """List console users: email, role, stores, workspace."""
    from polku.console.queries import list_users
    from polku.storage.engine import make_engine
    from polku.storage.migrate import upgrade

    engine = make_engine(_settings(ctx, **options))
    try:
        upgrade(engine)
        with engine.connect() as conn:
            found = list_users(conn)
    except PolkuError as exc:
        raise _failed(exc) from exc
    finally:
        engine.dispose()
    if not found:
        click.echo("No console users yet: create one with `polku users create EMAIL --role admin`.")
    for user in found:
        stores = ",".join(user.stores) or "-"
        state = "active" if user.active else "inactive"
        click.echo(f"  {user.email}  {user.role}  stores={stores}  {user.workspace_id}  {state}")


@users.command("set-password")
@database_option
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.pass_context
def users_set_password(
    ctx: click.Context, /, email: str, password_stdin: bool, **options: Any
) -> None:
    """Set a user's password; their sessions end and a sign-in pause is lifted."""
    from polku.console.actions import set_password
    from polku.storage.engine import make_engine
    from polku.storage.migrate import upgrade

    engine = make_engine(_settings(ctx, **options))
    try:
        upgrade(engine)
        user = set_password(engine, email, _password(password_stdin))
    except PolkuError as exc:
        raise _failed(exc) from exc
    finally:
        engine.dispose()
    click.echo(f"Password set for {user.email}; their sessions have ended.")


@main.command("settings")
def show_settings() -> None:
    """List every POLKU_* environment variable with its default and meaning."""
    for s in SETTINGS:
        default = "(empty)" if s.default in ("", frozenset()) else s.default
        if isinstance(default, frozenset):
            default = ",".join(sorted(default))
        click.echo(f"{s.env}  [default: {default}]\n    {s.help}")


@main.group("import")
def import_group() -> None:
    """Load reference data from a file (the catalogue)."""


@import_group.command("catalog")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@database_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json", "jsonl"]),
    default=None,
    help="The file's format (default: from its name: .csv, .json, .jsonl or .ndjson).",
)
@click.option("--workspace", default="default", show_default=True, help="Workspace to import into.")
@click.option(
    "--errors",
    "errors_file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Also write the problems found to this CSV file (row, field, code, message).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 5000),
    default=200,
    show_default=True,
    help="Products per transaction.",
)
@click.pass_context
def import_catalog(
    ctx: click.Context,
    /,
    file: Path,
    fmt: str | None,
    workspace: str,
    errors_file: Path | None,
    batch_size: int,
    **options: Any,
) -> None:
    """Create or update products and variants from FILE: CSV (one row per variant, with
    its product's columns), a JSON array of products, or JSON Lines. See docs/commerce.md.

    Good rows are imported even when others fail; every problem is listed at the end (row,
    field, what to do), and the exit code is 1 when there was any."""
    from polku.commerce.catalog.importer import import_catalog as run_import
    from polku.commerce.catalog.importer import read_catalog
    from polku.runtime import Runtime

    settings = _settings(ctx, **options)
    try:
        source = read_catalog(file, fmt)
        runtime = Runtime.open(settings)
    except PolkuError as exc:
        raise _failed(exc) from exc
    try:
        if settings.uses_nats:
            runtime.log.start()
        total = len(source.candidates)
        with click.progressbar(length=total, label=f"Importing {total} products") as bar:
            report = run_import(runtime, workspace, source, batch=batch_size, progress=bar.update)
    except PolkuError as exc:
        raise _failed(exc) from exc
    finally:
        runtime.close()
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"Imported {report.products} products with {report.variants} variants.")
    if report.problems:
        unit = report.unit
        click.echo(f"{len(report.problems)} problem(s); those {unit}s were not imported:")
        for p in report.problems:
            click.echo(f"  {unit} {p.at}: {p.field or '-'}: {p.message} [{p.code}]")
    if errors_file is not None:
        with errors_file.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow([report.unit, "product_id", "sku", "field", "code", "message"])
            for p in report.problems:
                writer.writerow(
                    [p.at, p.product_id or "", p.sku or "", p.field or "", p.code, p.message]
                )
        click.echo(f"Problems written to {errors_file}.")
    if report.problems:
        ctx.exit(1)


main.add_command(signals)


@main.group()
def recommend() -> None:
    """Recommendation models: train them, evaluate them offline."""


@recommend.command("train")
@database_option
@click.option("--workspace", default="default", show_default=True, help="Workspace id.")
@click.option(
    "--every",
    type=click.FloatRange(min=60),
    default=None,
    help="Keep running and retrain every this many seconds (a schedule beside `polku serve`).",
)
@click.pass_context
def recommend_train(
    ctx: click.Context, /, workspace: str, every: float | None, **options: Any
) -> None:
    """Train every recommendation model on the workspace's interactions and store them.
    Serving keeps answering from the previous models and switches within seconds."""
    import time

    from polku.recommend.training import STEPS, train
    from polku.runtime import Runtime

    settings = _settings(ctx, **options)
    try:
        runtime = Runtime.open(settings)
    except PolkuError as exc:
        raise _failed(exc) from exc
    try:
        while True:
            with click.progressbar(
                length=len(STEPS), label="Training", item_show_func=lambda s: s
            ) as bar:
                done: list[str] = []

                def step(name: str, done: list[str] = done) -> None:
                    if done:
                        bar.update(1, name)
                    done.append(name)

                report = train(runtime.engine, workspace, progress=step)
                bar.update(1, "done")
            if report.version == 0:
                click.echo("No interactions yet: nothing to train on (send events first).")
            else:
                took = sum(report.seconds.values())
                click.echo(
                    f"Trained version {report.version} on {report.interactions} interactions "
                    f"of {report.people} people and {report.items} items in {took:.1f} s."
                )
            if every is None:
                break
            time.sleep(every)
    except PolkuError as exc:
        raise _failed(exc) from exc
    finally:
        runtime.close()


@recommend.command("evaluate")
@click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("../shared/data/uci_online_retail"),
    show_default=True,
    help="Folder with online_retail.csv.gz (UCI Online Retail).",
)
@click.option("--cut", default="2011-09-01", show_default=True, help="Train before, test after.")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write a PNG bar chart here (needs matplotlib: pip install 'polku[evaluate]').",
)
@click.option(
    "--new-only",
    is_flag=True,
    help="Leave out what each customer bought before the cut, from the answers and the test.",
)
def recommend_evaluate(data: Path, cut: str, plot: Path | None, new_only: bool) -> None:
    """Every model and the popularity baseline on a temporal split, in one table:
    recall@10, recall@20, NDCG@20, MAP@12, catalogue coverage and training time."""
    from polku.recommend import evaluate as ev

    try:
        split = ev.load_split(data, cut)
        click.echo(
            f"Trained on {len(split.train)} lines before {cut} ({len(split.train.user_ids)} "
            f"customers, {len(split.train.item_ids)} products); tested on {len(split.test)} "
            "customers who bought before and after it.",
            err=True,
        )
        with click.progressbar(length=ev.MODELS, label="Evaluating") as bar:
            results = ev.evaluate(split, progress=lambda _name: bar.update(1), new_only=new_only)
        click.echo(ev.table(results))
        if plot is not None:
            ev.plot(results, plot)
            click.echo(f"Plot written to {plot}.", err=True)
    except PolkuError as exc:
        raise _failed(exc) from exc


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
