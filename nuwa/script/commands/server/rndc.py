"""Model of ``rndc-confgen`` (BIND 9.18, Debian 12): the key rndc and named share.

bind9's postinst runs ``rndc-confgen -a`` when neither ``/etc/bind/rndc.key`` nor
``/etc/bind/rndc.conf`` has content. The key is a secret: its bytes come from the host's
``os.urandom`` with no seed, so two images patched alike get different keys, as two machines
installing bind9 would (the policy of coreutils/ddcmd.py).

What the real program does, measured against it in a chroot (tests/script/test_rndc_confgen.py):

- ``-a`` writes ``key "NAME" {`` / ``<TAB>algorithm ALG;`` / ``<TAB>secret "BASE64";`` / ``};``
  to the key file (``-c FILE``, default ``/etc/bind/rndc.key``) and prints ``wrote key file
  "FILE"``. A new file is made mode 0600 whatever the umask (in a setgid directory it takes the
  directory's group, as any new file); an existing file is rewritten in place, mode and owner
  kept; a symbolic link is followed. ``-u USER`` then gives the file to USER (the group stays);
  an unknown USER leaves the file created but empty: "unable to set file owner", status 1.
- Without ``-a`` the rndc.conf and the named.conf advice are printed (``-c`` then writes nothing).
- ``-A`` names the algorithm (hmac-md5 ... hmac-sha512, any case; md5 is warned about), ``-b``
  the secret's length in bits (1-512; default the digest's size), ``-k`` the key's name.
- Errors: an unknown option or an operand prints the usage (status 1), as does ``-q`` (listed in
  the usage but not accepted by this build); a directory as the key file is "invalid file", a
  missing directory "file not found".

``-p``, ``-s`` and ``-t`` are deferred (address and port checks, a copy into a chroot).
"""

from __future__ import annotations

import base64
import posixpath

from nuwa.script.commands.accounts.db import Accounts
from nuwa.script.context import Defer, Invocation
from nuwa.script.entropy import random_bytes

KEYFILE = "/etc/bind/rndc.key"
#: algorithm -> default secret length in bits (the digest size)
ALGORITHMS = {"hmac-md5": 128, "hmac-sha1": 160, "hmac-sha224": 224, "hmac-sha256": 256, "hmac-sha384": 384,
              "hmac-sha512": 512}
USAGE = """Usage:
 rndc-confgen [-a] [-b bits] [-c keyfile] [-k keyname] [-p port] [-s addr] [-t chrootdir] [-u user]
  -a:\t\t generate just the key clause and write it to keyfile (/etc/bind/rndc.key)
  -A alg:\t algorithm (default hmac-sha256)
  -b bits:\t from 1 through 512, default 256; total length of the secret
  -c keyfile:\t specify an alternate key file (requires -a)
  -k keyname:\t the name as it will be used  in named.conf and rndc.conf
  -p port:\t the port named will listen on and rndc will connect to
  -q:\t\t suppress printing written key path
  -s addr:\t the address to which rndc should connect
  -t chrootdir:\t write a keyfile in chrootdir as well (requires -a)
  -u user:\t set the keyfile owner to "user" (requires -a)
"""
_WITH_ARG = set("AbcksptuM")


def _key_clause(name: str, alg: str, secret: str, prefix: str = "") -> str:
    lines = [f'key "{name}" {{', f"\talgorithm {alg};", f'\tsecret "{secret}";', "};"]
    return "".join(prefix + ln + "\n" for ln in lines)


def _conf(name: str, alg: str, secret: str) -> str:
    """What ``rndc-confgen`` without ``-a`` prints."""
    return ("# Start of rndc.conf\n" + _key_clause(name, alg, secret)
            + f'\noptions {{\n\tdefault-key "{name}";\n\tdefault-server 127.0.0.1;\n\tdefault-port 953;\n}};\n'
            "# End of rndc.conf\n\n# Use with the following in named.conf, adjusting the allow list as needed:\n"
            + _key_clause(name, alg, secret, "# ") + "# \n# controls {\n# \tinet 127.0.0.1 port 953\n"
            f'# \t\tallow {{ 127.0.0.1; }} keys {{ "{name}"; }};\n# }};\n# End of named.conf\n')


