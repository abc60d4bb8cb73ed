"""man-db 2.11.2's ``lexgrog``: the whatis text and preprocessor filters of a man(7) or mdoc(7)
source page, as ``find_name_decompressed`` extracts them (``src/lexgrog.l``).

lexgrog is a flex scanner; this module runs the same rules the way flex does: in the current
start condition, every rule is tried at the current position, the longest match wins and a
tie goes to the rule written first; ``yyless``, ``BEGIN`` and the ``<<EOF>>`` rules act as in
the scanner. The input is the page's bytes (flex is 8-bit here: character classes are ASCII,
``.`` is any byte but a newline), held as a latin-1 string so that one character is one byte.
Patterns are written from the scanner's definitions; alternations whose members are prefixes of
one another (the section names: ``NOM``, ``NOME``, ``NOMEN``) list the longer first, because
Python's regular expressions take the first alternative that matches where flex takes the
longest.

Two stretches are done in bulk where the rules would only step over bytes (the same result as
one token at a time): before the NAME section only ``.`` and ``'`` can start a token with an
effect, and after it (MAN_REST) only a line break, followed by a filter request, can.
"""

from __future__ import annotations

import re

MAX_NAME = 8192

# --- definitions (lexgrog.l's first section) ----------------------------------------------
_D = {
    "digit": "[0-9]", "upper": "[A-Z]", "alpha": "[A-Za-z]", "blank": "[ \t]",
    "blank_eol": "[ \t\r\n]", "word": "[A-Za-z0-9][^ \t\r\n]*", "eol": "\r?\n",
    "bol": "(?:\r?\n)+", "next": "(?:\r?\n)*", "empty": "\r?\n[ \t]*",
    "indent": "\r?\n[ \t]+", "dq": '"',
}
_D["font_change"] = r"\\f(?:[A-Z1-4]|\([A-Z]{2})"
_D["size_change"] = r"\\s[+-]?[0-9]"
_D["style_change"] = "(?:{font_change}(?:{size_change})?|{size_change}(?:{font_change})?)".format(**_D)
_D["typeface"] = r"\.(?:B[IR]?|I[BR]?|R[BI]|S[BM])"
_D["sec_request"] = r"\.[Ss][HhYySs]"
_D["comment"] = r"['.]\\" + '"'

#: the NAME section's title in each language lexgrog knows, longest alternatives first
_NAMES = [
    "名[ \t]?(?:称|字)[ \t]?.*",                      # zh_CN
    "(?:名[ \t]?(?:稱|字)|命令名)[ \t]?.*",            # zh_TW
    "Н(?:А|а)(?:И|и)(?:М|м)(?:Е|е)(?:Н|н)(?:О|о)(?:В|в)(?:А|а)(?:Н|н)(?:И|и)(?:Е|е)",  # ru
    "Н(?:А|а)(?:З|з)(?:В|в)(?:А|а)(?:Н|н)(?:И|и)(?:Е|е)",                              # ru
    "P[Aa][Vv][Aa][Dd][Ii][Nn][Ii][Mm][Aa][Ss]",     # lt
    "B[Ee][Zz][Ee][Ii][Cc][Hh][Nn][Uu][Nn][Gg]",     # de
    "Н(?:А|а)(?:З|з)(?:И|и)(?:В|в)",                 # sr
    "Н(?:А|а)(?:З|з)(?:В|в)(?:А|а)",                 # uk
    "(?:\u0627\ufef9\u0633\u0645|\u0627\u0644\u0625\u0633\u0645)",  # ar
    r"J[Mm](?:É|é|\\\('[Ee]|E|e)[Nn][Oo]",           # cs
    "N(?:Á|á)[Zz][Ee][Vv]",                          # cs
    "N[Oo][Mm][Bb][Rr][Ee]",                         # es
    "N[Oo][Mm][Ee][Nn]",                             # latin
    "N[Aa][Zz][Ii][Vv]",                             # sr (latin)
    "N[Aa][Zz][Ww][Aa]",                             # pl
    r"N(?:É|é|\\\('[Ee]|E|e)[Vv]",                   # hu
    "И(?:М|м)(?:Е|е)", "И(?:М|м)(?:Я|я)",            # bg, sr; ru
    "(?:İ|i)S(?:İ|i)M",                              # tr
    "(?:이름|명칭)",                                   # ko
    "N[Aa][Vv][Nn]", "N[Aa][Mm][Ee]", "N[Oo][Mm][Oo]", "N[Ii][Mm][Ii]", "N[Aa][Mm][Aa]",
    "N[Oo][Mm][Ee]", "N[Aa][Aa][Mm]", "N[Uu][Mm][Ee]", "M[Ee][Nn][Oo]", "N[Aa][Mm][Nn]",
    "I[Mm][Ee]",                                     # sr (latin)
    "T(?:Ê|ê)[Nn]",                                  # vi
    "(?:名|\u033e)(?:前|称)",                          # ja
    "نام",                                           # fa
    "\u0baa\u0bc6\u0baf",                            # ta
    "N[Oo][Mm]",                                     # fr
    "A[Dd]",                                         # tr
]
_D["name"] = "(?:" + "|".join(_NAMES) + ")"
_D["name_sec"] = '"?(?:{style_change})?{name}(?:{style_change})?(?:[ \t]*")?'.format(**_D)


