#!/usr/bin/env bash
# Runs tests/spec/cuda_spec.lua and tests/c/test_cuda.c against a CPU
# stand-in for the GPU (see module.c): builds a stand-in driver and module
# into build/stand_in and points ./ebl and the C test at them. Needs the
# CUDA toolkit's headers (no GPU, no driver). Prints both TAP streams;
# exit status 0 when every test passed.
set -eu
cd "$(dirname "$0")/../.."
CUDA=${CUDA:-/usr/local/cuda}
out=build/stand_in
mkdir -p "$out"
make --no-print-directory ebl >/dev/null
cc -O1 -shared -fPIC -Wall -Wextra -Werror -o "$out/libcuda.so.1" \
  tests/stand_in/driver.c
cc -O1 -shared -fPIC -Wall -Wextra -Werror -I. -Isrc -I"$CUDA/include" \
  -o "$out/ebl_cuda.so" tests/stand_in/module.c tests/stand_in/unused.c \
  gpu/backend.c gpu/memory.c gpu/iter.c -lm
make --no-print-directory "$out/test_cuda" >/dev/null
export LD_LIBRARY_PATH="$PWD/$out" EBL_CUDA_MODULE="$PWD/$out/ebl_cuda.so"
status=0
busted --lua=./ebl -o TAP tests/spec/cuda_spec.lua || status=1
# The C unit test of the CUDA table, also against the stand-in.
"$out/test_cuda" || status=1
exit $status
