/* Tests of the tensor-level layer operations of src/nn.h: values by
   hand, every VJP against central differences in float64 through the
   tensor API, strided inputs, and messages for bad shapes. */
#include "tap.h"
#include "helpers.h"
#include "nn.h"

/* sum(a * b) over all elements. */
static double inner(const ebl_tensor *a, const ebl_tensor *b) {
  ebl_tensor p;
  double v = NAN;
  if (ebl_binary_new(EBL_MUL, &p, a, b) == EBL_OK)
    ebl_reduce_all(EBL_SUM, &p, 0, &v);
  ebl_tensor_release(&p);
  return v;
}

/* A conv problem: L = <dy, f(x, w, b)> with f a conv or its transpose. */
typedef struct conv_case {
  int transposed;
  ebl_tensor x, w, b, dy;
  ebl_conv_opts o;
} conv_case;

static double conv_energy(const conv_case *c) {
  ebl_tensor y;
  ebl_status st = c->transposed
    ? ebl_conv_transpose2d_new(&y, &c->x, &c->w, &c->b, &c->o)
    : ebl_conv2d_new(&y, &c->x, &c->w, &c->b, &c->o);
  if (st != EBL_OK) {
    printf("# forward failed: %s\n", ebl_error());
    return NAN;
  }
  double v = inner(&y, &c->dy);
  ebl_tensor_release(&y);
  return v;
}

/* Largest |analytic - central difference| over every entry of p. */
static double fd_error(conv_case *c, ebl_tensor *p, const ebl_tensor *g) {
  const double h = 1e-6;
  double worst = 0;
  for (int64_t i = 0; i < ebl_tensor_numel(p); i++) {
    int64_t idx[4];
    int64_t rest = i;
    for (int d = p->ndim - 1; d >= 0; d--) {
      idx[d] = rest % p->shape[d];
      rest /= p->shape[d];
    }
    double v, want;
    ebl_tensor_get(p, idx, &v);
    ebl_tensor_set(p, idx, v + h);
    double up = conv_energy(c);
    ebl_tensor_set(p, idx, v - h);
    double down = conv_energy(c);
    ebl_tensor_set(p, idx, v);
    ebl_tensor_get(g, idx, &want);
    double err = fabs((up - down) / (2 * h) - want);
    if (!(err <= worst)) worst = err;     /* NaN sticks */
  }
  return worst;
}

/* Builds a random float64 case for x of shape xs and weight ws. */
static void make_case(conv_case *c, int transposed, const int64_t *xs,
                      const int64_t *ws, ebl_conv_opts o) {
  int64_t ys[4];
  c->transposed = transposed;
  c->o = o;
  ebl_tensor_randn(&c->x, EBL_F64, 4, xs, EBL_CPU);
  ebl_tensor_randn(&c->w, EBL_F64, 4, ws, EBL_CPU);
  if (transposed) ebl_conv_transpose2d_shape(&c->x, &c->w, &o, ys);
  else ebl_conv2d_shape(&c->x, &c->w, &o, ys);
  ebl_tensor_randn(&c->b, EBL_F64, 1, ys + 1, EBL_CPU);
  ebl_tensor_randn(&c->dy, EBL_F64, 4, ys, EBL_CPU);
}

static void free_case(conv_case *c) {
  ebl_tensor_release(&c->x);
  ebl_tensor_release(&c->w);
  ebl_tensor_release(&c->b);
  ebl_tensor_release(&c->dy);
}

/* All three VJPs of a case against central differences. */
static void check_vjps(conv_case *c, const char *name) {
  ebl_tensor dx, dw, db;
  ebl_tensor_empty_like(&dx, &c->x);
  ebl_tensor_empty_like(&dw, &c->w);
  ebl_tensor_empty_like(&db, &c->b);
  ebl_status s1, s2, s3;
  if (c->transposed) {
    s1 = ebl_conv_transpose2d_input_vjp(&dx, &c->dy, &c->w, &c->o);
    s2 = ebl_conv_transpose2d_weight_vjp(&dw, &c->x, &c->dy, &c->o);
    s3 = ebl_conv_transpose2d_bias_vjp(&db, &c->dy);
  } else {
    s1 = ebl_conv2d_input_vjp(&dx, &c->dy, &c->w, &c->o);
    s2 = ebl_conv2d_weight_vjp(&dw, &c->x, &c->dy, &c->o);
    s3 = ebl_conv2d_bias_vjp(&db, &c->dy);
  }
  CHECK(s1 == EBL_OK && s2 == EBL_OK && s3 == EBL_OK, "%s: VJPs run (%s)",
        name, ebl_error());
  CHECK(fd_error(c, &c->x, &dx) < 1e-7, "%s: input VJP", name);
  CHECK(fd_error(c, &c->w, &dw) < 1e-7, "%s: weight VJP", name);
  CHECK(fd_error(c, &c->b, &db) < 1e-7, "%s: bias VJP", name);
  ebl_tensor_release(&dx);
  ebl_tensor_release(&dw);
  ebl_tensor_release(&db);
}

