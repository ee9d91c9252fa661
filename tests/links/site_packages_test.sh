#!/usr/bin/env bash
# End-to-end test of `dispel links --python` / `--site-packages` on a real install of the
# newest Flask-SocketIO stack (tests/links/requirements-latest.txt, every package pinned).
#
# Usage: tests/links/site_packages_test.sh PATH/TO/dispel [WORKDIR]
#   WORKDIR (optional) keeps the venv between runs; default: a temporary folder, removed.
# Needs python3 (3.11+, with venv) and access to PyPI. Last line: "N passed, M failed";
# exit status 0 only when nothing failed.
set -euo pipefail

BIN=${1:?usage: $0 PATH/TO/dispel [WORKDIR]}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
HERE=$(cd "$(dirname "$0")" && pwd)
if [ -n "${2:-}" ]; then
    WORK=$2
    mkdir -p "$WORK"
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/dispel-links-XXXXXX")
    trap 'rm -rf "$WORK"' EXIT
fi

VENV=$WORK/venv-latest
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$HERE/requirements-latest.txt"

"$BIN" links --python "$VENV/bin/python" --format json >"$WORK/python.json"
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
"$BIN" links --site-packages "$SITE" --format json >"$WORK/site.json"
"$BIN" links --python "$VENV/bin/python" --color never >"$WORK/text.txt"
"$BIN" links --python "$VENV/bin/python" --format md >"$WORK/md.md"

"$VENV/bin/python" - "$WORK" "$HERE/requirements-latest.txt" <<'PY'
import json
import re
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

work = Path(sys.argv[1])
pins = {}
for line in Path(sys.argv[2]).read_text().splitlines():
    line = line.split("#", 1)[0].strip()
    if line:
        name, ver = line.split("==")
        pins[re.sub(r"[-_.]+", "-", name).lower()] = ver

# Steps whose code is gone from this stack, by step_id, and why.
EXPECTED_MISSING = {}
# Steps whose line changed, linked to their function instead, and why.
EXPECTED_FUNCTION = {
    "sio_connect.6": "python-socketio 5.17+ changed BaseManager.connect's signature (sid, not eio_sid)",
    "diagnoses.6": "python-engineio after 4.13.3 reads last_ping once: the ping-timeout test is one line",
}
GITEA = {"flask-socketio", "python-socketio", "python-engineio"}

passed = 0
failed = []


def check(ok, what):
    global passed
    if ok:
        passed += 1
    else:
        failed.append(what)


site = Path(sysconfig.get_path("purelib"))
stdlib = Path(sysconfig.get_path("stdlib"))
pyver = "%d.%d.%d" % sys.version_info[:3]
installed = {re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d.version for d in metadata.distributions()}

for pkg, ver in pins.items():
    check(installed.get(pkg) == ver, f"{pkg}=={ver} is installed (found {installed.get(pkg)})")

stages = json.loads((work / "python.json").read_text())
check(isinstance(stages, list) and len(stages) == 14, "14 stages in the JSON output")
missing = set()
seen_gitea = set()
steps = [s for st in stages for s in st["steps"]]
check(len(steps) > 150, f"the whole chain is there ({len(steps)} steps)")
for s in steps:
    sid, pkg = s["step_id"], s["package"]
    if s.get("status") == "not_found":
        missing.add(sid)
        check(s["url"] is None, f"{sid}: a step not found has no url")
        continue
    check(s.get("status") in ("same", "relocated", "function"), f"{sid}: status {s.get('status')!r}")
    if s.get("status") == "function":
        check(sid in EXPECTED_FUNCTION, f"{sid}: linked to its function, unexpectedly")
    url = s["url"] or ""
    frag = f"#L{s['line_start']}" + (f"-L{s['line_end']}" if s["line_end"] > s["line_start"] else "")
    check(url.endswith(frag), f"{sid}: {url} ends with {frag}")
    if pkg == "cpython":
        check(s["version"] == pyver, f"{sid}: CPython version {s['version']} is the interpreter's {pyver}")
        check(url.startswith(f"https://github.com/python/cpython/blob/v{pyver}/Lib/"), f"{sid}: {url}")
        path = stdlib / s["path"].removeprefix("Lib/")
    else:
        want = pins.get(pkg)
        check(s["version"] == want, f"{sid}: {pkg} version {s['version']} is the installed {want}")
        tag = f"v{want}" if s["repo"].lower().startswith("miguelgrinberg/") or pkg == "h11" else want
        check(s["tag"] == tag, f"{sid}: tag {s['tag']} (expected {tag})")
        if pkg in GITEA:
            prefix = f"https://code.miguelgrinberg.com/{s['repo']}/src/tag/{tag}/{s['path']}#"
            seen_gitea.add(pkg)
        else:
            prefix = f"https://github.com/{s['repo']}/blob/{tag}/{s['path']}#"
        check(url.startswith(prefix), f"{sid}: {url} starts with {prefix}")
        path = site / s["path"].removeprefix("src/")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        got = lines[s["line_start"] - 1].strip()
    except (OSError, IndexError) as err:
        got = f"<{err}>"
    if s.get("status") == "function":
        name = s["symbol"].rsplit(".", 1)[-1]
        check(got.startswith((f"def {name}(", f"async def {name}(", f"class {name}")),
              f"{sid}: line {s['line_start']} of {path.name} is {got!r}, not the definition of {name}")
    else:
        check(got == s["anchor"], f"{sid}: line {s['line_start']} of {path.name} is {got!r}, not the anchor {s['anchor']!r}")

for pkg in sorted(GITEA):
    check(pkg in seen_gitea, f"code.miguelgrinberg.com links for {pkg}")
for sid in sorted(missing - EXPECTED_MISSING.keys()):
    check(False, f"{sid}: not found in the installed stack, unexpectedly")
for sid, why in EXPECTED_MISSING.items():
    check(sid in missing, f"{sid} should be reported as not found ({why})")
for sid, why in EXPECTED_FUNCTION.items():
    check(any(s["step_id"] == sid and s.get("status") == "function" for s in steps),
          f"{sid} should be linked to its function ({why})")

# --site-packages alone keeps the built-in CPython steps and says so.
site_steps = [s for st in json.loads((work / "site.json").read_text()) for s in st["steps"]]
cpy = [s for s in site_steps if s["package"] == "cpython"]
check(cpy and all(s.get("status") == "builtin" for s in cpy), "--site-packages keeps CPython steps built in")
check([s["url"] for s in site_steps if s["package"] != "cpython"] ==
      [s["url"] for s in steps if s["package"] != "cpython"], "--site-packages and --python agree")

text = (work / "text.txt").read_text()
check("\x1b[" not in text, "no ANSI escapes with --color never")
check("relocated: was" in text and "linked to its function" in text, "text output says what moved and what changed")
md = (work / "md.md").read_text()
check("](https://code.miguelgrinberg.com/miguelgrinberg/python-socketio/src/tag/v5.18.1/" in md, "Markdown links")

for f in failed:
    print("FAIL", f)
print(f"{passed} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
PY
