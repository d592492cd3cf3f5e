"""What every client command shares: finding the hub and token, printing tables or JSON, errors."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from deb_orchestrator import clientconfig
from deb_orchestrator.client import DEFAULT_HUB, HubClient, HubConfigError, config_path
from deb_orchestrator.wire import Wire

__all__ = ["DEFAULT_HUB", "UsageError", "config_path", "hub_and_token", "load_config"]


class UsageError(Exception):
    """Bad command line or configuration (exit 2)."""


def load_config() -> dict[str, Any]:
    try:
        return clientconfig.load_config()
    except HubConfigError as exc:
        raise UsageError(str(exc)) from None


def hub_and_token(args: argparse.Namespace) -> tuple[str, str | None]:
    """--hub/--token/--token-file, then DEB_ORCHESTRATOR_HUB/DEB_ORCHESTRATOR_TOKEN, then the config file."""
    try:
        return clientconfig.hub_and_token(args.hub, args.token, getattr(args, "token_file", None))
    except HubConfigError as exc:
        raise UsageError(str(exc)) from None


def client(args: argparse.Namespace) -> HubClient:
    url, token = hub_and_token(args)
    return HubClient(url, token)


def add_connection_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hub", help=f"hub URL (env DEB_ORCHESTRATOR_HUB, config file; default {DEFAULT_HUB})")
    p.add_argument("--token", help="API token (env DEB_ORCHESTRATOR_TOKEN, config file)")
    p.add_argument("--token-file", help="read the API token from this file")
    p.add_argument("--json", action="store_true", help="print JSON for scripts instead of tables")


@dataclass(frozen=True)
class Arg:
    """One ``add_argument`` call: its flags (or positional name) and keyword options."""

    flags: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)


def arg(*flags: str, **options: Any) -> Arg:
    return Arg(flags, options)


Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_command(sub: Subparsers, name: str, func: Callable[[argparse.Namespace], int], help: str,
                *arguments: str | Arg, **defaults: Any) -> argparse.ArgumentParser:
    """A client sub-command: its arguments (a plain string is a positional), the connection options
    (--hub, --token, --token-file, --json) and the function that runs it."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=help)
    for a in arguments:
        if isinstance(a, str):
            p.add_argument(a)
        else:
            p.add_argument(*a.flags, **a.options)
    add_connection_args(p)
    p.set_defaults(func=func, **defaults)
    return p


Fetch: TypeAlias = Callable[[HubClient, argparse.Namespace], Any]
Told: TypeAlias = Callable[[Any, argparse.Namespace], str]


def add_query(sub: Subparsers, name: str, fetch: Fetch, help: str, *arguments: str | Arg,
              columns: Sequence[tuple[str, str]] | None = None, told: Told | None = None,
              **defaults: Any) -> argparse.ArgumentParser:
    """A command that makes one client call, ``fetch(hub, args)``, and prints its answer: JSON with --json,
    else ``told(answer, args)`` on stderr when given, else a table of ``columns`` (or of the answer's keys)."""
    return add_command(sub, name, run_query, help, *arguments, fetch=fetch, columns=columns, told=told, **defaults)


def run_query(args: argparse.Namespace) -> int:
    with client(args) as hub:
        out = args.fetch(hub, args)
        if args.told is not None and not args.json:
            say(args.told(out, args))
        else:
            emit(args, out, args.columns)
    return 0


def emit_secret(args: argparse.Namespace, out: Wire, key: str, *message: str) -> None:
    """--json: the whole answer; otherwise ``message`` lines on stderr and the secret alone on the last line
    of stdout (for ``$(…)`` in scripts)."""
    if args.json:
        emit(args, out)
        return
    for line in message:
        say(line)
    print(out[key])


def when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def emit(args: argparse.Namespace, data: Any, columns: Sequence[tuple[str, str]] | None = None,
         title: str | None = None) -> None:
    """Print ``data`` as JSON (--json) or as a table of ``columns`` ((key, header) pairs)."""
    data = plain(data)
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
        return
    if columns is None:
        if isinstance(data, dict):
            rows = [(k, _cell(v)) for k, v in data.items()]
            table = Table(show_header=False, box=None, title=title)
            for k, v in rows:
                table.add_row(f"[bold]{k}[/bold]", v)
            Console(soft_wrap=True).print(table)
        else:
            print(data)
        return
    items = data if isinstance(data, list) else [data]
    table = Table(title=title)
    for _, header in columns:
        table.add_column(header, overflow="fold")
    for item in items:
        table.add_row(*[_cell(item.get(key)) for key, _ in columns])
    Console(width=max(100, Console().width), soft_wrap=False).print(table)


def plain(data: Any) -> Any:
    """The hub's answers (wire models, also inside lists and dicts) as the JSON the hub sent."""
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json", exclude_unset=True)
    if isinstance(data, list):
        return [plain(x) for x in data]
    if isinstance(data, dict):
        return {k: plain(v) for k, v in data.items()}
    return data


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value > 1e9:
        return when(value)
    if isinstance(value, list):
        return ", ".join(_cell(v) if not isinstance(v, dict) else json.dumps(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, default=str)
    return str(value)


def say(message: str) -> None:
    print(message, file=sys.stderr)