static void test_conv_values(void) {
  ebl_tensor x, w, b, y;
  ebl_tensor_arange(&x, EBL_F32, 1, 10, 1, EBL_CPU);
  ebl_tensor_reshape(&x, &x, 4, SHAPE(1, 1, 3, 3));
  w = make(EBL_F32, 4, SHAPE(1, 1, 2, 2), VALUES(1, 0, 0, -1));
  b = make(EBL_F32, 1, SHAPE(1), VALUES(0.5));
  ebl_conv_opts o = ebl_conv_opts_default();
  CHECK(ebl_conv2d_new(&y, &x, &w, &b, &o) == EBL_OK &&
        equals(&y, 4, VALUES(-3.5, -3.5, -3.5, -3.5)),
        "conv2d of 1..9 with [[1,0],[0,-1]] + 0.5");
  ebl_tensor_release(&y);
  o.padding[0] = o.padding[1] = 1;
  o.stride[0] = o.stride[1] = 2;
  CHECK(ebl_conv2d_new(&y, &x, &w, NULL, &o) == EBL_OK &&
        y.shape[2] == 2 && equals(&y, 4, VALUES(-1, -3, -7, -4)),
        "stride 2, padding 1, no bias");
  ebl_tensor_release(&y);
  ebl_tensor w3;
  ebl_tensor_randn(&w3, EBL_F32, 4, SHAPE(2, 1, 3, 3), EBL_CPU);
  ebl_tensor x3;
  ebl_tensor_randn(&x3, EBL_F32, 4, SHAPE(1, 3, 5, 5), EBL_CPU);
  o = ebl_conv_opts_default();
  CHECK(ebl_conv2d_new(&y, &x3, &w3, NULL, &o) == EBL_EARG &&
        error_is("conv2d: input has 3 channels, weight expects 1"),
        "channel mismatch message");
  CHECK(ebl_conv2d_new(&y, &x3, &w3, &b, &o) == EBL_EARG,
        "channel mismatch before the bias check");
  ebl_tensor_release(&x3);
  ebl_tensor_randn(&x3, EBL_F32, 4, SHAPE(1, 1, 5, 5), EBL_CPU);
  CHECK(ebl_conv2d_new(&y, &x3, &w3, &b, &o) == EBL_EARG &&
        error_is("conv2d: bias has 1 entries, weight has 2 output "
                 "channels"), "bias size message");
  o.stride[0] = 0;
  CHECK(ebl_conv2d_new(&y, &x3, &w3, NULL, &o) == EBL_EARG &&
        error_is("conv2d: stride 0x1 must be at least 1"),
        "bad stride message from the kernels' checks");
  ebl_tensor xd;
  ebl_tensor_randn(&xd, EBL_F64, 4, SHAPE(1, 1, 5, 5), EBL_CPU);
  o = ebl_conv_opts_default();
  CHECK(ebl_conv2d_new(&y, &xd, &w3, NULL, &o) == EBL_EARG &&
        error_is("conv2d: weight is float32, expected float64"),
        "dtype mismatch message");
  ebl_tensor_release(&xd);
  ebl_tensor_release(&x3);
  ebl_tensor_release(&w3);
  ebl_tensor_release(&x);
  ebl_tensor_release(&w);
  ebl_tensor_release(&b);
}

static void test_conv_vjps(void) {
  conv_case c;
  ebl_conv_opts o = ebl_conv_opts_default();
  o.stride[0] = 2;
  o.padding[1] = 1;
  o.dilation[0] = 2;
  o.groups = 2;
  make_case(&c, 0, SHAPE(2, 4, 7, 6), SHAPE(6, 2, 2, 3), o);
  check_vjps(&c, "conv2d stride 2x1 pad 0x1 dil 2x1 groups 2");
  free_case(&c);
  o = ebl_conv_opts_default();
  o.stride[0] = o.stride[1] = 2;
  o.padding[0] = 1;
  o.output_padding[0] = o.output_padding[1] = 1;
  o.groups = 2;
  make_case(&c, 1, SHAPE(2, 4, 3, 4), SHAPE(4, 3, 3, 2), o);
  CHECK(c.dy.shape[1] == 6 && c.dy.shape[2] == 6 && c.dy.shape[3] == 9,
        "conv_transpose2d output shape (2, 6, 6, 9)");
  check_vjps(&c, "conv_transpose2d stride 2 pad 1x0 out_pad 1 groups 2");
  free_case(&c);
}

