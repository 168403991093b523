"""The ebl command line: scripts, arguments, flags and exit codes."""
import os
import tempfile

from tap import case, done, run

TMP = tempfile.mkdtemp(prefix='ebl-cli-')


def script(name, text):
    path = os.path.join(TMP, name)
    with open(path, 'w') as f:
        f.write(text)
    return path


@case
def script_gets_arg_table_and_varargs():
    path = script('args.lua', 'print(arg[0], arg[1], arg[2], #arg, ...)')
    rc, out, err = run(path, 'a', 'b')
    assert rc == 0, err
    assert out == f'{path}\ta\tb\t2\ta\tb\n', out


@case
def arg_table_has_interpreter_at_negative_index():
    path = script('neg.lua', 'print(arg[-1] ~= nil, arg[-2])')
    rc, out, _ = run('-e', 'x=1', path)
    assert rc == 0 and out.startswith('true\t-e'), out


@case
def shebang_line_is_skipped():
    path = script('bang.lua', '#!/usr/bin/env ebl\nprint("ran")\n')
    rc, out, _ = run(path)
    assert rc == 0 and out == 'ran\n', out


@case
def e_runs_a_statement():
    rc, out, _ = run('-e', 'print(6 * 7)')
    assert rc == 0 and out == '42\n', out


@case
def l_requires_a_module_into_a_global():
    script('mymod.lua', 'return {answer = 42}')
    rc, out, err = run('-l', 'mymod', '-e', 'print(mymod.answer)',
                       env={'LUA_PATH': TMP + '/?.lua;;'})
    assert rc == 0 and out == '42\n', (out, err)


@case
def l_with_a_global_name():
    rc, out, err = run('-l', 'S=string', '-e', 'print(S.rep("ab", 2))')
    assert rc == 0 and out == 'abab\n', (out, err)


@case
def v_prints_ebl_and_lua_versions():
    rc, out, _ = run('-v')
    assert rc == 0, out
    assert out.startswith('ebl ') and 'Lua 5.4.' in out, out


@case
def h_prints_usage():
    rc, _, err = run('-h')
    assert rc == 0 and 'usage: ebl' in err, err


@case
def dash_runs_stdin():
    rc, out, _ = run('-', stdin='print("from stdin")')
    assert rc == 0 and out == 'from stdin\n', out


@case
def piped_stdin_without_arguments_runs_it():
    rc, out, _ = run(stdin='print(ebl ~= nil)')
    assert rc == 0 and out == 'true\n', out


@case
def failing_script_prints_message_and_traceback():
    path = script('fail.lua', 'local function f() error("boom") end\nf()\n')
    rc, out, err = run(path)
    assert rc == 1, rc
    assert 'fail.lua:1: boom' in err, err
    assert 'stack traceback:' in err and 'in local' in err, err


@case
def syntax_error_in_script_exits_nonzero():
    path = script('syn.lua', 'x = = 1')
    rc, _, err = run(path)
    assert rc == 1 and 'syn.lua:1:' in err, err


@case
def missing_file_gives_usage():
    rc, _, err = run(os.path.join(TMP, 'no-such-file.lua'))
    assert rc == 1, rc
    assert 'cannot open' in err and 'usage: ebl' in err, err


@case
def unknown_flag_gives_usage():
    rc, _, err = run('-q')
    assert rc == 1 and "unrecognized option '-q'" in err, err
    assert 'usage: ebl' in err, err


@case
def e_without_argument_gives_usage():
    rc, _, err = run('-e')
    assert rc == 1 and "'-e' needs argument" in err, err


@case
def global_ebl_and_require_agree():
    rc, out, _ = run('-e', 'print(require("ebl") == ebl, type(help))')
    assert rc == 0 and out == 'true\tfunction\n', out


@case
def module_loads_into_stock_lua():
    import subprocess
    from tap import ROOT
    p = subprocess.run(
        ['lua5.4', '-e', 'local e = require "ebl"; print(e.version)'],
        capture_output=True, text=True,
        env=dict(os.environ, LUA_CPATH=ROOT + '/?.so;;'), cwd=TMP)
    assert p.returncode == 0 and p.stdout.strip(), (p.stdout, p.stderr)


@case
def help_of_a_function_prints_its_text():
    rc, out, _ = run('-e', 'help(ebl.sleep)')
    assert rc == 0 and out.startswith('ebl.sleep: sleep(seconds)'), out


@case
def help_without_argument_prints_the_tour():
    rc, out, _ = run('-e', 'help()')
    assert rc == 0 and 'help(f)' in out, out


done()
