"""``--chain``: build several sources in order, each able to build-depend on the ones before it.

Successful results are published to a local signed apt repository in ``RESULTDIR/chain-repo`` (written
with :mod:`debarchive.aptrepo`, the same writer the orchestrator's tag repositories use), which every later
build gets as an extra apt source. Each package gets its own result subdirectory and ``result.json``;
``RESULTDIR/result.json`` summarises the chain. It stops at the first failure unless ``recurse`` is set, in
which case failed builds are retried after the others (as mock does) until no retry makes progress.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

from deb_mock.chroot.paths import CachePaths, default_cache_dir
from deb_mock.request import AptSource, BuildRequest, BuildResult, ExitCode
from deb_mock.session.run import run_build
from debarchive import aptrepo
from debarchive.signing import SigningKey

CHAIN_SUITE = "chain"


class ChainRepo:
    def __init__(self, root: Path, key: SigningKey) -> None:
        self.root = root
        self.key = key
        self.entries: dict[str, aptrepo.PackageEntry] = {}
        root.mkdir(parents=True, exist_ok=True)
        self.key_path = key.export_public(root / "key.asc")

    def add(self, result: BuildResult) -> None:
        assert result.resultdir is not None
        for f in result.files:
            if not f.name.endswith((".deb", ".udeb")):
                continue
            filename = aptrepo.pool_path(result.source["name"], f.name)
            aptrepo.add_to_pool(self.root, result.resultdir / f.name, filename)
            entry = aptrepo.scan_deb(self.root / filename, filename)
            self.entries[f"{entry.name}:{entry.arch}"] = entry
        aptrepo.publish(self.root, CHAIN_SUITE, packages=self.entries.values(), key=self.key, origin="deb-mock chain")

    def source(self) -> AptSource:
        return AptSource(f"file:{self.root}", CHAIN_SUITE, ("main",), str(self.key_path))


def _relative(path: Path | None, base: Path) -> str | None:
    return str(path.relative_to(base)) if path is not None else None


def _subdir(resultdir: Path, index: int, src: str | Path) -> Path:
    name = Path(str(src).rstrip("/")).name.removesuffix(".dsc") or f"pkg{index}"
    return resultdir / f"{index:02d}-{name}"


def run_chain(
    template: BuildRequest,
    sources: list[str | Path],
    *,
    recurse: bool = False,
    on_result: Callable[[BuildResult], None] | None = None,
) -> tuple[int, list[BuildResult]]:
    """Build ``sources`` in order with ``template``'s settings; return (exit code, results)."""
    resultdir = template.resultdir
    resultdir.mkdir(parents=True, exist_ok=True)
    cache = CachePaths(template.cache_dir or default_cache_dir())
    repo = ChainRepo(resultdir / "chain-repo", SigningKey.ensure(cache.root / "keys" / "chain"))
    aptrepo.publish(repo.root, CHAIN_SUITE, packages=(), key=repo.key, origin="deb-mock chain")
    pending = list(enumerate(sources))
    results: dict[int, BuildResult] = {}
    while pending:
        failed: list[tuple[int, str | Path]] = []
        for index, src in pending:
            req = dataclasses.replace(
                template,
                source=src,
                resultdir=_subdir(resultdir, index, src),
                extra_sources=[*template.extra_sources, repo.source()],
            )
            res = run_build(req)
            results[index] = res
            if on_result:
                on_result(res)
            if res.exit_code == ExitCode.INTERRUPTED:
                break
            if res.state == "success":
                repo.add(res)
            else:
                failed.append((index, src))
                if not recurse:
                    break
        interrupted = any(r.exit_code == ExitCode.INTERRUPTED for r in results.values())
        if interrupted or not recurse or not failed or len(failed) == len(pending):
            break
        pending = failed
    ordered = [results[i] for i in sorted(results)]
    all_ok = len(ordered) == len(sources) and all(r.state == "success" for r in ordered)
    if any(r.exit_code == ExitCode.INTERRUPTED for r in ordered):
        code = int(ExitCode.INTERRUPTED)
    else:
        code = int(ExitCode.SUCCESS if all_ok else ExitCode.CHAIN_PARTLY_FAILED)
    summary = {
        "state": "success" if all_ok else "failed",
        "exit_code": code,
        "builds": [
            {
                "source": str(sources[i]),
                "resultdir": _relative(results[i].resultdir, resultdir),
                "state": results[i].state,
                "exit_code": results[i].exit_code,
                **({"error": results[i].error} if results[i].error else {}),
            }
            for i in sorted(results)
        ],
        "not_built": [str(s) for i, s in enumerate(sources) if i not in results],
        "repo": "chain-repo",
    }
    (resultdir / "result.json").write_text(json.dumps(summary, indent=2) + "\n")
    return code, ordered
