#!/bin/busybox sh
# /init of the vigil test VM (busybox initramfs). Built into the initramfs by test/vm/run.mjs.
#
# Mounts the host root read-only (9p tag "hostroot") at /newroot, the host work tree
# read-write (tag "work") at its real path inside it, and a control share (tag "ctl")
# holding the command to run (ctl/cmd.sh) and the environment (ctl/env). Runs the command
# as root inside a chroot of the host root, prints an exit marker with its status on the
# serial console, writes ctl/rc and powers off.
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /newroot /ctl
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev

fail() {
	echo "vigil-vm: init: $*"
	# The runner looks for this marker; 125 = harness failure.
	echo "VIGIL-VM-EXIT ${VIGIL_VM_NONCE:-init} 125"
	poweroff -f
	sleep 5
}

for m in $(cat /modules/order); do
	insmod /modules/$m.ko || fail "insmod $m failed"
done

opts=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o $opts,ro,cache=loose hostroot /newroot || fail "mount hostroot failed"
mount -t 9p -o $opts,cache=mmap ctl /ctl || fail "mount ctl failed"
. /ctl/env # VIGIL_VM_WORK, VIGIL_VM_NONCE, VIGIL_VM_CWD
mkdir -p /newroot/tmp 2>/dev/null
mount -t tmpfs -o mode=1777 tmp /newroot/tmp || fail "mount /tmp failed"
mount -t tmpfs -o mode=755 run /newroot/run || fail "mount /run failed"
mount -t proc proc /newroot/proc
mount -t sysfs sys /newroot/sys
mount -t devtmpfs dev /newroot/dev
mkdir -p /newroot/dev/pts /newroot/dev/shm 2>/dev/null
mount -t devpts devpts /newroot/dev/pts
mount -t tmpfs shm /newroot/dev/shm
mount -t securityfs securityfs /newroot/sys/kernel/security
mount -t bpf bpf /newroot/sys/fs/bpf
mount -t tracefs tracefs /newroot/sys/kernel/tracing
mount -t debugfs debugfs /newroot/sys/kernel/debug 2>/dev/null
mount -t cgroup2 cgroup2 /newroot/sys/fs/cgroup 2>/dev/null
# The work tree last, so no tmpfs above hides it (a clone under /tmp, as CI may use).
mkdir -p "/newroot$VIGIL_VM_WORK" 2>/dev/null
mount -t 9p -o $opts,cache=loose work "/newroot$VIGIL_VM_WORK" || fail "mount work tree failed"
# Work-tree folders carried in RAM (appended to the initramfs by run.mjs, option ram): each is
# bind-mounted over its 9p copy, so module loading does not pay a 9p round trip per file.
for d in $VIGIL_VM_RAM; do
	[ -d "/$d" ] || fail "RAM folder /$d missing from the initramfs"
	mount --bind "/$d" "/newroot$VIGIL_VM_WORK/$d" || fail "bind RAM folder $d failed"
done
# The control share inside the chroot (on the /run tmpfs), for the command script.
mkdir -p /newroot/run/vigil-vm
mount --bind /ctl /newroot/run/vigil-vm || fail "bind ctl failed"
ip link set lo up 2>/dev/null
hostname vigil-vm

echo "VIGIL-VM-BEGIN $VIGIL_VM_NONCE"
chroot /newroot /usr/bin/env -i \
	PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/tmp/home TMPDIR=/tmp TERM=dumb LANG=C.UTF-8 CI=1 NO_COLOR=1 \
	VIGIL_IN_VM=1 VIGIL_VM_KERNEL="$(uname -r)" \
	/bin/sh -c 'mkdir -p "$HOME"; cd "$1" && exec /bin/sh /run/vigil-vm/cmd.sh </dev/null' vm "$VIGIL_VM_CWD" \
	>/dev/console 2>&1
rc=$?
sync
echo $rc >/ctl/rc
echo "VIGIL-VM-EXIT $VIGIL_VM_NONCE $rc"
poweroff -f
sleep 5