/* A conv and the transpose sharing its weight are adjoint:
   <conv(x, w), z> = <x, conv_transpose(z, w)>. */
static void test_adjoint(void) {
  ebl_tensor x, w, z, cx, tz;
  ebl_conv_opts o = ebl_conv_opts_default();
  o.stride[0] = o.stride[1] = 2;
  o.padding[0] = o.padding[1] = 1;
  ebl_tensor_randn(&x, EBL_F64, 4, SHAPE(2, 3, 8, 8), EBL_CPU);
  ebl_tensor_randn(&w, EBL_F64, 4, SHAPE(5, 3, 3, 3), EBL_CPU);
  ebl_conv2d_new(&cx, &x, &w, NULL, &o);
  ebl_tensor_randn(&z, EBL_F64, 4, cx.shape, EBL_CPU);
  o.output_padding[0] = o.output_padding[1] = 1;
  CHECK(ebl_conv_transpose2d_new(&tz, &z, &w, NULL, &o) == EBL_OK &&
        tz.shape[2] == 8, "transpose back to 8x8 with output padding 1");
  CHECK_CLOSE(inner(&cx, &z), inner(&x, &tz), 1e-12,
              "conv2d and conv_transpose2d are adjoint");
  ebl_tensor_release(&x);
  ebl_tensor_release(&w);
  ebl_tensor_release(&z);
  ebl_tensor_release(&cx);
  ebl_tensor_release(&tz);
}

/* Strided (non-contiguous) inputs and outputs give the same numbers. */
static void test_strided(void) {
  ebl_tensor x, xp, w, y1, y2, out, outt;
  ebl_conv_opts o = ebl_conv_opts_default();
  ebl_tensor_randn(&x, EBL_F32, 4, SHAPE(2, 5, 5, 3), EBL_CPU);   /* NHWC */
  ebl_tensor_permute(&xp, &x, (const int[]){0, 3, 1, 2});       /* NCHW */
  ebl_tensor_randn(&w, EBL_F32, 4, SHAPE(4, 3, 3, 3), EBL_CPU);
  ebl_conv2d_new(&y1, &xp, &w, NULL, &o);
  ebl_tensor dense;
  ebl_tensor_clone(&dense, &xp);
  ebl_conv2d_new(&y2, &dense, &w, NULL, &o);
  CHECK(memcmp(ebl_tensor_data(&y1), ebl_tensor_data(&y2),
               (size_t)ebl_tensor_numel(&y1) * 4) == 0,
        "a permuted input gives the same output");
  ebl_tensor_zeros(&out, EBL_F32, 4, SHAPE(2, 3, 3, 4), EBL_CPU);
  ebl_tensor_permute(&outt, &out, (const int[]){0, 3, 1, 2});
  CHECK(ebl_conv2d(&outt, &dense, &w, NULL, &o) == EBL_OK &&
        at(&outt, 17) == at(&y2, 17) && at(&outt, 70) == at(&y2, 70),
        "into a permuted output");
  ebl_tensor_release(&out);
  ebl_tensor_release(&outt);
  ebl_tensor_release(&dense);
  ebl_tensor_release(&y1);
  ebl_tensor_release(&y2);
  ebl_tensor_release(&w);
  ebl_tensor_release(&xp);
  ebl_tensor_release(&x);
}