def _f(pattern: str) -> str:
    return pattern.format(**_D)


# --- rules: (pattern, action) per start condition, in the scanner's order ------------------
# actions are names handled in Scanner._act; "" is a rule without an action
_SEC_END = "sec_end"       # *p_name = '\0'; BEGIN (MAN_REST)

_NAME_DESC_PRE = [          # <MAN_NAME,MAN_DESC> rules written before the MAN_NAME-only ones
    (_f(r"{bol}{sec_request}{blank}*"), _SEC_END),
    (_f(r"{bol}\.X{upper}{blank}+"), _SEC_END),
    (_f(r"{bol}\.sp{blank}*"), _SEC_END),
    (_f(r"{bol}\.ig{blank}*"), _SEC_END),
    (_f(r"{bol}\.de[1i]?{blank}*"), _SEC_END),
    (_f(r"{bol}\.i[ef]{blank}*"), _SEC_END),
    (_f(r"{empty}{bol}.+"), _SEC_END),
    (_f(r'{bol}{typeface}{blank}+"'), "quote"),
    (_f(r"{bol}{typeface}{blank}+"), "nl"),
    (_f(r"{bol}\.Tn{blank}+"), "nl"),
    (_f(r"{bol}\.ft{blank}.*"), "nl"),
    (_f(r"{bol}\.V[be]{blank}.*"), "nl"),
    (_f(r"{bol}\.IX{blank}.*"), "nl"),
    (_f(r"{bol}\.Nm{blank}+"), "nl"),
    (_f(r"{bol}\.PD{blank}*"), "nl"),
    (_f(r"{bol}\\&"), "nl"),
    (_f(r"{next}{comment}.*"), "nl"),
    (_f(r"{bol}\.{blank}*(?=\n)"), "nl"),
    (_f(r"{bol}\.\.(?=\n)"), "nl"),
    (_f(r"{bol}\.nf.*"), "nofill"),
    (_f(r"{bol}\.fi.*"), "fill"),
]
_DASH = [                   # <MAN_NAME> only: the name/description separator
    (_f(r"{next}{blank}*\\\((?:mi|hy|em|en){blank}*"), "dash"),
    (_f(r"{next}{blank}*\\\[(?:mi|hy|em|en)\]{blank}*"), "dash"),
    (_f(r"{next}{blank_eol}+[-\\]-{blank}*"), "dash"),
    (_f(r"{next}{blank_eol}*[-\\]-{blank}+"), "dash"),
    (_f(r"{bol}\.Nd{blank}*"), "dash"),
]
_ESCAPES = [                # <MAN_NAME,MAN_DESC> escape sequences and special characters
    (_f(r"{next}\\[\\e]"), ("char", "\\")),
    (_f(r"{next}\\(?:'|\(aa)"), ("char", "'")),
    (_f(r"{next}\\(?:`|\(ga)"), ("char", "`")),
    (_f(r"{next}\\(?:-|\((?:mi|hy|em|en))"), ("char", "-")),
    (_f(r"{next}\\\[(?:mi|hy|em|en)\]"), ("char", "-")),
    (_f(r"{next}\\\."), ("char", ".")),
    (_f(r"{next}(?:(?:\\[ 0t~])|[ ]|\t)*"), ("char", " ")),
    (_f(r"{next}\\\((?:ru|ul)"), ("char", "_")),
    (_f(r"{next}\\\\t"), ("char", "\t")),
    (_f(r"{next}\\[|^&!%acdpruz{{}}\r\n]"), ""),
    (_f(r"{next}\\[bhlLvx]{blank}*'[^']+'"), ""),
    (_f(r"{next}\\\$[1-9]"), ""),
    (_f(r"(?:{next}\\\(..|\\\[..\])"), "glyph"),
    (_f(r"(?:{next}\\\*\(..|\\\*\[..\])"), "perldoc2"),
    (_f(r"{next}\\\*."), "perldoc1"),
    (_f(r'{next}\\["#].*'), ""),
    (_f(r"{next}{font_change}"), ""),
    (_f(r"{next}\\k{alpha}"), ""),
    (_f(r"{next}\\n(?:\({alpha})?{alpha}"), ""),
    (_f(r'{next}\\o"[^"]+"'), ""),
    (_f(r"{next}{size_change}"), ""),
    (_f(r"{next}\\w{blank}*'[^']+'[^ \t]*"), ""),
    (_f(r"{next}\\"), ""),
    (_f(r"{next}\(\\\|\){blank}*"), ""),
]
_MDOC_DESC = [              # <MAN_DESC> only
    (_f(r"{bol}\.At{blank}*"), ("begin", "MAN_DESC_AT")),
    (_f(r"{bol}\.Bsx{blank}*"), ("begin", "MAN_DESC_BSX")),
    (_f(r"{bol}\.Bx{blank}*"), ("begin", "MAN_DESC_BX")),
    (_f(r"{bol}\.Fx{blank}*"), ("begin", "MAN_DESC_FX")),
    (_f(r"{bol}\.Nx{blank}*"), ("begin", "MAN_DESC_NX")),
    (_f(r"{bol}\.Ox{blank}*"), ("begin", "MAN_DESC_OX")),
    (_f(r"{bol}\.Ux{blank}*"), ("word", "UNIX")),
    (_f(r"{bol}\.Dq{blank}*"), "dq"),
]
_NAME_DESC_POST = [         # <MAN_NAME,MAN_DESC> rules after the mdoc states in the file
    (_f(r"{bol}\.br{blank}*"), "sep"),
    (_f(r"{bol}\.LP{blank}*"), "sep"),
    (_f(r"{bol}\.PP{blank}*"), "sep"),
    (_f(r"{bol}\.P{blank}*"), "sep"),
    (_f(r"{bol}\.IP{blank}.*"), "sep"),
    (_f(r"{bol}\.HP{blank}.*"), "sep"),
    (_f(r"{bol}\.RS{blank}.*"), "sep"),
    (_f(r"{bol}\.RE{blank}.*"), "sep"),
    (_f(r"{bol}['.]"), _SEC_END),
    (r"[A-Za-z0-9]*", "str"),
    (_f(r"{blank}*,{blank}*"), ("str", ", ")),
    (_f(r"{bol}."), "bolchar"),
    (r".", "onechar"),
]


