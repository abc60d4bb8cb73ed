"""ckbcomp's keymap writer for Linux (console-setup 1.221, ``/usr/bin/ckbcomp`` from
``x_to_kernelsym`` to ``print_vector``): each XKB key becomes a vector of 64 kernel keysyms
(shift, altgr, control, alt and the four groups as shiftl/shiftr), written as a
``keycode N = ...`` line of ``loadkeys`` text.

The steps are ckbcomp's, in its order: keysym translation (``%xkbsym_table``, ``0x``/``U``
keysyms, Unicode letters marked ``+`` for Caps Lock, control characters, the legacy charset
of ``-charmap``), the quality-ranked approximation of the missing modifier combinations, the
modifier keys copied where they could lock, the keypad, function keys, consoles, ``Hex_``
and ``Ascii_`` keys, and the second half of each line (the Caps Lock variants, which set
``broken_caps`` for letters beyond ASCII).

Perl's ``\\p{IsAlpha}`` is Unicode's Alphabetic property (Perl 5.36 and Python 3.11 both hold
Unicode 14.0): letters (``L*``), letter numbers (``Nl``) and the circled letters
U+24B6..U+24E9 of the BMP are alphabetic, and the combining marks (``Mn``, ``Mc``) that
``alphamarks`` lists.
"""

from __future__ import annotations

import re
import unicodedata

from nuwa.script.commands.console.alphamarks import alphabetic_mark
from nuwa.script.context import Defer

VOID = "VoidSymbol"

#: ``%kernel_modifiers`` (the Linux names; the FreeBSD ones never occur in a Linux vector
#: except through a keysym of that name, which the table maps the same way)
KERNEL_MODIFIERS = {
    "Shift": 0x01, "Shift_Lock": 0x01, "AltGr": 0x02, "AltGr_Lock": 0x02, "Control": 0x04, "Control_Lock": 0x04,
    "Alt": 0x08, "Alt_Lock": 0x08, "ShiftL": 0x10, "ShiftL_Lock": 0x10, "ShiftR": 0x20, "ShiftR_Lock": 0x20,
    "CtrlL": 0x40, "CtrlL_Lock": 0x40, "CtrlR": 0x80, "CtrlR_Lock": 0x80,
    "lshift": 0x01, "rshift": 0x01, "shifta": 0x01, "lshifta": 0x01, "rshifta": 0x01, "alt": 0x02, "lalt": 0x02,
    "ralt": 0x02, "alta": 0x02, "lalta": 0x02, "ralta": 0x02, "ctrl": 0x04, "lctrl": 0x04, "rctrl": 0x04,
    "ctrla": 0x04, "lctrla": 0x04, "rctrla": 0x04, "alock": 0x10, "ashift": 0x10,
}

#: ``@modifier_combinations``: the names of the 128 keymaps' first 128 modifier sets
_MODS = ("shift", "altgr", "control", "alt", "shiftl", "shiftr", "ctrll")
MODIFIER_COMBINATIONS = [" ".join([_MODS[b] for b in (6, 5, 4, 3, 2, 1, 0) if m & (1 << b)]) or "plain"
                         for m in range(128)]

#: Linux ``%controlsyms_hash``
CONTROLSYMS_HASH = {
    "nul": 0x00, "Control_a": 0x01, "Control_b": 0x02, "Control_c": 0x03, "Control_d": 0x04, "Control_e": 0x05,
    "Control_f": 0x06, "Control_g": 0x07, "BackSpace": 0x08, "Tab": 0x09, "Linefeed": 0x0a, "Control_k": 0x0b,
    "Control_l": 0x0c, "Return": 0x0d, "Control_n": 0x0e, "Control_o": 0x0f, "Control_p": 0x10,
    "Control_q": 0x11, "Control_r": 0x12, "Control_s": 0x13, "Control_t": 0x14, "Control_u": 0x15,
    "Control_v": 0x16, "Control_w": 0x17, "Control_x": 0x18, "Control_y": 0x19, "Control_z": 0x1a,
    "Escape": 0x1b, "Control_backslash": 0x1c, "Control_bracketright": 0x1d, "Control_asciicircum": 0x1e,
    "Control_underscore": 0x1f, "Delete": 0x7f,
}

