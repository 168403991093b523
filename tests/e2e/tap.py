"""A small TAP reporter and helpers for the end-to-end tests of ./ebl."""
import os
import subprocess
import sys
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
EBL = os.path.join(ROOT, 'ebl')

_count = 0
_failed = 0


def case(fn):
    """Runs fn as one test; an exception or failed assert is 'not ok'."""
    global _count, _failed
    _count += 1
    name = fn.__name__.replace('_', ' ')
    try:
        fn()
        print(f'ok {_count} - {name}', flush=True)
    except Exception:
        _failed += 1
        print(f'not ok {_count} - {name}', flush=True)
        for line in traceback.format_exc().splitlines():
            print('#   ' + line, flush=True)
    return fn


def run(*args, stdin=None, env=None, cwd=ROOT):
    """Runs ./ebl with args; returns (exit code, stdout, stderr)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    p = subprocess.run([EBL, *args], input=stdin, capture_output=True,
                       text=True, env=full_env, cwd=cwd, timeout=60)
    return p.returncode, p.stdout, p.stderr


def done():
    print(f'1..{_count}', flush=True)
    sys.exit(1 if _failed else 0)
