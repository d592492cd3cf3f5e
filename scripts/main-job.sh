#!/usr/bin/env bash
# The main job, on a fresh Debian machine (as root): install everything, start a hub (SQLite) and one
# builder here, create the tags and target over the Debian trixie mirror, then compose
# examples/hello-bootc.yaml: the compose asks the hub to build hello 2.10-3 (the builder runs deb-mock),
# waits for the signed tag repo, gathers hello from it, makes the OCI image and a qcow2 disk, boots the disk
# in QEMU and runs `hello` inside. Prints a summary; leaves nothing running. A second run reuses the hub's
# build, deb-mock's root cache and the compose's .deb pool.
#   HUB_PORT (default 8080), WORK (default _work/main-job), MANIFEST (default examples/hello-bootc.yaml)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$here/.venv}
WORK=${WORK:-$here/_work/main-job}
PORT=${HUB_PORT:-8080}
MANIFEST=${MANIFEST:-$here/examples/hello-bootc.yaml}
HUB=http://127.0.0.1:$PORT
ORCH="$VENV/bin/deb-orchestrator"
t0=$(date +%s)
step() { printf '\n==> [%4ds] %s\n' "$(( $(date +%s) - t0 ))" "$*"; }

bash "$here/scripts/install-deps.sh"
t_install=$(( $(date +%s) - t0 ))
mkdir -p "$WORK"

pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if curl -s -o /dev/null "$HUB/api/v1/health"; then
  echo "main-job: something already listens on $HUB; stop it or set HUB_PORT" >&2
  exit 2
fi
step "hub: $HUB (SQLite, data in $WORK/hub-data, log $WORK/hub.log)"
setsid "$ORCH" hub --data "$WORK/hub-data" --listen "127.0.0.1:$PORT" >"$WORK/hub.log" 2>&1 &
pids+=($!)
for _ in $(seq 120); do curl -sf -o /dev/null "$HUB/api/v1/health" && break; sleep 0.5; done
curl -sf -o /dev/null "$HUB/api/v1/health" || { echo "main-job: the hub did not start:"; tail -20 "$WORK/hub.log"; exit 1; } >&2
export DEB_ORCHESTRATOR_HUB=$HUB
DEB_ORCHESTRATOR_TOKEN=$(cat "$WORK/hub-data/admin.token")
export DEB_ORCHESTRATOR_TOKEN

# the same helper the tests use (deb_orchestrator.client.HubClient.setup_target); what exists is kept
step "tags trixie-base (the trixie mirror) ← trixie-dest ← trixie-build; target trixie: trixie-build → trixie-dest"
"$VENV/bin/python" - http://deb.debian.org/debian <<'PY'
import os, sys
from deb_orchestrator.client import HubClient
with HubClient(os.environ["DEB_ORCHESTRATOR_HUB"], os.environ["DEB_ORCHESTRATOR_TOKEN"]) as hub:
    names = hub.setup_target("trixie", mirror=sys.argv[1], suite="trixie")
    print("  " + ", ".join(f"{k} {v}" for k, v in names.items()))
PY
if [ ! -s "$WORK/builder.token" ]; then
  (umask 077; "$ORCH" add-host "$(hostname)-1" --arch amd64 | tail -n1 > "$WORK/builder.token")
fi
step "builder $(hostname)-1 (deb-mock; log $WORK/builder.log)"
setsid "$ORCH" builder --hub "$HUB" --token-file "$WORK/builder.token" --work-dir "$WORK/builder-work" \
  >"$WORK/builder.log" 2>&1 &
pids+=($!)

step "compose $MANIFEST: build hello 2.10-3 at the hub, gather, OSTree, OCI, qcow2, boot test"
t_compose0=$(date +%s)
set +e
"$VENV/bin/deb-bootc-compose" --config "$MANIFEST" --target-dir "$WORK/composes" --orchestrator "$HUB" \
  | tee "$WORK/compose.out"
