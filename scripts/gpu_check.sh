#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA GPU (written for an H200):
# builds ebl and its CUDA module, runs the GPU tests (tests/c/test_cuda.c
# and tests/spec/cuda_spec.lua) and the GPU benchmarks
# (bench/bench_cuda.c, scripts/bench_cuda.lua), and ends with a short
# table. Each step has a time limit so that the steps after the build
# stay under eight minutes; a failing step is reported and the others
# still run. Logs go to $EBL_GPU_LOGS (default build/gpu_check/; point it
# at a folder that comes back from the machine). Exit status: 0 when
# every test passed.
#
# A machine without ebl's build dependencies (Lua, OpenBLAS, oneDNN, ...)
# and without a package registry runs the binaries of
# build/gpu_bundle.tar.gz instead, made elsewhere by scripts/gpu_bundle.sh
# (see docs/CUDA.md); CUDA's own libraries are then the machine's.
set -u
cd "$(dirname "$0")/.."
logs=${EBL_GPU_LOGS:-build/gpu_check}
mkdir -p "$logs"
status=0

step() { printf '\n== %s\n' "$*"; }

# Runs a step's command for at most $1 seconds, then kills it.
limit() { timeout -k 10 "$@"; }

# Counts a TAP log's lines: "P passed, F failed, S skipped".
tally() {
  awk '/^ok .*# SKIP/ { s++; next } /^ok / { p++; next }
       /^not ok / { f++ } END { printf "%d passed, %d failed, %d skipped",
       p, f, s }' "$1"
}

step "machine"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total \
    --format=csv,noheader | tee "$logs/gpu.txt"
else
  echo "nvidia-smi not found" | tee "$logs/gpu.txt"
fi

# Adds to LD_LIBRARY_PATH the folders holding the CUDA libraries that
# build/ebl_cuda.so needs and the loader does not find: the toolkit's,
# else those of Python's nvidia-* wheels.
find_cuda_libs() {
  local name path dir
  for name in $(ldd build/ebl_cuda.so | awk '/not found/ { print $1 }'); do
    path=$(find "${CUDA:-/usr/local/cuda}/" /usr/local/cuda*/lib64/ \
             /usr/lib/x86_64-linux-gnu/ \
             $(python3 -c 'import site; print(*site.getsitepackages())' \
               2>/dev/null) -name "$name" -print -quit 2>/dev/null)
    if [ -n "$path" ]; then
      dir=$(dirname "$path")
      export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
      echo "$name from $dir"
    else
      echo "gpu_check: $name not found"
    fi
  done
}

# cuDNN from the toolkit, else from Python's nvidia-cudnn wheel (its
# library has only a versioned name): make's arguments in cudnn.
cudnn=()
find_cudnn() {
  local dir lib
  [ -f "${CUDA:-/usr/local/cuda}/include/cudnn.h" ] && return
  dir=$(python3 -c 'import nvidia.cudnn, os
print(os.path.dirname(nvidia.cudnn.__file__))' 2>/dev/null || true)
  lib=$(ls "$dir"/lib/libcudnn.so.* 2>/dev/null | head -1)
  if [ -n "$dir" ] && [ -f "$dir/include/cudnn.h" ] && [ -n "$lib" ]; then
    cudnn=(CUDNN_INC="$dir/include" CUDNN_LIB="$dir/lib"
           CUDNN_LIBS="-l:$(basename "$lib")")
    echo "cuDNN from $dir"
  fi
}

# When the prebuilt module cannot be opened (its CUDA libraries differ
# from the machine's), builds it again here: it needs nvcc and cuDNN's
# header, not ebl's other dependencies.
rebuild_module() {
  local reason
  reason=$(./ebl -e 'io.write(ebl.cuda.available() and "" or
                               ebl.cuda.reason())')
  case $reason in
    *"cannot open"*|*"did not start"*|*"no entry point"*) ;;
    *) return ;;
  esac
  echo "the prebuilt module does not load: $reason"
  find_cudnn
  rm -f build/ebl_cuda.so
  if limit 200 make -j"$(nproc)" "${cudnn[@]}" build/ebl_cuda.so \
      >"$logs/build.log" 2>&1; then
    echo "rebuilt build/ebl_cuda.so here"
    find_cuda_libs
  else
    tail -20 "$logs/build.log"
  fi
}