def _mdoc_word_state(word: str) -> list:
    return [(_f(r"{word}"), ("mdocword", word)), (_f(r".|{eol}"), ("mdoc_text", word))]


_RULES_SRC = {
    "MAN_FILE": [
        (_f(r"{sec_request}{blank_eol}+{name_sec}{blank}*"), ("begin", "MAN_PRENAME")),
        (r"\.[^Ss\r\n].*", ""),
        (r'\..{0,3}"?.{0,4}"?', ""),
        (_f(r"{comment}.*"), ""),
        (_f(r".|{eol}"), ""),
    ],
    "FORCE_EXIT": [(_f(r".|{eol}"), "terminate")],
    "MAN_PRENAME": [
        (_f(r"{bol}{sec_request}{blank}*"), _SEC_END),
        (_f(r"{bol}{typeface}{blank}.*"), ("yyless_begin", 0, "MAN_NAME")),
        (_f(r"{bol}\.Tn{blank}.*"), ("yyless_begin", 0, "MAN_NAME")),
        (_f(r"{bol}\.ft{blank}.*"), ("yyless_begin", 0, "MAN_NAME")),
        (_f(r"{bol}\.V[be]{blank}.*"), ("yyless_begin", 0, "MAN_NAME")),
        (_f(r"{bol}\.IX{blank}.*"), ("yyless_begin", 0, "MAN_NAME")),
        (_f(r"{bol}\.Nm{blank}.*"), ("yyless_begin", 0, "MAN_NAME")),
        (_f(r"{bol}['.].*"), ""),
        (_f(r"{empty}{eol}"), ("yyless", 1)),
        (_f(r".|{eol}"), ("yyless_begin", 0, "MAN_NAME")),
    ],
    "MAN_NAME": _NAME_DESC_PRE + _DASH + _ESCAPES + _NAME_DESC_POST,
    "MAN_DESC": _NAME_DESC_PRE + _ESCAPES + _MDOC_DESC + _NAME_DESC_POST,
    "MAN_DESC_AT": [
        (_f(r"32v{blank}*"), ("mdoc_text", "Version 32V AT&T UNIX")),
        *[(_f(r"v%d{blank}*" % i), ("mdoc_text", "Version %d AT&T UNIX" % i)) for i in range(1, 8)],
        (_f(r"V{blank}*"), ("mdoc_text", "AT&T System V UNIX")),
        *[(_f(r"V.%d{blank}*" % i), ("mdoc_text", "AT&T System V.%d UNIX" % i)) for i in range(1, 5)],
        (_f(r".|{eol}"), ("yyless_mdoc", "AT&T UNIX")),
    ],
    "MAN_DESC_BSX": [(_f(r"{word}"), ("mdocword", "BSD/OS")),
                     (_f(r".|{eol}"), ("yyless_mdoc", "BSD/OS"))],
    "MAN_DESC_BX": [
        (_f(r"-alpha{blank}*"), ("mdoc_text", "BSD (currently in alpha test)")),
        (_f(r"-beta{blank}*"), ("mdoc_text", "BSD (currently in beta test)")),
        (_f(r"-devel{blank}*"), ("mdoc_text", "BSD (currently under development")),
        (_f(r"{word}{blank}*"), "bx_word"),
        (_f(r".|{eol}"), ("yyless_mdoc", "BSD")),
    ],
    "MAN_DESC_BX_RELEASE": [
        (_f(r"[Rr]eno{blank}*"), ("str_desc", "-Reno")),
        (_f(r"[Tt]ahoe{blank}*"), ("str_desc", "-Tahoe")),
        (_f(r"[Ll]ite{blank}*"), ("str_desc", "-Lite")),
        (_f(r"[Ll]ite2{blank}*"), ("str_desc", "-Lite2")),
        (_f(r".|{eol}"), ("yyless_begin", 0, "MAN_DESC")),
    ],
    "MAN_DESC_DQ": [(r".*", "dq_text")],
    "MAN_DESC_FX": [(_f(r"{word}"), ("mdocword", "FreeBSD")),
                    (_f(r".|{eol}"), ("yyless_mdoc", "FreeBSD"))],
    "MAN_DESC_NX": [(_f(r"{word}"), ("mdocword", "NetBSD")),
                    (_f(r".|{eol}"), ("yyless_mdoc", "NetBSD"))],
    "MAN_DESC_OX": [(_f(r"{word}"), ("mdocword", "OpenBSD")),
                    (_f(r".|{eol}"), ("yyless_mdoc", "OpenBSD"))],
}

