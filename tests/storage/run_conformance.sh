#!/usr/bin/env bash
# ctest driver for the Python-side format checks (SPEC §6).
# usage: run_conformance.sh PYTHON CHECK_FORMAT CHECK_XARRAY WRITE_SAMPLE_FILE OUT_DIR
# Exits 77 (ctest SKIP_RETURN_CODE) when the project venv or the checker is absent.
set -u
python=$1 check_format=$2 check_xarray=$3 writer=$4 out=$5

if [[ ! -x "$python" ]] || ! "$python" -c 'import h5py, numpy, xarray, h5netcdf' 2>/dev/null; then
    echo "skipped: no python with h5py, numpy, xarray and h5netcdf at $python"
    exit 77
fi
if [[ ! -f "$check_format" ]]; then
    echo "skipped: $check_format not found"
    exit 77
fi

rm -rf "$out" && mkdir -p "$out"
"$writer" "$out" || exit 1
failed=0
for file in "$out"/*.h5; do
    # check_format.py opens files plainly; a killed writer's file needs
    # swmr=True, which check_xarray.py covers.
    [[ "$(basename "$file")" == killed.h5 ]] && continue
    echo "== check_format.py $(basename "$file")"
    "$python" "$check_format" "$file" || failed=1
done
echo "== check_xarray.py"
"$python" "$check_xarray" "$out" || failed=1
exit $failed
