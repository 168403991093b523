/* The tensor core: refcounted storage on a device and strided views on it.
   This layer knows nothing of Lua; errors are reported through ebl_error(). */
#ifndef EBL_TENSOR_H
#define EBL_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define EBL_MAX_DIMS 8

/* Passed as a dim to reductions and squeeze: all dims at once. */
#define EBL_DIM_ALL (-128)

typedef enum ebl_dtype {
  EBL_F32 = 0,
  EBL_F64 = 1,
  EBL_I32 = 2,
  EBL_U8 = 3,
  EBL_NDTYPES
} ebl_dtype;

typedef enum ebl_device {
  EBL_CPU = 0,
  EBL_CUDA = 1,
  EBL_NDEVICES
} ebl_device;

/* Status codes returned by every fallible core function. */
typedef enum ebl_status {
  EBL_OK = 0,
  EBL_EARG,        /* bad argument: shape, dtype, index, ... */
  EBL_ENOMEM,      /* allocation failed */
  EBL_EINTR,       /* stopped by the interrupt flag (Ctrl-C) */
  EBL_EDEVICE,     /* device or library failure */
  EBL_ENUMERIC     /* NaN or Inf where none may be */
} ebl_status;

/* Reference-counted block of memory on one device. data is 64-byte
   aligned. The count is changed atomically. */
typedef struct ebl_storage {
  void *data;
  size_t nbytes;
  int refcount;
  ebl_device device;
} ebl_storage;

/* A view: dtype, shape and strides (in elements) over a storage. A tensor
   value owns one reference to its storage; copy it only through
   ebl_tensor_view() and drop it with ebl_tensor_release(). A zeroed
   ebl_tensor (storage NULL) is "no tensor": releasing it does nothing. */
typedef struct ebl_tensor {
  ebl_storage *storage;
  ebl_dtype dtype;
  int ndim;
  int64_t shape[EBL_MAX_DIMS];
  int64_t stride[EBL_MAX_DIMS];
  int64_t offset;
} ebl_tensor;

/* ------------------------------------------------------------------ */
/* Conventions of this API.
   - Dims are 0-based; a negative dim counts from the end (-1 = last).
   - A function whose result parameter is `ebl_tensor *res` creates a new
     tensor value there (a view or a fresh allocation) without releasing
     what *res held before. res may point at the input tensor: then the
     input's reference is released and replaced by the result.
   - A function whose output parameter is `const ebl_tensor *out` writes
     into the existing elements of out (in-place). out may alias an input
     when it is that very tensor (same storage, offset and strides).
   - Functions named *_new allocate their result; the same name without
     _new writes into an existing tensor of the right shape.
   - On failure nothing is allocated, *res is left untouched, and
     ebl_error() holds a message naming the function and the values. */

/* ------------------------------------------------------------------ */
/* Errors */

/* The message of the last failure on this thread ("matmul: shapes ..."). */
const char *ebl_error(void);
/* Records a failure message (printf-style) and returns the status. */
ebl_status ebl_fail(ebl_status status, const char *fmt, ...)
  __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------------ */
/* Dtypes and devices */

/* Bytes of one element of dtype (4, 8, 4, 1). */
size_t ebl_dtype_size(ebl_dtype dtype);
/* "float32", "float64", "int32", "uint8". */
const char *ebl_dtype_name(ebl_dtype dtype);
/* The dtype called name (also "float", "double", "int", "byte");
   returns -1 when none is. */
int ebl_dtype_from_name(const char *name);
/* Nonzero for F32 and F64. */
int ebl_dtype_is_float(ebl_dtype dtype);
/* The dtype two operands are computed in: F64 > F32 > I32 > U8. */
ebl_dtype ebl_dtype_promote(ebl_dtype a, ebl_dtype b);
/* "cpu", "cuda". */
const char *ebl_device_name(ebl_device device);

/* ------------------------------------------------------------------ */
/* Storage and memory accounting */