_METASYMS_HASH = {
    " ": "space", "`": "grave", "^": "asciicircum", "~": "asciitilde", "<": "less", "=": "equal", ">": "greater",
    "|": "bar", "_": "underscore", "-": "minus", ",": "comma", ";": "semicolon", ":": "colon", "!": "exclam",
    "?": "question", "/": "slash", ".": "period", "'": "apostrophe", '"': "quotedbl", "(": "parenleft",
    ")": "parenright", "[": "bracketleft", "]": "bracketright", "{": "braceleft", "}": "braceright", "@": "at",
    "$": "dollar", "*": "asterisk", "\\": "backslash", "&": "ampersand", "#": "numbersign", "%": "percent",
    "+": "plus", "0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "6": "six",
    "7": "seven", "8": "eight", "9": "nine", "\x08": "BackSpace", "\x09": "Tab", "\x0a": "Linefeed",
    "\x0d": "Control_m", "\x1b": "Escape", "\x1c": "Control_backslash", "\x7f": "Delete",
}


def _control_tables() -> tuple[list[str], list[str], list[str]]:
    """``@controlsyms``, ``@metasyms``, ``@metacontrolsyms`` for Linux."""
    control: list = [None] * 256
    for name, code in CONTROLSYMS_HASH.items():
        control[code] = name
    for code in range(256):
        if control[code] is None:
            if 64 <= code <= 127 and control[code % 32] is not None:
                control[code] = control[code % 32]
            else:
                control[code] = VOID
    control[0x08], control[0x7f] = "Delete", "BackSpace"
    control[0x0d], control[0x20], control[0x2e], control[0x3f] = "Control_m", "nul", "Compose", "Delete"
    # chr(code) for code > 127 is a Latin-1 byte in Perl's string: Meta_ and that byte
    meta = ["Meta_" + _METASYMS_HASH.get(chr(c), chr(c)) for c in range(256)]
    metacontrol = []
    for c in control:
        if c == "Compose":
            metacontrol.append("Compose")
        elif c == "Return":
            metacontrol.append("Meta_Control_m")
        elif c in ("NoSymbol", VOID):
            metacontrol.append(c)
        else:
            metacontrol.append("Meta_" + c)
    return control, meta, metacontrol


CONTROLSYMS, METASYMS, METACONTROLSYMS = _control_tables()

_HEX4 = re.compile(r"[0-9][0-9a-fA-F]{3}", re.ASCII)
_XHEX = re.compile(r"0x0*(100)?([0-9a-fA-F]{4})", re.ASCII)
_UHEX = re.compile(r"U([0-9a-fA-F]+)", re.ASCII)
_CAPS = re.compile(r"(\+?)U\+([0-9a-fA-F]+)", re.ASCII)
_FKEY = re.compile(r"F([0-9]+)", re.ASCII)
_KPNUM = re.compile(r"KP_([0-9])", re.ASCII)

_LEVEL1 = {"DEFAULT", "ONE_LEVEL", "TWO_LEVEL", "THREE_LEVEL", "ALPHABETIC", "EIGHT_LEVEL",
           "EIGHT_LEVEL_ALPHABETIC", "EIGHT_LEVEL_SEMIALPHABETIC", "FOUR_LEVEL", "FOUR_LEVEL_ALPHABETIC",
           "FOUR_LEVEL_SEMIALPHABETIC", "SEPARATE_CAPS_AND_SHIFT_ALPHABETIC", "KEYPAD", "FOUR_LEVEL_X",
           "FOUR_LEVEL_MIXED_KEYPAD", "FOUR_LEVEL_KEYPAD", "LOCAL_EIGHT_LEVEL", "FOUR_LEVEL_PLUS_LOCK"}
