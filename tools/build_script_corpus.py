#!/usr/bin/env python3
"""Build the Debian 12 maintainer-script corpus and measure Nuwa's shell parser on it.

The corpus is the control area of every package in a realistic server install set:
all packages of priority required, important and standard, plus the dependency closure
(Pre-Depends, Depends and Recommends, first satisfiable alternative, as apt picks) of
common server stacks. The .debs are fetched with ``apt-get download`` under a private apt
configuration (``-o Dir::...``: nothing of the host's apt state is touched), their control
members extracted with ``dpkg-deb -e`` into ``DEST/control/<package>/`` and indexed in
``DEST/index.json``. The .debs themselves are kept in ``DEST/debs/`` (about 1.2 GB): the
coverage tool (tools/script_coverage.py) unpacks their data.tar members with Nuwa's own .deb
reader so that scripts meet the package's real files. A corpus built before the .debs were
kept gets them again, at exactly the versions of its control areas (``--no-data`` skips that;
``--max-download-gb`` bounds it). Nothing from a package is ever executed: ``dash -n`` only
parses.

The report gives the number of packages and scripts, the interpreter split (shebangs),
``dash -n`` acceptance, and Nuwa's parse rate over the scripts dash accepts, listing failures.

Usage::

    python3 tools/build_script_corpus.py                 # fetch (cached) + report
    python3 tools/build_script_corpus.py --no-fetch      # report over what is there
    python3 tools/build_script_corpus.py --no-data       # control areas only (no .debs kept)
    python3 tools/build_script_corpus.py --json          # machine-readable report

The corpus lives in /var/tmp/nuwa-corpus by default and is never committed (Debian scripts
are not ours to copy into the tree).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import host_mirrors  # noqa: E402

DEFAULT_DEST = "/var/tmp/nuwa-corpus"
SUITE = "bookworm"
MAINTAINER_SCRIPTS = ("preinst", "postinst", "prerm", "postrm")
#: server stacks whose dependency closure joins the priority sets
STACKS = (
    "openssh-server nginx apache2 postgresql mariadb-server python3 systemd systemd-sysv cron "
    "rsyslog sudo ca-certificates openssl curl git docker.io containerd logrotate "
    "unattended-upgrades ufw nftables iptables fail2ban chrony ntpsec postfix exim4 "
    "bind9 isc-dhcp-server dnsmasq samba nfs-kernel-server redis-server memcached haproxy "
    "php-fpm libapache2-mod-php php-mysql php-pgsql nodejs default-jdk-headless tomcat10 "
    "squid varnish rabbitmq-server openvpn wireguard-tools lvm2 mdadm cryptsetup "
    "grub-pc linux-image-amd64 initramfs-tools cloud-init qemu-guest-agent "
    "apparmor auditd sssd libpam-systemd dbus policykit-1 network-manager ifupdown isc-dhcp-client "
    "vim emacs-nox tmux screen rsync wget gnupg apt-transport-https build-essential "
    "perl ruby golang python3-pip python3-venv snmpd zabbix-agent prometheus-node-exporter "
    "collectd munin-node nagios-nrpe-server bacula-client borgbackup certbot "
    "python3-certbot-nginx dovecot-imapd spamassassin clamav clamav-daemon opendkim "
    "postgresql-contrib mariadb-client sqlite3 slapd ldap-utils krb5-user libnss-ldapd "
    "xfsprogs btrfs-progs e2fsprogs dosfstools ntfs-3g open-iscsi multipath-tools "
    "docker-compose podman buildah lxc libvirt-daemon-system qemu-system-x86 "
    "locales tzdata console-setup keyboard-configuration man-db"
).split()


# --------------------------------------------------------------------------------------
# apt with a private configuration
# --------------------------------------------------------------------------------------
def host_mirror() -> str:
    """The Debian mirror of the host's apt sources (read at run time, never hard-wired)."""
    return host_mirrors.mirrors()[0]


def apt_options(dest: str) -> list[str]:
    """``-o`` options that give apt its own state, cache and sources under ``dest/apt``."""
    root = os.path.join(dest, "apt")
    return [
        "-o", f"Dir::Etc::SourceList={root}/sources.list",
        "-o", "Dir::Etc::SourceParts=/dev/null",
        "-o", f"Dir::Etc::Preferences={root}/preferences",
        "-o", "Dir::Etc::PreferencesParts=/dev/null",
        "-o", f"Dir::State={root}/state",
        "-o", f"Dir::State::status={root}/status",
        "-o", f"Dir::Cache={root}/cache",
        "-o", "Acquire::Languages=none",
        "-o", "APT::Architecture=amd64",
        "-o", "APT::Architectures::=amd64",
        "-o", "Debug::NoLocking=1",
        "-o", "APT::Sandbox::User=root",
    ]


