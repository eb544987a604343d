"""The `polku` command: help everywhere, keys, migrate, settings, and replay through the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from polku.cli import main
from polku.collect.validate import prepare
from polku.profiles.tables import profiles
from polku.runtime import Runtime
from polku.settings import SETTINGS, Settings


def _commands(group: click.Group, prefix: str = "polku") -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = [(prefix, group)]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.extend(_commands(command, f"{prefix} {name}"))
        else:
            found.append((f"{prefix} {name}", command))
    return found


@pytest.mark.parametrize(("path", "command"), _commands(main), ids=lambda v: str(v))
def test_every_command_and_option_has_help(path: str, command: click.Command) -> None:
    assert command.help, f"`{path}` has no help text"
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"`{path}` option {param.opts} has no help text"


def test_help_runs_for_every_command() -> None:
    runner = CliRunner()
    for path, _ in _commands(main):
        args = [*path.split()[1:], "--help"]
        result = runner.invoke(main, args)
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output


def test_keys_create_list_and_migrate(tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path)]
    migrated = runner.invoke(main, ["migrate", *data])
    assert migrated.exit_code == 0 and "up to date" in migrated.output
    key = runner.invoke(main, ["keys", "create", "--source", "pos", *data]).output.strip()
    token = runner.invoke(main, ["keys", "create-admin", "--name", "ci", *data]).output.strip()
    assert key.startswith("wk_") and token.startswith("pk_")
    listing = runner.invoke(main, ["keys", "list", *data]).output
    assert key in listing and "default/pos" in listing
    assert token[:10] in listing and token not in listing  # only the prefix is ever shown


def test_settings_lists_every_variable() -> None:
    output = CliRunner().invoke(main, ["settings"]).output
    for setting in SETTINGS:
        assert setting.env in output


def test_bad_setting_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["migrate"], env={"POLKU_SQLITE_SYNCHRONOUS": "sometimes"})
    assert result.exit_code == 2
    assert "POLKU_SQLITE_SYNCHRONOUS" in result.output


def test_replay_command_rebuilds_the_same_profiles(tmp_path: Path) -> None:
    settings = Settings.build(data_dir=tmp_path, pipeline="thread")
    runtime = Runtime.open(settings)
    created = runtime.bootstrap()
    assert created is not None
    key = created[0]
    source = runtime.keys.source(key)
    assert source is not None
    events = [
        prepare(
            {"type": "identify", "userId": f"u{n}", "anonymousId": f"a{n}", "traits": {"n": n}},
            implied_type=None,
            received_at=1_700_000_000_000 + n,
            batch_sent_at=None,
            workspace_id=source.workspace_id,
            source_id=source.source_id,
            max_event_bytes=settings.max_event_bytes,
            identity=runtime.identity,
        )
        for n in range(50)
    ]
    runtime.log.append_sync(events)
    runtime.pipeline.run_until_caught_up()
    with runtime.engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(profiles)).scalar()
    runtime.close()

    result = CliRunner().invoke(main, ["replay", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "50 events" in result.output or "Done" in result.output

    runtime = Runtime.open(settings)
    with runtime.engine.connect() as conn:
        after = conn.execute(select(func.count()).select_from(profiles)).scalar()
    runtime.close()
    assert before == after == 50


def test_cli_and_collection_imports_stay_light() -> None:
    """`polku --help` must not import the web server or any ML library, and nothing in the
    foundation imports heavy optional libraries."""
    probe = (
        "import sys, polku.cli, polku.collect.validate, polku.identity.projection;"
        "heavy = {'uvicorn', 'numpy', 'sklearn', 'lightgbm', 'implicit', 'torch', 'pandas'};"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"
