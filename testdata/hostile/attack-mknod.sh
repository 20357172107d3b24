# Device nodes for the host's disk or memory.
for dev in "b 8 0" "b 253 0" "c 1 1" "c 10 229"; do
	if mknod /tmp/attack-dev $dev 2>/dev/null; then
		if head -c 1 /tmp/attack-dev >/dev/null 2>&1; then
			echo "ALLOWED mknod: created and read device $dev"
			exit 0
		fi
		# A node nobody can open (the device cgroup refuses it) reaches nothing.
		rm -f /tmp/attack-dev
	fi
done
echo "DENIED mknod: device nodes refused or unusable"
