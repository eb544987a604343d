"""`polku users` on a fresh SQLite folder: the first admin (password from standard input or
asked twice), the list, a new password, and errors that say what to do."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from polku.cli import main
from polku.console.actions import sign_in
from polku.settings import Settings
from polku.storage.engine import make_engine

STDIN = ("--password-stdin",)


def test_the_first_admin_then_users_and_passwords(tmp_path: Path) -> None:
    runner = CliRunner()
    where = ["--data-dir", str(tmp_path)]
    first = runner.invoke(
        main,
        ["users", "create", "Admin@Example.com", "--role", "admin", "--password-stdin", *where],
        input="correct horse battery\n",
    )
    assert first.exit_code == 0, first.output
    assert "Created the default workspace" in first.output and "admin token:" in first.output
    assert "Created admin admin@example.com in workspace default." in first.output

    prompted = runner.invoke(
        main,
        ["users", "create", "eero@example.com", "--role", "agent", *where],
        input="a long enough secret\na long enough secret\n",
    )
    assert prompted.exit_code == 0, prompted.output
    assert "Created agent eero@example.com" in prompted.output
    assert "Created the default workspace" not in prompted.output

    again = runner.invoke(
        main,
        ["users", "create", "admin@example.com", "--role", "admin", "--password-stdin", *where],
        input="correct horse battery\n",
    )
    assert again.exit_code == 1
    assert "already a console user 'admin@example.com'" in again.output
    assert "polku users set-password" in again.output

    no_store = runner.invoke(
        main,
        ["users", "create", "aino@example.com", "--role", "store_staff", *STDIN, *where],
        input="correct horse battery\n",
    )
    assert no_store.exit_code == 1 and "needs at least one store" in no_store.output
    unknown = runner.invoke(
        main,
        [
            "users",
            "create",
            "aino@example.com",
            "--role",
            "store_staff",
            "--store",
            "hki-x",
            *STDIN,
            *where,
        ],
        input="correct horse battery\n",
    )
    assert unknown.exit_code == 1 and "no location 'hki-x'" in unknown.output
    weak = runner.invoke(
        main,
        ["users", "create", "aino@example.com", "--role", "agent", "--password-stdin", *where],
        input="short\n",
    )
    assert weak.exit_code == 1 and "it needs 10 to 1000" in weak.output

    listed = runner.invoke(main, ["users", "list", *where])
    assert listed.exit_code == 0
    assert "admin@example.com  admin" in listed.output
    assert "eero@example.com  agent" in listed.output and "aino" not in listed.output

    changed = runner.invoke(
        main,
        ["users", "set-password", "eero@example.com", "--password-stdin", *where],
        input="another long secret\n",
    )
    assert changed.exit_code == 0 and "Password set for eero@example.com" in changed.output
    engine = make_engine(Settings.build(data_dir=tmp_path))
    try:
        assert sign_in(engine, "eero@example.com", "another long secret").user.role == "agent"
    finally:
        engine.dispose()
    missing = runner.invoke(
        main,
        ["users", "set-password", "nobody@example.com", "--password-stdin", *where],
        input="another long secret\n",
    )
    assert missing.exit_code == 1 and "no console user 'nobody@example.com'" in missing.output
