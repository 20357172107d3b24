# reboot(2) (in a pid namespace it would kill the environment's init).
if reboot -f 2>/dev/null; then
	sleep 1
	echo "ALLOWED reboot: reboot -f returned success"
	exit 0
fi
echo "DENIED reboot: reboot refused"
