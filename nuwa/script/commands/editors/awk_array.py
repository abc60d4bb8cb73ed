"""mawk 1.3.4's associative arrays, ported so that ``for (k in a)`` visits keys in mawk's order.

mawk (array.c of 1.3.4-20200120) keeps an array in one of three shapes: empty, a *split*
array (a vector ``1..n`` filled by ``split()``) or a hash table whose nodes sit on two kinds
of chains at once: *ilists* (integer keys, chained by ``ival & hmask``) and *slists* (string
keys, chained by the FNV-1a hash of the key's text). A lookup moves the node it finds to the
front of its chain, a new node goes on the front, the table doubles when it holds more than
12 nodes per chain on average, and ``for (k in a)`` walks the slists in chain order (giving
every integer-only node its string form first). That order is therefore a function of the
whole history of lookups, which this port replays operation by operation: each chain is a
Python list whose index 0 is the front.

A key is a double (an integer that fits a C ``int`` is an *ival*; any other double becomes
its ``CONVFMT`` text), the empty string for an unset variable, or a string.
"""

from __future__ import annotations

from nuwa.script.commands.editors.awk_values import StrNum, d_to_i, tostr
from nuwa.script.context import Defer

_START_HMASK = 63  # 2^6-1 (STARTING_HMASK)
_MAX_AVE = 12  # MAX_AVE_LIST_LENGTH

_NULL, _SPLIT, _INT, _STR = 0, 4, 1, 2  # AY_NULL, AY_SPLIT and the AY_INT/AY_STR bits


def fnv(text: str) -> int:
    """mawk's ``hash2``: FNV-1a over the key's bytes (latin-1 text), 32-bit unsigned."""
    h = 2166136261
    for ch in text.encode("latin-1", "replace"):
        h = ((h ^ ch) * 16777619) & 0xFFFFFFFF
    return h


class _Node:
    __slots__ = ("sval", "hval", "ival", "value")

    def __init__(self, sval, hval, ival, value):
        self.sval, self.hval, self.ival, self.value = sval, hval, ival, value


