"""The ebl> prompt driven through a pseudo-terminal: evaluation, multi-line
input, completion, Ctrl-C, history across runs, weakly held results."""
import os
import re
import tempfile
import time

import pexpect

from tap import EBL, ROOT, case, done, run

TMP = tempfile.mkdtemp(prefix='ebl-prompt-')
INPUTRC = os.path.join(TMP, 'inputrc')
with open(INPUTRC, 'w') as f:
    f.write('set enable-bracketed-paste off\nset bell-style none\n')
ANSI = re.compile(r'\x1b\[[0-9;?]*[A-Za-z]')


def start(history='hist', **extra_env):
    env = dict(os.environ, TERM='xterm', INPUTRC=INPUTRC,
               EBL_HISTORY=os.path.join(TMP, history), **extra_env)
    child = pexpect.spawn(EBL, env=env, cwd=ROOT, encoding='utf-8',
                          timeout=10, dimensions=(40, 120))
    child.expect('ebl> ')
    return child


def ask(child, line, prompt='ebl> '):
    """Sends a line and returns the plain text printed before the prompt."""
    child.sendline(line)
    child.expect(prompt)
    text = ANSI.sub('', child.before).replace('\r', '')
    return text.split('\n', 1)[1] if '\n' in text else ''


def quit(child):
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


@case
def banner_names_version_lua_and_devices():
    child = start()
    banner = ANSI.sub('', child.before)
    assert re.search(r'ebl \d+\.\d+\.\d+ \(Lua 5\.4\.\d+\) on \d+ CPU core',
                     banner), banner
    assert 'GPU' in banner, banner
    assert quit(child) == 0


@case
def expressions_print_and_statements_do_not():
    child = start()
    assert ask(child, '1 + 1') == '2\n'
    assert ask(child, 'x = 41') == ''
    assert ask(child, '=x + 1') == '42\n'
    assert ask(child, 'x') == '41\n'
    assert ask(child, 'x;') == ''
    assert ask(child, 'return x, "a"') == '41\t"a"\n'
    quit(child)


@case
def a_question_mark_before_or_after_a_name_asks_for_help():
    child = start()
    assert ask(child, '?ebl.zeros').startswith('ebl.zeros: zeros(shape')
    assert ask(child, 'ebl.plot?').startswith('ebl.plot: ebl.plot(values')
    assert 'help(f)' in ask(child, '?')
    assert 'no help for 1' in ask(child, 'x = 1') + ask(child, '?x')
    quit(child)


@case
def nested_tables_print_readably_to_a_depth_limit():
    child = start()
    out = ask(child, '{1, 2, name = "n", {a = {b = {c = {}}}}}')
    assert out == '{1, 2, {a = {b = {...}}}, name = "n"}\n', out
    quit(child)


@case
def multi_line_input_continues_until_complete():
    child = start()
    child.sendline('function sq(v)')
    child.expect(r'\.\.> ')
    child.sendline('  return v * v')
    child.expect(r'\.\.> ')
    assert ask(child, 'end') == ''
    assert ask(child, 'sq(7)') == '49\n'
    quit(child)


@case
def syntax_error_reported_at_once_without_wrapper_code():
    child = start()
    out = ask(child, 'x = = 1')
    assert "stdin:1: unexpected symbol near '='" in out, out
    assert 'return' not in out, out
    quit(child)


@case
def runtime_error_shows_message_and_prompt_goes_on():
    child = start()
    out = ask(child, 'error("bad thing")')
    assert 'stdin:1: bad thing' in out and 'traceback' in out, out
    assert ask(child, '2 * 3') == '6\n'
    quit(child)


@case
def tab_completes_fields_of_tables():
    child = start()
    child.send('ebl.sle\t')
    child.expect_exact('ebl.sleep(')
    child.sendline('0)')
    child.expect('ebl> ')
    child.send('strin\t')
    child.expect_exact('string.')
    child.sendline('len("abc")')
    child.expect('3')
    quit(child)


@case
def tab_completes_methods_through_metatables():
    child = start()
    ask(child, 'obj = setmetatable({}, {__index = {hello = function() '
               'return "hi" end}})')
    child.send('obj:he\t')
    child.expect_exact('obj:hello(')
    child.sendline(')')
    child.expect('"hi"')
    child.expect('ebl> ')
    ask(child, 's = "abc"')
    child.send('s:upp\t')
    child.expect_exact('s:upper(')
    child.sendline(')')
    child.expect('"ABC"')
    quit(child)


@case
def tab_completes_file_names_inside_strings():
    child = start()
    child.send('f = "scripts/emb\t')
    child.expect_exact('scripts/embed.lua')
    child.sendline('')
    child.expect('ebl> ')
    assert ask(child, 'f') == '"scripts/embed.lua"\n'
    quit(child)


@case
def ctrl_c_stops_a_running_lua_loop():
    child = start()
    child.sendline('while true do end')
    time.sleep(0.5)
    child.sendintr()
    child.expect('interrupted')
    child.expect('ebl> ')
    assert 'traceback' in child.before, child.before
    assert ask(child, '1') == '1\n'
    quit(child)


@case
def ctrl_c_stops_a_long_c_loop():
    child = start()
    t0 = time.time()
    child.sendline('ebl.sleep(30)')
    time.sleep(0.5)
    child.sendintr()
    child.expect('interrupted')
    child.expect('ebl> ')
    assert time.time() - t0 < 5
    assert ask(child, '"still here"') == '"still here"\n'
    quit(child)


@case
def ctrl_c_at_the_prompt_clears_the_line():
    child = start()
    child.send('this is not lua')
    time.sleep(0.2)
    child.sendintr()
    child.expect('ebl> ')
    assert ask(child, '5') == '5\n'
    child.sendline('x = {')
    child.expect(r'\.\.> ')
    child.sendintr()
    child.expect('ebl> ')
    assert ask(child, '6') == '6\n'
    quit(child)


@case
def ctrl_d_exits_cleanly():
    child = start()
    assert quit(child) == 0


@case
def history_keeps_multi_line_chunks_across_runs():
    first = start(history='hist-two-runs')
    first.sendline('for i = 1, 2 do')
    first.expect(r'\.\.> ')
    first.sendline('  io.write(i * 10, " ")')
    first.expect(r'\.\.> ')
    first.sendline('end')
    first.expect('ebl> ')
    quit(first)
    second = start(history='hist-two-runs')
    second.send('\x1b[A')
    second.sendline('')
    second.expect('10 20 ')
    second.expect('ebl> ')
    quit(second)


@case
def shown_results_are_held_weakly():
    child = start()
    ask(child, 'gone = false')
    out = ask(child, 'big = setmetatable({}, {__gc = function() '
                     'gone = true end}); return big')
    assert out == '{}\n', out
    assert ask(child, '_ == big') == 'true\n'
    ask(child, 'big = nil; collectgarbage(); collectgarbage()')
    assert ask(child, 'gone') == 'true\n'
    quit(child)


@case
def colours_on_a_terminal_only():
    child = start()
    child.sendline('123')
    child.expect('ebl> ')
    assert '\x1b[36m123' in child.before, repr(child.before)
    quit(child)
    rc, out, _ = run('-i', stdin='123\n')
    assert rc == 0 and '123' in out and '\x1b[' not in out, repr(out)


done()
