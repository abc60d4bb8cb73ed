"""Model of ``slappasswd`` (OpenLDAP 2.5.13, Debian 12's slapd): an LDAP ``userPassword`` value.

slapd's postinst hashes the administrator's password with ``slappasswd -s "$1"`` inside
``$( )``. This mirrors ``servers/slapd/slappasswd.c`` and the schemes of
``libraries/liblutil/passwd.c`` that need no crypt(3), measured against the real program in a
chroot (tests/script/test_slappasswd.py):

- options as glibc ``getopt`` over ``"c:d:gh:no:s:T:vu"``, each acted on where it is met:
  ``-s`` twice or after ``-g`` is "New password already provided", ``-T`` twice "Password file
  already provided", ``-s``/``-g`` after ``-T`` and ``-T`` after ``-s`` are refused, a second
  ``-h`` (or ``-h`` after ``-c``) is "Scheme already provided"; an unknown option, ``-d``
  (declared to getopt but not handled), an ``-o`` that is neither module-path nor module-load
  (strncasecmp over the text before ``=``: ``-o foo`` is module-path with no value) and any
  operand print the usage, status 1;
- ``-h`` names the scheme, compared without case, printed as registered: ``{SSHA}`` (default:
  base64 of SHA-1(password + 4 random bytes) + those bytes), ``{SHA}``, ``{SMD5}``, ``{MD5}``,
  ``{CLEARTEXT}`` (the password itself); ``{UNIX}`` "provided no hash function", anything else
  "not recognized";
- ``-T FILE``: the whole file is the password (a trailing newline included), with a warning
  when others may read or write it; a file that cannot be opened is ``perror``'d, a directory
  fails silently;
- ``-g``: 8 characters of crypt64 from random bytes, printed as they are (not hashed) unless
  ``-T`` replaces them; ``-n`` drops the newline; ``-u``, ``-v`` and ``-o module-path=`` change
  nothing; an empty password fails lutil_passwd's verification ("Password verification failed. ").

Random bytes (salts, ``-g``) come from the host's ``os.urandom``, unseeded (the policy of
caches/openssl_rand.py): two images patched alike get different salts, as two installs would.
Deferred, with the reason: ``{CRYPT}`` and ``-c`` (glibc's crypt(3): Python's ``crypt`` module
is deprecated by PEP 594 and gone in 3.13, and no kept library reproduces libcrypt),
``-o module-load`` (loads a shared object of the image), no password at all (a terminal
prompt), and ``{CLEARTEXT}`` values that start with a scheme name (verified by that scheme).
"""

from __future__ import annotations

import base64
import hashlib
import os

from nuwa.script.commands import _args
from nuwa.script.context import Defer, Invocation
from nuwa.script.entropy import random_bytes

USAGE = ("Usage: slappasswd [options]\n"
         "  -c format\tcrypt(3) salt format\n"
         "  -g\t\tgenerate random password\n"
         "  -h hash\tpassword scheme\n"
         "  -n\t\tomit trailing newline\n"
         "  -o <opt>[=val] specify an option with a(n optional) value\n"
         "  \tmodule-path=<pathspec>\n"
         "  \tmodule-load=<filename>\n"
         "  -s secret\tnew password\n"
         "  -u\t\tgenerate RFC2307 values (default)\n"
         "  -v\t\tincrease verbosity\n"
         "  -T file\tread file for new password\n")
SPEC = _args.spec("c:d:gh:no:s:T:vu")
#: liblutil's crypt64 alphabet (passwd.c), which ``-g`` draws from
CRYPT64 = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
SALT_SIZE = 4  # passwd.c's SALT_SIZE
DEFAULT_SCHEME = "{SSHA}"
#: schemes registered with a check function (pw_schemes_default of Debian's build)
CHECKED = ("{SSHA}", "{SHA}", "{SMD5}", "{MD5}", "{CRYPT}", "{UNIX}")


