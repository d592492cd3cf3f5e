"""Hosts and tokens: list-hosts, add-host (prints the token last), enable/disable-host, create-token,
list-tokens, revoke-token, whoami."""

from __future__ import annotations

import argparse

from deb_orchestrator.cli.common import add_connection_args, client, emit, say


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("list-hosts", help="list builder hosts")
    p.set_defaults(func=cmd_list_hosts)
    p = sub.add_parser("add-host", help="register a builder host; prints its token on the last line")
    p.add_argument("name")
    p.add_argument("--arch", action="append", dest="arches", required=True, help="architecture (repeat)")
    p.add_argument("--capacity", type=int, default=1)
    p.set_defaults(func=cmd_add_host)
    for verb, enabled in (("enable-host", True), ("disable-host", False)):
        p = sub.add_parser(verb, help=f"{verb.split('-')[0]} a host")
        p.add_argument("name")
        p.set_defaults(func=cmd_enable_host, enabled=enabled)
    p = sub.add_parser("create-token", help="create an API token for a user; prints it on the last line")
    p.add_argument("user")
    p.add_argument("--scope", action="append", dest="scopes", required=True,
                   help="admin, build or tag (repeat); builder tokens come from add-host")
    p.add_argument("--name", default="", help="what the token is for")
    p.set_defaults(func=cmd_create_token)
    p = sub.add_parser("list-tokens", help="list API tokens (without their secrets)")
    p.set_defaults(func=cmd_list_tokens)
    p = sub.add_parser("revoke-token", help="revoke an API token by ID (see list-tokens)")
    p.add_argument("id", type=int)
    p.set_defaults(func=cmd_revoke_token)
    p = sub.add_parser("whoami", help="the user and scopes of the current token")
    p.set_defaults(func=cmd_whoami)
    for name in ("list-hosts", "add-host", "enable-host", "disable-host", "create-token", "list-tokens",
                 "revoke-token", "whoami"):
        add_connection_args(sub.choices[name])


def cmd_list_hosts(args: argparse.Namespace) -> int:
    with client(args) as hub:
        emit(args, hub.hosts(), [("name", "Host"), ("arches", "Arches"), ("capacity", "Capacity"),
                                 ("enabled", "Enabled"), ("last_heartbeat", "Last heartbeat"), ("running", "Tasks")])
    return 0


def cmd_add_host(args: argparse.Namespace) -> int:
    with client(args) as hub:
        out = hub.add_host(args.name, args.arches, args.capacity)
        if args.json:
            emit(args, out)
        else:
            say(f"host {out['name']} ({' '.join(out['arches'])}) registered; start it with:")
            say(f"  deb-orchestrator builder --hub {hub.url} --token TOKEN")
            print(out["token"])
    return 0


def cmd_enable_host(args: argparse.Namespace) -> int:
    with client(args) as hub:
        emit(args, hub.request("PATCH", f"/hosts/{args.name}", json={"enabled": args.enabled}).json())
    return 0


def cmd_create_token(args: argparse.Namespace) -> int:
    with client(args) as hub:
        out = hub.create_token(args.user, args.scopes, args.name)
        if args.json:
            emit(args, out)
        else:
            say(f"token {out['id']} for {out['user']} with scopes {','.join(out['scopes'])} (shown once):")
            print(out["token"])
    return 0


def cmd_list_tokens(args: argparse.Namespace) -> int:
    with client(args) as hub:
        emit(args, hub.get("/tokens"), [("id", "ID"), ("user", "User"), ("name", "Name"), ("prefix", "Starts with"),
                                        ("scopes", "Scopes"), ("revoked", "Revoked"), ("created", "Created")])
    return 0


def cmd_revoke_token(args: argparse.Namespace) -> int:
    with client(args) as hub:
        out = hub.request("DELETE", f"/tokens/{args.id}").json()
        emit(args, out) if args.json else say(f"token {args.id} revoked")
    return 0


def cmd_whoami(args: argparse.Namespace) -> int:
    with client(args) as hub:
        emit(args, hub.whoami())
    return 0
