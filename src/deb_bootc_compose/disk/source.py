"""What ``install-to-disk`` installs from: a compose directory, an OSTree repo+ref, or an OCI image.

* compose directory: the ref and commit its ``metadata/ostree.json`` records for the variant/arch, from the
  target's shared repo (``TARGET/ostree/repo``) -- that commit even when the ref has moved on since;
* ``ostree:REPO[:REF]`` or a repository directory (``--ref`` when it holds more than one ref);
* an OCI image, ``oci:DIR[:TAG]`` (read in place), ``oci-archive:FILE[:TAG]``, ``containers-storage:REF`` or
  ``docker://REF`` (copied into a layout by :func:`deb_bootc_compose.imagelint.fetch.copy_to_layout`, as
  ``lint`` does): its layers are unpacked with umoci (whiteouts, owners and xattrs kept), an image that cannot
  boot (lint's kernel and initramfs rules) is refused, ``/etc`` moves to ``/usr/etc``, and the tree is
  committed into a temporary repository; from there the installation is the same.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from debsandbox.commands import CommandError, run

from ..imagelint import fetch
from ..imagelint.rules import boot_problems
from ..intree import Tree
from ..paths import ComposePaths
from .errors import SourceError
from .sysroot import InstallSource

OCI_DEFAULT_REF = "deb-bootc/oci"
IMAGE_FORMS = "oci:DIR[:TAG], oci-archive:FILE[:TAG], containers-storage:REF or docker://REF"


def list_refs(repo: Path) -> list[str]:
    out = run(["ostree", f"--repo={repo}", "refs"], capture=True).output
    return sorted(line.strip() for line in out.splitlines() if line.strip() and ":" not in line)


def rev_parse(repo: Path, ref: str) -> str:
    try:
        return run(["ostree", f"--repo={repo}", "rev-parse", ref], capture=True).output.strip()
    except CommandError as exc:
        raise SourceError(f"{repo} has no ref or commit {ref!r} (its refs: {', '.join(list_refs(repo)) or 'none'})"
                          ) from exc


def is_ostree_repo(path: Path) -> bool:
    return (path / "config").is_file() and (path / "objects").is_dir()


def _pick_ref(repo: Path, ref: str | None, where: str) -> str:
    if ref:
        return ref
    refs = list_refs(repo)
    if len(refs) == 1:
        return refs[0]
    if not refs:
        raise SourceError(f"{where}: the repository {repo} has no refs")
    raise SourceError(f"{where}: {repo} holds several refs ({', '.join(refs)}); choose one with --ref")


def from_repo(repo: Path, ref: str | None, remote_url: str | None = None) -> InstallSource:
    repo = repo.resolve()
    if not is_ostree_repo(repo):
        raise SourceError(f"{repo} is not an OSTree repository (no config file and objects/ directory)")
    ref = _pick_ref(repo, ref, str(repo))
    commit = rev_parse(repo, ref)
    return InstallSource(repo, ref, commit, remote_url)


def compose_commit(compose: Path, variant: str, arch: str) -> tuple[str, str]:
    """(ref, commit) that the compose recorded for ``variant``/``arch`` in ``metadata/ostree.json``."""
    from deb_bootc_compose import metadata as md

    path = ComposePaths.at(compose).ostree_json
    if not path.is_file():
        raise SourceError(
            f"{compose} records no OSTree commit ({path} is missing: the compose did not finish its metadata "
            "phase); install from the repository instead with ostree:REPO:REF"
        )
    try:
        entries = md.load_ostree(path)
    except md.MetadataError as exc:
        raise SourceError(str(exc)) from exc
    for e in entries:
        if (e.variant, e.arch) == (variant, arch):
            return e.ref, e.commit
    have = ", ".join(f"{e.variant}/{e.arch}" for e in entries) or "none"
    raise SourceError(f"{compose} has no commit for {variant}/{arch} (it has: {have}); pick one with "
                      "--variant/--arch")


def has_commit(repo: Path, commit: str) -> bool:
    return (repo / "objects" / commit[:2] / f"{commit[2:]}.commit").is_file()


def from_compose(compose: Path, variant: str = "base", arch: str = "amd64", remote_url: str | None = None
                 ) -> InstallSource:
    """Exactly the commit the compose made (``metadata/ostree.json``), never the ref's current head."""
    compose = compose.resolve()
    repo = ComposePaths.at(compose).target.ostree_repo
    if not is_ostree_repo(repo):
        raise SourceError(f"{compose} looks like a compose directory but {repo} (its OSTree repository) is missing")
    ref, commit = compose_commit(compose, variant, arch)
    if not has_commit(repo, commit):
        raise SourceError(f"{compose} made commit {commit} ({ref}), but {repo} no longer holds it "
                          "(pruned?); recompose with its metadata/lockfile.yaml to get it back")
    return InstallSource(repo, ref, commit, remote_url)


def is_compose_dir(path: Path) -> bool:
    paths = ComposePaths.at(path)
    return path.is_dir() and paths.status.is_file() and paths.deliverables.is_dir()