class AwkArray:
    """One awk array with mawk's layout; values are the interpreter's cells (float/str)."""

    def __init__(self):
        self.epoch = 0  # bumped whenever cells are freed or moved: handles taken before go stale
        self.clear()

    def clear(self) -> None:
        """``delete a`` (array_clear): back to the empty shape."""
        self.epoch += 1
        self.kind = _NULL
        self.size = 0
        self.hmask = 0
        self.limit = 0
        self.cells: list = []  # the split vector
        self.slists: list[list[_Node]] = []
        self.ilists: list[list[_Node]] = []

    def __len__(self) -> int:
        return self.size

    # -- the public operations, each one mawk entry point -------------------------------
    def load(self, values: list) -> None:
        """``split()`` into this array (array_load): a split vector ``1..n``."""
        self.clear()
        self.kind = _SPLIT
        self.cells = list(values)
        self.size = len(values)
        self.limit = (len(values) & ~3) + 4

    def find(self, key, create: bool, convfmt: str):
        """array_find: the node for ``key`` (made when ``create``), or None."""
        if self.size == 0 and not create:
            return None
        if isinstance(key, float):
            ival = d_to_i(key)
            if float(ival) == key:
                if self.kind == _SPLIT:
                    if 1 <= ival <= self.size:
                        return ("split", ival - 1)
                    if not create:
                        return None
                    self._split_to_table()
                elif self.kind == _NULL:
                    self._empty_table(_INT)
                return self._find_ival(ival, create)
            return self._find_sval(_fmt(convfmt, key), create)
        return self._find_sval(key, create)

    def get(self, key, convfmt: str, default):
        """``a[key]`` as an rvalue: mawk creates the element (AE_PUSHI uses CREATE)."""
        ref = self.find(key, True, convfmt)
        return self._value(ref, default)

    def set(self, key, value, convfmt: str) -> None:
        """``a[key] = value``."""
        ref = self.find(key, True, convfmt)
        if isinstance(ref, tuple):
            self.cells[ref[1]] = value
        else:
            ref.value = value

    def handle(self, key, convfmt: str):
        """The element for an assignment target, found (and made) before the right-hand side
        runs, as mawk's AE_PUSHA does: that lookup's move-to-front comes first."""
        return self.find(key, True, convfmt), self.epoch

    def read(self, handle, default):
        """The value at a :meth:`handle` (``default`` for an element never assigned)."""
        return self._value(handle[0], default)

    def write(self, handle, value) -> None:
        """Store through a :meth:`handle`."""
        if handle[1] != self.epoch:
            # a delete/split/clear in the right-hand side freed the cell mawk still points at
            raise Defer("awk: an assignment's right-hand side deleted or reloaded its target array")
        ref = handle[0]
        if isinstance(ref, tuple):
            self.cells[ref[1]] = value
        else:
            ref.value = value

    def contains(self, key, convfmt: str) -> bool:
        """``(key in a)``: a lookup without creating (which still moves chains)."""
        return self.find(key, False, convfmt) is not None

    def delete(self, key, convfmt: str) -> None:
        """``delete a[key]`` (array_delete)."""
        if self.size == 0:
            return
        if isinstance(key, float):
            ival = d_to_i(key)
            if float(ival) == key:
                if self.kind == _SPLIT:
                    if not 1 <= ival <= self.size:
                        return
                    self._split_to_table()
                node = self._find_ival(ival, False)
                if node is not None:
                    self.ilists[node.ival & self.hmask].pop(0)
                    if node.sval is not None:
                        self.slists[node.hval & self.hmask].remove(node)
                    self._shrink()
                return
            key = _fmt(convfmt, key)
        node = self._find_sval(key, False)
        if node is not None:
            self.slists[node.hval & self.hmask].pop(0)
            if node.ival is not None:
                self.ilists[node.ival & self.hmask].remove(node)
            self._shrink()

    def loop_keys(self) -> list[str]:
        """The keys ``for (k in a)`` visits, in mawk's order (array_loop_vector)."""
        if self.size == 0:
            return []
        if not self.kind & _STR:
            self._add_strings()
        return [n.sval for chain in self.slists for n in chain]

    def _value(self, ref, default):
        if isinstance(ref, tuple):
            return self.cells[ref[1]]
        return default if ref.value is None else ref.value

    # -- mawk's internals ---------------------------------------------------------------
    def _shrink(self) -> None:
        self.epoch += 1
        self.size -= 1
        if self.size == 0:
            self.clear()

    def _empty_table(self, kind: int) -> None:
        self.kind = kind
        self.hmask = _START_HMASK
        self.limit = (_START_HMASK + 1) * _MAX_AVE
        self.slists = [[] for _ in range(_START_HMASK + 1)]
        self.ilists = [[] for _ in range(_START_HMASK + 1)]

    def _split_to_table(self) -> None:
        self.epoch += 1  # the split vector's cells move into nodes
        cells = self.cells
        self.hmask = _START_HMASK
        self.limit = (self.hmask + 1) * _MAX_AVE
        while self.size > self.limit:
            self.hmask = self.hmask * 2 + 1
            self.limit = (self.hmask + 1) * _MAX_AVE
        self.slists = [[] for _ in range(self.hmask + 1)]
        self.ilists = [[] for _ in range(self.hmask + 1)]
        j = 1
        for i in range(self.size):
            self.ilists[j].insert(0, _Node(None, 0, i + 1, cells[i]))
            j = (j + 1) & self.hmask
        self.cells = []
        self.kind = _INT

    def _add_strings(self) -> None:
        if self.kind == _NULL:
            self._empty_table(_STR)
            return
        if self.kind == _SPLIT:
            self._split_to_table()
        for chain in self.ilists:
            for node in chain:
                node.sval = str(node.ival)
                node.hval = fnv(node.sval)
                self.slists[node.hval & self.hmask].insert(0, node)
        self.kind |= _STR

    def _find_ival(self, ival: int, create: bool):
        chain = self.ilists[ival & self.hmask]
        for pos, node in enumerate(chain):
            if node.ival == ival:
                if pos:
                    chain.pop(pos)
                    chain.insert(0, node)
                return node
        if self.kind & _STR:
            node = self._find_sval(str(ival), create)
            if node is None:
                return None
        elif create:
            node = _Node(None, 0, None, None)
            self.size += 1
            if self.size > self.limit:
                self._double()
        else:
            return None
        node.ival = ival
        self.kind |= _INT
        self.ilists[ival & self.hmask].insert(0, node)
        return node

    def _find_sval(self, sval: str, create: bool):
        if "\0" in sval:
            # mawk compares keys with strcmp: text after a NUL byte would be ignored
            raise Defer("awk: an array subscript with a NUL byte")
        hval = fnv(sval)
        if not self.kind & _STR:
            self._add_strings()
        chain = self.slists[hval & self.hmask]
        for pos, node in enumerate(chain):
            if node.hval == hval and node.sval == sval:
                if pos:
                    chain.pop(pos)
                    chain.insert(0, node)
                return node
        if not create:
            return None
        node = _Node(sval, hval, None, None)
        self.size += 1
        if self.size > self.limit:
            self._double()
        self.slists[hval & self.hmask].insert(0, node)
        return node

    def _double(self) -> None:
        old, new = self.hmask, self.hmask * 2 + 1
        # a chain keeps the nodes that stay in order; the movers form the new chain in order
        if self.kind & _STR:
            self.slists += [[] for _ in range(old + 1)]
            for i in range(old + 1):
                stay = [n for n in self.slists[i] if n.hval & new == i]
                self.slists[i + old + 1] = [n for n in self.slists[i] if n.hval & new != i]
                self.slists[i] = stay
        else:
            self.slists += [[] for _ in range(old + 1)]
        if self.kind & _INT:
            self.ilists += [[] for _ in range(old + 1)]
            for i in range(old + 1):
                stay = [n for n in self.ilists[i] if n.ival & new == i]
                self.ilists[i + old + 1] = [n for n in self.ilists[i] if n.ival & new != i]
                self.ilists[i] = stay
        else:
            self.ilists += [[] for _ in range(old + 1)]
        self.hmask = new
        self.limit = (new + 1) * _MAX_AVE


def _fmt(convfmt: str, d: float) -> str:
    # array_find: sprintf(CONVFMT, d) for a double that is not a C int
    return tostr(d, convfmt)


class EnvArray(AwkArray):
    """mawk's ``ENVIRON``: one strnum element per variable of the process's environment. Which
    order ``for (k in ENVIRON)`` visits depends on the order the calling shell built the
    environment in (dash's variable table), not modelled: that loop defers."""

    def __init__(self, env: dict):
        super().__init__()
        for k, v in env.items():
            self.set(k, StrNum(v), "%.6g")

    def loop_keys(self) -> list[str]:
        """See the class note."""
        raise Defer("awk: for (k in ENVIRON) visits the environment in the order the shell built it")

    def load(self, values: list) -> None:
        """``split(s, ENVIRON)``: not modelled (nothing in the corpus does it)."""
        raise Defer("awk: split() into ENVIRON")