/* Allocates a storage of nbytes (64-byte aligned, uninitialised) with a
   reference count of 1. */
ebl_status ebl_storage_new(ebl_storage **res, size_t nbytes,
                           ebl_device device);
/* Adds one reference. */
void ebl_storage_retain(ebl_storage *s);
/* Drops one reference; frees the storage when it was the last. */
void ebl_storage_release(ebl_storage *s);
/* Bytes held by live storages, all devices together. */
size_t ebl_memory_live(void);
/* Bytes held by live storages on one device. */
size_t ebl_memory_live_on(ebl_device device);
/* The highest ebl_memory_live() seen so far. */
size_t ebl_memory_peak(void);
/* Number of live storages. */
int64_t ebl_storage_count(void);
/* Storages allocated since the start (for "nothing allocated per
   iteration" checks). */
int64_t ebl_allocation_count(void);

/* ------------------------------------------------------------------ */
/* Threads: one count shared by OpenMP loops and OpenBLAS. */

/* Sets the thread count (n >= 1) of ebl's loops and of BLAS. */
void ebl_set_num_threads(int n);
/* The thread count in use. */
int ebl_get_num_threads(void);

/* ------------------------------------------------------------------ */
/* Tensor values: allocation, references, metadata */

/* An uninitialised tensor of the given shape (ndim 0..8, sizes >= 0). */
ebl_status ebl_tensor_empty(ebl_tensor *res, ebl_dtype dtype, int ndim,
                            const int64_t *shape, ebl_device device);
/* A tensor of the given shape filled with zeros. */
ebl_status ebl_tensor_zeros(ebl_tensor *res, ebl_dtype dtype, int ndim,
                            const int64_t *shape, ebl_device device);
/* An uninitialised tensor with t's dtype, shape and device. */
ebl_status ebl_tensor_empty_like(ebl_tensor *res, const ebl_tensor *t);
/* A zero tensor with t's dtype, shape and device. */
ebl_status ebl_tensor_zeros_like(ebl_tensor *res, const ebl_tensor *t);
/* A new tensor from row-major host memory holding numel elements of
   data_dtype, cast to dtype. */
ebl_status ebl_tensor_from_buffer(ebl_tensor *res, ebl_dtype dtype,
                                  int ndim, const int64_t *shape,
                                  const void *data, ebl_dtype data_dtype,
                                  ebl_device device);
/* Writes t's elements in row-major order to host memory as buf_dtype
   (numel elements). */
ebl_status ebl_tensor_to_buffer(const ebl_tensor *t, void *buf,
                                ebl_dtype buf_dtype);
/* res becomes another reference to src's view (storage retained). */
void ebl_tensor_view(ebl_tensor *res, const ebl_tensor *src);
/* Drops t's reference and zeroes t; a zeroed tensor is ignored. */
void ebl_tensor_release(ebl_tensor *t);
/* Number of elements (1 for a 0-dim tensor). */
int64_t ebl_tensor_numel(const ebl_tensor *t);
/* Nonzero when the elements are row-major and dense (size-1 dims may
   have any stride). */
int ebl_tensor_is_contiguous(const ebl_tensor *t);
/* The device of t's storage. */
ebl_device ebl_tensor_device(const ebl_tensor *t);
/* Address of element (0, ..., 0): storage data + offset elements. */
void *ebl_tensor_data(const ebl_tensor *t);
/* Nonzero when a and b have the same ndim and sizes. */
int ebl_tensor_same_shape(const ebl_tensor *a, const ebl_tensor *b);
/* Writes the shape as "3x4" ("scalar" for 0 dims) into buf. */
const char *ebl_shape_string(const ebl_tensor *t, char *buf, size_t len);

/* ------------------------------------------------------------------ */
/* Element access (host tensors) */

/* Reads the element at index (t->ndim entries) as a double. */
ebl_status ebl_tensor_get(const ebl_tensor *t, const int64_t *index,
                          double *value);
