"""cracklib-packer (cracklib 2.9.6 ``src/util/packer.c``): sorted words on standard input
into the packed dictionary ``DBNAME.pwd``/``.pwi``/``.hwm`` (``packlib``)."""

from __future__ import annotations

from nuwa.script.commands.cracklib.packlib import Packer, input_lines, packer_word
from nuwa.script.context import Defer, Invocation, strerror

#: DEFAULT_CRACKLIB_DICT as Debian's cracklib2 is configured (``--with-default-dict``)
DEFAULT_DICT = "/var/cache/cracklib/cracklib_dict"


def _create(inv: Invocation, path: str) -> OSError | None:
    """``fopen(path, "w")``: create (0666 less the umask) or truncate; the error, if any."""
    try:
        inv.fs.write_bytes(inv.path(path), b"", 0o666 & ~inv.umask)
    except OSError as e:
        return e
    return None


def cracklib_packer(inv: Invocation) -> int:
    """``cracklib-packer [DBNAME]``: PWOpen(DBNAME, "w"), one ``PutPW`` per non-empty input
    line, PWClose, and ``READ WROTE`` on standard output; warnings for empty lines and words
    out of order on standard error, as packer.c prints them."""
    args = inv.argv[1:]
    name = args[0] if args else DEFAULT_DICT
    if len(args) == 1 and args[0] in ("-h", "--help"):
        inv.err(f"Usage:\t{inv.argv[0]} dbname\n"
                f"  if dbname is not specified, will use compiled in default of ({DEFAULT_DICT}).\n")
        return 255
    files = {ext: f"{name}.{ext}" for ext in ("pwd", "pwi", "hwm")}
    # PWOpen: .pwd, then .pwi (.pwd is closed again when it fails), then .hwm (optional);
    # a deferral takes back what was created before it (the simulator's model savepoint)
    for ext in ("pwd", "pwi"):
        e = _create(inv, files[ext])
        if e is not None:
            # packer.c's perror(file) follows PWOpen's perror(name): glibc's perror dups stderr
            # and fdopen()s it "w+", which fails with EINVAL (and changes errno for the second
            # line) unless stderr is open for reading too: the text depends on a descriptor
            # the simulation does not know
            raise Defer(f"cracklib-packer: cannot create {files[ext]} ({strerror(e)}): its second error line "
                        "depends on how standard error was opened")
    with_hwm = _create(inv, files["hwm"]) is None
    packer = Packer()
    read = wrote = 0
    prev = b""
    for piece in input_lines(inv.stdin):
        read += 1
        word = packer_word(piece)
        if not word:
            inv.err(f"skipping line: {read}\n")
            continue
        if word < prev:  # strcmp: unsigned bytes
            inv.err(b"warning: input out of order: '" + word + b"' should not follow '" + prev
                    + f"' (line {read})\n".encode())
        prev = word
        packer.put(word)
        wrote += 1
    pwd, pwi, hwm = packer.close()
    for ext, data in (("pwd", pwd), ("pwi", pwi), ("hwm", hwm if with_hwm else None)):
        if data is not None:
            # the files exist (PWOpen made them): their content is replaced, their mode kept
            with inv.fs.open(inv.path(files[ext]), "r+b") as f:
                f.write(data)
    inv.out(f"{read} {wrote}\n")
    return 0
