"""Tag, target and repository commands."""

from __future__ import annotations

import argparse

from deb_orchestrator.cli.builds import BUILD_COLUMNS
from deb_orchestrator.cli.common import Subparsers, UsageError, add_command, arg, client, emit, plain, say


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
    add_command(sub, "taginfo", cmd_taginfo, "show a tag", "name")
    add_command(sub, "add-target", cmd_add_target, "create a build target", "name", "build_tag", "dest_tag")
    add_command(sub, "remove-target", cmd_remove_target, "remove a build target", "name")
    add_command(sub, "list-targets", cmd_list_targets, "list build targets")
    add_command(sub, "tag-build", cmd_tag_build, "tag a build", "tag", "build")
    add_command(sub, "untag-build", cmd_untag_build, "untag a build", "tag", "build")
    add_command(sub, "list-tagged", cmd_list_tagged, "builds a tag holds (with inheritance unless --no-inherit)",
                "tag", arg("--no-inherit", action="store_true"))
    add_command(sub, "latest-build", cmd_latest_build, "the build of a source package a tag sees", "tag", "package")
    add_command(sub, "regen-repo", cmd_regen_repo, "publish a tag's repository again", "tag",
                arg("--wait", action="store_true"))
    add_command(sub, "wait-repo", cmd_wait_repo, "wait until a tag's repository is published (with --build: holds it)",
                "tag", arg("--build", help="SOURCE_VERSION or build ID"),
                arg("--timeout", type=float, default=3600.0))
    add_command(sub, "repoinfo", cmd_repoinfo, "a tag repository's generation and state", "tag")


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


def cmd_remove_target(args: argparse.Namespace) -> int:
    with client(args) as hub:
        out = hub.remove_target(args.name)
        emit(args, out) if args.json else say(f"removed target {out['target']}")
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


def cmd_taginfo(args: argparse.Namespace) -> int:
    with client(args) as hub:
        emit(args, hub.tag(args.name))
    return 0


def cmd_add_target(args: argparse.Namespace) -> int:
    with client(args) as hub:
        emit(args, hub.add_target(args.name, args.build_tag, args.dest_tag))
    return 0


def cmd_list_targets(args: argparse.Namespace) -> int:
    with client(args) as hub:
        emit(args, hub.targets(), [("name", "Target"), ("build_tag", "Build tag"), ("dest_tag", "Dest tag")])
    return 0


def cmd_tag_build(args: argparse.Namespace) -> int:
    with client(args) as hub:
        out = hub.tag_build(args.tag, args.build)
        emit(args, out) if args.json else say(f"tagged {out['build']} in {out['tag']}")
    return 0


def cmd_untag_build(args: argparse.Namespace) -> int:
    with client(args) as hub:
        out = hub.untag_build(args.tag, args.build)
        emit(args, out) if args.json else say(f"untagged {out['build']} from {out['tag']}")
    return 0


def cmd_list_tagged(args: argparse.Namespace) -> int:
    with client(args) as hub:
        emit(args, hub.list_tagged(args.tag, inherit=not args.no_inherit), [*BUILD_COLUMNS[:3], ("tag", "From tag")])
    return 0


def cmd_latest_build(args: argparse.Namespace) -> int:
    with client(args) as hub:
        emit(args, hub.latest_build(args.tag, args.package), [*BUILD_COLUMNS[:3], ("tag", "From tag")])
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


def cmd_repoinfo(args: argparse.Namespace) -> int:
    with client(args) as hub:
        emit(args, hub.repo(args.tag))
    return 0
