"""Tag, target and repository commands."""

from __future__ import annotations

import argparse

from deb_orchestrator.cli.builds import BUILD_COLUMNS
from deb_orchestrator.cli.common import Subparsers, UsageError, add_command, add_query, arg, client, emit, plain, say
from deb_orchestrator.cli.plugins import TARGET_ARGS, target_fields

TAGGED_COLUMNS = [*BUILD_COLUMNS[:3], ("tag", "From tag")]


def register(sub: Subparsers) -> None:
    add_command(sub, "add-tag", cmd_add_tag, "create a tag", "name",
                arg("--parent", action="append", default=[], help="inherit from this tag (repeat, in order)"),
                arg("--arch", action="append", dest="arches", help="architectures (repeat; default amd64)"),
                arg("--external-repo", nargs=3, action="append", default=[], metavar=("URL", "SUITE", "COMPONENTS"),
                    help="an apt repo buildroots use, e.g. http://deb.debian.org/debian trixie main (repeat)"),
                arg("--external-key", action="append", default=[],
                    help="key file for the external repo at the same position (optional)"))
    add_command(sub, "remove-tag", cmd_remove_tag, "remove a tag and its published repository", "name",
                arg("--force", action="store_true",
                    help="also when other tags inherit from it (they lose this parent)"))
    add_command(sub, "list-tags", cmd_list_tags, "list tags")
    add_query(sub, "taginfo", lambda hub, a: hub.tag(a.name), "show a tag", "name")
    add_query(sub, "add-target", lambda hub, a: hub.add_target(a.name, a.build_tag, a.dest_tag, **target_fields(a)),
              "create a build target", "name", "build_tag", "dest_tag", *TARGET_ARGS)
    add_query(sub, "remove-target", lambda hub, a: hub.remove_target(a.name), "remove a build target", "name",
              told=lambda out, _: f"removed target {out['target']}")
    add_query(sub, "list-targets", lambda hub, _: hub.targets(), "list build targets",
              columns=[("name", "Target"), ("build_tag", "Build tag"), ("dest_tag", "Dest tag"),
                       ("plugins", "Plugins"), ("request_plugins", "Requests may add"),
                       ("disable_plugins", "Plugins off")])
    add_query(sub, "tag-build", lambda hub, a: hub.tag_build(a.tag, a.build), "tag a build", "tag", "build",
              told=lambda out, _: f"tagged {out['build']} in {out['tag']}")
    add_query(sub, "untag-build", lambda hub, a: hub.untag_build(a.tag, a.build), "untag a build", "tag", "build",
              told=lambda out, _: f"untagged {out['build']} from {out['tag']}")
    add_query(sub, "list-tagged", lambda hub, a: hub.list_tagged(a.tag, inherit=not a.no_inherit),
              "builds a tag holds (with inheritance unless --no-inherit)", "tag",
              arg("--no-inherit", action="store_true"), columns=TAGGED_COLUMNS)
    add_query(sub, "latest-build", lambda hub, a: hub.latest_build(a.tag, a.package),
              "the build of a source package a tag sees", "tag", "package", columns=TAGGED_COLUMNS)
    add_command(sub, "regen-repo", cmd_regen_repo, "publish a tag's repository again", "tag",
                arg("--wait", action="store_true"))
    add_command(sub, "wait-repo", cmd_wait_repo, "wait until a tag's repository is published (with --build: holds it)",
                "tag", arg("--build", help="SOURCE_VERSION or build ID"),
                arg("--timeout", type=float, default=3600.0))
    add_query(sub, "repoinfo", lambda hub, a: hub.repo(a.tag), "a tag repository's generation and state", "tag")


def cmd_add_tag(args: argparse.Namespace) -> int:
    repos = []
    for i, (url, suite, comps) in enumerate(args.external_repo):
        repo = {"url": url, "suite": suite, "components": comps.replace(",", " ").split()}
        if i < len(args.external_key):
            try:
                with open(args.external_key[i]) as f:
                    repo["key"] = f.read()
            except OSError as exc:
                raise UsageError(f"--external-key {args.external_key[i]}: {exc.strerror}") from None
        repos.append(repo)
    with client(args) as hub:
        emit(args, hub.add_tag(args.name, parents=args.parent, arches=args.arches, external_repos=repos))
    return 0


def cmd_remove_tag(args: argparse.Namespace) -> int:
    with client(args) as hub:
        out = hub.remove_tag(args.name, force=args.force)
        if args.json:
            emit(args, out)
        else:
            say(f"removed tag {out['tag']}" + (" and its repository" if out["repo_removed"] else ""))
            if out["untagged_builds"]:
                say(f"  builds no longer tagged in it: {', '.join(out['untagged_builds'])}")
            if out["children_detached"]:
                say(f"  tags that stopped inheriting from it: {', '.join(out['children_detached'])}")
    return 0


def cmd_list_tags(args: argparse.Namespace) -> int:
    with client(args) as hub:
        tags = plain(hub.tags())
        if not args.json:
            for t in tags:
                t["external_repos"] = [f"{e['url']} {e['suite']} {' '.join(e['components'])}"
                                       for e in t["external_repos"]]
        emit(args, tags, [("name", "Tag"), ("arches", "Arches"), ("parents", "Parents"),
                                      ("inheritance", "Inheritance"), ("external_repos", "External repos")])
    return 0


def cmd_regen_repo(args: argparse.Namespace) -> int:
    with client(args) as hub:
        before = hub.regen_repo(args.tag)
        out = hub.wait_repo(args.tag, after=before["generation"]) if args.wait else before
        emit(args, out)
    return 0


def cmd_wait_repo(args: argparse.Namespace) -> int:
    with client(args) as hub:
        out = hub.wait_repo(args.tag, build=args.build, timeout=args.timeout)
        if args.json:
            emit(args, out)
        else:
            say(f"repo {args.tag} generation {out['generation']} is published"
                + (f" and holds {args.build}" if args.build else ""))
            print(hub.sources_line(args.tag, f"/etc/apt/keyrings/{args.tag}.asc"))
    return 0
