"""The verbs: status, upgrade [--check], switch TARGET, rollback."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from typing import NoReturn

from . import image, packages, parse
from .errors import NO_UPDATE, OK, ClientError, RefusedError, UsageError
from .runner import last_line
from .sysroot import DIGEST_KEY, IMAGE_KEY, Deployment, Sysroot, require_root

PULL_ATTEMPTS = 3  # a summary and its signature published at different moments: retry (docs/client.md)


def _show(d: Deployment) -> list[str]:
    mark = "*" if d.booted else " "
    out = [f"{mark} {d.role:<9} {d.version or '(no version)'}  {d.osname} {d.checksum[:12]}.{d.serial}"]
    out.append(f"    origin:    {d.origin.describe()}")
    sig = d.signature.state + (f" ({d.signature.detail[0]})" if d.signature.detail else "")
    out.append(f"    signature: {sig}")
    if d.pinned:
        out.append("    pinned:    yes")
    return out


def status(sr: Sysroot, as_json: bool) -> int:
    deps = sr.deployments()
    if as_json:
        print(json.dumps({"sysroot": sr.path, "booted": any(d.booted for d in deps),
                          "deployments": [d.to_json() for d in deps]}, indent=2))
        return OK
    if not deps:
        print("no deployments")
        return OK
    for d in deps:
        print("\n".join(_show(d)))
    return OK


def _pull_metadata(sr: Sysroot, remote: str, ref: str) -> str:
    """Fetch only the newest commit object of REMOTE:REF (ostree verifies its signature); its checksum."""
    for attempt in range(1, PULL_ATTEMPTS + 1):
        res = sr.ostree("pull", "--commit-metadata-only", remote, ref, check=False)
        if res.rc == 0:
            break
        msg = last_line(res.err)
        if "summary" in msg.lower() and attempt < PULL_ATTEMPTS:
            time.sleep(2 * attempt)  # a publish in progress: the summary and its signature catch up
            continue
        if parse.is_signature_error(res.err):
            raise RefusedError(f"{remote}:{ref} refused: its newest commit is not signed by a key this machine "
                               f"trusts for remote {remote!r} ({msg}); nothing was downloaded or staged")
        raise ClientError(f"cannot fetch {remote}:{ref}: {msg}")
    commit = sr.rev_parse(f"{remote}:{ref}")
    if commit is None:
        raise ClientError(f"{remote}:{ref}: ostree pulled it but has no such ref")
    sig = sr.signatures(commit, remote)
    if sig.state != "valid":
        raise RefusedError(f"{remote}:{ref} refused: commit {commit[:12]} is {sig.state} (not signed by a key this "
                           f"machine trusts for remote {remote!r}: {'; '.join(sig.detail) or 'no signature'}); "
                           "nothing was staged")
    return commit


def _verified_remote(sr: Sysroot, remote: str) -> None:
    conf = sr.remote_config(remote)
    if conf is None:
        raise ClientError(f"remote {remote!r} is not configured on this machine (ostree remote list)")
    if not conf.get("url"):
        raise ClientError(f"remote {remote!r} has no URL: this image follows no update source; follow one with "
                          "deb-bootc switch REMOTE:REF after adding the remote (docs/client.md)")
    if not sr.remote_verifies(remote):
        raise RefusedError(f"remote {remote!r} ({conf['url']}) has gpg-verify=false: its updates cannot be verified; "
                           "re-add it with its signing key (docs/client.md, 'Migrating older machines')")


def _changes(sr: Sysroot, cur: Deployment, commit: str) -> packages.Changes | None:
    old = sr.packages_of(cur.checksum, sr.deployment_dir(cur))
    new = sr.packages_of(commit)
    return None if old is None or new is None else packages.diff(old, new)


def _report(sr: Sysroot, cur: Deployment, commit: str, what: str, as_json: bool) -> None:
    version = sr.metadata(commit, "version")
    changes = _changes(sr, cur, commit)
    if as_json:
        print(json.dumps({"update": True, "from": {"version": cur.version, "checksum": cur.checksum},
                          "to": {"version": version, "checksum": commit, "origin": what},
                          "changes": changes.to_json() if changes else None}, indent=2))
        return
    print(f"update available: {what} version {version or '(none)'} (commit {commit[:12]}); "
          f"running {cur.version or '(none)'} ({cur.checksum[:12]})")
    if changes is None:
        print("  (the update records no package list: what changes is known after the download)")
    elif changes.empty:
        print("  no package changes")
    else:
        print(f"  packages: {changes.summary()}")
        print("\n".join(changes.lines()))


def _deploy_args(sr: Sysroot, osname: str) -> list[str]:
    return [f"--os={osname}", *(["--stage"] if sr.live else [])]


def _newest(deps: list[Deployment], cur: Deployment) -> Deployment:
    staged = [d for d in deps if d.staged]
    return staged[0] if staged else cur


def upgrade(sr: Sysroot, check: bool, as_json: bool) -> int:
    if not check:
        require_root()
    deps = sr.deployments(signatures=False)
    cur = sr.default(deps)
    if cur.origin.image:
        return _upgrade_image(sr, cur, deps, check)
    if not cur.origin.remote or not cur.origin.ref:
        raise ClientError(f"the running deployment follows {cur.origin.describe()}, no remote: nothing to upgrade "
                          "from; follow one with deb-bootc switch REMOTE:REF or docker://HOST/NAME:TAG")
    remote, ref = cur.origin.remote, cur.origin.ref
    _verified_remote(sr, remote)
    commit = _pull_metadata(sr, remote, ref)
    if commit in (cur.checksum, _newest(deps, cur).checksum):
        which = "staged" if commit != cur.checksum else "running"
        if as_json:
            print(json.dumps({"update": False, "checksum": commit, "origin": f"{remote}:{ref}"}))
        else:
            print(f"no update: {remote}:{ref} is at {commit[:12]}, which this machine already has {which}")
        return NO_UPDATE
    _report(sr, cur, commit, f"{remote}:{ref}", as_json)
    if check:
        return OK
    if sr.admin("upgrade", *_deploy_args(sr, cur.osname), quiet=False, check=False).rc != 0:
        _fail(f"{remote}:{ref}")
    return _staged(sr, commit)


def _fail(what: str) -> NoReturn:
    raise ClientError(f"ostree could not deploy {what} (see its message above); the running system is unchanged")


def _staged(sr: Sysroot, commit: str) -> int:
    deps = sr.deployments(signatures=False)
    new = next((d for d in deps if d.checksum == commit and not d.booted), None)
    if new is None:
        raise ClientError(f"commit {commit[:12]} was fetched but no deployment of it exists; see ostree admin status")
    how = "staged" if new.staged else "deployed"
    print(f"{how} version {new.version or '(none)'} ({commit[:12]}); reboot to use it "
          "(deb-bootc rollback goes back to the previous one)")
    return OK


def switch(sr: Sysroot, target: str) -> int:
    require_root()
    deps = sr.deployments(signatures=False)
    cur = sr.default(deps)
    if target.startswith(image.TRANSPORTS):
        return _switch_image(sr, cur, image.check_reference(target))
    remote, ref = parse.split_refspec(target)
    if not remote or not ref or "://" in target:
        raise UsageError(f"{target!r}: give REMOTE:REF (a configured ostree remote), docker://HOST/NAME:TAG or "
                         "oci:/PATH/TO/LAYOUT:TAG")
    _verified_remote(sr, remote)
    commit = _pull_metadata(sr, remote, ref)
    res = sr.ostree("pull", remote, ref, quiet=False, check=False)
    if res.rc != 0:
        if parse.is_signature_error(res.err):
            raise RefusedError(f"{target} refused: {last_line(res.err)}; nothing was deployed")
        raise ClientError(f"cannot fetch {target}: {last_line(res.err)}")
    if sr.admin("deploy", *_deploy_args(sr, cur.osname), target, quiet=False, check=False).rc != 0:
        _fail(target)
    return _staged(sr, commit)


def _import(sr: Sysroot, osname: str, reference: str, tag: str, store: str) -> str:
    """Commit the image tagged ``tag`` in the store (once per manifest digest); the commit checksum."""
    img = image.read(store, tag, reference)
    branch = image.local_ref(reference)
    have = sr.rev_parse(branch)
    if have and sr.metadata(have, DIGEST_KEY) == img.digest:
        return have
    scratch = os.path.join(sr.state_dir(osname), "tmp")
    os.makedirs(scratch, mode=0o700, exist_ok=True)
    work = tempfile.mkdtemp(prefix="import-", dir=scratch)
    try:
        root = image.unpack(img, work)
        version = img.labels.get(image.VERSION_LABEL)
        sr.ostree("commit", f"--branch={branch}", f"--tree=dir={root}", "--no-bindings",
                  f"--subject=imported from {reference}", f"--add-metadata-string={IMAGE_KEY}={reference}",
                  f"--add-metadata-string={DIGEST_KEY}={img.digest}",
                  *([f"--add-metadata-string=version={version}"] if version else []))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    commit = sr.rev_parse(branch)
    if commit is None:
        raise ClientError(f"ostree commit of {reference} left no ref {branch}")
    return commit


def _deploy_image(sr: Sysroot, cur: Deployment, reference: str, commit: str) -> int:
    branch = image.local_ref(reference)
    scratch = os.path.join(sr.state_dir(cur.osname), "tmp")
    os.makedirs(scratch, mode=0o700, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=scratch, suffix=".origin") as fh:
        fh.write(f"[origin]\nrefspec={branch}\n\n[deb-bootc]\nimage={reference}\n")
        fh.flush()
        ok = sr.admin("deploy", *_deploy_args(sr, cur.osname), f"--origin-file={fh.name}", commit, quiet=False,
                      check=False).rc == 0
    if not ok:
        _fail(reference)
    return _staged(sr, commit)


def _switch_image(sr: Sysroot, cur: Deployment, reference: str) -> int:
    store = os.path.join(sr.state_dir(cur.osname), image.STORE)
    tag = image.pull(reference, store)
    commit = _import(sr, cur.osname, reference, tag, store)
    if commit == cur.checksum:
        print(f"this machine already runs {reference} ({commit[:12]})")
        return NO_UPDATE
    return _deploy_image(sr, cur, reference, commit)


def _upgrade_image(sr: Sysroot, cur: Deployment, deps: list[Deployment], check: bool) -> int:
    reference = cur.origin.image or ""
    if check:
        from .runner import run

        res = run(["skopeo", "inspect", "--no-tags", reference], check=False)
        if res.rc != 0:
            raise ClientError(f"cannot inspect {reference}: {last_line(res.err)}")
        digest = json.loads(res.out).get("Digest")
        mine = {sr.metadata(d.checksum, DIGEST_KEY) for d in (cur, _newest(deps, cur))}
        if digest in mine:
            print(f"no update: {reference} is {digest}, which this machine already has")
            return NO_UPDATE
        print(f"update available: {reference} is now {digest} (verified against the policy when fetched)")
        return OK
    store = os.path.join(sr.state_dir(cur.osname), image.STORE)
    tag = image.pull(reference, store)
    commit = _import(sr, cur.osname, reference, tag, store)
    if commit in (cur.checksum, _newest(deps, cur).checksum):
        print(f"no update: {reference} ({commit[:12]}) is what this machine already has")
        return NO_UPDATE
    return _deploy_image(sr, cur, reference, commit)


def has_set_default(sr: Sysroot) -> bool:
    """``ostree admin set-default`` (ostree >= 2023); older ones answer ``--help`` with the general usage."""
    res = sr.admin("set-default", "--help", check=False)
    return res.rc == 0 and "admin set-default" in res.out + res.err


def rollback(sr: Sysroot) -> int:
    require_root()
    deps = sr.deployments(signatures=False)
    cur = sr.default(deps)
    staged = [d for d in deps if d.staged]
    if staged:
        sr.admin("undeploy", str(staged[0].index))
        print(f"dropped the staged update {staged[0].version or ''} ({staged[0].checksum[:12]}); "
              f"the machine stays on {cur.version or ''} ({cur.checksum[:12]})")
        return OK
    target = next((d for d in deps if d.index > cur.index), None)
    if target is None:
        raise ClientError("there is no previous deployment to roll back to")
    if not has_set_default(sr):
        raise ClientError("this ostree has no 'ostree admin set-default' (ostree >= 2023.x has it); choose the "
                          "previous entry in the boot menu instead")
    sr.admin("set-default", str(target.index))
    print(f"the next boot starts {target.version or '(no version)'} ({target.checksum[:12]}); "
          f"{cur.version or '(no version)'} ({cur.checksum[:12]}) stays as the rollback. Reboot to apply.")
    return OK
