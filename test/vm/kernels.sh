#!/bin/bash
# Fetch the Debian kernels the VM tests boot, without touching the host's apt setup.
#
#   test/vm/kernels.sh [5.10|6.1|6.12|lts|newest|all]      (default: all)
#
# Uses a private apt configuration (own sources list, lists, cache) under
# test/vm/.cache/apt, `apt-get download`s linux-image packages and unpacks them with
# `dpkg -x` into test/vm/.cache/<kernel-release>/. Prints one line per kernel:
#   <alias> <kernel-release> <dir>
# Idempotent: a kernel already unpacked (marker file .ready) is not fetched again.
# VIGIL_VM_CACHE overrides the cache directory.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${VIGIL_VM_CACHE:-$here/.cache}
apt_dir=$cache/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/etc"

keyring=/usr/share/keyrings/debian-archive-keyring.gpg
cat >"$apt_dir/etc/sources.list" <<SRC
deb [signed-by=$keyring] http://deb.debian.org/debian bullseye main
deb [signed-by=$keyring] http://deb.debian.org/debian bookworm main
deb [signed-by=$keyring] http://deb.debian.org/debian bookworm-backports main
deb [signed-by=$keyring] http://deb.debian.org/debian trixie main
deb [signed-by=$keyring] http://deb.debian.org/debian trixie-backports main
deb [signed-by=$keyring] http://deb.debian.org/debian-security bullseye-security main
deb [signed-by=$keyring] http://deb.debian.org/debian-security bookworm-security main
SRC

apt_opts=(
	-o "Dir::Etc::SourceList=$apt_dir/etc/sources.list"
	-o "Dir::Etc::SourceParts=/dev/null"
	-o "Dir::Etc::Preferences=/dev/null"
	-o "Dir::Etc::PreferencesParts=/dev/null"
	-o "Dir::State::Lists=$apt_dir/lists"
	-o "Dir::State::status=/dev/null"
	-o "Dir::Cache=$apt_dir"
	-o "Dir::Cache::archives=$apt_dir/archives"
	-o "APT::Architecture=amd64"
	-o "APT::Architectures::=amd64"
	-o "Debug::NoLocking=1"
	-o "APT::Sandbox::User=root"
)

refresh_lists() {
	# Refresh at most once a day, and whenever the sources list changed (a new suite).
	local stamp=$apt_dir/lists/.updated sum
	sum=$(sha256sum <"$apt_dir/etc/sources.list" | cut -d' ' -f1)
	if [[ -f $stamp && -n $(find "$stamp" -mmin -1440 2>/dev/null) && $(cat "$stamp") == "$sum" ]]; then return; fi
	echo "kernels: apt-get update (private lists in $apt_dir/lists)" >&2
	apt-get "${apt_opts[@]}" -qq update >&2
	echo "$sum" >"$stamp"
}

# Newest package name matching an extended regex (by Debian version ordering of the
# embedded kernel version). Candidates come from the private package lists.
newest_pkg() {
	local re=$1
	# `search --names-only` lists only packages that have a version in the lists
	# (`pkgnames` also lists names that are merely referenced).
	{ apt-cache "${apt_opts[@]}" search --names-only "^${re}\$" 2>/dev/null || true; } |
		awk '{print $1}' | sort -V | tail -n1
}

# Top-level modules the guest loads (9p root, ext4 on loop for xattr tests, veth);
# dependencies are resolved from modules.dep.
# A trailing "?" marks a module that may not exist (crc32c_generic: ext4's soft dependency,
# gone from 6.14 where crc32c became a library).
GUEST_MODULES="virtio_pci 9pnet_virtio 9p crc32c_generic? ext4 loop veth"

# alias -> package regex (unsigned variants where Debian ships them, same kernel).
pkg_regex() {
	case $1 in
	# Debian 11's kernel (bullseye / bullseye-security): the 5.10 class (Ubuntu 22.04's 5.15 and
	# RHEL 9's 5.14 have no bpf_loop either). Modules are uncompressed .ko; virtio is modular.
	5.10) echo 'linux-image-5\.10\.0-[0-9]+-amd64(-unsigned)?' ;;
	# Debian 12's kernel (bookworm / bookworm-security).
	6.1) echo 'linux-image-6\.1\.0-[0-9]+-amd64-unsigned' ;;
	# 6.12 as built for bookworm-backports (+deb12).
	6.12) echo 'linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned' ;;
	# 6.18, the LTS after 6.12 (>= 6.15: security.bpf.* xattr kfuncs), trixie-backports.
	# trixie-backports ships only the signed image there; the signed vmlinuz boots the same.
	lts|6.18) echo 'linux-image-6\.18\.[0-9]+\+deb13-amd64(-unsigned)?' ;;
	# The newest kernel trixie-backports has (not in the default set).
	newest) echo 'linux-image-[0-9]+\.[0-9]+\.[0-9]+\+deb13-amd64(-unsigned)?' ;;
	*) echo "kernels: unknown kernel alias '$1' (5.10, 6.1, 6.12, lts, newest)" >&2; return 2 ;;
	esac
}

