"""Word expansion (XCU 2.6): tilde, parameters, command substitution, arithmetic, field
splitting, pathname expansion against the filesystem model, quote removal; and the shell's
pattern matching (XCU 2.13) used by pathname expansion, ``case`` and ``${x#pat}``.

An expanded word is built as *fields*, each a list of segments ``(text, kind)``:
``LIT`` unquoted literal text (a pattern, never split), ``QUO`` quoted text (neither), ``EXP``
the unquoted result of an expansion (split on IFS, then a pattern). ``BRK`` marks the field
boundary between two positional parameters of an unquoted ``$@``/``$*``. Keeping the kind per
segment is what makes ``"$x"*`` glob on the star only and ``$x`` split while ``a b`` literal
text inside quotes does not.

The expander knows the shell only through the small interface of
:class:`nuwa.script.interp.Shell` (variables, positional parameters, options, command
substitution, errors), so it can be tested with any object providing it.
"""

from __future__ import annotations

import functools
import re
import stat as _stat

from nuwa.script.arith import ArithError, evaluate
from nuwa.script.ast import ArithExp, CommandSubst, DoubleQuoted, Lit, ParamExp, Word

LIT, QUO, EXP, BRK = 0, 1, 2, 3
_GLOB_CHARS = frozenset("*?[")
MAX_WORD = 16 << 20  # no single expansion may exceed 16 MiB (gigantic-output hostile scripts)


class ExpansionError(Exception):
    """An expansion error that makes a non-interactive shell exit (``${x?}``, ``set -u``,
    bad substitution, arithmetic errors); ``str()`` is dash's message."""

    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------------------------------
# pattern matching (XCU 2.13)
# ---------------------------------------------------------------------------------------

_CLASSES = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
    "space": " \\t\\n\\r\\f\\v", "blank": " \\t", "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "xdigit": "0-9A-Fa-f", "cntrl": "\\x00-\\x1f\\x7f", "print": " -~", "graph": "!-~",
}


@functools.lru_cache(maxsize=4096)
def pattern_regex(pat: str) -> re.Pattern:
    """Compile a shell pattern (backslash quotes the next character) to a regex."""
    out = []
    i, n = 0, len(pat)
    while i < n:
        c = pat[i]
        if c == "\\" and i + 1 < n:
            out.append(re.escape(pat[i + 1]))
            i += 2
        elif c == "*":
            out.append("[\\s\\S]*")
            i += 1
        elif c == "?":
            out.append("[\\s\\S]")
            i += 1
        elif c == "[":
            j = i + 1
            neg = False
            if j < n and pat[j] in "!^":
                neg = True
                j += 1
            items = []
            first = True
            closed = False
            while j < n:
                d = pat[j]
                if d == "]" and not first:
                    closed = True
                    break
                first = False
                if d == "[" and pat.startswith("[:", j):
                    k = pat.find(":]", j + 2)
                    if k > 0 and pat[j + 2 : k] in _CLASSES:
                        items.append(_CLASSES[pat[j + 2 : k]])
                        j = k + 2
                        continue
                if d == "\\" and j + 1 < n:
                    d = pat[j + 1]
                    j += 1
                if j + 2 < n and pat[j + 1] == "-" and pat[j + 2] != "]":
                    hi = pat[j + 2]
                    if hi == "\\" and j + 3 < n:
                        hi = pat[j + 3]
                        j += 1
                    if ord(hi) >= ord(d):
                        items.append(re.escape(d) + "-" + re.escape(hi))
                    j += 3
                    continue
                items.append(re.escape(d))
                j += 1
            if not closed:
                out.append("\\[")
                i += 1
                continue
            body = "".join(items)
            out.append(("[^" if neg else "[") + (body or "\\x00") + "]" if body or neg else "(?!)")
            i = j + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out), re.S)


def match(pat: str, s: str) -> bool:
    """True if the whole of ``s`` matches the shell pattern ``pat``."""
    return pattern_regex(pat).fullmatch(s) is not None


