#!/usr/bin/env python3
"""Check the built-in call-chain tables of `dispel links` against the released wheels.

For both data files (src/links/chain-current.json and chain-seed.json) this downloads every
pinned wheel from PyPI (pip download --no-deps --only-binary=:all: NAME==VERSION) and checks
that each step's anchor is the stripped text of line_start in the wheel's copy of the file
(the repository path without a leading "src/"). CPython steps cannot be checked from PyPI and
are only counted.

Usage: python3 tests/links/verify_anchors.py [--cache DIR]
Exit status 0 when every checked step matches, 1 otherwise. Last line: "N passed, M failed".
Standard library only (Python 3.11+).
"""

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = [ROOT / "src" / "links" / "chain-current.json", ROOT / "src" / "links" / "chain-seed.json"]


def download(name, version, dest):
    """The wheel of NAME==VERSION in dest (downloaded once)."""
    dest.mkdir(parents=True, exist_ok=True)
    found = find_wheel(name, version, dest)
    if found:
        return found
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
           "--no-deps", "--only-binary=:all:", f"{name}=={version}", "-d", str(dest)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"pip download {name}=={version} failed: {res.stderr.strip()}")
    found = find_wheel(name, version, dest)
    if not found:
        raise RuntimeError(f"pip download {name}=={version} produced no wheel in {dest}")
    return found


def norm(name):
    return name.lower().replace("-", "_").replace(".", "_")


def find_wheel(name, version, dest):
    for whl in dest.glob("*.whl"):
        parts = whl.name.split("-")
        if len(parts) >= 2 and norm(parts[0]) == norm(name) and parts[1] == version:
            return whl
    return None


def wheel(wheels, key, cache):
    """The opened wheel of (name, version), downloaded once; the error if it cannot be had."""
    if key not in wheels:
        try:
            wheels[key] = zipfile.ZipFile(download(*key, cache / f"{key[0]}-{key[1]}"))
        except (RuntimeError, OSError, zipfile.BadZipFile) as err:
            wheels[key] = err
    return wheels[key]


def set_versions(stages):
    """Each package's version in a set: the one most of its steps name."""
    counts = {}
    for stage in stages:
        for step in stage["steps"]:
            key = (step["package"], step["version"])
            counts[key] = counts.get(key, 0) + 1
    best = {}
    for (package, version), n in counts.items():
        if n > best.get(package, (None, 0))[1]:
            best[package] = (version, n)
    return {p: v for p, (v, _) in best.items()}


def check_condition(cond, versions, wheels, cache):
    """None when the condition's `builtin` answer is what the set's own release of its
    package says (a file it has, or lacks, a text); else what is wrong. A condition on a
    package installed beside the set (`exists`) assumes the set installed by itself, where
    that package is missing: its file must be in the package's wheel, and `builtin` must be
    what a missing file gives."""
    version = versions.get(cond["package"])
    if version is None:
        return f"the set has no {cond['package']}"
    whl = wheel(wheels, (cond["package"], version), cache)
    if not isinstance(whl, zipfile.ZipFile):
        return f"no wheel ({whl})"
    try:
        text = whl.read(cond["path"]).decode("utf-8")
    except KeyError:
        text = None  # no such file: it has no text, and lacks every one
    if "exists" in cond:
        if text is None:
            return f"{cond['package']} {version} has no {cond['path']}"
        if cond["builtin"] != (not cond["exists"]):
            return f"builtin is {cond['builtin']}, but the set installed by itself has no {cond['package']}"
        return None
    holds = ("has" not in cond or (text is not None and cond["has"] in text)) and (
        "lacks" not in cond or text is None or cond["lacks"] not in text)
    if holds != cond["builtin"]:
        return f"builtin is {cond['builtin']}, but {cond['package']} {version} says {holds}"
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, help="keep downloaded wheels here (default: a temporary folder)")
    args = ap.parse_args()

    tmp = None
    cache = args.cache
    if cache is None:
        tmp = tempfile.TemporaryDirectory(prefix="dispel-wheels-")
        cache = Path(tmp.name)

    passed = 0
    failures = []
    cpython = 0
    for data in DATA:
        stages = json.loads(data.read_text(encoding="utf-8"))
        wheels = {}
        for stage in stages:
            for step in stage["steps"]:
                where = f"{data.name} {step['step_id']} {step['package']} {step['version']} {step['path']}:{step['line_start']}"
                if step["package"] == "cpython":
                    cpython += 1
                    continue
                whl = wheel(wheels, (step["package"], step["version"]), cache)
                if not isinstance(whl, zipfile.ZipFile):
                    failures.append(f"{where}: no wheel ({whl})")
                    continue
                member = step["path"].removeprefix("src/")
                try:
                    lines = whl.read(member).decode("utf-8").splitlines()
                except KeyError:
                    failures.append(f"{where}: {member} is not in {Path(whl.filename).name}")
                    continue
                n = step["line_start"]
                got = lines[n - 1].strip() if 0 < n <= len(lines) else None
                if got == step["anchor"]:
                    passed += 1
                else:
                    failures.append(f"{where}: expected {step['anchor']!r}, wheel has {got!r}")
                if "only_if" in step:
                    problem = check_condition(step["only_if"], set_versions(stages), wheels, cache)
                    if problem:
                        failures.append(f"{where}: only_if: {problem}")
                    else:
                        passed += 1
        for whl in wheels.values():
            if isinstance(whl, zipfile.ZipFile):
                whl.close()

    print(f"{cpython} CPython standard-library steps not checked (the stdlib is not on PyPI; "
          "they were verified against an installed CPython 3.12.1)")
    if failures:
        print(f"{len(failures)} anchor mismatches:")
        for f in failures:
            print(f"  FAIL {f}")
    if tmp is not None:
        tmp.cleanup()
    print(f"{passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
