# Killing pid 1 (it would take the whole environment down).
before=$(cut -d' ' -f22 /proc/1/stat 2>/dev/null)
kill -9 1 2>/dev/null
kill -TERM 1 2>/dev/null
sleep 0.2
after=$(cut -d' ' -f22 /proc/1/stat 2>/dev/null)
if [ -n "$before" ] && [ "$before" = "$after" ]; then
	echo "DENIED kill-init: pid 1 ignores signals from inside"
else
	echo "ALLOWED kill-init: pid 1 is gone"
fi
