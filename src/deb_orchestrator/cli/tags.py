"""Tag, target and repository commands."""

from __future__ import annotations

import argparse

from deb_orchestrator.cli.builds import BUILD_COLUMNS
from deb_orchestrator.cli.common import UsageError, add_connection_args, client, emit, say


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("add-tag", help="create a tag")
    p.add_argument("name")
    p.add_argument("--parent", action="append", default=[], help="inherit from this tag (repeat, in order)")
    p.add_argument("--arch", action="append", dest="arches", help="architectures (repeat; default amd64)")
    p.add_argument("--external-repo", nargs=3, action="append", default=[], metavar=("URL", "SUITE", "COMPONENTS"),
                   help="an apt repo buildroots use, e.g. http://deb.debian.org/debian trixie main (repeat)")
    p.add_argument("--external-key", action="append", default=[],
                   help="key file for the external repo at the same position (optional)")
    p.set_defaults(func=cmd_add_tag)

    p = sub.add_parser("list-tags", help="list tags")
    p.set_defaults(func=cmd_list_tags)
    p = sub.add_parser("taginfo", help="show a tag")
    p.add_argument("name")
    p.set_defaults(func=cmd_taginfo)

    p = sub.add_parser("add-target", help="create a build target")
    p.add_argument("name")
    p.add_argument("build_tag")
    p.add_argument("dest_tag")
    p.set_defaults(func=cmd_add_target)
    p = sub.add_parser("list-targets", help="list build targets")
    p.set_defaults(func=cmd_list_targets)

    p = sub.add_parser("tag-build", help="tag a build")
    p.add_argument("tag")
    p.add_argument("build")
    p.set_defaults(func=cmd_tag_build)
    p = sub.add_parser("untag-build", help="untag a build")
    p.add_argument("tag")
    p.add_argument("build")
    p.set_defaults(func=cmd_untag_build)

    p = sub.add_parser("list-tagged", help="builds a tag holds (with inheritance unless --no-inherit)")
    p.add_argument("tag")
    p.add_argument("--no-inherit", action="store_true")
    p.set_defaults(func=cmd_list_tagged)
    p = sub.add_parser("latest-build", help="the build of a source package a tag sees")
    p.add_argument("tag")
    p.add_argument("package")
    p.set_defaults(func=cmd_latest_build)

    p = sub.add_parser("regen-repo", help="publish a tag's repository again")
    p.add_argument("tag")
    p.add_argument("--wait", action="store_true")
    p.set_defaults(func=cmd_regen_repo)
    p = sub.add_parser("wait-repo", help="wait until a tag's repository is published (with --build: holds it)")
    p.add_argument("tag")
    p.add_argument("--build", help="SOURCE_VERSION or build ID")
    p.add_argument("--timeout", type=float, default=3600.0)
    p.set_defaults(func=cmd_wait_repo)
    p = sub.add_parser("repoinfo", help="a tag repository's generation and state")
    p.add_argument("tag")
    p.set_defaults(func=cmd_repoinfo)

    for name in ("add-tag", "list-tags", "taginfo", "add-target", "list-targets", "tag-build", "untag-build",
                 "list-tagged", "latest-build", "regen-repo", "wait-repo", "repoinfo"):
        add_connection_args(sub.choices[name])


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


def cmd_list_tags(args: argparse.Namespace) -> int:
    with client(args) as hub:
        tags = hub.get("/tags")
        if not args.json:
            for t in tags:
                t["external_repos"] = [f"{e['url']} {e['suite']} {' '.join(e['components'])}"
                                       for e in t["external_repos"]]
        emit(args, tags, [("name", "Tag"), ("arches", "Arches"), ("parents", "Parents"),
                                      ("inheritance", "Inheritance"), ("external_repos", "External repos")])
    return 0


def cmd_taginfo(args: argparse.Namespace) -> int:
    with client(args) as hub:
        emit(args, hub.get(f"/tags/{args.name}"))
    return 0


def cmd_add_target(args: argparse.Namespace) -> int:
    with client(args) as hub:
        emit(args, hub.add_target(args.name, args.build_tag, args.dest_tag))
    return 0


def cmd_list_targets(args: argparse.Namespace) -> int:
    with client(args) as hub:
        emit(args, hub.get("/targets"), [("name", "Target"), ("build_tag", "Build tag"), ("dest_tag", "Dest tag")])
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