static void test_pooling(void) {
  ebl_tensor x, y, idx, dy, dx;
  ebl_tensor_arange(&x, EBL_F64, 0, 16, 1, EBL_CPU);
  ebl_tensor_reshape(&x, &x, 4, SHAPE(1, 1, 4, 4));
  int64_t pos = 5;
  int64_t at5[4] = {0, 0, pos / 4, pos % 4};
  ebl_tensor_set(&x, at5, 100);
  ebl_pool_opts o = {{2, 2}, {0, 0}, {0, 0}};
  CHECK(ebl_max_pool2d_new(&y, &idx, &x, &o) == EBL_OK &&
        equals(&y, 4, VALUES(100, 7, 13, 15)) &&
        equals(&idx, 4, VALUES(5, 7, 13, 15)), "max_pool2d 2x2 and indices");
  dy = make(EBL_F64, 4, SHAPE(1, 1, 2, 2), VALUES(1, 2, 3, 4));
  ebl_tensor_empty_like(&dx, &x);
  CHECK(ebl_max_pool2d_vjp(&dx, &dy, &idx, &o) == EBL_OK &&
        at(&dx, 5) == 1 && at(&dx, 7) == 2 && at(&dx, 15) == 4 &&
        at(&dx, 0) == 0, "max_pool2d VJP scatters to the winners");
  ebl_tensor_release(&y);
  CHECK(ebl_avg_pool2d_new(&y, &x, &o) == EBL_OK &&
        equals(&y, 4, VALUES(26.25, 4.5, 10.5, 12.5)), "avg_pool2d 2x2");
  CHECK(ebl_avg_pool2d_vjp(&dx, &dy, &o) == EBL_OK &&
        at(&dx, 0) == 0.25 && at(&dx, 15) == 1, "avg_pool2d VJP");
  ebl_tensor_release(&y);
  ebl_pool_opts bad = {{5, 5}, {0, 0}, {0, 0}};
  CHECK(ebl_max_pool2d_new(&y, &idx, &x, &bad) == EBL_EARG &&
        error_is("max_pool2d: kernel 5x5 is larger than padded input 4x4"),
        "pooling message names max_pool2d");
  ebl_tensor_release(&idx);
  ebl_tensor_release(&dx);
  ebl_tensor_release(&dy);
  ebl_tensor_release(&x);
}

static void test_losses(void) {
  ebl_tensor x = make(EBL_F64, 2, SHAPE(2, 2), VALUES(1, 2, 3, 4));
  ebl_tensor t = make(EBL_F32, 2, SHAPE(2, 2), VALUES(0, 0, 0, 1)), g;
  double loss;
  ebl_tensor_empty_like(&g, &x);
  CHECK(ebl_mse_loss(&loss, &x, &t, &g) == EBL_OK && loss == 5.75 &&
        equals(&g, 4, VALUES(0.5, 1, 1.5, 1.5)), "mse: loss and gradient");
  ebl_tensor_release(&t);
  ebl_tensor lab = make(EBL_I32, 1, SHAPE(2), VALUES(1, 0));
  ebl_tensor lab8 = make(EBL_U8, 1, SHAPE(2), VALUES(1, 0));
  ebl_tensor hot = make(EBL_F64, 2, SHAPE(2, 2), VALUES(0, 1, 1, 0));
  double l1, l2, l3;
  double want = 0.5 * (log1p(exp(-1.0)) + log1p(exp(1.0)));
  CHECK(ebl_cross_entropy(&l1, &x, &lab, &g) == EBL_OK, "ce with labels");
  CHECK_CLOSE(l1, want, 1e-14, "ce value");
  double s = 1 / (1 + exp(-1.0));
  CHECK(fabs(at(&g, 0) - (1 - s) / 2) < 1e-14 &&
        fabs(at(&g, 2) - (1 - s - 1) / 2) < 1e-14, "ce gradient");
  CHECK(ebl_cross_entropy(&l2, &x, &lab8, NULL) == EBL_OK && l2 == l1,
        "uint8 labels give the same loss");
  CHECK(ebl_cross_entropy(&l3, &x, &hot, NULL) == EBL_OK &&
        fabs(l3 - l1) < 1e-15, "one-hot targets give the same loss");
  ebl_tensor badl = make(EBL_I32, 1, SHAPE(2), VALUES(1, 2));
  CHECK(ebl_cross_entropy(&l3, &x, &badl, NULL) == EBL_EARG &&
        error_is("cross_entropy: label 2 out of range 0..1"),
        "label out of range");
  ebl_tensor_release(&badl);
  ebl_tensor_release(&hot);
  ebl_tensor_release(&lab8);
  ebl_tensor_release(&lab);
  ebl_tensor_release(&g);
  ebl_tensor_release(&x);
}

int main(void) {
  size_t start = ebl_memory_live();
  ebl_manual_seed(1);
  test_conv_values();
  test_conv_vjps();
  test_adjoint();
  test_strided();
  test_pooling();
  test_losses();
  CHECK(ebl_memory_live() == start, "no storage left behind");
  return tap_done();
}
