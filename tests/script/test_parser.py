"""Structure tests of the shell parser (nuwa/script/parser.py) on constructs we write ourselves.

Where a claim is about what dash accepts, dash is asked (``dash -n``), so no expectation here
is invented: valid snippets must pass ``dash -n`` and Nuwa's parser; invalid ones must fail both.
"""

from __future__ import annotations

import subprocess

import pytest

from judges import tool
from nuwa.script import ast as A
from nuwa.script.parser import ParseError, parse


def cmds(text: str, bash: bool = False):
    """The top-level commands of a script (first command of each item's first pipeline)."""
    prog = parse(text, bash=bash)
    return [it.and_or.pipelines[0].commands[0] for it in prog.body.items]


def words(cmd) -> list[str]:
    return [w.text for w in cmd.words]


def test_simple_command_words_assignments_redirects():
    (c,) = cmds("FOO=1 BAR=\"x y\" echo a 'b c' >out 2>&1 <in")
    assert [a.name for a in c.assigns] == ["FOO", "BAR"]
    assert words(c) == ["echo", "a", "'b c'"]
    assert [(r.fd, r.op, r.target.text) for r in c.redirects] == [(None, ">", "out"), (2, ">&", "1"), (None, "<", "in")]


def test_reserved_words_only_in_command_position():
    (c,) = cmds("echo if then fi done")
    assert isinstance(c, A.SimpleCommand) and words(c)[1:] == ["if", "then", "fi", "done"]
    (c,) = cmds("'if' true")  # quoted: not reserved
    assert isinstance(c, A.SimpleCommand)


def test_if_elif_else():
    (c,) = cmds("if a; then b; elif c\nthen d; else e; fi")
    assert isinstance(c, A.IfClause)
    assert len(c.branches) == 2 and c.else_body is not None


def test_case_forms():
    (c,) = cmds("case $1 in\n (a|b) x;;\n c*) y ;;\n *) z\nesac")
    assert isinstance(c, A.CaseClause)
    assert [[p.text for p in it.patterns] for it in c.items] == [["a", "b"], ["c*"], ["*"]]
    (c,) = cmds("case x in esac")
    assert c.items == []
    (c,) = cmds("case x in x) ;; esac")
    assert c.items[0].body is None


def test_case_inside_command_substitution():
    (c,) = cmds('v=$(case $x in a) echo 1;; b) echo 2;; esac)')
    sub = c.assigns[0].value.parts[0]
    assert isinstance(sub, A.CommandSubst)
    assert isinstance(sub.body.items[0].and_or.pipelines[0].commands[0], A.CaseClause)


def test_nested_backquotes_and_escapes():
    (c,) = cmds(r"echo `echo \`echo hi\``")
    outer = c.words[1].parts[0]
    assert isinstance(outer, A.CommandSubst) and outer.backquoted
    inner = outer.body.items[0].and_or.pipelines[0].commands[0].words[1].parts[0]
    assert isinstance(inner, A.CommandSubst)


def test_arith_vs_subshell_in_dollar_paren():
    (c,) = cmds("echo $((1+(2*3))) $( (echo x) )")
    assert isinstance(c.words[1].parts[0], A.ArithExp)
    assert isinstance(c.words[2].parts[0], A.CommandSubst)


@pytest.mark.parametrize(
    "text,op,colon",
    [("${x-a}", "-", False), ("${x:-a}", "-", True), ("${x:=a}", "=", True), ("${x?m}", "?", False),
     ("${x:+a}", "+", True), ("${x%a}", "rm%", False), ("${x%%a}", "rm%%", False),
     ("${x#a}", "rm#", False), ("${x##a}", "rm##", False), ("${#x}", "len", False), ("${x}", "", False)],
)
def test_parameter_expansion_forms(text, op, colon):
    (c,) = cmds("echo " + text)
    p = c.words[1].parts[0]
    assert isinstance(p, A.ParamExp) and p.name == "x" and p.op == op and p.colon == colon


def test_special_parameters():
    (c,) = cmds('echo $? $$ $! $# $0 $- $@ "$*" $10 ${10}')
    names = [w.parts[0].name if isinstance(w.parts[0], A.ParamExp) else w.parts[0].parts[0].name for w in c.words[1:]]
    assert names == ["?", "$", "!", "#", "0", "-", "@", "*", "1", "10"]


def test_heredocs_quoted_unquoted_and_tabs():
    text = "cat <<EOF; cat <<'Q'; cat <<-T\nA $x\nEOF\nB $x\nQ\n\tC\n\tT\necho done\n"
    prog = parse(text)
    pipes = prog.body.items
    bodies = [it.and_or.pipelines[0].commands[0].redirects[0].heredoc for it in pipes[:3]]
    assert isinstance(bodies[0].parts[1], A.ParamExp)
    assert bodies[1].parts == [A.Lit("B $x\n", True)]
    assert bodies[2].text == "C\n"
    assert words(pipes[3].and_or.pipelines[0].commands[0]) == ["echo", "done"]


def test_heredoc_inside_command_substitution():
    prog = parse("x=$(cat <<EOF\nin $y\nEOF\n)\necho $x\n")
    assert len(prog.body.items) == 2


