# Writing to /proc/sysrq-trigger would act on the host kernel (e.g. "c" crashes it).
# Harmless letter "h" (help) in case it were writable.
if echo h >/proc/sysrq-trigger 2>/dev/null; then
	echo "ALLOWED sysrq: /proc/sysrq-trigger is writable"
else
	echo "DENIED sysrq: /proc/sysrq-trigger is read-only"
fi