fetch_one() {
	local alias=$1
	local link=$cache/$alias
	if [[ -f $link/.ready ]]; then
		echo "$alias $(cat "$link/.release") $(cd "$link" && pwd -P)"
		return
	fi
	refresh_lists
	local re pkg
	re=$(pkg_regex "$alias")
	pkg=$(newest_pkg "$re")
	if [[ -z $pkg ]]; then echo "kernels: no package matches $re" >&2; return 1; fi
	local rel=${pkg#linux-image-}
	rel=${rel%-unsigned}
	local dest=$cache/$rel
	if [[ ! -f $dest/.ready ]]; then
		echo "kernels: fetching $pkg" >&2
		rm -rf "$dest.tmp"
		mkdir -p "$dest.tmp"
		(cd "$apt_dir/archives" && apt-get "${apt_opts[@]}" -qq download "$pkg" >&2)
		local deb
		deb=$(ls -t "$apt_dir/archives/${pkg}_"*.deb | head -n1)
		dpkg -x "$deb" "$dest.tmp/root"
		local vmlinuz
		vmlinuz=$(ls "$dest.tmp/root/boot/vmlinuz-"* | head -n1)
		ln -s "root/boot/$(basename "$vmlinuz")" "$dest.tmp/vmlinuz"
		# Keep only the modules the guest needs (decompressed), drop the rest to save space.
		local mdir=$dest.tmp/root/lib/modules/$rel
		if [[ ! -d $mdir && -d $dest.tmp/root/usr/lib/modules/$rel ]]; then
			mkdir -p "$dest.tmp/root/lib"
			ln -s ../usr/lib/modules "$dest.tmp/root/lib/modules"
		fi
		[[ -d $mdir ]] || { echo "kernels: no module tree in $pkg" >&2; return 1; }
		# modules.dep is made by the package's postinst: run depmod on the unpacked tree.
		depmod -b "$dest.tmp/root" "$rel"
		# Copy the modules the guest needs, with their dependencies (modules.dep), in load
		# order, decompressed: modules/order lists them for the initramfs.
		mkdir -p "$dest.tmp/modules"
		python3 - "$mdir" "$dest.tmp/modules" $GUEST_MODULES <<'PY'
import lzma, os, sys
mdir, out, wanted = sys.argv[1], sys.argv[2], sys.argv[3:]
deps, path = {}, {}
for line in open(os.path.join(mdir, "modules.dep")):
    mod, _, rest = line.partition(":")
    def name(p):
        b = os.path.basename(p)
        return b.split(".ko")[0].replace("-", "_")
    n = name(mod)
    path[n] = mod
    deps[n] = [name(d) for d in rest.split()]
builtin = set()
for line in open(os.path.join(mdir, "modules.builtin")):
    builtin.add(os.path.basename(line.strip()).split(".ko")[0].replace("-", "_"))
order = []
def visit(n):
    if n in order or n not in path:
        return
    for d in deps[n]:
        visit(d)
    order.append(n)
for w in wanted:
    optional = w.endswith("?")
    w = w.rstrip("?").replace("-", "_")
    if w not in path and w not in builtin:
        if optional:
            continue
        sys.exit(f"kernels: module {w} neither built in nor in modules.dep")
    visit(w)
for n in order:
    src = os.path.join(mdir, path[n])
    data = lzma.open(src).read() if src.endswith(".xz") else open(src, "rb").read()
    if src.endswith(".zst"):
        sys.exit(f"kernels: {src}: zstd modules are not supported")
    open(os.path.join(out, n + ".ko"), "wb").write(data)
open(os.path.join(out, "order"), "w").write("".join(n + "\n" for n in order))
PY
		# Keep config + System.map for reference, drop the rest of the module tree.
		rm -rf "$dest.tmp/root/lib/modules" "$dest.tmp/root/usr/lib/modules" "$dest.tmp/root/usr/share"
		echo "$rel" >"$dest.tmp/.release"
		echo "$pkg" >"$dest.tmp/.package"
		rm -f "$deb" # the unpacked kernel is the cache
		touch "$dest.tmp/.ready"
		rm -rf "$dest"
		mv "$dest.tmp" "$dest"
	fi
	ln -sfn "$rel" "$link"
	echo "$alias $rel $dest"
}

want=${1:-all}
if [[ $want == all ]]; then set -- 5.10 6.1 6.12 lts; fi
for k in "$@"; do fetch_one "$k"; done
