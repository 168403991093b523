// Device helpers shared by the kernel files: combining the values of a
// group of G consecutive threads of a block in a fixed tree.
#ifndef EBL_GPU_GROUP_CUH
#define EBL_GPU_GROUP_CUH

#define GROUP_THREADS 256

// The larger of a and b; NaN when either is (a's NaN first).
__device__ inline double max_nan(double a, double b) {
  if (a != a) return a;
  if (b != b) return b;
  return b > a ? b : a;
}

// Every lane of each group of G threads gets the maximum (Max) or the
// sum of the group's values, combined in a fixed tree; every thread of
// the block must call it. sh holds GROUP_THREADS doubles.
template <int G, bool Max>
__device__ double group_all(double v, double *sh) {
  if (G == 1) return v;
  int t = threadIdx.x, lane = t % G;
  sh[t] = v;
  __syncthreads();
  for (int s = G / 2; s > 0; s >>= 1) {
    if (lane < s)
      sh[t] = Max ? max_nan(sh[t], sh[t + s]) : sh[t] + sh[t + s];
    __syncthreads();
  }
  double r = sh[t - lane];
  __syncthreads();
  return r;
}

#endif
