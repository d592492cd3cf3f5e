"""Hosts and tokens: list-hosts, add-host (prints the token last), enable/disable-host, create-token,
list-tokens, revoke-token, whoami; gc (cli/gc.py)."""

from __future__ import annotations

import argparse

from deb_orchestrator.cli import gc
from deb_orchestrator.cli.common import Subparsers, add_command, add_query, arg, client, emit_secret


def register(sub: Subparsers) -> None:
    add_query(sub, "list-hosts", lambda hub, _: hub.hosts(), "list builder hosts",
              columns=[("name", "Host"), ("arches", "Arches"), ("capacity", "Capacity"), ("enabled", "Enabled"),
                       ("last_heartbeat", "Last heartbeat"), ("running", "Tasks")])
    add_command(sub, "add-host", cmd_add_host, "register a builder host; prints its token on the last line", "name",
                arg("--arch", action="append", dest="arches", required=True, help="architecture (repeat)"),
                arg("--capacity", type=int, default=1))
    for verb, enabled in (("enable-host", True), ("disable-host", False)):
        add_query(sub, verb, lambda hub, a: hub.edit_host(a.name, enabled=a.enabled), f"{verb.split('-')[0]} a host",
                  "name", enabled=enabled)
    add_command(sub, "create-token", cmd_create_token, "create an API token for a user; prints it on the last line",
                "user", arg("--scope", action="append", dest="scopes", required=True,
                            help="admin, build or tag (repeat); builder tokens come from add-host"),
                arg("--name", default="", help="what the token is for"))
    add_query(sub, "list-tokens", lambda hub, _: hub.tokens(), "list API tokens (without their secrets)",
              columns=[("id", "ID"), ("user", "User"), ("name", "Name"), ("prefix", "Starts with"),
                       ("scopes", "Scopes"), ("revoked", "Revoked"), ("created", "Created")])
    add_query(sub, "revoke-token", lambda hub, a: hub.revoke_token(a.id), "revoke an API token by ID (see list-tokens)",
              arg("id", type=int), told=lambda _, a: f"token {a.id} revoked")
    add_query(sub, "whoami", lambda hub, _: hub.whoami(), "the user and scopes of the current token")
    gc.register(sub)


def cmd_add_host(args: argparse.Namespace) -> int:
    with client(args) as hub:
        out = hub.add_host(args.name, args.arches, args.capacity)
        emit_secret(args, out, "token", f"host {out['name']} ({' '.join(out['arches'])}) registered; its token is "
                    "the last line (shown once). Keep it in a file only the builder's user can read, e.g. "
                    "`... | tail -1 | install -m 0600 /dev/stdin /etc/deb-orchestrator/token`, and start the "
                    "builder with:",
                    f"  deb-orchestrator builder --hub {hub.url} --token-file /etc/deb-orchestrator/token",
                    "(or with DEB_ORCHESTRATOR_TOKEN in its environment; a --token on the command line shows in ps)")
    return 0


def cmd_create_token(args: argparse.Namespace) -> int:
    with client(args) as hub:
        out = hub.create_token(args.user, args.scopes, args.name)
        emit_secret(args, out, "token",
                    f"token {out['id']} for {out['user']} with scopes {','.join(out['scopes'])} (shown once):")
    return 0