/* Writes value (cast to t's dtype) at index. */
ebl_status ebl_tensor_set(const ebl_tensor *t, const int64_t *index,
                          double value);
/* The only element of a one-element tensor, as a double. */
ebl_status ebl_tensor_item(const ebl_tensor *t, double *value);

/* ------------------------------------------------------------------ */
/* Views and shape changes (views share the storage) */

/* Same elements in a new shape; one size may be -1 (inferred). A view
   when the strides allow, else a contiguous copy. */
ebl_status ebl_tensor_reshape(ebl_tensor *res, const ebl_tensor *t,
                              int ndim, const int64_t *shape);
/* View with dims d0 and d1 swapped. */
ebl_status ebl_tensor_transpose(ebl_tensor *res, const ebl_tensor *t,
                                int d0, int d1);
/* View whose dim i is t's dim perm[i] (perm has t->ndim entries). */
ebl_status ebl_tensor_permute(ebl_tensor *res, const ebl_tensor *t,
                              const int *perm);
/* View of indices start .. start+length-1 along dim. */
ebl_status ebl_tensor_narrow(ebl_tensor *res, const ebl_tensor *t, int dim,
                             int64_t start, int64_t length);
/* View at index along dim, which is removed. */
ebl_status ebl_tensor_select(ebl_tensor *res, const ebl_tensor *t, int dim,
                             int64_t index);
/* View with a size-1 dim inserted at dim (0..ndim; negative from end). */
ebl_status ebl_tensor_unsqueeze(ebl_tensor *res, const ebl_tensor *t,
                                int dim);
/* View without dim when its size is 1 (unchanged otherwise);
   EBL_DIM_ALL removes every size-1 dim. */
ebl_status ebl_tensor_squeeze(ebl_tensor *res, const ebl_tensor *t,
                              int dim);
/* Broadcast view to shape (stride 0 on expanded dims); new dims go in
   front; -1 keeps a size. */
ebl_status ebl_tensor_expand(ebl_tensor *res, const ebl_tensor *t,
                             int ndim, const int64_t *shape);
/* Dims start_dim..end_dim merged into one (reshape rules). */
ebl_status ebl_tensor_flatten(ebl_tensor *res, const ebl_tensor *t,
                              int start_dim, int end_dim);
/* t itself (a new reference) when contiguous, else a contiguous copy. */
ebl_status ebl_tensor_contiguous(ebl_tensor *res, const ebl_tensor *t);
/* A contiguous copy of t. */
ebl_status ebl_tensor_clone(ebl_tensor *res, const ebl_tensor *t);
/* The shape a and b broadcast to (numpy rules); fails with
   "<fn>: shapes 2x3 and 4 do not broadcast". */
ebl_status ebl_broadcast_shape(const char *fn, const ebl_tensor *a,
                               const ebl_tensor *b, int *ndim,
                               int64_t *shape);

/* ------------------------------------------------------------------ */
/* Copy, fill, casts, devices */

/* dst = src, broadcasting src to dst's shape and casting its dtype. */
ebl_status ebl_copy(const ebl_tensor *dst, const ebl_tensor *src);
/* Sets every element of out to value (cast to out's dtype). */
ebl_status ebl_fill(const ebl_tensor *out, double value);
/* t cast to dtype: a new reference to t when it already has it. */
ebl_status ebl_to_dtype(ebl_tensor *res, const ebl_tensor *t,
                        ebl_dtype dtype);
/* t on device: a new reference to t when it is already there. */
ebl_status ebl_to_device(ebl_tensor *res, const ebl_tensor *t,
                         ebl_device device);

/* ------------------------------------------------------------------ */
/* Creation */

/* A tensor filled with ones. */
ebl_status ebl_tensor_ones(ebl_tensor *res, ebl_dtype dtype, int ndim,
                           const int64_t *shape, ebl_device device);
/* A tensor filled with value. */
ebl_status ebl_tensor_full(ebl_tensor *res, ebl_dtype dtype, int ndim,
                           const int64_t *shape, double value,
                           ebl_device device);
