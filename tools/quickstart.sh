#!/usr/bin/env bash
# Install, build, run the quickstart sweep and draw its phase diagram:
#   out/quickstart.h5, out/quickstart_phase.png, out/quickstart_traces.png
set -euo pipefail
cd "$(dirname "$0")/.."
# The tool only: the tests are tools/test.sh's business and take most of the build time.
BUILD_TARGETS=collapse-sweep bash tools/setup.sh
mkdir -p out
build/collapse-sweep run sweeps/quickstart.toml -o out/quickstart.h5 --overwrite
build/collapse-sweep info out/quickstart.h5
.venv/bin/python tools/plot_phase_diagram.py out/quickstart.h5 -o out/quickstart
