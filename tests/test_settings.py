"""Settings are declared once, typed, documented, and secrets never print."""

from __future__ import annotations

import dataclasses
import runpy
from pathlib import Path

import pytest

from polku.settings import SETTINGS, Secret, Settings, SettingsError, load

ROOT = Path(__file__).resolve().parents[1]


def test_every_declared_setting_is_a_field_and_back() -> None:
    assert {s.name for s in SETTINGS} == {f.name for f in dataclasses.fields(Settings)}


def test_docs_list_every_setting_as_generated() -> None:
    render = runpy.run_path(str(ROOT / "scripts" / "gen_settings_doc.py"))["render"]
    assert (ROOT / "docs" / "settings.md").read_text() == render(), (
        "docs/settings.md is stale: run .venv/bin/python scripts/gen_settings_doc.py"
    )


def test_environment_is_parsed_into_types() -> None:
    settings = load(
        {
            "POLKU_PORT": "9000",
            "POLKU_AUTO_MIGRATE": "false",
            "POLKU_SHARED_DEVICES": "till-1, kiosk-2",
            "POLKU_SQLITE_SYNCHRONOUS": "normal",
        }
    )
    assert settings.port == 9000
    assert settings.auto_migrate is False
    assert settings.shared_devices == frozenset({"till-1", "kiosk-2"})
    assert settings.sqlite_synchronous == "NORMAL"


def test_bad_value_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="POLKU_PORT"):
        load({"POLKU_PORT": "eighty"})


def test_database_url_is_secret() -> None:
    settings = load({"POLKU_DATABASE_URL": "postgresql://u:hunter2@db/polku"})
    assert isinstance(settings.database_url, Secret)
    assert "hunter2" not in repr(settings)
    assert settings.sqlalchemy_url.startswith("postgresql+psycopg://u:hunter2@")


def test_default_is_embedded_sqlite_in_data_dir(tmp_path: Path) -> None:
    settings = Settings.build(data_dir=tmp_path)
    assert settings.is_sqlite
    assert settings.sqlalchemy_url == f"sqlite:///{tmp_path.resolve() / 'polku.db'}"