_KEYPAD_TYPES = {"KEYPAD", "FOUR_LEVEL_X", "FOUR_LEVEL_MIXED_KEYPAD", "FOUR_LEVEL_KEYPAD"}
_REAL_GROUPS = ([-1, -1, -1, -1], [0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 2, 0], [0, 1, 3, 2])
#: the keypad's translation of the second loop in ``flatten``: (xkbsym_table name, keysym)
_KP_DIGITS = (("plus", "KP_Add"), ("minus", "KP_Subtract"), ("asterisk", "KP_Multiply"), ("slash", "KP_Divide"),
              ("comma", "KP_Comma"), ("period", "KP_Period")) + tuple((str(d), f"KP_{d}") for d in range(10))
_KP_MOVES = {"Return": "KP_Enter", "Enter": "KP_Enter", "Home": "KP_7", "Left": "KP_4", "Up": "KP_8",
             "Right": "KP_6", "Down": "KP_2", "Prior": "KP_9", "Next": "KP_3", "End": "KP_1", "Insert": "KP_0"}
_HEX_KEYS = {"Num_Lock": "Hex_A", "KP_Divide": "Hex_B", "KP_Multiply": "Hex_C", "KP_Subtract": "Hex_D",
             "KP_Add": "Hex_E", "KP_Enter": "Hex_F"}


def perl_is_alpha(uni: int) -> bool:
    """``pack("U", $uni) =~ /\\p{IsAlpha}/`` for a code point of the BMP."""
    if unicodedata.unidata_version != "14.0.0":
        raise Defer(f"ckbcomp: Python's Unicode {unicodedata.unidata_version} is not Perl 5.36's 14.0.0")
    cat = unicodedata.category(chr(uni))
    if cat in ("Lu", "Ll", "Lt", "Lm", "Lo", "Nl") or 0x24B6 <= uni <= 0x24E9:
        return True
    return cat in ("Mn", "Mc") and alphabetic_mark(uni)


def _case_partner(v: int) -> int:
    char = chr(v)
    low, up = ord(char.lower()[0]), ord(char.upper()[0])
    return up if v == low else low


def _keysym_hex(xkeysym: str) -> str | None:
    """The hex code an X keysym not in the table names itself (``0x...`` or ``U...``), or None."""
    m = _XHEX.fullmatch(xkeysym)
    if m:
        return m.group(2)
    m = _UHEX.fullmatch(xkeysym)
    return m.group(1) if m else None


