#!/usr/bin/env bash
# Installs what the tests need (pinned versions) and runs every test.
#
#   tests/run-all.sh
#
# 1. tests/setup.sh: python-socketio and Flask-SocketIO in tests/.venv, socket.io-client in
#    tests/node_modules, tcpdump/tshark/chromium from apt (each step skipped when current).
# 2. cargo test: unit tests beside each decoder, and tests/it/ (the binary driven by the real
#    clients, raw hostile sockets, a browser, real captures and their golden traces).
# 3. fuzz/: the fuzz targets are checked to compile (docs/fuzzing.md runs them).
# 4. tests/links/: every source-chain anchor checked against the pinned wheels from PyPI, and
#    `dispel links --python` against a pip-installed Flask-SocketIO 5.7.0 stack.
# 5. cargo fmt --check and cargo clippy -D warnings (skipped, with a note, on a toolchain
#    without rustfmt or clippy).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== setup"
bash tests/setup.sh --with-chromium

echo "== cargo test"
# Everything is installed now: a test that would skip for want of a client fails instead.
DISPEL_REQUIRE_ALL=1 cargo test --all-targets

echo "== fuzz targets still compile against the decoders (running them: docs/fuzzing.md)"
cargo check --manifest-path fuzz/Cargo.toml --bins

echo "== source links against the released packages"
python3 tests/links/verify_anchors.py
bash tests/links/site_packages_test.sh target/debug/dispel

echo "== formatting and lints"
if cargo fmt --version >/dev/null 2>&1; then
  cargo fmt --all --check
else
  echo "rustfmt is not installed: formatting not checked"
fi
if cargo clippy --version >/dev/null 2>&1; then
  cargo clippy --all-targets -- -D warnings
else
  echo "clippy is not installed: lints not checked"
fi
