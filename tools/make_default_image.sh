#!/bin/sh
# Build testimages/default.qcow2: a small but real Debian 12 (bookworm) system whose packages
# come from `bookworm` main only, so that bookworm-security holds pending updates for it.
#
#   tools/make_default_image.sh [OUT.qcow2]        (root; Debian 12 host; ~1 minute)
#
# Steps, each with the real tool:
#   1. mmdebstrap --mode=root (variant $VARIANT, merged /usr, docs/man/locales and gconv
#      modules excluded but copyright files kept), mirror taken from this machine's apt sources;
#   2. list the installed packages that bookworm-security updates (host apt, isolated state);
#   3. mkfs.ext4 -d into partition 2 of a GPT raw disk (partition 1: an empty BIOS boot
#      partition) with pinned UUIDs, hash seed and time;
#   4. qemu-img convert -c -O qcow2 -o compression_type=zstd.
#
# Knobs (environment): VARIANT (custom|essential|minbase, default custom), PACKAGES (the
# --include list), FS_BLOCK (1024|4096, default 4096), CLUSTER (qcow2 cluster size, default
# 65536), MIRROR / SECURITY_MIRROR (override the detected mirrors), KEEP=1 keeps the work dir.
# testimages/README.md records the sizes these choices give.
#
# Reproducibility: SOURCE_DATE_EPOCH (default: the Date of the mirror's bookworm Release file),
# E2FSPROGS_FAKE_TIME, mtimes clamped and atimes set to it, fixed disk/partition/filesystem
# UUIDs and hash seed, fixed hostname, inode ctimes set with debugfs after mke2fs (1.47.0 copies
# the host's). Two builds from the same mirror state are byte-identical; what varies is the
# package set's versions, which follow the mirror on the day of the build.
set -eu

OUT=${1:-testimages/default.qcow2}
VARIANT=${VARIANT:-custom}
# The package set of the custom variant: the core of Debian's Essential set (the shells, the
# file and text utilities, dpkg) plus xz-utils, chosen to fit the size budget; see
# testimages/README.md for the measurements behind this choice.
PACKAGES=${PACKAGES:-base-files,base-passwd,bash,coreutils,dash,debianutils,diffutils,dpkg,findutils,grep,gzip,hostname,libc-bin,mawk,ncurses-base,ncurses-bin,sed,tar,usr-is-merged,xz-utils}
FS_BLOCK=${FS_BLOCK:-4096}
CLUSTER=${CLUSTER:-65536}
# SOURCE_DATE_EPOCH defaults to the Date of the mirror's bookworm Release file (set below), so
# that two builds from the same mirror state give the same tree, times included.
EPOCH=${SOURCE_DATE_EPOCH:-}

DISK_GUID=4E55574A-0000-4000-8000-000000000001
BIOS_GUID=4E55574A-0000-4000-8000-000000000002
ROOT_GUID=4E55574A-0000-4000-8000-000000000003
FS_UUID=7b6e7577-6100-4000-8000-0000000d1e40
HASH_SEED=7b6e7577-6100-4000-8000-0000000d1e41

for t in mmdebstrap mkfs.ext4 sfdisk qemu-img apt-get; do
    command -v "$t" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin
    command -v "$t" >/dev/null 2>&1 || { echo "make_default_image: $t is required" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "make_default_image: mmdebstrap --mode=root needs root" >&2; exit 1; }

WORK=$(mktemp -d /tmp/nuwa-default-image.XXXXXX)
cleanup() { [ "${KEEP:-0}" = 1 ] && echo "work dir kept: $WORK" >&2 || rm -rf "$WORK"; }
trap cleanup EXIT INT TERM

