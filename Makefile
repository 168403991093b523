# ebl: build, test and run. `make` builds ./ebl and ./ebl.so; `make test`
# runs every suite; `make run` runs the main job. Both install what is
# missing (make deps) and build first.

PREFIX ?= /usr/local
CC ?= gcc
LUA_INC ?= /usr/include/lua5.4
BLAS_DIR ?= /usr/lib/x86_64-linux-gnu/openblas-openmp
CUDA ?= /usr/local/cuda
NVCC ?= $(shell command -v nvcc 2>/dev/null || \
          ( [ -x $(CUDA)/bin/nvcc ] && echo $(CUDA)/bin/nvcc ))
LUA ?= lua5.4

WARN := -Wall -Wextra -Werror
CFLAGS ?= -O3 -g
CFLAGS += -std=gnu11 $(WARN) -fPIC -fopenmp -pthread -Isrc -I$(LUA_INC)
LDFLAGS += -fopenmp -pthread
# OpenBLAS: the OpenMP build shares one thread pool with ebl's own loops.
BLAS_LIBS := -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR) -l:libopenblas.so.0
LIBS := $(BLAS_LIBS) -ldnnl -lz -ljpeg -lm
# The host links Lua dynamically and exports its symbols, so that Debian's
# Lua C modules (lfs, system, term) resolve against the same interpreter.
HOST_LIBS := -llua5.4 -lreadline -Wl,-E

DEPS := lua5.4 liblua5.4-dev libreadline-dev lua-busted libopenblas-dev \
        libopenblas0-openmp zlib1g-dev libjpeg-dev dataset-fashion-mnist \
        python3 python3-pexpect libdnnl-dev gnuplot-nox