/* 1-D start, start+step, ... below stop (above it when step < 0). */
ebl_status ebl_tensor_arange(ebl_tensor *res, ebl_dtype dtype,
                             double start, double stop, double step,
                             ebl_device device);
/* 1-D n points from start to stop, both included (n >= 1). */
ebl_status ebl_tensor_linspace(ebl_tensor *res, ebl_dtype dtype,
                               double start, double stop, int64_t n,
                               ebl_device device);
/* 2-D rows x cols with ones on the diagonal. */
ebl_status ebl_tensor_eye(ebl_tensor *res, ebl_dtype dtype, int64_t rows,
                          int64_t cols, ebl_device device);

/* ------------------------------------------------------------------ */
/* Random numbers: counter-based (Philox4x32-10, see src/philox.h).
   Every draw consumes a block of counters from a global offset; an
   element's value depends only on the seed and its counter, never on
   the thread count or the device. */

/* Seeds the generator and resets its offset to 0. */
void ebl_manual_seed(uint64_t seed);
/* The current seed. */
uint64_t ebl_rng_seed(void);
/* The current offset (number of 128-bit counters consumed). */
uint64_t ebl_rng_offset(void);
/* Restores a state read with ebl_rng_seed() and ebl_rng_offset(). */
void ebl_rng_set_state(uint64_t seed, uint64_t offset);

/* Fills out with uniform numbers in [lo, hi) (float dtypes). */
ebl_status ebl_fill_rand(const ebl_tensor *out, double lo, double hi);
/* Fills out with normal numbers of mean and std (float dtypes). */
ebl_status ebl_fill_randn(const ebl_tensor *out, double mean, double std);
/* Fills out with integers uniform in lo..hi-1 (any dtype). */
ebl_status ebl_fill_randint(const ebl_tensor *out, int64_t lo,
                            int64_t hi);
/* Fills out with 1 with probability p, else 0 (any dtype). */
ebl_status ebl_fill_bernoulli(const ebl_tensor *out, double p);
/* A new tensor of uniform numbers in [0, 1). */
ebl_status ebl_tensor_rand(ebl_tensor *res, ebl_dtype dtype, int ndim,
                           const int64_t *shape, ebl_device device);
/* A new tensor of standard normal numbers. */
ebl_status ebl_tensor_randn(ebl_tensor *res, ebl_dtype dtype, int ndim,
                            const int64_t *shape, ebl_device device);
/* A new tensor of integers uniform in lo..hi-1. */
ebl_status ebl_tensor_randint(ebl_tensor *res, ebl_dtype dtype, int ndim,
                              const int64_t *shape, int64_t lo,
                              int64_t hi, ebl_device device);
/* A new 1-D tensor holding a random permutation of 0..n-1. */
ebl_status ebl_tensor_randperm(ebl_tensor *res, ebl_dtype dtype, int64_t n,
                               ebl_device device);

/* ------------------------------------------------------------------ */
/* Elementwise operations. Binary operands broadcast (numpy rules) and
   are computed in ebl_dtype_promote(a, b); comparisons give U8 (0/1).
   Integer dtypes support ADD, SUB, MUL, MAXIMUM, MINIMUM, comparisons,
   NEG, ABS, CLAMP and RELU; other ops on them fail naming op and dtype.
   The in-place forms cast the result to out's dtype when it differs. */

typedef enum ebl_binary_op {
  EBL_ADD, EBL_SUB, EBL_MUL, EBL_DIV, EBL_POW, EBL_MAXIMUM, EBL_MINIMUM,
  EBL_EQ, EBL_NE, EBL_LT, EBL_LE, EBL_GT, EBL_GE,
  EBL_NBINARY
} ebl_binary_op;