# --- 1. the mirror, from this machine's apt sources (one-line or deb822 format) -------------
if [ -z "${MIRROR:-}" ]; then
    MIRROR=$(
        { grep -hE '^\s*deb\s' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
              | grep -vE -- '-security|security\.' | awk '{for(i=2;i<=NF;i++) if($i ~ /^[a-z]+:\/\//){print $i; exit}}'
          for f in /etc/apt/sources.list.d/*.sources; do
              [ -f "$f" ] || continue
              awk 'BEGIN{RS=""} /Suites:[^\n]*bookworm([ \n]|$)/ {if (match($0, /URIs:[ \t]*[^ \t\n]+/)) {s=substr($0,RSTART,RLENGTH); sub(/URIs:[ \t]*/,"",s); print s}}' "$f"
          done
        } | grep -v -- '-security' | head -n1
    )
fi
[ -n "$MIRROR" ] || { echo "make_default_image: no Debian mirror found in /etc/apt/sources.list*" >&2; exit 1; }
SECURITY=${SECURITY_MIRROR:-$(printf '%s' "$MIRROR" | sed 's#/debian/*$#/debian-security#')}
echo "mirror: $MIRROR   security: $SECURITY" >&2

# --- the archive indexes (host apt, isolated state): Release date, and later the updates -
ROOT=$WORK/root
A=$WORK/apt
mkdir -p "$A/lists/partial" "$A/cache/archives/partial" "$A/etc/preferences.d"
echo "deb $MIRROR bookworm main" > "$A/sources.list"
echo "deb $SECURITY bookworm-security main" >> "$A/sources.list"
APT_OPTS="-o Dir::State=$A -o Dir::State::Lists=$A/lists -o Dir::Cache=$A/cache -o Dir::Etc::SourceList=$A/sources.list
  -o Dir::Etc::SourceParts=/nonexistent -o Dir::Etc::Preferences=/nonexistent -o Dir::Etc::PreferencesParts=$A/etc/preferences.d
  -o Dir::State::status=$ROOT/var/lib/dpkg/status -o Debug::NoLocking=1 -o APT::Get::List-Cleanup=0
  -o APT::Sandbox::User=root"
# shellcheck disable=SC2086
apt-get -q $APT_OPTS update >/dev/null
[ -n "$EPOCH" ] || EPOCH=$(date -u -d "$(sed -n 's/^Date: //p' "$A"/lists/*_dists_bookworm_InRelease | head -n1)" +%s)
export SOURCE_DATE_EPOCH=$EPOCH
echo "SOURCE_DATE_EPOCH=$EPOCH ($(date -u -d "@$EPOCH" +%F))" >&2

mmdebstrap --mode=root --variant="$VARIANT" --include="$PACKAGES" --quiet \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/lintian/*' \
    --dpkgopt='path-exclude=/usr/lib/*/gconv/*' \
    --dpkgopt='path-include=/usr/lib/*/gconv/gconv-modules*' \
    --customize-hook='echo nuwa-default > "$1/etc/hostname"' \
    --customize-hook='rm -f "$1/etc/resolv.conf"' \
    --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/* "$1"/var/cache/ldconfig/aux-cache' \
    --customize-hook='printf "/dev/disk/by-uuid/%s / ext4 errors=remount-ro 0 1\n" '"$FS_UUID"' > "$1/etc/fstab"' \
    bookworm "$ROOT" "deb $MIRROR bookworm main" > "$WORK/mmdebstrap.log" 2>&1 \
    || { cat "$WORK/mmdebstrap.log" >&2; exit 1; }

# --- 2. which installed packages bookworm-security updates ------------------------------
# shellcheck disable=SC2086
apt-get -s $APT_OPTS upgrade 2>/dev/null | grep '^Inst ' | grep -i security > "$WORK/security-updates.txt" || true
N_SEC=$(wc -l < "$WORK/security-updates.txt")
echo "packages with pending bookworm-security updates: $N_SEC" >&2
sed 's/^/  /' "$WORK/security-updates.txt" >&2
[ "$N_SEC" -ge 1 ] || { echo "make_default_image: no pending security updates; the image would not exercise patching" >&2; exit 1; }

