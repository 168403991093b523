#!/usr/bin/env bash
# Packs what scripts/gpu_check.sh needs on a GPU machine that has the
# NVIDIA driver and the CUDA libraries but none of ebl's own dependencies
# and no package registry: the binaries built here (./ebl, the CUDA
# module, the GPU test and benchmark), the shared libraries they load
# that are not part of every Linux (Lua, readline, OpenBLAS, oneDNN,
# libjpeg, ...), and busted with its Lua modules. CUDA's own libraries
# are not packed: gpu_check.sh finds the machine's. Writes
# build/gpu_bundle.tar.gz, whose paths are relative to the repository's
# root; gpu_check.sh unpacks it when the machine cannot build.
set -eu
cd "$(dirname "$0")/.."
make --no-print-directory all build/bench/bench_cuda >/dev/null
if [ ! -f build/ebl_cuda.so ]; then
  echo "gpu_bundle: build/ebl_cuda.so was not built (nvcc or cuDNN missing)"
  exit 1
fi
libs=build/gpu_libs
rm -rf "$libs"
mkdir -p "$libs/lib/lua/5.4" "$libs/share/lua/5.4" "$libs/bin"

# Lua's modules for busted, links resolved.
cp -rL /usr/share/lua/5.4/. "$libs/share/lua/5.4/"
cp -rL /usr/lib/x86_64-linux-gnu/lua/5.4/. "$libs/lib/lua/5.4/"
cp /usr/bin/busted "$libs/bin/busted"

# Every library the binaries and those modules load, but the C library,
# the compiler's runtime and CUDA's.
skip='^(libc|libm|libdl|librt|libpthread|libgcc_s|libstdc\+\+|libcu|libnv)'
bins="ebl ebl.so build/ebl_cuda.so build/tests/test_cuda
      build/bench/bench_cuda $(find "$libs/lib/lua" -name '*.so')"
# shellcheck disable=SC2086
ldd $bins 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' |
  sort -u | while read -r name path; do
    [[ $name =~ $skip ]] && continue
    cp -L "$path" "$libs/lib/$name"
  done

tar -czf build/gpu_bundle.tar.gz ebl ebl.so build/ebl_cuda.so \
  build/tests/test_cuda build/bench/bench_cuda "$libs"
echo "build/gpu_bundle.tar.gz: $(du -h build/gpu_bundle.tar.gz | cut -f1)" \
  "($(ls "$libs/lib" | grep -c '\.so') libraries)"