def _affix_quick(value: str, pat: str, op: str) -> str | None:
    """:func:`remove_affix` without a pattern match at every position, for the forms scripts
    use most: a literal (``${x#--}``), ``*`` then a literal (``${x##*/}``, ``${x#*=}``) for a
    prefix, a literal then ``*`` (``${x%/*}``, ``${x%%.*}``) for a suffix; a literal holds no
    pattern character and no backslash (quoted text is escaped). None: not one of them."""
    if op in ("#", "##"):
        if pat.startswith("*"):
            lit = pat[1:]
            if has_glob(lit) or "\\" in lit:
                return None
            i = value.find(lit) if op == "#" else value.rfind(lit)
            return value if i < 0 else value[i + len(lit):]
        if has_glob(pat) or "\\" in pat:
            return None
        return value[len(pat):] if value.startswith(pat) else value
    if pat.endswith("*") and not pat.endswith("\\*"):
        lit = pat[:-1]
        if has_glob(lit) or "\\" in lit:
            return None
        i = value.rfind(lit) if op == "%" else value.find(lit)
        return value if i < 0 else value[:i]
    if has_glob(pat) or "\\" in pat:
        return None
    return value[:-len(pat)] if pat and value.endswith(pat) else value


def has_glob(pat: str) -> bool:
    """True if ``pat`` holds an unescaped ``* ? [``."""
    if "*" not in pat and "?" not in pat and "[" not in pat:
        return False
    i = 0
    while i < len(pat):
        c = pat[i]
        if c == "\\":
            i += 2
            continue
        if c == "*" or c == "?":
            return True
        if c == "[":  # only a bracket expression that closes is special (XCU 2.13.1)
            k = i + 1
            if pat[k : k + 1] in ("!", "^"):
                k += 1
            if pat[k : k + 1] == "]":
                k += 1
            if pat.find("]", k) >= 0:
                return True
        i += 1
    return False


def unescape(pat: str) -> str:
    """Remove the backslashes that quote characters in a pattern."""
    return re.sub(r"\\(.)", r"\1", pat, flags=re.S)


def escape(text: str) -> str:
    """Quote every pattern-special character of literal text."""
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)


def remove_affix(value: str, pat: str, op: str) -> str:
    """``${x%pat}``, ``${x%%pat}``, ``${x#pat}``, ``${x##pat}``."""
    quick = _affix_quick(value, pat, op)
    return quick if quick is not None else affix_by_pattern(value, pat, op)


def affix_by_pattern(value: str, pat: str, op: str) -> str:
    """:func:`remove_affix` by trying the pattern at each position, shortest or longest first."""
    rx = pattern_regex(pat)
    n = len(value)
    if op == "#":
        rng = range(0, n + 1)
    elif op == "##":
        rng = range(n, -1, -1)
    elif op == "%":
        rng = range(n, -1, -1)
    else:  # %%
        rng = range(0, n + 1)
    for i in rng:
        if op in ("#", "##"):
            if rx.fullmatch(value, 0, i):
                return value[i:]
        elif rx.fullmatch(value, i, n):
            return value[:i]
    return value


# ---------------------------------------------------------------------------------------
# the expander
# ---------------------------------------------------------------------------------------