RULES = {state: [(re.compile(p.encode("utf-8").decode("latin-1")), a) for p, a in rules]
         for state, rules in _RULES_SRC.items()}

_TEXT_STATES = ("MAN_NAME", "MAN_DESC")
_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_ALNUM_RUN = re.compile("[A-Za-z0-9]+")

#: MAN_REST's filter rules at once: a line break (and any more) then the request
_FILTERS = re.compile(r"\n(?:\r?\n)*\.(TS|EQ|PS|G1|R1|\[|vS)")
_FILTER_LETTERS = {"TS": (0, "t"), "EQ": (1, "e"), "PS": (2, "p"), "G1": (3, "g"), "R1": (4, "r"),
                   "[": (4, "r"), "vS": (5, "v")}

#: states whose <<EOF>> rule ends the NAME text (BEGIN MAN_REST, whose EOF terminates)
_EOF_TO_REST = {"MAN_PRENAME", "MAN_NAME", "MAN_DESC"}


def _u(s: str) -> str:
    return s.encode("utf-8").decode("latin-1")


#: groff_char(7) glyphs lexgrog knows (its ``glyphs`` table), as UTF-8 bytes in latin-1
GLYPHS = {k: _u(v) for k, v in {
    "'A": "Á", "'C": "Ć", "'E": "É", "'I": "Í", "'O": "Ó", "'U": "Ú", "'Y": "Ý", "'a": "á",
    "'c": "ć", "'e": "é", "'i": "í", "'o": "ó", "'u": "ú", "'y": "ý", ",C": "Ç", ",c": "ç",
    "-D": "Ð", ".i": "ı", "/L": "Ł", "/O": "Ø", "/l": "ł", "/o": "ø", ":A": "Ä", ":E": "Ë",
    ":I": "Ï", ":O": "Ö", ":U": "Ü", ":Y": "Ÿ", ":a": "ä", ":e": "ë", ":i": "ï", ":o": "ö",
    ":u": "ü", ":y": "ÿ", "AE": "Æ", "Bq": "„", "Fc": "»", "Fi": "ffi", "Fl": "ffl", "Fo": "«",
    "IJ": "Ĳ", "OE": "Œ", "Sd": "ð", "TP": "Þ", "Tp": "þ", "^A": "Â", "^E": "Ê", "^I": "Î",
    "^O": "Ô", "^U": "Û", "^a": "â", "^e": "ê", "^i": "î", "^o": "ô", "^u": "û", "`A": "À",
    "`E": "È", "`I": "Ì", "`O": "Ò", "`U": "Ù", "`a": "à", "`e": "è", "`i": "ì", "`o": "ò",
    "`u": "ù", 'a"': "˝", "a-": "¯", "a.": "˙", "a^": "^", "aa": "´", "ab": "˘", "ac": "¸",
    "ad": "¨", "ae": "æ", "ah": "ˇ", "ao": "˚", "aq": "'", "a~": "~", "bq": "‚", "cq": "’",
    "dq": '"', "em": "—", "en": "–", "fc": "›", "ff": "ff", "fi": "fi", "fl": "fl", "fo": "‹",
    "ga": "`", "ha": "^", "ho": "˛", "hy": "‐", "ij": "ĳ", "lq": "“", "oA": "Å", "oa": "å",
    "oe": "œ", "oq": "‘", "r!": "¡", "r?": "¿", "rq": "”", "ss": "ß", "ti": "~", "vS": "Š",
    "vZ": "Ž", "vs": "š", "vz": "ž", "~A": "Ã", "~N": "Ñ", "~O": "Õ", "~a": "ã", "~n": "ñ",
    "~o": "õ"}.items()}
