# Loading a kernel module. The file is garbage: if the call reached the module
# loader the error would be "invalid module format", not a permission error.
printf 'not really a module' >/tmp/attack.ko
out=$(insmod /tmp/attack.ko 2>&1)
case "$out" in
*"not permitted"* | *"Operation not permitted"*) echo "DENIED module: $out" ;;
"") echo "ALLOWED module: insmod succeeded" ;;
*) echo "ALLOWED module: init_module reached the kernel ($out)" ;;
esac