class Expander:
    """Expands words for one shell (``sh``: a :class:`nuwa.script.interp.Shell`)."""

    def __init__(self, sh):
        self.sh = sh

    # ---- public entry points -------------------------------------------------------------
    def fields(self, words: list[Word]) -> list[str]:
        """Full expansion of command words: split, globbed, quote-removed (XCU 2.6)."""
        out: list[str] = []
        noglob = "f" in self.sh.opts
        for w in words:
            parts = w.parts
            if len(parts) == 1:
                p = parts[0]
                t = type(p)
                if t is Lit:  # fast path: a plain word
                    if p.quoted or noglob or not has_glob(p.text):
                        if not p.quoted and p.text.startswith("~"):
                            out.append(self._tilde(p.text, False))
                        else:
                            out.append(p.text)
                        continue
                elif _is_plain_param(p):  # $x whose value neither splits nor globs
                    v = self._plain_param(p)
                    if v == "":
                        continue  # an empty unquoted expansion makes no field
                    ifs = self.sh.getvar("IFS")
                    if not (_GLOB_CHARS.intersection(v) or set(v).intersection(" \t\n" if ifs is None else ifs)):
                        out.append(v)
                        continue
            if _quoted_only(parts):  # "$a/$b", --opt="$x": one field, not split or globbed
                text = self._quoted_text(parts)
                if text is not None:
                    out.append(text)
                    continue
            segs = self._expand(parts, False, True)
            for f in self._split(segs):
                out.extend(self._glob(f) if not noglob else [_plain(f)])
        if sum(map(len, out)) > MAX_WORD:
            raise self.sh.limit("expanded words exceed 16 MiB")
        return out

    def string(self, word: Word, assignment: bool = False) -> str:
        """Expansion without field splitting or globbing (assignments, redirection targets,
        ``case`` words, here-documents): ``"$@"`` joins with spaces."""
        if len(word.parts) == 1 and isinstance(word.parts[0], Lit):
            p = word.parts[0]
            if not p.quoted and (p.text.startswith("~") or (assignment and ":~" in p.text)):
                return self._tilde(p.text, assignment)
            return p.text
        if _quoted_only(word.parts, True):  # x="$1", x=$y, x="${a}/$b": no tilde, no field
            text = self._quoted_text(word.parts)
            if text is not None:
                return text
        segs = self._expand(word.parts, False, False, assignment=assignment)
        s = "".join(t for t, k in segs if k != BRK)
        if len(s) > MAX_WORD:
            raise self.sh.limit("an expanded word exceeds 16 MiB")
        return s

    def pattern(self, word: Word) -> str:
        """Expansion as a pattern: quoted characters are escaped (``case``, ``${x#pat}``)."""
        segs = self._expand(word.parts, False, False)
        return "".join((escape(t) if k == QUO else t) for t, k in segs if k != BRK)

    # ---- fast paths ----------------------------------------------------------------------
    def _plain_param(self, p: ParamExp) -> str:
        """``$x``/``${x}`` (not ``$@``/``$*``): its value, unset as empty (``set -u`` fails)."""
        v = self.sh.param(p.name, p.index)
        if v is None:
            self._unset_check(p.name)
            return ""
        return v

    def _quoted_text(self, parts) -> str | None:
        """The text of parts :func:`_quoted_only` accepted; None when a double-quoted part
        holds more than literals and plain parameters (the general expansion does it)."""
        out = []
        for p in parts:
            t = type(p)
            if t is Lit:
                out.append(p.text)
            elif t is ParamExp:
                out.append(self._plain_param(p))
            else:
                for q in p.parts:
                    tq = type(q)
                    if tq is Lit:
                        out.append(q.text)
                    elif _is_plain_param(q):
                        out.append(self._plain_param(q))
                    else:
                        return None
        text = "".join(out)
        if len(text) > MAX_WORD:
            raise self.sh.limit("an expanded word exceeds 16 MiB")
        return text

    # ---- the parts -----------------------------------------------------------------------
    def _expand(self, parts, dq: bool, split: bool, assignment: bool = False) -> list[tuple[str, int]]:
        segs: list[tuple[str, int]] = []
        for idx, p in enumerate(parts):
            if isinstance(p, Lit):
                if p.quoted or dq:
                    segs.append((p.text, QUO))
                else:
                    text = p.text
                    if idx == 0 and (text.startswith("~") or (assignment and ":~" in text)):
                        text = self._tilde(text, assignment)
                        segs.append((text, QUO))
                    else:
                        segs.append((text, LIT))
            elif isinstance(p, DoubleQuoted):
                inner = self._expand(p.parts, True, split)
                if not inner and _is_bare_at(p):
                    # "$@" with no parameters makes no field at all (unless the word
                    # holds something else), unlike "" which makes an empty one
                    segs.append(("", _ATEMPTY))
                else:
                    segs.append(("", QUO))
                    segs.extend(inner)
            elif isinstance(p, ParamExp):
                segs.extend(self._param(p, dq, split))
            elif isinstance(p, CommandSubst):
                text = self.sh.command_subst(p.body)
                segs.append((text, QUO if dq else EXP))
            elif isinstance(p, ArithExp):
                expr = self.string(p.expr)
                try:
                    v = evaluate(expr, self.sh.getvar, self.sh.setvar_checked)
                except ArithError as e:
                    raise ExpansionError(str(e)) from None
                segs.append((str(v), QUO if dq else EXP))
            else:  # ArrayLiteral outside an assignment: bash would complain; keep text
                segs.append((str(p), LIT))
        return segs

    def _param(self, p: ParamExp, dq: bool, split: bool) -> list[tuple[str, int]]:
        sh = self.sh
        kind = QUO if dq else EXP
        name, op = p.name, p.op
        if op == "bad":
            raise ExpansionError("Bad substitution")
        if name in ("@", "*") and op in ("", "-", "+", "=", "?") and not (op and self._is_unset(p)):
            if op == "+":
                return self._expand(p.word.parts, dq, split) if p.word else []
            return self._positional(name, dq, split)
        value = sh.param(name, p.index)
        if op == "":
            if value is None:
                self._unset_check(name)
                value = ""
            return [(value, kind)]
        if op == "len":
            if value is None:
                self._unset_check(name)
                value = ""
            if name in ("@", "*"):
                return [(str(len(sh.positional)), kind)]
            return [(str(len(value)), kind)]
        unset = value is None or (p.colon and value == "")
        if op == "-":
            if unset:
                return self._expand(p.word.parts, dq, split) if p.word else []
            return [(value, kind)]
        if op == "+":
            if unset:
                return []
            return self._expand(p.word.parts, dq, split) if p.word else []
        if op == "=":
            if unset:
                new = self.string(p.word) if p.word else ""
                if not _is_name(name):
                    raise ExpansionError(f"{name}: bad variable name" if False else f"${{{name}}}: bad substitution")
                sh.setvar_checked(name, new)
                return [(new, kind)]
            return [(value, kind)]
        if op == "?":
            if unset:
                msg = self.string(p.word) if p.word else ("parameter not set or null" if p.colon or value is not None else "parameter not set")
                if p.word and not msg:
                    msg = "parameter not set or null" if p.colon else "parameter not set"
                raise ExpansionError(f"{name}: {msg}")
            return [(value, kind)]
        if value is None:
            self._unset_check(name)
            value = ""
        if op.startswith("rm"):
            pat = self.pattern(p.word) if p.word else ""
            return [(remove_affix(value, pat, op[2:]), kind)]
        if op.startswith("sub"):
            pat = self.pattern(p.word) if p.word else ""
            rep = self.string(p.word2) if p.word2 else ""
            return [(_bash_substitute(value, pat, rep, op[3:]), kind)]
        if op == "slice":
            off = evaluate(self.string(p.word), sh.getvar, sh.setvar_checked) if p.word else 0
            if off < 0:
                off = max(0, len(value) + off)
            if p.word2 is not None:
                ln = evaluate(self.string(p.word2), sh.getvar, sh.setvar_checked)
                end = off + ln if ln >= 0 else len(value) + ln
                return [(value[off:end], kind)]
            return [(value[off:], kind)]
        if op.startswith("case"):
            c = op[4:]
            conv = {"^^": str.upper, ",,": str.lower, "^": lambda s: s[:1].upper() + s[1:], ",": lambda s: s[:1].lower() + s[1:]}[c]
            return [(conv(value), kind)]
        raise ExpansionError("Bad substitution")

    def _is_unset(self, p: ParamExp) -> bool:
        n = len(self.sh.positional)
        return n == 0 or (p.colon and n == 1 and self.sh.positional[0] == "" and p.name == "*")

    def _unset_check(self, name: str) -> None:
        if "u" in self.sh.opts and name not in ("@", "*"):
            raise ExpansionError(f"{name}: parameter not set")

    def _positional(self, name: str, dq: bool, split: bool) -> list[tuple[str, int]]:
        params = self.sh.positional
        kind = QUO if dq else EXP
        if not split or (dq and name == "*"):
            ifs = self.sh.getvar("IFS")
            sep = " " if ifs is None or (name == "@" and not split) else ifs[:1]
            return [(sep.join(params), kind)] if params or dq else []
        out: list[tuple[str, int]] = []
        for i, v in enumerate(params):
            if i:
                out.append(("", BRK))
            out.append((v, kind))
        return out

    def _tilde(self, text: str, assignment: bool) -> str:
        """Tilde-prefix expansion (XCU 2.6.1); in assignments also after each ``:``."""
        def one(seg: str) -> str:
            if not seg.startswith("~"):
                return seg
            end = seg.find("/")
            user = seg[1:] if end < 0 else seg[1:end]
            rest = "" if end < 0 else seg[end:]
            if user == "":
                home = self.sh.getvar("HOME")
                return (home if home is not None else "~") + rest
            home = self.sh.user_home(user)
            return (home + rest) if home is not None else seg
        if assignment:
            return ":".join(one(s) for s in text.split(":"))
        return one(text)

    # ---- field splitting (XCU 2.6.5) -----------------------------------------------------
    def _split(self, segs: list[tuple[str, int]]) -> list[list[tuple[str, int]]]:
        ifs = self.sh.getvar("IFS")
        if ifs is None:
            ifs = " \t\n"
        ws = "".join(c for c in ifs if c in " \t\n")
        fields: list[list[tuple[str, int]]] = []
        cur: list[tuple[str, int]] = []
        exists = False
        state = "none"
        at_empty = False
        for text, kind in segs:
            if kind == _ATEMPTY:
                at_empty = True
                continue
            if kind == BRK:
                if exists:
                    fields.append(cur)
                    cur, exists = [], False
                state = "ws"
                continue
            if kind != EXP or not ifs:
                cur.append((text, kind))
                if kind != EXP or text:
                    exists = True
                    state = "none"
                continue
            start = 0
            for i, c in enumerate(text):
                if c not in ifs:
                    continue
                if i > start:
                    cur.append((text[start:i], EXP))
                    exists = True
                    state = "none"
                start = i + 1
                if c in ws:
                    if exists:
                        fields.append(cur)
                        cur, exists = [], False
                        state = "ws"
                else:
                    if exists:
                        fields.append(cur)
                        cur, exists = [], False
                    elif state != "ws":
                        fields.append([])
                    state = "nws"
            if start < len(text):
                cur.append((text[start:], EXP))
                exists = True
                state = "none"
        if exists:
            fields.append(cur)
        if at_empty and not fields:
            return []
        return fields

    # ---- pathname expansion (XCU 2.6.6) --------------------------------------------------
    def _glob(self, field: list[tuple[str, int]]) -> list[str]:
        if not any(k != QUO and (_GLOB_CHARS & set(t)) for t, k in field):
            return [_plain(field)]
        pat = "".join(escape(t) if k == QUO else t for t, k in field)
        if not has_glob(pat):
            return [_plain(field)]
        matches = self.glob(pat)
        return matches if matches else [_plain(field)]

    def glob(self, pat: str) -> list[str]:
        """Paths in the filesystem model matching ``pat`` (sorted bytewise, as in the C locale)."""
        fs = self.sh.fs
        absolute = pat.startswith("/")
        comps = [c for c in pat.split("/")]
        if absolute:
            comps = comps[1:]
        results = ["/" if absolute else ""]
        for i, comp in enumerate(comps):
            last = i == len(comps) - 1
            nxt: list[str] = []
            if comp == "":
                results = [r + "/" if r and not r.endswith("/") else r for r in results]
                continue
            for base in results:
                dirpath = self.sh.abspath(base or ".")
                if not has_glob(comp):
                    cand = base + ("" if base in ("", "/") or base.endswith("/") else "/") + unescape(comp)
                    if last:
                        try:
                            fs.lstat(self.sh.abspath(cand))
                            nxt.append(cand)
                        except OSError:
                            pass
                    else:
                        nxt.append(cand)
                    continue
                try:
                    st = fs.stat(dirpath)
                    if not _stat.S_ISDIR(st.st_mode):
                        continue
                    names = fs.readdir(dirpath)
                except OSError:
                    continue
                rx = pattern_regex(comp)
                for name in sorted(names, key=_sortkey):
                    if name.startswith(".") and not comp.startswith(".") and not comp.startswith("\\."):
                        continue
                    if rx.fullmatch(name):
                        nxt.append(base + ("" if base in ("", "/") or base.endswith("/") else "/") + name)
            results = nxt
            if not results:
                return []
        if not comps or comps[-1] == "":
            results = [r for r in results if self._isdir(r)]
        return sorted(results, key=_sortkey)

    def _isdir(self, path: str) -> bool:
        try:
            return self.sh.fs.stat(self.sh.abspath(path)).is_dir
        except OSError:
            return False