class _Exit(Exception):
    """The program ends here with ``status`` (its message already printed)."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


def _usage(inv: Invocation) -> None:
    inv.err(USAGE)
    raise _Exit(1)


def _module_option(inv: Invocation, value: str) -> None:
    """parse_slappasswdopt: module-path is only a search path (lt_dlsetsearchpath, no code
    runs); module-load would dlopen a module of the image."""
    name, eq, _ = value.partition("=")
    n = len(name) if eq else 0  # no '=': strncasecmp over 0 characters matches module-path
    if name[:n].lower() == "module-path"[:n] and (n <= len("module-path")):
        return
    if name[:n].lower() == "module-load"[:n] and n <= len("module-load"):
        raise Defer(f"slappasswd -o {value}: loading a module runs code of the image")
    _usage(inv)


def _parse(inv: Invocation) -> dict:
    """The getopt loop of slappasswd(): the resulting state, or _Exit after its message."""
    st = {"scheme": DEFAULT_SCHEME, "scheme_given": False, "newpw": None, "pwfile": None, "generated": None,
          "newline": "\n"}
    for ev in _args.events(inv, SPEC, in_order="POSIXLY_CORRECT" in inv.env, unknown_is_error=True):
        if ev[0] == "error":
            if ev[1].text.startswith("unrecognized option"):
                raise Defer("slappasswd: an argument starting with '--' (short options to glibc getopt) is not "
                            "modelled")
            inv.err(f"{inv.argv[0]}: {ev[1].text}\n")
            _usage(inv)
        if ev[0] == "operands":
            if ev[1]:
                _usage(inv)
            break
        key, val = ev[1], ev[2]
        if key == "c":
            st["scheme"], st["scheme_given"] = "{CRYPT}", True
        elif key == "g":
            if st["pwfile"] is not None:
                raise _message(inv, "Option -g incompatible with -T\n")
            if st["newpw"] is not None:
                raise _message(inv, "New password already provided\n")
            st["generated"] = bytes(CRYPT64[b % len(CRYPT64)] for b in random_bytes(8))
        elif key == "h":
            if st["scheme_given"]:
                raise _message(inv, "Scheme already provided\n")
            st["scheme"], st["scheme_given"] = val, True
        elif key == "n":
            st["newline"] = ""
        elif key == "o":
            _module_option(inv, val)
        elif key == "s":
            if st["pwfile"] is not None:
                raise _message(inv, "Option -s incompatible with -T\n")
            if st["newpw"] is not None:
                raise _message(inv, "New password already provided\n")
            st["newpw"] = val.encode("utf-8", "surrogateescape")
        elif key == "T":
            if st["pwfile"] is not None:
                raise _message(inv, "Password file already provided\n")
            if st["newpw"] is not None:
                raise _message(inv, "Option -T incompatible with -s/-g\n")
            st["pwfile"] = val
        elif key == "d":
            _usage(inv)  # in the optstring, but no case of the switch handles it
        # -u and -v: accepted, no effect on the output
    return st


def _message(inv: Invocation, text: str) -> _Exit:
    inv.err(text)
    return _Exit(1)


def _read_pwfile(inv: Invocation, name: str) -> bytes:
    """lutil_get_filed_password (liblutil/passfile.c): the file's bytes, unchanged."""
    fs = inv.fs
    path = inv.path(name)
    try:
        st = fs.stat(path)
    except OSError as e:
        inv.err(f"{name}: {os.strerror(e.errno)}\n")  # perror(filename) after fopen fails
        raise _Exit(1) from None
    if not (st.is_reg or st.is_dir):
        raise Defer(f"slappasswd -T {name}: not a regular file")
    if st.st_mode & 0o006:
        inv.err(f"Warning: Password file {name} is publicly readable/writeable\n")
    if st.is_dir:
        raise _Exit(1)  # fopen succeeds, fread fails (EISDIR): -1 with no message
    return fs.read_bytes(path)


def _hash(scheme: str, pw: bytes) -> bytes:
    """pw_string64 of the hash_* function of ``scheme`` (registered name, upper case)."""
    if scheme in ("{SSHA}", "{SMD5}"):
        salt = random_bytes(SALT_SIZE)
        digest = hashlib.new("sha1" if scheme == "{SSHA}" else "md5", pw + salt).digest() + salt
    else:
        digest = hashlib.new("sha1" if scheme == "{SHA}" else "md5", pw).digest()
    return scheme.encode() + base64.b64encode(digest)


def _cleartext_verifies(pw: bytes) -> bool:
    """lutil_passwd over a {CLEARTEXT} value: a value that starts like a scheme name is checked
    by that scheme (deferred); one that looks like an unknown ``{scheme}`` fails."""
    if any(pw[:len(s)].upper() == s.encode() for s in CHECKED):
        raise Defer("slappasswd -h {CLEARTEXT}: a password that starts with a scheme name is verified by that "
                    "scheme's check function, not modelled")
    close = pw.find(b"}")
    return not (pw.startswith(b"{") and close > 1)


def slappasswd(inv: Invocation) -> int:
    """See the module note."""
    try:
        return _run(inv)
    except _Exit as e:
        return e.status


def _run(inv: Invocation) -> int:
    st = _parse(inv)
    if st["pwfile"] is not None:
        passwd = _read_pwfile(inv, st["pwfile"])
    elif st["generated"] is not None:
        inv.out(st["generated"] + st["newline"].encode())  # printed as generated, not hashed
        return 0
    elif st["newpw"] is None:
        raise Defer("slappasswd without -s, -T or -g prompts for the password on the terminal")
    else:
        passwd = st["newpw"]
    scheme = st["scheme"].encode("utf-8", "surrogateescape").upper().decode("ascii", "replace")  # strcasecmp: ASCII
    if scheme == "{CRYPT}":
        raise Defer("slappasswd {CRYPT} (-h {CRYPT} or -c) needs glibc's crypt(3); no kept Python library "
                    "reproduces it (the crypt module is deprecated by PEP 594)")
    if scheme == "{UNIX}":
        return _fail(inv, f"Password generation failed for scheme {st['scheme']}: scheme provided no hash function")
    if scheme not in ("{SSHA}", "{SHA}", "{SMD5}", "{MD5}", "{CLEARTEXT}"):
        return _fail(inv, f"Password generation failed for scheme {st['scheme']}: scheme not recognized")
    if scheme == "{CLEARTEXT}":
        value, ok = passwd, bool(passwd) and _cleartext_verifies(passwd)
    else:
        value, ok = _hash(scheme, passwd), bool(passwd)
    if not ok:  # lutil_passwd: an empty credential, or a failed check, with no text
        return _fail(inv, "Password verification failed. ")
    inv.out(value.split(b"\0", 1)[0] + st["newline"].encode())  # printf("%s")
    return 0


def _fail(inv: Invocation, text: str) -> int:
    inv.err(text + "\n")
    return 1