#: Pod::Man's strings (its ``perldocs`` table)
PERLDOCS = {"--": "-", "Aq": "'", "C'": "'", "C+": "C++", "C`": "`", 'L"': '"',
            "PI": _u("π"), 'R"': '"'}


class Unsupported(Exception):
    """A construct this scanner does not reproduce (names it)."""


class TooBig(Exception):
    """The whatis text passed MAX_NAME bytes: lexgrog prints a warning and truncates."""


class Scanner:
    """One ``find_name_decompressed`` run over a man page's bytes."""

    def __init__(self, data: bytes):
        self.text = data.decode("latin-1")
        self.out: list[str] = []     # newname, as characters (bytes)
        self.size = 0
        self.filters = ["_"] * 6
        self.fill_mode = True
        self.waiting_for_quote = False
        self.state = "MAN_FILE"

    # --- newname (add_*_to_whatis) ----------------------------------------------------------

    def _last(self) -> str | None:
        return self.out[-1][-1] if self.out else None

    def add_str(self, s: str) -> None:
        if self.size + len(s) >= MAX_NAME:
            raise TooBig()
        if s:
            self.out.append(s)
            self.size += len(s)

    def add_char(self, c: str) -> None:
        if self.size + 1 >= MAX_NAME:
            raise TooBig()
        if self.waiting_for_quote and c == '"':
            self.waiting_for_quote = False
        else:
            self.out.append(c)
            self.size += 1

    def add_separator(self) -> None:
        if self.out and self._last() != " ":
            self.add_char(" ")
        self.add_str("- ")

    def add_wordn(self, s: str) -> None:
        if self.out and self._last() != " ":
            self.add_char(" ")
        s = s.rstrip(" ")
        if s:
            self.add_str(s)

    def mdoc_text(self, s: str) -> None:
        self.add_wordn(s)
        self.state = "MAN_DESC"

    def newline_found(self) -> None:
        if self.out and self._last() != " ":
            if self.fill_mode:
                self.add_char(" ")
            else:
                self.add_char("\x11")
                self.state = "MAN_NAME"
        self.waiting_for_quote = False

    # --- the scanner ----------------------------------------------------------------------

    def run(self) -> int:
        """``yylex``: 0 when the scanner terminated (a whatis exists), 1 at the default
        ``<<EOF>>`` rule (no NAME section, or an mdoc state cut short)."""
        text, n, pos = self.text, len(self.text), 0
        while True:
            state = self.state
            if pos >= n:
                if state in _EOF_TO_REST:
                    self.state = "MAN_REST"
                    continue
                return 0 if state == "MAN_REST" else 1
            if state == "MAN_FILE":
                c = text[pos]
                if c != "." and c != "'":
                    nxt = min((i for i in (text.find(".", pos), text.find("'", pos)) if i >= 0),
                              default=n)
                    pos = nxt
                    continue
            elif state == "MAN_REST":
                # ".+" takes the rest of each line (a '\r' before its '\n' too), so every
                # line break from here on starts a token, and only there can a filter
                # request match: one search does the whole state
                for m in _FILTERS.finditer(text, pos):
                    index, letter = _FILTER_LETTERS[m.group(1)]
                    self.filters[index] = letter
                return 0
            elif state in _TEXT_STATES and text[pos] in _ALNUM:
                # at a letter or digit only "[[:alnum:]]*" and "." can match, and the first
                # is longer or written first
                m = _ALNUM_RUN.match(text, pos)
                self.add_str(m.group(0))
                pos = m.end()
                continue
            best, best_len = None, -1
            for rx, action in RULES[state]:
                m = rx.match(text, pos)
                if m is not None and m.end() - pos > best_len:
                    best, best_len = (m, action), m.end() - pos
            if best is None or best_len == 0:
                # only an empty match (".*" of MAN_DESC_DQ at a line break): flex's default
                # rule would echo the byte to standard output
                raise Unsupported(f"flex's default rule in {state}")
            m, action = best
            pos = self._act(action, m.group(0), pos)
            if pos < 0:
                return 0

    def _act(self, action, yytext: str, pos: int) -> int:
        """Run a rule's action; the new position (-1: yyterminate)."""
        end = pos + len(yytext)
        if action == "":
            return end
        kind = action if isinstance(action, str) else action[0]
        if kind == _SEC_END:
            self.state = "MAN_REST"
        elif kind == "begin":
            self.state = action[1]
        elif kind == "terminate":
            return -1
        elif kind == "yyless_begin":
            self.state = action[2]
            return pos + action[1]
        elif kind == "yyless":
            return pos + action[1]
        elif kind == "filter":
            self.filters[action[1]] = action[2]
        elif kind == "quote":
            self.newline_found()
            self.waiting_for_quote = True
        elif kind == "nl":
            self.newline_found()
        elif kind == "nofill":
            self.fill_mode = False
        elif kind == "fill":
            self.fill_mode = True
        elif kind == "dash":
            self.add_separator()
            self.state = "MAN_DESC"
        elif kind == "char":
            self.add_char(action[1])
        elif kind == "glyph":
            v = GLYPHS.get(yytext[2:4])
            if v is not None:
                self.add_str(v)
        elif kind == "perldoc2":
            v = PERLDOCS.get(yytext[3:5])
            if v is not None:
                self.add_str(v)
        elif kind == "perldoc1":
            v = PERLDOCS.get(yytext[2:3])
            if v is not None:
                self.add_str(v)
        elif kind == "word":
            self.add_wordn(action[1])
        elif kind == "dq":
            self.add_wordn('"')
            self.state = "MAN_DESC_DQ"
        elif kind == "dq_text":
            self.add_str(yytext)
            self.add_char('"')
            self.state = "MAN_DESC"
        elif kind == "mdoc_text":
            self.mdoc_text(action[1])
        elif kind == "yyless_mdoc":
            self.mdoc_text(action[1])
            return pos
        elif kind == "mdocword":
            self.add_wordn(action[1])
            self.add_wordn(yytext)
            self.state = "MAN_DESC"
        elif kind == "bx_word":
            self.add_wordn(yytext)
            self.add_str("BSD")
            self.state = "MAN_DESC_BX_RELEASE"
        elif kind == "str_desc":
            self.add_str(action[1])
            self.state = "MAN_DESC"
        elif kind == "sep":
            self.add_char("\x11")
            self.state = "MAN_NAME"
        elif kind == "str":
            self.add_str(action[1] if not isinstance(action, str) else yytext)
        elif kind == "bolchar":
            self.newline_found()
            self.add_char(yytext[-1])
        elif kind == "onechar":
            self.add_char(yytext)
        else:
            raise AssertionError(f"lexgrog: unknown action {action!r}")
        return end


def find_name(data: bytes) -> tuple[bytes | None, str]:
    """``find_name_decompressed`` for a man page (``MANPAGE``): (whatis or None, filters).

    The whatis is the NAME text with leading and trailing spaces removed, as bytes; None when
    the scanner ended at its default end-of-file rule (no NAME section). ``filters`` is the
    preprocessor letters in lexgrog's order (``t``, ``e``, ``p``, ``g``, ``r``, ``v``) or
    ``-``. Raises :class:`TooBig` where lexgrog would warn and truncate.
    """
    sc = Scanner(data)
    ret = sc.run()
    if ret:
        return None, "-"
    name = "".join(sc.out)
    # newname is NUL-terminated: a NUL byte in it ends the string
    name = name.split("\0", 1)[0]
    name = name.rstrip(" ") if name else name
    name = name.lstrip(" ")
    letters = "".join(f for f in sc.filters if f != "_")
    return name.encode("latin-1"), letters or "-"