class KeymapWriter:
    """The Linux keymap of ckbcomp for one set of XKB tables. ``xkbsym``: the final
    ``%xkbsym_table``; ``acmtable``: Unicode -> byte of ``-charmap`` (None without one);
    ``warn`` receives ckbcomp's warnings."""

    def __init__(self, xkbsym: dict, acmtable: dict | None, compact: bool, warn):
        self.xkbsym, self.acmtable, self.compact, self.warn = xkbsym, acmtable, compact, warn
        for name, _ in _KP_DIGITS:
            if not re.fullmatch(r"[0-9a-fA-F]+", xkbsym.get(name, "")):
                raise Defer(f"ckbcomp: the keysym table's {name!r} is not a plain code the model can match")
        self.broken_caps = False

    # --- keysyms
    def uni_to_legacy(self, uni: int) -> str:
        if self.acmtable is None:
            return f"U+{uni:04x}"
        if uni <= 0x7f:
            return f"0x{uni:02x}"
        if uni in self.acmtable:
            return f"0x{self.acmtable[uni]:02x}"
        return VOID

    def x_to_kernelsym(self, xkeysym: str) -> str:
        kernel = self.xkbsym.get(xkeysym)
        if kernel is not None:
            if not _HEX4.fullmatch(kernel):
                return kernel
        else:
            kernel = _keysym_hex(xkeysym)
        if kernel is None:
            self.warn(f'WARNING: Unknown X keysym "{xkeysym}"\n')
            return VOID
        uni = int(kernel, 16)
        if uni > 0xFFFF or 0xF000 <= uni <= 0xFFFF:
            return VOID
        if perl_is_alpha(uni):
            legacy = self.uni_to_legacy(uni)
            return "+" + legacy if legacy != VOID else legacy
        if uni <= 0x1f:
            return CONTROLSYMS[uni]
        return self.uni_to_legacy(uni)

    def x_to_ascii(self, xkeysym: str) -> int | None:
        kernel = self.xkbsym.get(xkeysym)
        if kernel is not None:
            if kernel in CONTROLSYMS_HASH:
                return CONTROLSYMS_HASH[kernel]
            if not _HEX4.fullmatch(kernel):
                return None
        else:
            kernel = _keysym_hex(xkeysym)
        if kernel is not None:
            uni = int(kernel, 16)
            if uni <= 0x7f:
                return uni
        return None

    # --- one key
    def flatten(self, groups: list, ktype: str) -> list[str]:
        """``flatten``: the 64 keysyms of a key with XKB ``groups`` of type ``ktype``."""
        vector: list = [None] * 64
        quality: list = [None] * 64

        def approximate(coord: int, sym: str, q: int) -> None:
            if (quality[coord] is None or quality[coord] > q) and sym != VOID:
                vector[coord], quality[coord] = sym, q

        if len(groups) > 4:
            raise Defer("ckbcomp: a key with more than four groups")
        numlockable = [0, 0, 0, 0]
        for group in range(4):
            real_group = _REAL_GROUPS[len(groups)][group]
            last_level = -1
            while real_group >= 0:
                last_level = len(groups[real_group]) - 1
                if last_level >= 0:
                    break
                real_group -= 1
            if real_group < 0:
                continue
            for level in range(4):
                real_level = level
                if ktype == "ONE_LEVEL":
                    real_level = 0
                elif ktype == "TWO_LEVEL":
                    real_level %= 2
                elif ktype == "THREE_LEVEL" and real_level > 2:
                    real_level = 2
                if last_level == 0:
                    real_level = 0
                elif last_level == 1:
                    real_level %= 2
                elif last_level == 2 and real_level == 3:
                    real_level = 2
                elif real_level > last_level:
                    real_level = last_level
                base = group << 4
                if ktype in _LEVEL1:
                    coord = base + level
                elif ktype in ("PC_BREAK", "PC_CONTROL_LEVEL2", "PC_LCONTROL_LEVEL2", "PC_RCONTROL_LEVEL2"):
                    coord = base + level if level in (0, 2) else base + level + 3
                elif ktype in ("PC_SYSRQ", "PC_ALT_LEVEL2", "PC_LALT_LEVEL2", "PC_RALT_LEVEL2"):
                    coord = base + level if level in (0, 2) else base + level + 7
                elif ktype == "SHIFT+ALT":
                    coord = base + level if level in (0, 2) else base + level + 8
                elif ktype == "CTRL+ALT":
                    coord = base + level if level in (0, 2) else base + level + 11
                elif ktype == "PC_FN_LEVEL2":
                    coord = base + (level << 1)
                else:
                    self.warn(f"WARNING: Unknown key type {ktype}\n")
                    coord = base + level
                xkeysym = groups[real_group][real_level]
                if xkeysym.startswith("KP_"):
                    numlockable[group] = 1
                approximate(coord, self.x_to_kernelsym(xkeysym), 0)
                ascii_ = self.x_to_ascii(xkeysym)
                if ascii_ is not None:
                    approximate(coord | 0x08, METASYMS[ascii_], 1)
                    approximate(coord | 0x04, CONTROLSYMS[ascii_], 1)
                    approximate(coord | 0x0c, METACONTROLSYMS[ascii_], 1)
        for x in (0, 1):
            mask = 1 << x
            for coord in range(64):
                if vector[coord] is not None:
                    approximate(coord ^ mask, vector[coord], (quality[coord] + mask) << 2)
        for x in (2, 3):
            mask = 1 << x
            for coord in range(64):
                if vector[coord] is not None:
                    approximate(coord | mask, vector[coord], (quality[coord] + mask) << 2)
        for coord in range(17):
            if vector[coord] is not None:
                for mask in (16, 32, 48):
                    approximate(coord | mask, vector[coord], (quality[coord] + 1) << 6)
        for coord in range(64):
            if vector[coord] is None:
                vector[coord] = VOID
        for coord in range(64):
            if coord & 0x0c:
                continue
            mask = KERNEL_MODIFIERS.get(vector[coord])
            if mask is None:
                continue
            for mod in (4, 8, 12):
                if vector[coord + mod] == VOID and vector[(coord + mod) ^ mask] == VOID:
                    vector[coord + mod] = vector[coord]
        for coord in range(64):
            mask = KERNEL_MODIFIERS.get(vector[coord])
            if mask is not None:
                self._store(vector, coord ^ mask, vector[coord])
                if self.compact:
                    if mask & 0x02 and mask & 0x10:
                        self._store(vector, coord ^ mask ^ 0x02, vector[coord])
                        self._store(vector, coord ^ mask ^ 0x10, vector[coord])
                    elif mask & 0x02:
                        self._store(vector, coord ^ mask ^ 0x10, vector[coord])
                        self._store(vector, coord ^ mask ^ 0x10 ^ 0x02, vector[coord])
                    elif mask & 0x10:
                        self._store(vector, coord ^ mask ^ 0x02, vector[coord])
                        self._store(vector, coord ^ mask ^ 0x02 ^ 0x10, vector[coord])
        if not self.compact:
            for coord in range(16, 64):
                if vector[coord] in ("ShiftL", "ShiftL_Lock", "ashift", "alock"):
                    vector[coord] = VOID
            for coord in range(16):
                if vector[coord] == "ShiftL_Lock":
                    vector[coord + 16] = "ShiftR_Lock"
                    vector[coord + 32] = "ShiftR_Lock"
                    vector[coord + 48] = "ShiftL_Lock"
                elif vector[coord] in ("ShiftL", "ashift", "alock"):
                    vector[coord + 16] = vector[coord + 32] = vector[coord + 48] = vector[coord]
        else:
            for coord in range(16, 64):
                if vector[coord] in ("AltGr", "AltGr_Lock"):
                    vector[coord] = VOID
            for coord in range(16):
                if vector[coord] in ("AltGr_Lock", "AltGr"):
                    vector[coord + 16] = vector[coord + 32] = vector[coord + 48] = vector[coord]
        self._keypad(vector, numlockable, ktype)
        self._specials(vector)
        return vector

    @staticmethod
    def _store(vector: list, coord: int, value: str) -> None:
        if coord >= 64:
            # Perl would grow @vector past the 64 keysyms print_vector writes
            raise Defer("ckbcomp: a modifier mask beyond the 64 keysyms of a key")
        vector[coord] = value

    def _keypad(self, vector: list, numlockable: list, ktype: str) -> None:
        for group in range(4):
            kp = None
            for x in range(16):
                if vector[16 * group + x].startswith("KP_"):
                    kp = vector[16 * group + x]
                    break
            if ktype in _KEYPAD_TYPES and kp is None:
                kp = VOID
                numlockable[group] = 1
            if kp in (None, "", "0"):
                continue
            for x in range(16):
                coord = 16 * group + x
                value = vector[coord]
                if value == "VoidSymbol":
                    vector[coord] = kp
                    continue
                for name, sym in _KP_DIGITS:
                    if self.xkbsym[name] in value:  # ckbcomp's match is not anchored
                        vector[coord] = sym
                        break
                else:
                    if value in _KP_MOVES:
                        vector[coord] = _KP_MOVES[value]

    @staticmethod
    def _specials(vector: list) -> None:
        for group in range(4):
            coord = group << 4
            main = vector[coord]
            if re.fullmatch(r"fkey[0-9]+|esc|saver|nscr|ht", main, re.ASCII):
                raise Defer(f"ckbcomp: the FreeBSD keysym {main!r} in a Linux keymap")
            m = _FKEY.fullmatch(main)
            if m:
                s, num = m.group(1), int(m.group(1))
                for off, name in ((1, f"F{num + 12}"), (2, f"Console_{num + 12}"), (3, f"Console_{num + 24}"),
                                  (4, f"F{num + 24}"), (5, f"F{num + 36}"), (6, f"Console_{num + 12}"),
                                  (7, f"Console_{num + 24}"), (8, f"Console_{s}"), (9, f"Console_{num + 12}"),
                                  (12, f"Console_{s}"), (13, f"Console_{num + 12}")):
                    vector[coord + off] = name
                continue
            if main in ("Scroll_Lock", "Help"):
                vector[coord + 1], vector[coord + 2] = "Show_Memory", "Show_Registers"
                vector[coord + 4], vector[coord + 8] = "Show_State", "Show_Registers"
                continue
            m = _KPNUM.fullmatch(main)
            if m:
                vector[coord + 2] = vector[coord + 9] = "Hex_" + m.group(1)
                vector[coord + 8] = "Ascii_" + m.group(1)
            elif main in _HEX_KEYS:
                vector[coord + 2] = vector[coord + 9] = _HEX_KEYS[main]
            elif main in ("Prior", "PageUp"):
                vector[coord + 1] = "Scroll_Backward"
            elif main in ("Next", "PageDown"):
                vector[coord + 1] = "Scroll_Forward"
            elif main == "Left":
                vector[coord + 8] = "Decr_Console"
            elif main == "Right":
                vector[coord + 8] = "Incr_Console"
            elif main == "Up":
                vector[coord + 8] = "KeyboardSignal"

    # --- one line
    def line(self, kernel_code: int, vector: list[str], non_latin: bool) -> str:
        """``print_vector`` (Linux): the text of one key."""
        only_void = all(v in (VOID, "NoSymbol") for v in vector)
        if only_void and self.compact:
            return ""
        if self.compact:
            picks = (0, 1, 16, 17, 4, 20, 8, 24, 12, 28) if non_latin else (0, 1, 2, 3, 4, 6, 8, 10, 12, 14)
            return f"keycode {kernel_code} = " + " ".join(vector[i] for i in picks).replace("NoSymbol", VOID) + "\n"
        caps = list(vector)
        for i, value in enumerate(caps):
            m = _CAPS.fullmatch(value)
            if m:
                v = int(m.group(2), 16)
                if v > 0x10FFFF:
                    raise Defer(f"ckbcomp: U+{m.group(2)} is beyond Unicode")
                c = _case_partner(v)
                caps[i] = f"{m.group(1)}U+{c:04x}"
                if v != c and v > 0x7f:
                    self.broken_caps = True
        if "NoSymbol" not in vector:
            return f"keycode {kernel_code} = {' '.join(vector)} {' '.join(caps)}\n"
        out = []
        for mask in range(64):
            if vector[mask] != "NoSymbol":
                combo = MODIFIER_COMBINATIONS[mask]
                out.append(f"{combo} keycode {kernel_code} = {vector[mask]}\n")
                if "plain" in combo:
                    out.append(f"ctrll keycode {kernel_code} = {caps[mask]}\n")
                else:
                    out.append(f"ctrll {combo} keycode {kernel_code} = {caps[mask]}\n")
        return "".join(out)