_ATEMPTY = 4


#: the parameters whose expansion is a list (``"$@"`` makes one field per parameter)
_LIST_PARAMS = frozenset(("@", "*"))


def _is_plain_param(p) -> bool:
    """``$x`` or ``${x}`` of one parameter (not ``$@``/``$*``, no operator)."""
    return type(p) is ParamExp and p.op == "" and p.name not in _LIST_PARAMS


def _quoted_only(parts, params: bool = False) -> bool:
    """True if the parts are double-quoted parts, quoted literals and unquoted literals with
    no pattern character and no ``~`` (and, with ``params``, plain unquoted parameters other
    than ``$@``/``$*``, for expansions that do not split): their expansion is the text they
    hold, one field."""
    for p in parts:
        t = type(p)
        if t is DoubleQuoted:
            continue
        if t is Lit:
            if p.quoted or not (_GLOB_CHARS.intersection(p.text) or "~" in p.text):
                continue
            return False
        if params and _is_plain_param(p):
            continue
        return False
    return True


def _is_bare_at(p: DoubleQuoted) -> bool:
    return len(p.parts) == 1 and isinstance(p.parts[0], ParamExp) and p.parts[0].name == "@" and p.parts[0].op == ""


def _plain(field: list[tuple[str, int]]) -> str:
    return "".join(t for t, _ in field)


def _sortkey(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def _is_name(s: str) -> bool:
    return re.fullmatch(r"[A-Za-z_][A-Za-z_0-9]*", s) is not None


def _bash_substitute(value: str, pat: str, rep: str, mode: str) -> str:
    rx = pattern_regex(pat)
    if mode == "#":
        for i in range(len(value), -1, -1):
            if rx.fullmatch(value, 0, i):
                return rep + value[i:]
        return value
    if mode == "%":
        for i in range(0, len(value) + 1):
            if rx.fullmatch(value, i):
                return value[:i] + rep
        return value
    out, i, n = [], 0, len(value)
    done = False
    while i <= n:
        if not done or mode == "/":
            for j in range(n, i, -1):
                if rx.fullmatch(value, i, j):
                    out.append(rep)
                    i = j
                    done = True
                    break
            else:
                if i < n:
                    out.append(value[i])
                i += 1
                continue
            if mode != "/":
                out.append(value[i:])
                return "".join(out)
            continue
        out.append(value[i:])
        break
    return "".join(out)
