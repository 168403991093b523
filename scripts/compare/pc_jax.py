"""ebl against JAX on one predictive coding inference.

The same PC MLP 784-256-256-10 (tanh, batch 128, cross-entropy output,
beta 1), the same weights and batch, 20 SGD steps on the states at
state lr 0.1 from a forward sweep: ebl's engine (scripts/compare/
pc_dump.lua) against the usual JAX way: F and its gradient by autodiff
(value_and_grad, one forward and one backward pass per step) inside one
jit-compiled loop. It prints the largest relative
difference between the two traces of F (an independent check of ebl's
energy and state gradients) and the time of one loop iteration in each.

Needs JAX on the CPU (`pip install jax`); it is not part of the tests.
Usage: python3 scripts/compare/pc_jax.py [threads]
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

THREADS = sys.argv[1] if len(sys.argv) > 1 else '2'
os.environ.setdefault(
    'XLA_FLAGS', '--xla_cpu_multi_thread_eigen=true '
    f'intra_op_parallelism_threads={THREADS}')
import jax  # noqa: E402  (XLA reads its flags at import)
import jax.numpy as jnp  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
DTYPES = {'F32': np.float32, 'F64': np.float64, 'I32': np.int32}


def read_safetensors(path):
    """The tensors of a safetensors file, as numpy arrays."""
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        lo, hi = info['data_offsets']
        out[name] = np.frombuffer(data[lo:hi], DTYPES[info['dtype']]) \
            .reshape(info['shape'])
    return out


def energy(states, params, x, labels):
    """Sum over the batch of 1/2 sum ||v - f(v_below)||^2 + CE(v_out)."""
    (w1, b1), (w2, b2), (w3, b3) = params
    h1, h2, out = states
    e1 = h1 - jnp.tanh(x @ w1.T + b1)
    e2 = h2 - jnp.tanh(h1 @ w2.T + b2)
    e3 = out - (h2 @ w3.T + b3)
    logp = jax.nn.log_softmax(out)
    ce = -jnp.take_along_axis(logp, labels[:, None], axis=1).sum()
    return 0.5 * (jnp.sum(e1 ** 2) + jnp.sum(e2 ** 2)
                  + jnp.sum(e3 ** 2)) + ce


def forward(params, x):
    (w1, b1), (w2, b2), (w3, b3) = params
    h1 = jnp.tanh(x @ w1.T + b1)
    h2 = jnp.tanh(h1 @ w2.T + b2)
    return [h1, h2, h2 @ w3.T + b3]


def make_infer(steps, lr):
    """One jit-compiled inference: F and dF/dv together at each step."""
    value_and_grad = jax.value_and_grad(energy)

    def infer(params, x, labels):
        states = forward(params, x)
        n = x.shape[0]

        def body(k, carry):
            states, trace = carry
            f, g = value_and_grad(states, params, x, labels)
            states = [v - lr * gv for v, gv in zip(states, g)]
            return states, trace.at[k].set(f / n)

        states, trace = jax.lax.fori_loop(
            0, steps, body, (states, jnp.zeros(steps + 1)))
        return trace.at[steps].set(energy(states, params, x, labels) / n)
    return jax.jit(infer)


def best_time(fn, *args, reps=15):
    """The best wall time and the best CPU time of the process."""
    wall = cpu = float('inf')
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        fn(*args).block_until_ready()
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu


def main():
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'pc.safetensors')
        subprocess.run([os.path.join(ROOT, 'ebl'),
                        os.path.join(ROOT, 'scripts/compare/pc_dump.lua'),
                        path, THREADS], check=True, cwd=ROOT)
        t = read_safetensors(path)
    params = [(jnp.asarray(t[f'{e}.1.weight']), jnp.asarray(t[f'{e}.1.bias']))
              for e in ('x->h1', 'h1->h2', 'h2->y')]
    x, labels = jnp.asarray(t['x']), jnp.asarray(t['y'])
    trace = np.asarray(make_infer(20, 0.1)(params, x, labels))
    ref = t['trace']
    diff = np.max(np.abs(trace - ref) / np.abs(ref))
    print(f'F: ebl {ref[0]:.6f} -> {ref[-1]:.6f}, JAX {trace[0]:.6f} -> '
          f'{trace[-1]:.6f}; largest relative difference {diff:.2e}')
    n = 100
    short, long_ = make_infer(n, 0.1), make_infer(2 * n, 0.1)
    short(params, x, labels).block_until_ready()
    long_(params, x, labels).block_until_ready()
    w2, c2 = best_time(long_, params, x, labels)
    w1, c1 = best_time(short, params, x, labels)
    wall, cpu = (w2 - w1) / n, (c2 - c1) / n
    ebl_wall, ebl_cpu = (float(v) for v in t['per_iter'])
    print(f'one iteration on {THREADS} threads, wall: ebl '
          f'{ebl_wall * 1e6:.1f} us, JAX (jit) {wall * 1e6:.1f} us; '
          f'JAX/ebl {wall / ebl_wall:.2f}')
    print(f'one iteration on {THREADS} threads, CPU time: ebl '
          f'{ebl_cpu * 1e6:.1f} us, JAX (jit) {cpu * 1e6:.1f} us; '
          f'JAX/ebl {cpu / ebl_cpu:.2f}')

if __name__ == '__main__':
    main()