def _parse(inv: Invocation):
    """isc_commandline_parse over "aA:b:c:hk:Mmp:r:s:t:u:Vy" as rndc-confgen uses it: the
    options given, or an int status after printing the usage."""
    opts: list[tuple[str, str]] = []
    args = inv.argv[1:]
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            i += 1
            break
        if not a.startswith("-") or a == "-":
            break
        j = 1
        while j < len(a):
            c = a[j]
            if c in _WITH_ARG:
                val = a[j + 1:]
                if not val:
                    i += 1
                    if i >= len(args):
                        inv.err(f"rndc-confgen: invalid argument -{c}\n" + USAGE)
                        return 1
                    val = args[i]
                opts.append((c, val))
                break
            if c == "a":
                opts.append((c, ""))
            else:
                inv.err(f"rndc-confgen: invalid argument -{c}\n" + USAGE)
                return 1
            j += 1
        i += 1
    if args[i:]:
        inv.err(USAGE)
        return 1
    return opts


def rndc_confgen(inv: Invocation) -> int:
    """See the module note."""
    opts = _parse(inv)
    if isinstance(opts, int):
        return opts
    write, alg, bits, keyfile, name, user = False, "hmac-sha256", None, KEYFILE, "rndc-key", None
    for k, v in opts:
        if k == "a":
            write = True
        elif k == "A":
            alg = v.lower()
            if alg not in ALGORITHMS:
                inv.err(f"rndc-confgen: Unsupported algorithm '{v}'\n")
                return 1
        elif k == "b":
            if not v.isdigit():
                inv.err("rndc-confgen: -b requires a non-negative number\n")
                return 1
            bits = int(v)
            if not 1 <= bits <= 512:
                inv.err(f"rndc-confgen: keysize {bits} out of range (must be 1-512)\n\n")  # fatal() adds one
                return 1
        elif k == "c":
            keyfile = v
        elif k == "k":
            name = v
        elif k == "u":
            user = v
        else:
            raise Defer(f"rndc-confgen -{k} is not modelled")
    if alg == "hmac-md5":
        inv.err("warning: use of hmac-md5 for RNDC keys is deprecated; hmac-sha256 is now recommended.\n")
    nbytes = ((bits if bits is not None else ALGORITHMS[alg]) + 7) // 8
    secret = base64.b64encode(random_bytes(nbytes)).decode()
    if not write:
        inv.out(_conf(name, alg, secret))
        return 0
    return _write_key(inv, keyfile, user, _key_clause(name, alg, secret).encode())


def _write_key(inv: Invocation, keyfile: str, user: str | None, data: bytes) -> int:
    fs = inv.fs
    path = inv.path(keyfile)
    try:
        st = fs.stat(path)
    except OSError:
        st = None
    if st is not None and st.is_dir:
        inv.err("rndc-confgen: create keyfile: invalid file\n")
        return 1
    if st is None:
        try:
            parent = fs.stat(posixpath.dirname(path))
        except OSError:
            parent = None
        if parent is None or not parent.is_dir:
            inv.err("rndc-confgen: create keyfile: file not found\n")
            return 1
        if fs.lexists(path):  # a dangling symbolic link
            raise Defer(f"rndc-confgen: {keyfile} is a dangling symbolic link")
        fs.write_bytes(path, b"", 0o600)
        fs.chmod(path, 0o600)
    if user is not None:
        entry = Accounts(fs).user(user)
        if entry is None or len(entry) < 3 or not entry[2].isdigit():
            if st is not None:
                raise Defer(f"rndc-confgen -u {user}: an unknown user with an existing key file")
            inv.err("rndc-confgen: unable to set file owner\n\n")  # fatal() adds a newline to it
            return 1
        fs.chown(path, int(entry[2]), fs.stat(path).st_gid)
    fs.write_bytes(path, data)
    inv.out(f'wrote key file "{keyfile}"\n')
    return 0