rc=${PIPESTATUS[0]}
set -e
t_compose=$(( $(date +%s) - t_compose0 ))
if [ "$rc" != 0 ]; then
  echo "main-job: the compose failed (exit $rc); hub log $WORK/hub.log, builder log $WORK/builder.log" >&2
  exit "$rc"
fi
topdir=$(tail -n1 "$WORK/compose.out")

step "summary"
"$VENV/bin/python" - "$topdir" "$t_install" "$t_compose" "$(( $(date +%s) - t0 ))" "$WORK" "$PORT" <<'PY'
import json, sys
from pathlib import Path
top, t_install, t_compose, t_total, work, port = Path(sys.argv[1]), *sys.argv[2:]
meta = top / "metadata"
info = json.loads((meta / "composeinfo.json").read_text())
print(f"compose      {info['payload']['compose']['id']}  ({(top / 'STATUS').read_text().strip()})")
print(f"directory    {top}")
for variant, arches in json.loads((meta / "images.json").read_text())["payload"]["images"].items():
    for arch, images in arches.items():
        for img in images:
            p = top / img["path"]
            alloc = p.stat().st_blocks * 512
            print(f"image        {img['format']:10} {img['size'] / 2**20:8.1f} MiB ({alloc / 2**20:.1f} MiB allocated)  {p}")
rows = json.loads((meta / "packages.json").read_text())["payload"]["packages"]
for variant, arches in rows.items():
    for arch, pkgs in arches.items():
        built = [r for r in pkgs if r.get("orchestrator_build")]
        print(f"packages     {variant}/{arch}: {len(pkgs)}, from the hub: " + ", ".join(
            f"{r['name']} {r['version']} (build {r['orchestrator_build']}, task {r['orchestrator_task']})" for r in built))
import urllib.request
for ident in sorted({f"{r['source']}_{r['source_version'].split(':')[-1]}" for a in rows.values() for ps in a.values()
                     for r in ps if r.get("orchestrator_build")}):
    b = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/builds/{ident}"))
    hosts = sorted({t["host"] for t in b["tasks"] if t.get("host") and t["method"] == "buildArch"})
    took = f"{b['completed'] - b['created']:.0f}s" if b.get("completed") else "?"
    print(f"hub build    {ident}: build {b['id']} {b['state']} on {', '.join(hosts) or '?'}, {took} from submission "
          f"to completion")
builds_json = meta / "builds.json"
if builds_json.is_file():  # what the build phase asked the hub for (this compose is their requested_by)
    for ident, b in json.loads(builds_json.read_text())["payload"]["builds"].items():
        src = f"{b['git']['url']} at {b['git']['commit'][:12]}" if b.get("git") else b.get("ref", "")
        print(f"built        {ident}: build {b['build_id']}, task {b['task_id']} on {', '.join(b.get('hosts') or ['?'])}"
              f" ({'submitted by this compose' if b['submitted'] else 'built before: ' + str(b.get('requested_by'))}) "
              f"from {src}")
for log in sorted((top / "logs").glob("boot-test-*.json")):
    bt = json.loads(log.read_text())
    if isinstance(bt, dict) and "checks" not in bt:  # {variant/arch: report}
        reports = list(bt.values())
    else:
        reports = [bt]
    for r in reports:
        print(f"boot test    {'PASSED' if r.get('ok') else 'FAILED'} under {r.get('accel')}: shell after "
              f"{r.get('boot_seconds')}s; " + ", ".join(f"{c['name']} {'ok' if c['ok'] else 'FAIL'}" for c in r.get("checks", [])))
        for c in r.get("checks", []):
            if "hello" in c["name"]:
                print(f"             {c['name']}: {c['detail'].strip().splitlines()[0] if c['detail'].strip() else ''}")
print(f"times        install {t_install}s, compose {t_compose}s (build + image + boot), total {t_total}s")
print(f"browse       .venv/bin/deb-orchestrator hub --data {work}/hub-data --listen 127.0.0.1:{port}"
      f"  then open http://127.0.0.1:{port}/builds (and /tasks, /tags, /hosts)")
PY
step "done; the hub and the builder are stopped (run me again to see the warm caches at work)"
