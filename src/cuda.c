/* Finding and opening the CUDA module: the driver is asked first
   (dlopen of libcuda.so.1, cuInit, a device count), then ebl_cuda.so is
   looked for beside the program and opened; its entry point hands back
   the backend table. Each step runs once per process. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cuda.h"

/* Driver API entry points, declared by hand so that the core needs no
   CUDA header: CUresult and CUdevice are ints. */
typedef int (*cu_init_fn)(unsigned flags);
typedef int (*cu_count_fn)(int *count);
typedef int (*cu_device_fn)(int *device, int ordinal);
typedef int (*cu_name_fn)(char *name, int len, int device);

static pthread_once_t driver_once = PTHREAD_ONCE_INIT;
static pthread_once_t module_once = PTHREAD_ONCE_INIT;
static int driver_devices;                /* 0 until the driver says */
static cu_device_fn cu_device;
static cu_name_fn cu_name;
static const ebl_cuda_module *module;
static char reason[320] = "";

/* ---- the driver */

static void set_reason(const char *text) {
  snprintf(reason, sizeof reason, "%s", text);
}

/* Opens libcuda.so.1 and counts devices; sets reason on failure. */
static void open_driver(void) {
  void *drv = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!drv) {
    set_reason("no NVIDIA driver (libcuda.so.1 not found)");
    return;
  }
  cu_init_fn init = (cu_init_fn)dlsym(drv, "cuInit");
  cu_count_fn count = (cu_count_fn)dlsym(drv, "cuDeviceGetCount");
  cu_device = (cu_device_fn)dlsym(drv, "cuDeviceGet");
  cu_name = (cu_name_fn)dlsym(drv, "cuDeviceGetName");
  if (!init || !count || !cu_device || !cu_name) {
    set_reason("the NVIDIA driver lacks cuInit or cuDeviceGetCount");
    return;
  }
  int rc = init(0), n = 0;
  if (rc != 0) {
    snprintf(reason, sizeof reason, "the NVIDIA driver did not start "
             "(cuInit error %d)", rc);
    return;
  }
  if (count(&n) != 0 || n < 1) {
    set_reason("the NVIDIA driver reports no CUDA device");
    return;
  }
  driver_devices = n;
}

/* ---- the module */

/* Writes the folder of path (without the last '/') into dir. */
static void folder_of(const char *path, char *dir, size_t len) {
  snprintf(dir, len, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = '\0';
  else snprintf(dir, len, ".");
}

/* Tries the places an ebl_cuda.so may lie relative to folder dir: a
   build tree (dir/build, or dir itself and its parent for programs in
   build/tests and build/bench) and an installation ($PREFIX/bin next to
   $PREFIX/lib/ebl). Returns the opened handle or NULL. */
static void *open_near(const char *dir) {
  static const char *const places[] = {
    "%s/build/ebl_cuda.so", "%s/ebl_cuda.so", "%s/../ebl_cuda.so",
    "%s/../lib/ebl/ebl_cuda.so"
  };
  char path[PATH_MAX + 64];
  for (size_t i = 0; i < sizeof places / sizeof places[0]; i++) {
    snprintf(path, sizeof path, places[i], dir);
    if (access(path, R_OK) != 0) continue;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h) return h;
    snprintf(reason, sizeof reason, "cannot open %.150s: %.150s", path,
             dlerror());
  }
  return NULL;
}

/* The module's handle: $EBL_CUDA_MODULE, else near the shared object
   holding this code (ebl.so), else near the running program. */
static void *find_module(void) {
  char dir[PATH_MAX], exe[PATH_MAX];
  const char *env = getenv("EBL_CUDA_MODULE");
  Dl_info info;
  if (env && *env) {
    void *h = dlopen(env, RTLD_NOW | RTLD_LOCAL);
    if (!h)
      snprintf(reason, sizeof reason, "cannot open EBL_CUDA_MODULE=%.120s: "
               "%.150s", env, dlerror());
    return h;
  }
  void *h = NULL;
  if (dladdr((void *)find_module, &info) && info.dli_fname &&
      strchr(info.dli_fname, '/')) {
    folder_of(info.dli_fname, dir, sizeof dir);
    h = open_near(dir);
  }
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (!h && n > 0) {
    exe[n] = '\0';
    folder_of(exe, dir, sizeof dir);
    h = open_near(dir);
  }
  if (!h && reason[0] == '\0')
    set_reason("the CUDA module ebl_cuda.so was not found (it is built "
               "when nvcc is present; EBL_CUDA_MODULE may name it)");
  return h;
}

/* Opens the module and starts it, once. */
static void open_module(void) {
  pthread_once(&driver_once, open_driver);
  if (driver_devices < 1) return;
  void *h = find_module();
  if (!h) return;
  ebl_cuda_entry_fn entry = (ebl_cuda_entry_fn)dlsym(h, EBL_CUDA_ENTRY);
  if (!entry) {
    set_reason("ebl_cuda.so has no entry point " EBL_CUDA_ENTRY);
    return;
  }
  ebl_cuda_host host = {sizeof(ebl_backend), sizeof(ebl_tensor), ebl_fail};
  module = entry(&host);
  if (!module)
    snprintf(reason, sizeof reason, "the CUDA module did not start: %.250s",
             ebl_error());
}

/* The started module, or NULL. */
static const ebl_cuda_module *started(void) {
  pthread_once(&module_once, open_module);
  return module;
}

/* Fails naming fn and the reason CUDA is missing. */
static ebl_status unavailable(const char *fn) {
  return ebl_fail(EBL_EDEVICE, "%s: cuda is not available (%s)", fn,
                  ebl_cuda_unavailable_reason());
}

/* ---- the core's functions */

const ebl_backend *ebl_cuda_backend(void) {
  const ebl_cuda_module *m = started();
  return m ? m->backend : NULL;
}

int ebl_cuda_available(void) { return started() != NULL; }

const char *ebl_cuda_unavailable_reason(void) {
  return started() ? "" : reason;
}

int ebl_cuda_device_count(void) {
  pthread_once(&driver_once, open_driver);
  return driver_devices;
}

ebl_status ebl_cuda_device_name(char *buf, size_t len) {
  int dev = 0;
  if (ebl_cuda_device_count() < 1) return unavailable("device_name");
  if (cu_device(&dev, 0) != 0 || cu_name(buf, (int)len, dev) != 0)
    return ebl_fail(EBL_EDEVICE, "device_name: the driver gave no name");
  return EBL_OK;
}

ebl_status ebl_cuda_memory(ebl_cuda_memory_stats *stats) {
  const ebl_cuda_module *m = started();
  if (!m) {
    memset(stats, 0, sizeof *stats);
    return EBL_OK;
  }
  return m->memory(stats);
}

ebl_status ebl_cuda_empty_cache(void) {
  const ebl_cuda_module *m = started();
  return m ? m->empty_cache() : EBL_OK;
}

ebl_status ebl_cuda_synchronize(void) {
  const ebl_cuda_module *m = started();
  return m ? m->synchronize() : EBL_OK;
}

const ebl_cuda_reference *ebl_cuda_reference_timings(void) {
  const ebl_cuda_module *m = started();
  return m ? m->reference : NULL;
}

ebl_status ebl_cuda_allow_tf32(int allow, int *previous) {
  const ebl_cuda_module *m = started();
  if (!m) return unavailable("allow_tf32");
  if (previous) *previous = m->tf32_allowed();
  m->allow_tf32(allow);
  return EBL_OK;
}
