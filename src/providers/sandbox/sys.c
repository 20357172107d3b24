/* Thin wrappers for system calls libc does not wrap. Everything here is
 * allocation free: it is used between clone() and execve(). */
#include "providers/sandbox/sys.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

int sys_openat2(int dirfd, const char *path, int flags, mode_t mode, uint64_t resolve)
{
	struct open_how how = {.flags = (uint64_t)flags, .mode = mode, .resolve = resolve};

	return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

int sys_fsopen(const char *fsname, unsigned flags)
{
	return (int)syscall(SYS_fsopen, fsname, flags);
}

int sys_fsconfig(int fd, unsigned cmd, const char *key, const void *value, int aux)
{
	return (int)syscall(SYS_fsconfig, fd, cmd, key, value, aux);
}

int sys_fsmount(int fd, unsigned flags, unsigned attr)
{
	return (int)syscall(SYS_fsmount, fd, flags, attr);
}

int sys_move_mount(int from_dfd, const char *from, int to_dfd, const char *to, unsigned flags)
{
	return (int)syscall(SYS_move_mount, from_dfd, from, to_dfd, to, flags);
}

int sys_open_tree(int dfd, const char *path, unsigned flags)
{
	return (int)syscall(SYS_open_tree, dfd, path, flags);
}

int sys_mount_setattr(int dfd, const char *path, unsigned flags, struct sb_mount_attr *attr)
{
	return (int)syscall(SYS_mount_setattr, dfd, path, flags, attr, sizeof(*attr));
}

int sys_pivot_root(const char *new_root, const char *put_old)
{
	return (int)syscall(SYS_pivot_root, new_root, put_old);
}

int sys_pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

int sys_pidfd_send_signal(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

void sys_close_from(int first)
{
	if (syscall(SYS_close_range, (unsigned)first, ~0U, 0) == 0)
		return;
	for (int fd = first; fd < 65536; fd++)
		close(fd);
}

void sys_close_all_but(const int *keep, int n)
{
	int next = 3;

	/* Close the gaps between the kept fds, in ascending order. */
	for (;;) {
		int lo = -1;

		for (int i = 0; i < n; i++)
			if (keep[i] >= next && (lo < 0 || keep[i] < lo))
				lo = keep[i];
		if (lo < 0)
			break;
		if (lo > next && syscall(SYS_close_range, (unsigned)next, (unsigned)lo - 1, 0) < 0)
			for (int fd = next; fd < lo; fd++)
				close(fd);
		next = lo + 1;
	}
	sys_close_from(next);
}

pid_t sys_clone(unsigned long flags, int *pidfd)
{
	/* x86_64 and most others: clone(flags, stack, parent_tid, child_tid, tls).
	 * With CLONE_PIDFD the pidfd is stored through parent_tid. */
	return (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, pidfd, NULL, NULL);
}

const char *sys_fd_path(char buf[32], int fd)
{
	snprintf(buf, 32, "/proc/self/fd/%d", fd);
	return buf;
}
