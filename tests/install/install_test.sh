#!/bin/bash
# `cmake --install` into a temporary prefix gives a tree that works on its
# own: the binary, the example sweeps, the Slurm scripts, the tools and the
# docs in the GNUInstallDirs places, and the installed binary runs an
# installed sweep.
# usage: install_test.sh CMAKE BUILD_DIR
set -euo pipefail
cmake=${1:?usage: install_test.sh CMAKE BUILD_DIR}
build=${2:?usage: install_test.sh CMAKE BUILD_DIR}
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT

"$cmake" --install "$build" --prefix "$prefix" > "$prefix/install.log"
fail() { echo "FAIL: $*"; exit 1; }
for path in bin/collapse-sweep share/collapse-sweep/sweeps/quickstart.toml \
            share/collapse-sweep/sweeps/refinement_example.toml share/collapse-sweep/slurm/array.sbatch \
            share/collapse-sweep/slurm/mpi.sbatch share/collapse-sweep/tools/plot_phase_diagram.py \
            share/collapse-sweep/tools/requirements.txt share/doc/collapse-sweep/README.md \
            share/doc/collapse-sweep/cli.md share/doc/collapse-sweep/format.md share/doc/collapse-sweep/img; do
    [[ -e "$prefix/$path" ]] || fail "$path not installed"
done
[[ -x "$prefix/share/collapse-sweep/slurm/array.sbatch" ]] || fail "array.sbatch not executable"
# Nothing else leaks into the prefix (static libraries, headers, tests).
extra=$(cd "$prefix" && find . -type f ! -path './bin/collapse-sweep' ! -path './share/collapse-sweep/*' \
        ! -path './share/doc/collapse-sweep/*' ! -name install.log)
[[ -z "$extra" ]] || fail "unexpected installed files: $extra"

# The installed binary, from elsewhere, on an installed sweep (shortened).
cd "$prefix"
PATH="$prefix/bin:$PATH" collapse-sweep --version | grep -q collapse-sweep || fail "--version"
PATH="$prefix/bin:$PATH" collapse-sweep run share/collapse-sweep/sweeps/refinement_example.toml -o run.h5 \
    --backend cpu --quiet --set integrator.max_steps=200 --set grid.seeds=1
info=$(PATH="$prefix/bin:$PATH" collapse-sweep info run.h5)
grep -q "progress: 100 / 100 trajectories" <<< "$info" || fail "installed run incomplete: $info"
echo "install tree OK: $(cd "$prefix" && find . -type f | wc -l) files"