def test_functions_and_compound_redirects():
    c1, c2 = cmds("f() { echo; } >/dev/null\ng()\n(\n true\n)")
    assert isinstance(c1, A.FunctionDefinition) and isinstance(c1.body, A.BraceGroup)
    assert c1.body.redirects[0].target.text == "/dev/null"
    assert isinstance(c2.body, A.Subshell)


def test_pipelines_and_lists():
    prog = parse("! a | b && c || d & e; f")
    ao = prog.body.items[0].and_or
    assert ao.pipelines[0].bang and len(ao.pipelines[0].commands) == 2
    assert ao.ops == ["&&", "||"] and prog.body.items[0].background


def test_line_continuations_and_comments():
    (c,) = cmds("echo a\\\nb # comment here\n")
    assert words(c) == ["echo", "a\\\nb"] and c.words[1].parts == [A.Lit("ab")]


def test_for_forms():
    c1, c2, c3 = cmds("for i in a b; do :; done\nfor i; do :; done\nfor i do :; done")
    assert [w.text for w in c1.words] == ["a", "b"] and c2.words is None and c3.words is None


def test_all_redirection_operators():
    (c,) = cmds("cmd <a >b >>c >|d <>e 3<&0 4>&- 5<&- <<<x", bash=True)
    assert [r.op for r in c.redirects] == ["<", ">", ">>", ">|", "<>", "<&", ">&", "<&", "<<<"]


def test_bash_features():
    prog = parse("function f { [[ $a == b* && -n $c ]]; (( i++ )); local x=$'a\\tb'; arr=(1 2 3); }", bash=True)
    body = prog.body.items[0].and_or.pipelines[0].commands[0].body.body.items
    assert isinstance(body[0].and_or.pipelines[0].commands[0], A.DoubleBracket)
    assert isinstance(body[1].and_or.pipelines[0].commands[0], A.ArithCommand)
    local = body[2].and_or.pipelines[0].commands[0]
    assert local.words[1].parts[1] == A.Lit("a\tb", True)
    assert body[3].and_or.pipelines[0].commands[0].assigns[0].array is not None


def test_errors_name_line_and_column():
    with pytest.raises(ParseError) as ei:
        parse("echo ok\nif true; then\n  fi\n")
    assert (ei.value.line, ei.value.col) == (3, 3)
    assert "line 3, column 3" in str(ei.value)


VALID = [
    "a && b || c",
    "{ a; b; }",
    "(a; b)",
    "case a in (a) ;; esac",
    "case a in a) b;; *) c; esac",
    "f() { :; }",
    "f() ( : )",
    "if a; then :; fi",
    "x=$(echo \"$(echo ')')\")",
    'echo "${x#"$y"}" ${x:-"a b"} "${x+`echo "q"`}"',
    "echo $((x+=2)) $((a?b:c)) $(( (1<<3) | 4 ))",
    "a=1 b=2",
    ">file",
    "echo a#b #c",
    "echo \\# '#' \"#\"",
    "for x in; do :; done",
    "while read -r a b; do :; done <<EOF\n1 2\nEOF",
    "echo $(( $(echo 1) + `echo 2` ))",
    "cat <<\\EOF\n$x\nEOF",
    "cat <<E'O'F\n$x\nEOF",
    "echo }{ ] [ ! !x",
    "! true",
    "echo $(cat <<'X'\n)\nX\n)",
    "if ! a; then b; fi",
    "while :; do break; done",
    "until false; do :; done",
    "exec 3>&1 4<&0",
    "eval 'echo a'",
    "echo \"a\\\nb\"",
    "x=\\$y",
    "echo ${x:+\"$x\"}",
    "echo `echo \\\\`",
    "echo '\\'",
    "{ echo; } 2>/dev/null || :",
    "case $x in *\\)*) ;; esac",
    "case $x in '') ;; \"\") ;; esac",
    "echo a\\\n\\\nb",
    "cmd 2>&1 >/dev/null | cat",
    "f() echo hi",
    "echo ${x!}",
]
INVALID = [
    "if true; then fi",
    "while :; do done",
    "{ }",
    "( )",
    "echo 'abc",
    'echo "abc',
    "echo $((1+",
    "echo ${x",
    "case x in",
    "fi",
    "a && ",
    "a | ",
    "for 1 in a; do :; done",
    "echo )",
    "x=`echo",
    ";;",
    "true | ! false",
    "! ! true",
]


@pytest.mark.judge
@pytest.mark.parametrize("text", VALID)
def test_valid_snippets_agree_with_dash(text):
    dash = tool("dash")
    r = subprocess.run([dash, "-n", "-c", text], capture_output=True)
    assert r.returncode == 0, r.stderr
    parse(text)


@pytest.mark.judge
@pytest.mark.parametrize("text", INVALID)
def test_invalid_snippets_agree_with_dash(text):
    dash = tool("dash")
    r = subprocess.run([dash, "-n", "-c", text], capture_output=True)
    assert r.returncode != 0
    with pytest.raises(ParseError):
        parse(text)
