/* A stand-in for the NVIDIA driver (libcuda.so.1): one device, named
   "CPU stand-in", so that the core goes on to open a CUDA module. */
#include <string.h>

int cuInit(unsigned flags) {
  (void)flags;
  return 0;
}

int cuDeviceGetCount(int *count) {
  *count = 1;
  return 0;
}

int cuDeviceGet(int *device, int ordinal) {
  *device = ordinal;
  return 0;
}

int cuDeviceGetName(char *name, int len, int device) {
  (void)device;
  if (len > 0) {
    strncpy(name, "CPU stand-in", (size_t)len - 1);
    name[len - 1] = '\0';
  }
  return 0;
}
