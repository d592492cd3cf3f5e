#!/usr/bin/env bash
# The main job on the embedded defaults: install everything, then build a real Debian source package
# (hello 2.10-3 from the Debian mirror) for trixie with deb-mock, and show what came out.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$here/.venv}
bash "$here/scripts/install-deps.sh"
out=${RESULTDIR:-$here/_work/main-job}
mkdir -p "$out"
start=$(date +%s)
echo "==> deb-mock: building hello 2.10-3 for Debian trixie (first run bootstraps the root cache)"
"$VENV/bin/deb-mock" -r debian-trixie-amd64 --resultdir "$out/hello" \
  --rebuild http://deb.debian.org/debian/pool/main/h/hello/hello_2.10-3.dsc
echo "==> result: $out/hello"
"$VENV/bin/python" - "$out/hello/result.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"state {r['state']} (exit {r['exit_code']}); phases: " + ", ".join(f"{k} {v:.1f}s" for k, v in r["phases"].items()))
for f in r["files"]:
    print(f"  {f['name']:45} {f['size']:>8} bytes  sha256 {f['sha256'][:16]}…")
PY
echo "==> done in $(( $(date +%s) - start )) s; run it again to see the warm caches at work"
