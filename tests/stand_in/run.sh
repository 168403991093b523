#!/usr/bin/env bash
# Runs tests/spec/cuda_spec.lua against a CPU stand-in for the GPU (see
# module.c): builds a stand-in driver and module into build/stand_in and
# points ./ebl at them. Needs the CUDA toolkit's headers (no GPU, no
# driver). Prints busted's TAP; exit status 0 when every test passed.
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
LD_LIBRARY_PATH="$PWD/$out" EBL_CUDA_MODULE="$PWD/$out/ebl_cuda.so" \
  busted --lua=./ebl -o TAP tests/spec/cuda_spec.lua