def _oci_tag(layout: Path, tag: str | None, where: str) -> str:
    index_path = layout / "index.json"
    if not index_path.is_file():
        raise SourceError(f"{where}: {layout} is not an OCI image layout (no index.json)")
    index = json.loads(index_path.read_text())
    tags = [m.get("annotations", {}).get("org.opencontainers.image.ref.name") for m in index.get("manifests", [])]
    tags = [t for t in tags if t]
    if tag:
        if tag not in tags:
            raise SourceError(f"{where}: no tag {tag!r} in {layout} (tags: {', '.join(tags) or 'none'})")
        return tag
    if len(tags) == 1:
        return tags[0]
    raise SourceError(f"{where}: {layout} has tags {', '.join(tags) or 'none'}; name one as oci:DIR:TAG")


@dataclass(frozen=True)
class Registry:
    """How ``docker://`` sources are reached."""

    tls_verify: bool = True
    cert_dir: Path | None = None  # DIR/ca.crt: the registry's CA


def _layout(spec: str, work: Path, log: Path, registry: Registry) -> tuple[Path, str]:
    """The OCI layout holding ``spec`` and the image's tag in it: an ``oci:`` layout in place, anything else
    copied by lint's fetch (the one way the project fetches an image)."""
    try:
        if spec.startswith("oci:"):
            fetch.check_reference(spec)
            path, tag = fetch.split_tag(spec[len("oci:"):])
            return path, _oci_tag(path, tag, spec)
        return fetch.copy_to_layout(spec, work, log=log, tls_verify=registry.tls_verify,
                                    cert_dir=registry.cert_dir), fetch.COPIED_TAG
    except fetch.ImageError as exc:
        raise SourceError(str(exc)) from None


def refuse_unbootable(spec: str, rootfs: Path) -> None:
    """SourceError naming the cause when the image's tree cannot boot (lint's kernel and initramfs rules)."""
    problems = boot_problems(rootfs)
    if problems:
        causes = "; ".join(f"/{p.path}: {p.message} (→ {p.hint})" for p in problems)
        raise SourceError(f"{spec} is not a bootable image, refusing to install it: {causes}. "
                          f"'deb-bootc-compose lint {spec}' shows every problem")


@contextmanager
def from_oci(spec: str, scratch: Path, log: Path, ref: str | None = None, remote_url: str | None = None,
             registry: Registry = Registry()) -> Iterator[InstallSource]:
    """Unpack an OCI image into a tree, commit it into a temporary bare repo, yield the install source."""
    scratch.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".oci-import-", dir=scratch))
    try:
        layout, tag = _layout(spec, work, log, registry)
        rootfs = work / "rootfs"
        try:
            run(["umoci", "raw", "unpack", "--image", f"{layout}:{tag}", str(rootfs)], log=log)
        except CommandError as exc:
            said = [ln.strip() for ln in exc.tail.splitlines() if ln.strip() and not ln[0].isspace()
                    and not ln.startswith(("goroutine ", "+ ", "# "))]
            said = [ln for ln in said if any(w in ln.lower() for w in ("error", "panic", "invalid"))] or said
            raise SourceError(f"{spec}: umoci could not unpack the image: {said[-1] if said else exc}") from exc
        if (work / "layout").is_dir():
            shutil.rmtree(work / "layout")  # the copy is unpacked: its space is the commit's now
        refuse_unbootable(spec, rootfs)
        with Tree(rootfs) as image:  # the image's links resolve inside it, never on the host
            if image.is_real_dir("etc") and not image.lexists("usr/etc"):
                image.rename("etc", "usr/etc")
        repo = work / "repo"
        run(["ostree", "init", f"--repo={repo}", "--mode=bare"], log=log)
        ref = ref or OCI_DEFAULT_REF
        run(["ostree", "commit", f"--repo={repo}", f"--branch={ref}", f"--tree=dir={rootfs}", "--no-bindings",
             f"--subject=imported from {spec}"], log=log)
        shutil.rmtree(rootfs)
        yield InstallSource(repo, ref, rev_parse(repo, ref), remote_url)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextmanager
def resolve(spec: str, scratch: Path, log: Path, ref: str | None = None, remote_url: str | None = None,
            variant: str = "base", arch: str = "amd64", registry: Registry = Registry()) -> Iterator[InstallSource]:
    """Any SOURCE form the CLI accepts, as an :class:`InstallSource` valid inside the ``with`` block."""
    if spec.startswith(fetch.TRANSPORTS):
        with from_oci(spec, scratch, log, ref, remote_url, registry) as src:
            yield src
        return
    if spec.startswith("ostree:"):
        repo_s, spec_ref = spec[len("ostree:"):], None
        # refs contain "/": split at the last ":" when what precedes it is the repository
        if ":" in repo_s and Path(repo_s.rsplit(":", 1)[0]).is_dir():
            repo_s, spec_ref = repo_s.rsplit(":", 1)
        yield from_repo(Path(repo_s), ref or spec_ref, remote_url)
        return
    path = Path(spec)
    if not path.exists():
        raise SourceError(f"{spec} does not exist (expected a compose directory, ostree:REPO[:REF], {IMAGE_FORMS})")
    if is_compose_dir(path):
        if ref:
            raise SourceError(f"{spec} is a compose directory: choose what to install with --variant/--arch, "
                              "not --ref (or use ostree:REPO:REF for another ref)")
        yield from_compose(path, variant, arch, remote_url)
    elif is_ostree_repo(path):
        yield from_repo(path, ref, remote_url)
    else:
        raise SourceError(f"{spec} is neither a compose directory (STATUS, compose/) nor an OSTree repository")