# The prebuilt binaries and the libraries beside them.
use_bundle() {
  tar -xzf build/gpu_bundle.tar.gz || exit 1
  local libs=$PWD/build/gpu_libs
  export LD_LIBRARY_PATH="$libs/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export LUA_PATH="$libs/share/lua/5.4/?.lua;$libs/share/lua/5.4/?/init.lua;;"
  export LUA_CPATH="$libs/lib/lua/5.4/?.so;;"
  busted_cmd=(./ebl "$libs/bin/busted")
  find_cuda_libs
  rebuild_module
}

busted_cmd=(busted --lua=./ebl)
build=1
if [ -f build/gpu_bundle.tar.gz ] &&
   { [ -n "${EBL_GPU_BUNDLE:-}" ] || [ ! -f /usr/include/lua5.4/lua.h ]; }
then
  step "prebuilt binaries (build/gpu_bundle.tar.gz)"
  use_bundle
  build=0
fi

# What the CPU build needs (Makefile's DEPS); make deps installs it
# where a package registry can be reached.
missing=""
for h in /usr/include/lua5.4/lua.h /usr/include/readline/readline.h \
         /usr/include/zlib.h /usr/include/jpeglib.h \
         /usr/include/dnnl.h; do
  [ -f "$h" ] || missing="$missing $h"
done
[ -e /usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0 ] ||
  missing="$missing openblas-openmp"
[ $build = 1 ] && find_cudnn
if [ $build = 1 ] && [ -n "$missing" ]; then
  echo "gpu_check: missing for the build:$missing (run make deps, or"
  echo "  bring build/gpu_bundle.tar.gz: see scripts/gpu_bundle.sh)"
  exit 1
fi

if [ $build = 1 ]; then
  step "build (make all build/bench/bench_cuda)"
  if ! timeout 200 make -j"$(nproc)" "${cudnn[@]}" all \
      build/bench/bench_cuda >"$logs/build.log" 2>&1; then
    tail -30 "$logs/build.log"
    echo "gpu_check: the build failed (see $logs/build.log)"
    exit 1
  fi
  grep -E '^(nvcc|cuDNN):' "$logs/build.log"
fi
if [ ! -f build/ebl_cuda.so ]; then
  echo "gpu_check: build/ebl_cuda.so was not built (nvcc or cuDNN missing)"
  exit 1
fi
if ! ./ebl -e 'if not ebl.cuda.available() then
    print("cuda is not available: " .. ebl.cuda.reason()) os.exit(1) end
    print("cuda: " .. ebl.cuda.device_name())'; then
  exit 1
fi

step "C test (build/tests/test_cuda)"
limit 60 build/tests/test_cuda >"$logs/test_cuda.tap" 2>&1
grep -E '^not ok|^#' "$logs/test_cuda.tap" | head -40
c_tally=$(tally "$logs/test_cuda.tap")
echo "test_cuda: $c_tally"
grep -q '^not ok' "$logs/test_cuda.tap" && status=1
grep -q '^ok ' "$logs/test_cuda.tap" || status=1

step "busted spec (tests/spec/cuda_spec.lua)"
if [ $build = 0 ] || command -v busted >/dev/null; then
  limit 200 "${busted_cmd[@]}" -o TAP tests/spec/cuda_spec.lua \
    >"$logs/cuda_spec.tap" 2>&1
  grep -E '^not ok|^# ' "$logs/cuda_spec.tap" | head -60
  spec_tally=$(tally "$logs/cuda_spec.tap")
  grep -q '^not ok' "$logs/cuda_spec.tap" && status=1
  grep -q '^ok ' "$logs/cuda_spec.tap" || status=1
else
  spec_tally="not run: busted is not installed"
fi
echo "cuda_spec: $spec_tally"

step "benchmarks (build/bench/bench_cuda)"
limit 120 build/bench/bench_cuda 2>&1 | tee "$logs/bench.txt"

step "engine benchmark (scripts/bench_cuda.lua)"
limit 90 ./ebl scripts/bench_cuda.lua 2>&1 | tee "$logs/engine.txt"

step "summary: $(head -1 "$logs/gpu.txt")"
printf '%-12s %s\n' "test_cuda" "$c_tally" "cuda_spec" "$spec_tally"
grep -E '^(copy|add|mul|tanh|matmul|conv2d|fused) ' "$logs/bench.txt" |
  sed -E 's/  +/ /g'
grep -E '_iter_us' "$logs/engine.txt" | sed -E 's/^[a-z]+_iter_us +//'
exit $status
