# Getting at pid 1 (the environment's init, a copy of rollout): its memory, its
# environment (rollout's secrets), its executable (the host binary), its
# namespaces. All need ptrace access to pid 1.
for f in /proc/1/mem /proc/1/environ /proc/1/maps /proc/1/stack; do
	if head -c 1 "$f" >/dev/null 2>&1; then
		echo "ALLOWED ptrace: read $f"
		exit 0
	fi
done
if readlink /proc/1/exe >/dev/null 2>&1; then
	echo "ALLOWED ptrace: /proc/1/exe is readable"
	exit 0
fi
if nsenter -t 1 -m true 2>/dev/null; then
	echo "ALLOWED ptrace: nsenter into pid 1"
	exit 0
fi
echo "DENIED ptrace: pid 1 is out of reach"