CORE_SRC := $(wildcard src/*.c src/cpu/*.c src/engine/*.c src/data/*.c)
BIND_SRC := $(wildcard src/lua/*.c)
HOST_SRC := $(wildcard src/host/*.c)
LUA_LIB := $(sort $(wildcard lua/ebl/*.lua))
CTEST_SRC := $(wildcard tests/c/test_*.c)
BENCH_SRC := $(wildcard bench/bench_*.c)

CORE_OBJ := $(CORE_SRC:%.c=build/%.o)
BIND_OBJ := $(BIND_SRC:%.c=build/%.o) build/embedded.o
HOST_OBJ := $(HOST_SRC:%.c=build/%.o)
CTESTS := $(CTEST_SRC:tests/c/%.c=build/tests/%)
BENCHES := $(BENCH_SRC:bench/%.c=build/bench/%)

# The CUDA module (gpu/): built when nvcc and cuDNN's header are there,
# into build/ebl_cuda.so, which the core opens at run time (src/cuda.c);
# ./ebl and ebl.so link no CUDA library. sm_90 code plus PTX.
CUDA_LIB ?= $(CUDA)/lib64
CUDNN_INC ?= $(CUDA)/include
CUDNN_LIB ?= $(CUDA_LIB)
CUDNN_LIBS ?= -lcudnn
NVCC_FLAGS ?= -O3 -std=c++17 -gencode arch=compute_90,code=sm_90 \
              -gencode arch=compute_90,code=compute_90
GPU_OBJ := $(patsubst %.cu,build/%.o,$(wildcard gpu/*.cu)) \
           $(patsubst %.c,build/%.o,$(wildcard gpu/*.c))
ifneq ($(NVCC),)
ifneq ($(wildcard $(CUDNN_INC)/cudnn.h),)
CUDA_MODULE := build/ebl_cuda.so
endif
endif

.PHONY: all deps test run bench install clean parts gpu-bundle
all: parts ebl ebl.so $(CTESTS) $(CUDA_MODULE)

parts:
	@if [ -n "$(NVCC)" ]; then echo "nvcc: found ($(NVCC))"; \
	  else echo "nvcc: missing (CPU-only build)"; fi
	@if [ -f $(CUDNN_INC)/cudnn.h ]; then echo "cuDNN: found"; \
	  else echo "cuDNN: missing"; fi

build/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(filter build/gpu/%,$(patsubst %.c,build/%.o,$(wildcard gpu/*.c))): \
  CFLAGS += -I. -I$(CUDA)/include -I$(CUDNN_INC) -fvisibility=hidden

build/gpu/%.o: gpu/%.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_FLAGS) -Xcompiler -fPIC,-Wall,-Wextra,-fvisibility=hidden \
	  -Werror all-warnings -I. -Isrc -MMD -MP -c $< -o $@

build/ebl_cuda.so: $(GPU_OBJ)
	$(CC) -shared -o $@ $^ -L$(CUDA_LIB) -L$(CUDNN_LIB) \
	  -Wl,-rpath,$(CUDA_LIB) -Wl,-rpath,$(CUDNN_LIB) \
	  $(CUDNN_LIBS) -lcublas -lcudart -pthread -lm

build/embedded.c: scripts/embed.lua $(LUA_LIB)
	@mkdir -p build
	$(LUA) scripts/embed.lua $@ $(LUA_LIB)

build/libebl.a: $(CORE_OBJ)
	rm -f $@ && ar rcs $@ $^

ebl: $(HOST_OBJ) $(BIND_OBJ) build/libebl.a
	$(CC) $(LDFLAGS) -o $@ $(HOST_OBJ) $(BIND_OBJ) build/libebl.a \
	  $(HOST_LIBS) $(LIBS)

# The same module for a stock lua5.4: package.cpath must reach ebl.so.
ebl.so: $(BIND_OBJ) build/libebl.a
	$(CC) $(LDFLAGS) -shared -o $@ $(BIND_OBJ) build/libebl.a $(LIBS)

# The GPU unit test for the CPU stand-in of the CUDA module
# (tests/stand_in): the whole core linked in and its symbols exported,
# since the stand-in module calls the CPU's kernels.
build/stand_in/test_cuda: tests/c/test_cuda.c tests/c/tap.h build/libebl.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests/c $< -o $@ -rdynamic -Wl,--whole-archive \
	  build/libebl.a -Wl,--no-whole-archive $(LDFLAGS) $(LIBS)

build/tests/%: tests/c/%.c tests/c/tap.h build/libebl.a
	@mkdir -p build/tests
	$(CC) $(CFLAGS) -Itests/c $< -o $@ build/libebl.a $(LDFLAGS) $(LIBS)

build/bench/%: bench/%.c build/libebl.a
	@mkdir -p build/bench
	$(CC) $(CFLAGS) $< -o $@ build/libebl.a $(LDFLAGS) $(LIBS)

deps:
	@missing=$$(for p in $(DEPS); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
	    grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q \
	    $$missing; \
	fi

test: deps
	@$(MAKE) --no-print-directory all
	@bash tests/run

run: deps
	@$(MAKE) --no-print-directory all
	./ebl scripts/train.lua

bench: deps
	@$(MAKE) --no-print-directory all $(BENCHES)
	@for b in $(BENCHES); do echo "== $$b"; $$b || exit 1; done
	@if [ -f scripts/bench.lua ]; then ./ebl scripts/bench.lua; fi
	./ebl scripts/bench_train.lua

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/lua/5.4
	install -m 755 ebl $(DESTDIR)$(PREFIX)/bin/ebl
	install -m 755 ebl.so $(DESTDIR)$(PREFIX)/lib/lua/5.4/ebl.so
	@if [ -f build/ebl_cuda.so ]; then \
	  install -d $(DESTDIR)$(PREFIX)/lib/ebl && \
	  install -m 755 build/ebl_cuda.so $(DESTDIR)$(PREFIX)/lib/ebl/; fi

# Binaries and libraries for scripts/gpu_check.sh on a bare GPU machine.
gpu-bundle: deps
	@bash scripts/gpu_bundle.sh

clean:
	rm -rf build ebl ebl.so

-include $(shell find build -name '*.d' 2>/dev/null)