def apt_setup(dest: str, mirror: str) -> list[str]:
    """Write the private apt tree and run ``apt-get update`` in it."""
    root = os.path.join(dest, "apt")
    for sub in ("state/lists/partial", "cache/archives/partial"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    with open(os.path.join(root, "sources.list"), "w") as f:
        f.write(f"deb [signed-by={keyring}] {mirror} {SUITE} main\n")
    open(os.path.join(root, "preferences"), "a").close()
    open(os.path.join(root, "status"), "a").close()
    opts = apt_options(dest)
    subprocess.run(["apt-get", *opts, "-qq", "update"], check=True)
    return opts


def read_packages_index(dest: str) -> dict[str, dict[str, str]]:
    """Parse the Packages index apt fetched: name -> fields (only those we need)."""
    lists = os.path.join(dest, "apt", "state", "lists")
    out: dict[str, dict[str, str]] = {}
    for name in sorted(os.listdir(lists)):
        if "_Packages" not in name:
            continue
        # apt may keep the index compressed (lz4, gz); its own helper decompresses any of them
        text = subprocess.run(
            ["/usr/lib/apt/apt-helper", "cat-file", os.path.join(lists, name)],
            check=True, capture_output=True,
        ).stdout.decode("utf-8", "replace")
        for para in text.split("\n\n"):
            fields: dict[str, str] = {}
            key = None
            for line in para.splitlines():
                if line[:1] in (" ", "\t") and key:
                    fields[key] += "\n" + line
                elif ":" in line:
                    key, _, val = line.partition(":")
                    fields[key] = val.strip()
            if "Package" in fields:
                out[fields["Package"]] = fields
    return out


def _alternatives(field: str) -> list[list[str]]:
    groups = []
    for rel in field.split(","):
        alts = []
        for alt in rel.split("|"):
            name = alt.strip().split(" ", 1)[0].split("(", 1)[0].split(":", 1)[0].strip()
            if name:
                alts.append(name)
        if alts:
            groups.append(alts)
    return groups


def select_packages(index: dict[str, dict[str, str]]) -> list[str]:
    """Priority required/important/standard plus the closure of ``STACKS``."""
    providers: dict[str, list[str]] = collections.defaultdict(list)
    for name, f in index.items():
        for grp in _alternatives(f.get("Provides", "")):
            providers[grp[0]].append(name)
    chosen: set[str] = set()
    todo = [n for n, f in index.items() if f.get("Priority") in ("required", "important", "standard")]
    todo += [n for n in STACKS if n in index or n in providers]
    while todo:
        name = todo.pop()
        if name not in index:
            cands = sorted(providers.get(name, []))
            if not cands or any(c in chosen for c in cands):
                continue
            name = cands[0]
        if name in chosen:
            continue
        chosen.add(name)
        f = index[name]
        for key in ("Pre-Depends", "Depends", "Recommends"):
            for alts in _alternatives(f.get(key, "")):
                if any(a in chosen for a in alts):
                    continue
                for a in alts:
                    if a in index or providers.get(a):
                        todo.append(a)
                        break
    return sorted(chosen)


def fetch(dest: str, opts: list[str], names: list[str], index: dict) -> None:
    """``apt-get download`` what is missing, then extract control areas (the .debs are kept)."""
    debs = os.path.join(dest, "debs")
    ctrl = os.path.join(dest, "control")
    os.makedirs(debs, exist_ok=True)
    os.makedirs(ctrl, exist_ok=True)
    extract_all(debs, ctrl)  # leftovers of an interrupted run
    missing = [n for n in names if not os.path.isdir(os.path.join(ctrl, n))]
    for i in range(0, len(missing), 100):
        _download(opts, debs, missing[i : i + 100])
        extract_all(debs, ctrl)


def _download(opts: list[str], debs: str, batch: list[str]) -> None:
    """``apt-get download`` ``batch`` (names or ``name=version``) into ``debs``; apt checks each
    file against the signed index. One bad name must not lose the batch: retry one by one."""
    r = subprocess.run(["apt-get", *opts, "-qq", "download", *batch], cwd=debs)
    if r.returncode != 0:
        for n in batch:
            if not any(x.startswith(n.split("=", 1)[0] + "_") for x in os.listdir(debs)):
                subprocess.run(["apt-get", *opts, "-qq", "download", n], cwd=debs)


def extract_all(debs: str, ctrl: str) -> None:
    """``dpkg-deb -e`` every downloaded .deb into ``ctrl/<package>`` (its file name recorded in
    ``ctrl/<package>/.deb``). The .deb stays in ``debs``: the coverage tool reads its data.tar
    (with Nuwa's own reader) to give each scenario the package's real files."""
    for deb in sorted(os.listdir(debs)):
        if not deb.endswith(".deb"):
            continue
        pkg = deb.split("_", 1)[0]
        out = os.path.join(ctrl, pkg)
        if not os.path.isdir(out):
            tmp = out + ".tmp"
            subprocess.run(["rm", "-rf", tmp], check=True)
            subprocess.run(["dpkg-deb", "-e", os.path.join(debs, deb), tmp], check=True)
            with open(os.path.join(tmp, ".deb"), "w") as f:
                f.write(deb + "\n")
            os.rename(tmp, out)


def deb_file(dest: str, pkg: str) -> str | None:
    """The kept .deb of ``pkg`` (the file its control area came from), or None if absent."""
    try:
        with open(os.path.join(dest, "control", pkg, ".deb")) as f:
            name = f.read().strip()
    except OSError:
        return None
    path = os.path.join(dest, "debs", name)
    return path if name and os.path.isfile(path) else None


def _control_version(dest: str, pkg: str) -> str:
    with open(os.path.join(dest, "control", pkg, "control"), encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("Version:"):
                return line.split(":", 1)[1].strip()
    return ""


def fetch_data(dest: str, opts: list[str], index: dict, max_bytes: int) -> dict:
    """Re-download the .deb of every corpus package whose file is not kept (corpora built
    before the .debs were kept), at exactly the version of its control area, so the data
    matches the scripts. Refuses (SystemExit) if the download would exceed ``max_bytes``
    (the Packages index gives each file's size). Returns counts for the report."""
    ctrl = os.path.join(dest, "control")
    debs = os.path.join(dest, "debs")
    os.makedirs(debs, exist_ok=True)
    want, size, unknown = [], 0, []
    for pkg in sorted(os.listdir(ctrl)):
        if pkg.endswith(".tmp") or not os.path.isdir(os.path.join(ctrl, pkg)) or deb_file(dest, pkg):
            continue
        version = _control_version(dest, pkg)
        f = index.get(pkg)
        if f is None or f.get("Version") != version:
            unknown.append(pkg)  # the archive moved on: this version is no longer downloadable here
            continue
        want.append(f"{pkg}={version}")
        size += int(f.get("Size", "0") or 0)
    if size > max_bytes:
        raise SystemExit(f"build_script_corpus: the .debs to fetch total {size / 1e9:.2f} GB, over the "
                         f"limit of {max_bytes / 1e9:.2f} GB (--max-download-gb)")
    print(f"fetching {len(want)} .debs ({size / 1e6:.0f} MB)", file=sys.stderr)
    for i in range(0, len(want), 100):
        _download(opts, debs, want[i : i + 100])
    missing = [w.split("=", 1)[0] for w in want if not deb_file(dest, w.split("=", 1)[0])]
    return {"fetched": len(want) - len(missing), "bytes": size, "missing": missing + unknown}


# --------------------------------------------------------------------------------------
# index and report
# --------------------------------------------------------------------------------------
def build_index(dest: str) -> list[dict]:
    """One entry per maintainer script: package, version, script, path, shebang, size."""
    ctrl = os.path.join(dest, "control")
    entries = []
    for pkg in sorted(os.listdir(ctrl)):
        d = os.path.join(ctrl, pkg)
        if not os.path.isdir(d) or pkg.endswith(".tmp"):
            continue
        version = ""
        try:
            with open(os.path.join(d, "control"), encoding="utf-8", errors="replace") as f:
                for line in f:
                    if line.startswith("Version:"):
                        version = line.split(":", 1)[1].strip()
        except OSError:
            pass
        for s in MAINTAINER_SCRIPTS:
            p = os.path.join(d, s)
            if not os.path.isfile(p):
                continue
            with open(p, "rb") as f:
                data = f.read()
            first = data.split(b"\n", 1)[0]
            shebang = first[2:].strip().decode("utf-8", "replace") if first.startswith(b"#!") else ""
            entries.append(
                {"package": pkg, "version": version, "script": s, "path": p, "shebang": shebang, "size": len(data)}
            )
    with open(os.path.join(dest, "index.json"), "w") as f:
        json.dump(entries, f, indent=1)
    return entries


def interpreter(shebang: str) -> str:
    """``sh``, ``bash``, ``perl``, ... from a shebang line (``/usr/bin/env X`` unwrapped)."""
    parts = shebang.split()
    if not parts:
        return "none"
    prog = os.path.basename(parts[0])
    if prog == "env" and len(parts) > 1:
        prog = os.path.basename(parts[1])
    return prog


def report(dest: str, entries: list[dict]) -> dict:
    """Measure dash -n acceptance and Nuwa's parse rate; return the numbers."""
    from nuwa.script.parser import ParseError, parse

    shells = collections.Counter(interpreter(e["shebang"]) for e in entries)
    dash_ok = dash_fail = 0
    nuwa_ok = 0
    failures = []
    bash_total = bash_ok = 0
    bash_failures = []
    t_nuwa = 0.0
    for e in entries:
        prog = interpreter(e["shebang"])
        if prog not in ("sh", "dash", "bash"):
            continue
        with open(e["path"], "rb") as f:
            text = f.read().decode("utf-8", "surrogateescape")
        if prog == "bash":
            bash_total += 1
            try:
                parse(text, bash=True)
                bash_ok += 1
            except ParseError as err:
                bash_failures.append(f"{e['package']}/{e['script']}: {err}")
            continue
        r = subprocess.run(["dash", "-n", e["path"]], capture_output=True)
        if r.returncode != 0:
            dash_fail += 1
            continue
        dash_ok += 1
        t0 = time.perf_counter()
        try:
            parse(text)
            nuwa_ok += 1
        except ParseError as err:
            failures.append(f"{e['package']}/{e['script']}: {err}")
        t_nuwa += time.perf_counter() - t0
    return {
        "packages": len({e["package"] for e in entries if True}),
        "packages_in_corpus": len([n for n in os.listdir(os.path.join(dest, "control")) if not n.endswith(".tmp")]),
        "debs_kept": sum(1 for n in os.listdir(os.path.join(dest, "control"))
                         if not n.endswith(".tmp") and deb_file(dest, n)),
        "scripts": len(entries),
        "interpreters": dict(shells.most_common()),
        "dash_accepts": dash_ok,
        "dash_rejects": dash_fail,
        "nuwa_parses": nuwa_ok,
        "nuwa_parse_rate": (nuwa_ok / dash_ok) if dash_ok else None,
        "nuwa_failures": failures,
        "bash_scripts": bash_total,
        "bash_parsed": bash_ok,
        "bash_failures": bash_failures,
        "nuwa_parse_seconds": round(t_nuwa, 3),
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: fetch (unless --no-fetch), index, report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dest", default=DEFAULT_DEST)
    ap.add_argument("--mirror", default=None, help="default: the host's apt mirror")
    ap.add_argument("--no-fetch", action="store_true", help="only index and report what is there")
    ap.add_argument("--no-data", action="store_true", help="do not fetch the .debs of packages whose file is not kept")
    ap.add_argument("--max-download-gb", type=float, default=4.0, help="refuse to fetch more .debs than this")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    os.makedirs(args.dest, exist_ok=True)
    if not args.no_fetch:
        opts = apt_setup(args.dest, args.mirror or host_mirror())
        index = read_packages_index(args.dest)
        names = select_packages(index)
        print(f"selected {len(names)} packages", file=sys.stderr)
        with open(os.path.join(args.dest, "selection.txt"), "w") as f:
            f.write("\n".join(names) + "\n")
        fetch(args.dest, opts, names, index)
        if not args.no_data:
            got = fetch_data(args.dest, opts, index, int(args.max_download_gb * 1e9))
            if got["missing"]:
                print(f"no .deb for {len(got['missing'])} packages: {' '.join(got['missing'][:20])}", file=sys.stderr)
    entries = build_index(args.dest)
    rep = report(args.dest, entries)
    if args.json:
        print(json.dumps(rep, indent=1))
        return 0
    print(f"packages:           {rep['packages_in_corpus']} ({rep['packages']} with maintainer scripts)")
    print(f"maintainer scripts: {rep['scripts']}")
    print(f".debs kept:         {rep['debs_kept']} (their data.tar gives the coverage tool the real files)")
    print("interpreters:       " + ", ".join(f"{k} {v} ({100 * v / max(1, rep['scripts']):.1f}%)" for k, v in rep["interpreters"].items()))
    print(f"dash -n accepts:    {rep['dash_accepts']} of the sh scripts ({rep['dash_rejects']} rejected)")
    rate = rep["nuwa_parse_rate"]
    print(f"nuwa parses:        {rep['nuwa_parses']} of {rep['dash_accepts']} ({100 * rate:.2f}%)" if rate is not None else "nuwa parses: n/a")
    print(f"bash scripts:       {rep['bash_parsed']} of {rep['bash_scripts']} parsed (bash mode)")
    print(f"nuwa parse time:    {rep['nuwa_parse_seconds']} s")
    for line in rep["nuwa_failures"] + rep["bash_failures"]:
        print("  FAIL " + line)
    return 0 if not rep["nuwa_failures"] else 1


if __name__ == "__main__":
    sys.exit(main())
