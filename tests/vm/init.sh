#!/bin/busybox sh
# /init of the vkv test guest. Runs every suite named in /tests/list with a
# freshly loaded vkv.ko, checks that the module's counters are back to zero
# and that rmmod succeeds after each, prints results on the console
# (VKV-RESULT <suite> PASS|FAIL), dumps the kernel log and powers off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
echo "VKV-GUEST $(uname -r) mem=$(awk '/MemTotal/ {print $2}' /proc/meminfo)kB"

while read -r m; do
	insmod "/modules/$m" 2>/dev/null
done < /modules/order
mkdir -p /mnt
if ! mount -t ext4 /dev/vda /mnt; then
	echo "VKV-RESULT mount FAIL"
fi

# Check runs only this TCase of each suite when it is set (run.sh passes the
# host's CK_RUN_CASE); empty would select none.
run_case=$(cat /tests/case 2>/dev/null)
[ -z "$run_case" ] || export CK_RUN_CASE="$run_case"

zero_counters="pinned_bytes pool_bytes pool_reserved_bytes swapped_bytes backed_resident_bytes contexts pins"

while read -r suite params; do
	[ -n "$suite" ] || continue
	echo "VKV-SUITE $suite $params"
	ok=1
	# shellcheck disable=SC2086
	if ! insmod /vkv.ko $params; then
		echo "VKV-ERROR $suite: insmod failed"
		ok=0
	else
		(cd /mnt && CK_DEFAULT_TIMEOUT=300 CK_VERBOSITY=normal "/tests/$suite") || ok=0
		for c in $zero_counters; do
			[ -r "/sys/kernel/vkv/$c" ] || continue
			v=$(cat "/sys/kernel/vkv/$c")
			if [ "$v" != 0 ]; then
				echo "VKV-ERROR $suite: counter $c is $v after the suite"
				ok=0
			fi
		done
		if ! rmmod vkv; then
			echo "VKV-ERROR $suite: rmmod failed"
			ok=0
		fi
	fi
	rm -f /mnt/vkv-* 2>/dev/null
	if [ $ok = 1 ]; then echo "VKV-RESULT $suite PASS"; else echo "VKV-RESULT $suite FAIL"; fi
done < /tests/list

# On a debug kernel: what kmemleak finds unreferenced once every suite has
# unloaded vkv.ko, and whether lockdep is still on. The second scan is the
# one that reports: kmemleak holds back objects whose contents changed since
# the scan before.
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
if [ -w /sys/kernel/debug/kmemleak ]; then
	echo scan > /sys/kernel/debug/kmemleak
	sleep 6
	echo scan > /sys/kernel/debug/kmemleak
	echo "VKV-KMEMLEAK-BEGIN"
	cat /sys/kernel/debug/kmemleak
	echo "VKV-KMEMLEAK-END"
fi
if [ -r /proc/lockdep_stats ]; then
	echo "VKV-LOCKDEP debug_locks=$(awk '/debug_locks:/ {print $2}' /proc/lockdep_stats)"
fi

echo "VKV-DMESG-BEGIN"
dmesg -s 4194304
echo "VKV-DMESG-END"
umount /mnt 2>/dev/null
sync
echo "VKV-DONE"
poweroff -f
