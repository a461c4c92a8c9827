"""Log lines: JSON by default, or one console line a record under the process's prefix."""

from __future__ import annotations

import io
import json
import logging
import sys
from pathlib import Path

import pytest

from localmesh.launcher import console_logs_unless_chosen
from meshkit.context import correlation_id_var, request_id_var
from meshkit.logging import (
    PREFIX_WIDTH,
    ConsoleFormatter,
    JsonFormatter,
    colour_wanted,
    command_log_level,
    configure_logging,
)
from meshkit.settings import CommonSettings, ConfigurationError, LogFormat, load_settings

PREFIX = "order_service".ljust(PREFIX_WIDTH) + " | "


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("APP_ENV", "LOG_FORMAT", "LOG_LEVEL", "NO_COLOR", "FORCE_COLOR", "TERM"):
        monkeypatch.delenv(name, raising=False)


def _record(
    message: str, *args: object, level: int = logging.INFO, **extra: object
) -> logging.LogRecord:
    record = logging.LogRecord("order_service.saga", level, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return record


def _failed() -> logging.LogRecord:
    try:
        raise ValueError("the payment went missing")
    except ValueError:
        record = _record("placing order %s failed", "o-1", level=logging.ERROR)
        record.exc_info = sys.exc_info()
    return record


def test_a_console_record_is_one_line_under_the_service_prefix() -> None:
    line = ConsoleFormatter("order_service").format(
        _record("order %s paid", "o-1", order_id="o-1", amount=1250, note="two words")
    )
    assert "\n" not in line
    assert line.startswith(PREFIX)
    assert line.endswith(' INFO  order o-1 paid order_id=o-1 amount=1250 note="two words"')
    assert "{" not in line and "\x1b" not in line


def test_console_shows_the_request_and_correlation_ids_short() -> None:
    request = request_id_var.set("a" * 32)
    correlation = correlation_id_var.set("b" * 32)
    try:
        line = ConsoleFormatter("order_service").format(_record("reserved"))
    finally:
        request_id_var.reset(request)
        correlation_id_var.reset(correlation)
    assert line.endswith(f"reserved req={'a' * 8} corr={'b' * 8}")


def test_a_console_exception_prints_its_traceback_under_the_prefix() -> None:
    lines = ConsoleFormatter("order_service").format(_failed()).splitlines()
    assert "ERROR placing order o-1 failed" in lines[0]
    assert lines[1] == PREFIX + "Traceback (most recent call last):"
    assert lines[-1] == PREFIX + "ValueError: the payment went missing"
    assert all(line.startswith(PREFIX) for line in lines)


def test_every_prefix_has_the_width_of_the_longest_name() -> None:
    widths = {
        len(ConsoleFormatter(name).format(_record("x")).split(" | ")[0])
        for name in ("gateway", "user_service", "notification_service", "mail_sink")
    }
    assert widths == {PREFIX_WIDTH}


def test_colour_only_for_a_terminal_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert not colour_wanted(io.StringIO())
    assert colour_wanted(Terminal())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not colour_wanted(Terminal())
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert colour_wanted(io.StringIO())
    coloured = ConsoleFormatter("order_service", colour=True).format(_record("x"))
    plain = ConsoleFormatter("gateway", colour=True).format(_record("x"))
    assert coloured.startswith("\x1b[") and plain.startswith("\x1b[")
    # Each process of the mesh is told apart by its colour.
    assert coloured.split("m", 1)[0] != plain.split("m", 1)[0]


def test_json_keeps_every_field() -> None:
    request = request_id_var.set("r" * 32)
    try:
        entry = json.loads(JsonFormatter("order_service").format(_record("paid", order_id="o-1")))
    finally:
        request_id_var.reset(request)
    assert entry["service"] == "order_service"
    assert entry["message"] == "paid"
    assert entry["order_id"] == "o-1"
    assert entry["request_id"] == "r" * 32
    assert "exception" in json.loads(JsonFormatter("order_service").format(_failed()))


@pytest.mark.parametrize("app_env", [None, "development", "test", "production"])
def test_json_is_the_default_in_every_environment(
    monkeypatch: pytest.MonkeyPatch, app_env: str | None
) -> None:
    if app_env is not None:
        monkeypatch.setenv("APP_ENV", app_env)
    assert load_settings(CommonSettings, env_file=None).log_format is LogFormat.JSON


def test_log_format_is_read_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "Console")
    assert load_settings(CommonSettings, env_file=None).log_format is LogFormat.CONSOLE


def test_an_unknown_log_format_is_refused_naming_the_choices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOG_FORMAT", "pretty")
    with pytest.raises(ConfigurationError) as raised:
        load_settings(CommonSettings, env_file=None)
    assert raised.value.problems == ["LOG_FORMAT: must be one of console, json (got 'pretty')"]


def test_configure_logging_writes_the_format_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("order_service", "INFO", LogFormat.CONSOLE)
        logging.getLogger("order_service.saga").info("order %s paid", "o-1")
        configure_logging("order_service", "INFO")
        logging.getLogger("order_service.saga").info("order %s shipped", "o-1")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    console, machine = stream.getvalue().splitlines()
    assert console.startswith(PREFIX) and console.endswith("INFO  order o-1 paid")
    assert json.loads(machine)["message"] == "order o-1 shipped"


def test_make_run_asks_for_console_unless_a_format_was_chosen(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    dot_env = tmp_path / ".env"
    assert console_logs_unless_chosen(dot_env) == {"LOG_FORMAT": "console"}
    dot_env.write_text("LOG_FORMAT=json\n")
    assert console_logs_unless_chosen(dot_env) == {}
    dot_env.unlink()
    monkeypatch.setenv("LOG_FORMAT", "json")
    assert console_logs_unless_chosen(dot_env) == {}


@pytest.mark.parametrize(
    ("asked", "used"),
    [("DEBUG", "DEBUG"), ("INFO", "WARNING"), ("WARNING", "WARNING"), ("ERROR", "ERROR")],
)
def test_commands_say_only_warnings_unless_debug_is_asked(asked: str, used: str) -> None:
    assert command_log_level(asked) == used
