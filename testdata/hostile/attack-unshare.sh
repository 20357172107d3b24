# New namespaces (a user namespace would give a full capability set inside it).
for flags in -U -m -n -p -r; do
	if unshare $flags true 2>/dev/null; then
		echo "ALLOWED unshare: unshare $flags succeeded"
		exit 0
	fi
done
echo "DENIED unshare: every namespace refused"