/* Unary ops; p0 and p1 are parameters where named, else ignored.
   The *_GRAD ops are derivatives as functions of the input x:
   TANH_GRAD(x) = 1 - tanh(x)^2, SIGMOID_GRAD(x) = s(x) (1 - s(x)),
   RELU_GRAD(x) = x > 0, LEAKY_RELU_GRAD(x) = x > 0 ? 1 : p0,
   GELU_GRAD(x) = Phi(x) + x phi(x), SOFTPLUS_GRAD(x) = sigmoid(x). */
typedef enum ebl_unary_op {
  EBL_NEG, EBL_ABS, EBL_SQUARE, EBL_SIGN, EBL_EXP, EBL_LOG, EBL_SQRT,
  EBL_RECIPROCAL,
  EBL_CLAMP,          /* min(max(x, p0), p1) */
  EBL_TANH, EBL_SIGMOID, EBL_RELU,
  EBL_LEAKY_RELU,     /* x > 0 ? x : p0 * x */
  EBL_GELU,           /* x Phi(x), Phi the normal cdf (erf form) */
  EBL_SOFTPLUS,       /* log(1 + exp(x)), stable for large |x| */
  EBL_TANH_GRAD, EBL_SIGMOID_GRAD, EBL_RELU_GRAD, EBL_LEAKY_RELU_GRAD,
  EBL_GELU_GRAD, EBL_SOFTPLUS_GRAD,
  EBL_NUNARY
} ebl_unary_op;

/* Name of a binary op ("add", "lt", ...). */
const char *ebl_binary_name(ebl_binary_op op);
/* Name of a unary op ("tanh", "gelu_grad", ...). */
const char *ebl_unary_name(ebl_unary_op op);
/* Looks up a unary op by name; -1 when unknown. */
int ebl_unary_from_name(const char *name);
/* Looks up a binary op by name; -1 when unknown. */
int ebl_binary_from_name(const char *name);

/* out = a op b; out has the broadcast shape and may alias a or b. */
ebl_status ebl_binary(ebl_binary_op op, const ebl_tensor *out,
                      const ebl_tensor *a, const ebl_tensor *b);
/* res = a op b, allocated. */
ebl_status ebl_binary_new(ebl_binary_op op, ebl_tensor *res,
                          const ebl_tensor *a, const ebl_tensor *b);
/* out = a op s (s a number, in a's dtype class). */
ebl_status ebl_binary_scalar(ebl_binary_op op, const ebl_tensor *out,
                             const ebl_tensor *a, double s);
/* res = a op s, allocated. */
ebl_status ebl_binary_scalar_new(ebl_binary_op op, ebl_tensor *res,
                                 const ebl_tensor *a, double s);
/* out = s op b (e.g. 1 - x, 2 / x). */
ebl_status ebl_scalar_binary(ebl_binary_op op, const ebl_tensor *out,
                             double s, const ebl_tensor *b);
/* res = s op b, allocated. */
ebl_status ebl_scalar_binary_new(ebl_binary_op op, ebl_tensor *res,
                                 double s, const ebl_tensor *b);
/* out = op(x; p0, p1); out has x's shape and may alias x. */
ebl_status ebl_unary(ebl_unary_op op, const ebl_tensor *out,
                     const ebl_tensor *x, double p0, double p1);
/* res = op(x; p0, p1), allocated. */
ebl_status ebl_unary_new(ebl_unary_op op, ebl_tensor *res,
                         const ebl_tensor *x, double p0, double p1);
/* out = cond ? a : b elementwise (cond nonzero), all broadcast. */
ebl_status ebl_where(const ebl_tensor *out, const ebl_tensor *cond,
                     const ebl_tensor *a, const ebl_tensor *b);
/* res = cond ? a : b, allocated. */
ebl_status ebl_where_new(ebl_tensor *res, const ebl_tensor *cond,
                         const ebl_tensor *a, const ebl_tensor *b);
/* out = alpha * x + beta * out (x broadcast to out; float dtypes). */
ebl_status ebl_axpby(const ebl_tensor *out, double alpha,
                     const ebl_tensor *x, double beta);
