#!/usr/bin/env bash
# Installs what is missing (Debian packages, the Python venv) and builds.
# Idempotent: a second run only rebuilds what changed.
#   BUILD_DIR           build directory (default: build)
#   CMAKE_ARGS          extra arguments for the configure step
#   CUDA_ARCHITECTURES  CUDA targets, e.g. "80-real;90-real" (tools/test.sh) or
#                       native; unset: the project's default, every
#                       architecture from sm_80 up (cmake/cuda_architectures.cmake)
#   BUILD_TARGETS       what to build (default: everything, tests included;
#                       tools/quickstart.sh builds only collapse-sweep)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake pkg-config libhdf5-dev zlib1g-dev hdf5-tools libtomlplusplus-dev libcli11-dev
          libgtest-dev libgmock-dev liblapack-dev libssl-dev libopenmpi-dev openmpi-bin
          slurmctld slurmd slurm-client munge clang-14 libclang-rt-14-dev)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The analysis package and the format tests use their own venv: Debian's
# python3-* packages do not reach the python3 on PATH.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import h5py, numpy, matplotlib, xarray, h5netcdf" 2>/dev/null; then
    echo "setup: creating .venv"
    python3 -m venv .venv
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -r tools/requirements.txt
fi
# The collapse_sweep package (python/), editable, so tools/plot_phase_diagram.py
# and collapse-sweep-plot run this tree's code; reinstalled when the venv's
# copy points elsewhere (another checkout) or is missing.
if [ "$(.venv/bin/python -c 'import collapse_sweep, os; print(os.path.dirname(os.path.dirname(collapse_sweep.__file__)))' 2>/dev/null)" != "$PWD/python" ]; then
    echo "setup: installing the collapse_sweep package (pip install -e ./python)"
    # setuptools prints a generic warning about editable installs that does
    # not apply here; the output is shown only when the install fails.
    if ! pip_output=$(.venv/bin/pip install -q -e ./python 2>&1); then
        echo "$pip_output" >&2
        echo "setup: pip install -e ./python failed" >&2
        exit 1
    fi
fi

build_dir=${BUILD_DIR:-build}
# Said every time, so a build directory configured by tools/test.sh (reduced
# list) goes back to the full default when built for use, and back again.
if [ -n "${CUDA_ARCHITECTURES:-}" ]; then
    cuda_architectures=("-DCMAKE_CUDA_ARCHITECTURES=$CUDA_ARCHITECTURES")
else
    cuda_architectures=(-UCMAKE_CUDA_ARCHITECTURES)
fi
# shellcheck disable=SC2086
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release "${cuda_architectures[@]}" ${CMAKE_ARGS:-} >/dev/null
# shellcheck disable=SC2086
cmake --build "$build_dir" -j"$(nproc)" ${BUILD_TARGETS:+--target $BUILD_TARGETS}