# --- 3. a GPT raw disk: p1 BIOS boot (empty), p2 root ext4 --------------------------------
USED_KIB=$(du -sk --apparent-size "$ROOT" | cut -f1)
INODES=$(find "$ROOT" | wc -l)
# Files made during the build (dpkg's database, /etc, /dev, directories) are clamped to the
# epoch, like `tar --clamp-mtime`; files unpacked from packages keep their (older) mtimes.
# atimes last, children before parents (-depth): reading a directory updates its atime, so
# nothing may read a directory after it was touched and before mke2fs stats it.
find "$ROOT" -newermt "@$EPOCH" -exec touch -h -d "@$EPOCH" {} +
find "$ROOT" -depth -exec touch -h -a -d "@$EPOCH" {} +
# room for the files, their metadata and some growth (patching needs space): 1.6x + 24 MiB
FS_MIB=$(( (USED_KIB * 16 / 10) / 1024 + 24 ))
RAW=$WORK/disk.raw
DISK_MIB=$(( FS_MIB + 2 + 1 ))  # 1 MiB alignment gap/BIOS boot + 1 MiB for the backup GPT
truncate -s "${DISK_MIB}M" "$RAW"
sfdisk -q "$RAW" <<EOF
label: gpt
label-id: $DISK_GUID
first-lba: 2048
start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649, uuid=$BIOS_GUID, name="bios"
start=4096, size=$(( FS_MIB * 2048 )), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=$ROOT_GUID, name="root"
EOF
FS=$WORK/root.ext4
E2FSPROGS_FAKE_TIME=$EPOCH mkfs.ext4 -q -F -b "$FS_BLOCK" -N $(( INODES + INODES / 2 + 1024 )) \
    -L root -U "$FS_UUID" -E "hash_seed=$HASH_SEED,root_owner=0:0" -d "$ROOT" "$FS" "${FS_MIB}M" >/dev/null
# mke2fs 1.47.0 copies each file's host ctime (the moment of the touch above); set every used
# inode's ctime to the epoch with debugfs (which also refreshes the inode checksums).
dumpe2fs "$FS" 2>/dev/null | awk -v epoch="$EPOCH" '
    /^Inode count:/ { n = $3 }
    /^  Free inodes: / {
        sub(/^  Free inodes: /, "")
        m = split($0, ranges, /, */)
        for (i = 1; i <= m; i++) {
            if (ranges[i] == "") continue
            k = split(ranges[i], ab, "-"); lo = ab[1] + 0; hi = (k > 1 ? ab[2] : ab[1]) + 0
            for (j = lo; j <= hi; j++) free[j] = 1
        }
    }
    END { for (i = 2; i <= n; i++) if (!(i in free) && (i == 2 || i >= 11)) printf "sif <%d> ctime @%s\n", i, epoch }
' > "$WORK/ctime.cmds"
E2FSPROGS_FAKE_TIME=$EPOCH debugfs -w -f "$WORK/ctime.cmds" "$FS" >/dev/null 2>&1
E2FSPROGS_FAKE_TIME=$EPOCH e2fsck -fn "$FS" >/dev/null 2>&1 || { echo "make_default_image: e2fsck -fn failed on the new filesystem" >&2; exit 1; }
dd if="$FS" of="$RAW" bs=1M seek=2 conv=notrunc,sparse status=none

# --- 4. compressed qcow2 ------------------------------------------------------------------
mkdir -p "$(dirname "$OUT")"
rm -f "$OUT"
qemu-img convert -c -O qcow2 -o "compression_type=zstd,cluster_size=$CLUSTER" "$RAW" "$OUT"
qemu-img check -q "$OUT"
cp "$WORK/security-updates.txt" "$OUT.security-updates.txt.tmp"
mv "$OUT.security-updates.txt.tmp" "$(dirname "$OUT")/$(basename "$OUT" .qcow2).security-updates.txt"
echo "wrote $OUT: $(du -k "$OUT" | cut -f1) KiB on disk, virtual ${DISK_MIB} MiB, root fs ${FS_MIB} MiB (${FS_BLOCK}-byte blocks), $(grep -c '^Package:' "$ROOT/var/lib/dpkg/status") packages" >&2
