#!/bin/sh
# Download the security updates pending for testimages/default.qcow2 (the exact versions listed
# in testimages/default.security-updates.txt) into testimages/updates/, with the host's apt.
# Run on a Debian 12 host with bookworm-security in its apt sources (after `apt-get update`).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
list="$here/testimages/default.security-updates.txt"
out="$here/testimages/updates"
mkdir -p "$out"
cd "$out"
sed -n 's/^Inst \([^ ]*\) \[[^]]*\] (\([^ ]*\) .*/\1=\2/p' "$list" | while read -r spec; do
    apt-get download -q "$spec"
done
ls -l "$out"
