# Symlinks (and a hardlink) left in /logs/agent for the host-side collector to
# follow. The host side checks that nothing follows them.
mkdir -p /logs/agent
ln -sf /etc/shadow /logs/agent/shadow-link 2>/dev/null
ln -sf / /logs/agent/host-root 2>/dev/null
ln -sf ../../../../../../../../etc/passwd /logs/agent/passwd-link 2>/dev/null
# When /logs/agent is the host's directory (a bind mount), a hardlink to a file
# of the image would put that inode on the host: it must fail (EXDEV).
if [ "$(stat -c %d /logs/agent)" != "$(stat -c %d /etc/passwd)" ] &&
	ln /etc/passwd /logs/agent/hard-passwd 2>/dev/null; then
	echo "ALLOWED logs-symlink: hardlink across the bind mount"
	exit 0
fi
echo "PLANTED logs-symlink: links in /logs/agent (checked on the host)"
