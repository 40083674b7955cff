"""What every CLI command shares: JSON of messages, durations, exit codes, TTY niceties.

Kept out of the SDK on purpose: these are the command line's conventions, not the API's.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import re
import sys
from typing import Any, TextIO

import rich.console
import rich.progress
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from bucketvault import errors
from bucketvault.protoenums import descriptor_prefix

# Exit codes (README, "The CLI").
EXIT_OK = 0
EXIT_SERVICE = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_DENIED = 4
EXIT_UNAVAILABLE = 5


class CliError(Exception):
    """A one-line failure the CLI reports itself, with its exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_SERVICE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def exit_code_of(exc: errors.BucketVaultError) -> int:
    """The documented exit code for an error of the SDK's hierarchy."""
    if isinstance(exc, errors.NotFound):
        return EXIT_NOT_FOUND
    if isinstance(exc, errors.PermissionDenied | errors.Unauthenticated):
        return EXIT_DENIED
    if isinstance(exc, errors.Unavailable):
        return EXIT_UNAVAILABLE
    return EXIT_SERVICE


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+)([smhdw])")


def duration(text: str) -> int:
    """Seconds from `90`, `90s`, `15m`, `6h`, `1d`, `1h30m` (argparse type)."""
    value = text.strip().lower()
    if value.isdigit():
        return int(value)
    parts = _DURATION.findall(value)
    if not value or "".join(n + u for n, u in parts) != value:
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: use seconds or e.g. 90s, 15m, 6h, 1d, 1h30m"
        )
    return sum(int(n) * _UNITS[u] for n, u in parts)


_INT64 = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64,
    }
)


def _repeated(field: Any) -> bool:
    return bool(field.is_repeated)


def _scalar(field: Any, value: Any) -> Any:
    if field.type in _INT64:
        return int(value)
    if field.type == FieldDescriptor.TYPE_ENUM and isinstance(value, str):
        # The names people type and read (ACTIVE, GET), not the wire's prefixed ones.
        return value.removeprefix(descriptor_prefix(field.enum_type))
    if field.type == FieldDescriptor.TYPE_STRING and field.name.endswith("_json"):
        # JSON the API carries in a string (a trust policy): an object in our JSON.
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _fix(descriptor: Any, data: dict[str, Any]) -> dict[str, Any]:
    for field in descriptor.fields:
        if field.name not in data:
            continue
        value = data[field.name]
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            sub = field.message_type
            if sub.full_name.startswith("google.protobuf."):
                continue  # well-known types already have their JSON form
            if sub.GetOptions().map_entry:
                inner = sub.fields_by_name["value"]
                if inner.type == FieldDescriptor.TYPE_MESSAGE:
                    data[field.name] = {k: _fix(inner.message_type, v) for k, v in value.items()}
                else:
                    data[field.name] = {k: _scalar(inner, v) for k, v in value.items()}
            elif _repeated(field):
                data[field.name] = [_fix(sub, v) for v in value]
            else:
                data[field.name] = _fix(sub, value)
        elif _repeated(field):
            data[field.name] = [_scalar(field, v) for v in value]
        else:
            data[field.name] = _scalar(field, value)
    return data


def to_json(message: Message, *, defaults: bool = False) -> dict[str, Any]:
    """A message as JSON for people's scripts: proto field names, int64 as numbers (not the
    proto3 JSON strings), enum values by their short names (ACTIVE, not
    CREDENTIAL_STATE_ACTIVE), and JSON carried in `*_json` strings as nested objects."""
    data = MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=defaults,
    )
    return _fix(message.DESCRIPTOR, data)


def colour(stream: TextIO) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (https://no-color.org)."""
    return not os.environ.get("NO_COLOR") and stream.isatty()


def styled(text: str, code: str, stream: TextIO) -> str:
    return f"\033[{code}m{text}\033[0m" if colour(stream) else text


class Progress:
    """A progress line on stderr (rich: a spinner, the count so far, the rate, the time),
    only when stderr is a terminal: stdout stays clean for pipes, and nothing at all is
    written when stderr is piped or redirected. Colour follows NO_COLOR (rich honours it).
    The total is not known in advance (a listing, a batch read from stdin), so it counts."""

    def __init__(self, verb: str, *, enabled: bool = True) -> None:
        self.verb = verb
        self.count = 0
        self.enabled = enabled and sys.stderr.isatty()
        self._bar: rich.progress.Progress | None = None
        if self.enabled:
            self._bar = rich.progress.Progress(
                rich.progress.SpinnerColumn(),
                rich.progress.TextColumn("{task.description} {task.completed:,}"),
                rich.progress.TextColumn("{task.fields[rate]}"),
                rich.progress.TimeElapsedColumn(),
                console=rich.console.Console(stderr=True),
            )
            self._task = self._bar.add_task(verb, total=None, rate="")
            self._bar.start()
            # An error or a closed pipe ends the command before done(): stop the display
            # anyway, or the terminal keeps rich's hidden cursor.
            atexit.register(self.done)

    def add(self, n: int) -> None:
        self.count += n
        if self._bar is not None:
            elapsed = self._bar.tasks[0].elapsed or 0.0
            rate = f"({self.count / elapsed:,.0f}/s)" if elapsed > 0 else ""
            self._bar.update(self._task, advance=n, rate=rate)

    def done(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


__all__ = [
    "EXIT_DENIED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_SERVICE",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "CliError",
    "Progress",
    "colour",
    "duration",
    "exit_code_of",
    "styled",
    "to_json",
]
