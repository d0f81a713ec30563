"""The shared SQL as PostgreSQL takes it, and the --db URL's checks (no server needed; the
store itself is tested on a real PostgreSQL in tests/integration/test_alert_store_postgres.py
and by the escalation and delivery tests, which run on both stores)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from telecare.app.cli import main
from telecare.pgdb import DbUrlError, check_url, translate, translate_schema


def test_placeholders_and_a_literal_percent_are_written_as_psycopg_takes_them() -> None:
    assert translate("SELECT value FROM detect_meta WHERE key LIKE 'cursor:%' AND x = ?",
                     True) == \
        "SELECT value FROM detect_meta WHERE key LIKE 'cursor:%%' AND x = %s"
    # Without parameters nothing is a placeholder, and % stays as it is.
    assert translate("SELECT 'a%'", False) == "SELECT 'a%'"


def test_insert_or_ignore_becomes_on_conflict_do_nothing() -> None:
    assert translate("INSERT OR IGNORE INTO t (a) VALUES (?)", True) == \
        "INSERT INTO t (a) VALUES (%s) ON CONFLICT DO NOTHING"


def test_begin_immediate_is_a_plain_begin() -> None:
    assert translate("BEGIN IMMEDIATE", False) == "BEGIN"


def test_a_schema_gets_wide_enough_types_and_loses_its_comments() -> None:
    statements = translate_schema("""
        CREATE TABLE a (seq INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL); -- why
        CREATE TABLE b (id INTEGER PRIMARY KEY, us INTEGER NOT NULL,
                        state TEXT -- pending; sent
        );
    """)
    assert statements == [
        "CREATE TABLE a (seq BIGSERIAL PRIMARY KEY, at DOUBLE PRECISION NOT NULL)",
        "CREATE TABLE b (id BIGSERIAL PRIMARY KEY, us BIGINT NOT NULL,\n"
        "                        state TEXT \n        )"]


@pytest.mark.parametrize("url, why", [
    ("mysql://h/db", "expected postgresql://"),
    ("postgresql://me:secret@h/db", "no user or password in the URL"),
    ("postgresql:///db", "no host"),
])
def test_a_wrong_db_url_is_refused_with_the_reason(url: str, why: str) -> None:
    with pytest.raises(DbUrlError, match=why):
        check_url(url)


def test_the_cli_refuses_a_db_url_with_a_password_and_never_echoes_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["status", "--config", str(tmp_path), "--db",
                                       "postgresql://me:secret@h/db"])
    assert result.exit_code == 2
    assert "TELECARE_DB_PASSWORD" in result.output
    assert "secret" not in result.output
