/* Thin wrappers for the Linux system calls the sandbox needs that libc does not
 * wrap (new mount API, openat2, pidfds, close_range, pivot_root, raw clone). */
#ifndef ROLLOUT_SANDBOX_SYS_H
#define ROLLOUT_SANDBOX_SYS_H

#include <linux/openat2.h>
#include <stdint.h>
#include <sys/types.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif

/* linux/mount.h clashes with libc's sys/mount.h, so the few constants we use live here. */
#define SB_OPEN_TREE_CLONE 1
#define SB_FSOPEN_CLOEXEC 0x00000001
#define SB_FSMOUNT_CLOEXEC 0x00000001
#define SB_MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#define SB_MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#define SB_FSCONFIG_SET_FLAG 0
#define SB_FSCONFIG_SET_STRING 1
#define SB_FSCONFIG_CMD_CREATE 6
#define SB_MOUNT_ATTR_RDONLY 0x00000001
#define SB_MOUNT_ATTR_NOSUID 0x00000002
#define SB_MOUNT_ATTR_NODEV 0x00000004
#define SB_MOUNT_ATTR_NOEXEC 0x00000008

struct sb_mount_attr {
	uint64_t attr_set;
	uint64_t attr_clr;
	uint64_t propagation;
	uint64_t userns_fd;
};

int sys_openat2(int dirfd, const char *path, int flags, mode_t mode, uint64_t resolve);
int sys_fsopen(const char *fsname, unsigned flags);
int sys_fsconfig(int fd, unsigned cmd, const char *key, const void *value, int aux);
int sys_fsmount(int fd, unsigned flags, unsigned attr);
int sys_move_mount(int from_dfd, const char *from, int to_dfd, const char *to, unsigned flags);
int sys_open_tree(int dfd, const char *path, unsigned flags);
int sys_mount_setattr(int dfd, const char *path, unsigned flags, struct sb_mount_attr *attr);
int sys_pivot_root(const char *new_root, const char *put_old);
int sys_pidfd_open(pid_t pid);
int sys_pidfd_send_signal(int pidfd, int sig);
/* close_range(first, ~0U); falls back to a loop over /proc/self/fd-free brute force. */
void sys_close_from(int first);
/* Closes every fd >= 3 except those listed (allocation free, for forked children). */
void sys_close_all_but(const int *keep, int n);
/* fork() as a raw clone: safe in a child of a multithreaded process (no libc
 * atfork locks). flags are CLONE_* namespace flags; *pidfd receives a pidfd
 * when CLONE_PIDFD is set. Returns 0 in the child. */
pid_t sys_clone(unsigned long flags, int *pidfd);
/* "/proc/self/fd/N" into buf (for mount(2) on an fd-resolved target). */
const char *sys_fd_path(char buf[32], int fd);

#endif