/* out = softmax of x along dim (max subtracted first); may alias x. */
ebl_status ebl_softmax(const ebl_tensor *out, const ebl_tensor *x,
                       int dim);
/* res = softmax(x, dim), allocated. */
ebl_status ebl_softmax_new(ebl_tensor *res, const ebl_tensor *x, int dim);
/* out = x - max - log(sum(exp(x - max))) along dim; may alias x. */
ebl_status ebl_log_softmax(const ebl_tensor *out, const ebl_tensor *x,
                           int dim);
/* res = log_softmax(x, dim), allocated. */
ebl_status ebl_log_softmax_new(ebl_tensor *res, const ebl_tensor *x,
                               int dim);

/* ------------------------------------------------------------------ */
/* Reductions over one dim or all (dim = EBL_DIM_ALL, result 0-dim or,
   with keepdim, all sizes 1). Float sums accumulate in double per
   fixed chunk, chunks combined in order: deterministic for a thread
   count. Result dtypes: SUM/MAX/MIN keep the dtype (SUM of U8 gives
   I32); ARGMAX/ARGMIN give I32 (the first extreme index; sizes are
   below 2^31 by construction); MEAN/VAR/NORM keep float dtypes and give
   F64 for integer inputs. NaN propagates through MAX/MIN. */
typedef enum ebl_reduce_op {
  EBL_SUM, EBL_MEAN, EBL_MAX, EBL_MIN, EBL_ARGMAX, EBL_ARGMIN,
  EBL_VAR,            /* p = 1: unbiased (n - 1), p = 0: biased (n) */
  EBL_NORM,           /* p-norm: p = 2 (L2), 1, any p > 0, or INFINITY */
  EBL_NREDUCE
} ebl_reduce_op;

/* Name of a reduction ("sum", "argmax", ...). */
const char *ebl_reduce_name(ebl_reduce_op op);
/* The dtype a reduction of x gives. */
ebl_dtype ebl_reduce_dtype(ebl_reduce_op op, ebl_dtype x);
/* The shape reducing t over dim gives (keepdim: size 1 kept). */
ebl_status ebl_reduce_shape(const char *fn, const ebl_tensor *t, int dim,
                            int keepdim, int *ndim, int64_t *shape);
/* out = op over dim of x; out has the reduced shape and dtype. */
ebl_status ebl_reduce(ebl_reduce_op op, const ebl_tensor *out,
                      const ebl_tensor *x, int dim, int keepdim, double p);
/* res = op over dim of x, allocated. */
ebl_status ebl_reduce_new(ebl_reduce_op op, ebl_tensor *res,
                          const ebl_tensor *x, int dim, int keepdim,
                          double p);
/* Reduces all of x to one double (a convenience for scalars). */
ebl_status ebl_reduce_all(ebl_reduce_op op, const ebl_tensor *x, double p,
                          double *value);

/* ------------------------------------------------------------------ */
/* Matrix products (float dtypes, a and b of one dtype) through BLAS.
   1-D operands act as a row (a) or a column (b) vector and that dim is
   dropped from the result; batch dims (all but the last two) broadcast.
   Transposed views go to gemm as transposes, not copies. */

/* out = a @ b. */
ebl_status ebl_matmul(const ebl_tensor *out, const ebl_tensor *a,
                      const ebl_tensor *b);
/* res = a @ b, allocated. */
ebl_status ebl_matmul_new(ebl_tensor *res, const ebl_tensor *a,
                          const ebl_tensor *b);
/* out = alpha * (a @ b) + beta * out (out must not alias a or b). */
ebl_status ebl_gemm(const ebl_tensor *out, const ebl_tensor *a,
                    const ebl_tensor *b, double alpha, double beta);
/* The shape of a @ b, or EBL_EARG with the "matmul: shapes" message. */
ebl_status ebl_matmul_shape(const ebl_tensor *a, const ebl_tensor *b,
                            int *ndim, int64_t *shape);

#endif
