/* Capabilities and the seccomp filter: Docker's defaults kept as data, turned into
 * kernel state. Compilation uses libseccomp in the parent; the child only loads
 * the exported BPF program (no allocation between fork and exec). */
#include "providers/sandbox/security.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"

#include <errno.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---- Capabilities ---- */

static const struct {
	int n;
	const char *name;
} docker_caps[] = {
    {CAP_CHOWN, "CAP_CHOWN"},
    {CAP_DAC_OVERRIDE, "CAP_DAC_OVERRIDE"},
    {CAP_FSETID, "CAP_FSETID"},
    {CAP_FOWNER, "CAP_FOWNER"},
    {CAP_MKNOD, "CAP_MKNOD"},
    {CAP_NET_RAW, "CAP_NET_RAW"},
    {CAP_SETGID, "CAP_SETGID"},
    {CAP_SETUID, "CAP_SETUID"},
    {CAP_SETFCAP, "CAP_SETFCAP"},
    {CAP_SETPCAP, "CAP_SETPCAP"},
    {CAP_NET_BIND_SERVICE, "CAP_NET_BIND_SERVICE"},
    {CAP_SYS_CHROOT, "CAP_SYS_CHROOT"},
    {CAP_KILL, "CAP_KILL"},
    {CAP_AUDIT_WRITE, "CAP_AUDIT_WRITE"},
};

uint64_t caps_default_mask(void)
{
	uint64_t m = 0;

	for (size_t i = 0; i < sizeof(docker_caps) / sizeof(docker_caps[0]); i++)
		m |= 1ULL << docker_caps[i].n;
	return m;
}

const char *caps_name(int n)
{
	for (size_t i = 0; i < sizeof(docker_caps) / sizeof(docker_caps[0]); i++)
		if (docker_caps[i].n == n)
			return docker_caps[i].name;
	return NULL;
}

static int capset_mask(uint64_t perm, uint64_t eff, uint64_t inh)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];

	data[0].permitted = (uint32_t)perm;
	data[1].permitted = (uint32_t)(perm >> 32);
	data[0].effective = (uint32_t)eff;
	data[1].effective = (uint32_t)(eff >> 32);
	data[0].inheritable = (uint32_t)inh;
	data[1].inheritable = (uint32_t)(inh >> 32);
	if (syscall(SYS_capset, &hdr, data) < 0)
		return -errno;
	return 0;
}

uint64_t caps_chroot_mask(void)
{
	return caps_default_mask() &
	       ~((1ULL << CAP_SYS_CHROOT) | (1ULL << CAP_MKNOD) | (1ULL << CAP_NET_RAW));
}

/* The permitted set now: capset may lower it, never raise it. */
static uint64_t caps_permitted(void)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data) < 0)
		return ~0ULL;
	return data[0].permitted | ((uint64_t)data[1].permitted << 32);
}

int caps_limit_to(uint64_t mask)
{
	/* A host (a CI container) may have dropped some of Docker's set already. */
	mask &= caps_permitted();
	for (int c = 0; c < 64; c++) {
		if (mask & (1ULL << c))
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			return -errno;
	}
	return capset_mask(mask, mask, mask);
}

int caps_apply_for_user(uid_t uid, uint64_t mask)
{
	if (uid == 0)
		return 0;
	/* setresuid to a non-zero uid already cleared permitted and effective;
	 * inheritable survives it, so clear that too. */
	(void)mask;
	return capset_mask(0, 0, 0);
}

/* ---- seccomp ---- */

/* Docker's default profile (moby profiles/seccomp/default.json): the syscalls
 * allowed for every container. Names unknown on an architecture are skipped. */
const char *const sandbox_seccomp_allowed[] = {
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget",
    "capset", "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64",
    "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
    "clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat", "dup",
    "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
    "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat",
    "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate",
    "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat",
    "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr",
    "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate",
    "ftruncate64", "futex", "futex_requeue", "futex_time64", "futex_wait", "futex_waitv",
    "futex_wake", "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32",
    "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getitimer",
    "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom",
    "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list",
    "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid", "gettimeofday",
    "getuid", "getuid32", "getxattr", "inotify_add_watch", "inotify_init", "inotify_init1",
    "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents", "io_pgetevents",
    "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup", "io_submit", "ipc", "kill",
    "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lchown32",
    "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr", "_llseek", "lremovexattr",
    "lseek", "lsetxattr", "lstat", "lstat64", "madvise", "map_shadow_stack", "membarrier",
    "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock",
    "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
    "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink",
    "mremap", "mseal", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall",
    "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "_newselect", "open", "openat",
    "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc",
    "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64", "preadv",
    "preadv2", "prlimit64", "process_mrelease", "process_vm_readv", "process_vm_writev", "pselect6",
    "pselect6_time64", "ptrace", "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink",
    "readlinkat", "readv", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg",
    "remap_file_pages", "removexattr", "rename", "renameat", "renameat2", "restart_syscall",
    "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
    "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr", "sched_getparam",
    "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr",
    "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget",
    "semop", "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg",
    "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32",
    "setgroups", "setgroups32", "setitimer", "setpgid", "setpriority", "setregid", "setregid32",
    "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit",
    "set_robust_list", "setsid", "setsockopt", "set_thread_area", "set_tid_address", "setuid",
    "setuid32", "setxattr", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack",
    "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair", "splice",
    "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync",
    "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete",
    "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64",
    "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
    "timerfd_settime64", "times", "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname",
    "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice",
    "wait4", "waitid", "waitpid", "write", "writev",
    /* x86 only (amd64, x32, i386) */
    "arch_prctl", "modify_ldt",
    /* granted with CAP_SYS_CHROOT, which the default set has */
    "chroot", NULL};

/* personality(2) values Docker allows: PER_LINUX, PER_LINUX32, UNAME26 variants, query. */
static const unsigned long allowed_personalities[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};
#define AF_VSOCK_ 40
/* CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET */
#define CLONE_NS_FLAGS 0x7E020000ULL

/* A comparison on argument 0 (every field set: clang checks initializers). */
#define ARG0(op_, a_, b_)                                                                          \
	((struct scmp_arg_cmp){.arg = 0, .op = (op_), .datum_a = (a_), .datum_b = (b_)})

static struct sock_fprog compiled;
static char compile_error[512];
static pthread_once_t compile_once = PTHREAD_ONCE_INIT;

static int add_rules(scmp_filter_ctx ctx)
{
	int rc;

	for (size_t i = 0; sandbox_seccomp_allowed[i]; i++) {
		int nr = seccomp_syscall_resolve_name(sandbox_seccomp_allowed[i]);

		if (nr == __NR_SCMP_ERROR)
			continue;
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (rc < 0 && rc != -EDOM) {
			snprintf(compile_error, sizeof(compile_error), "seccomp rule %s: %s",
			         sandbox_seccomp_allowed[i], strerror(-rc));
			return rc;
		}
	}
	/* One rule per comparison on the same argument. */
	for (size_t i = 0; i < sizeof(allowed_personalities) / sizeof(allowed_personalities[0]);
	     i++)
		if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(personality), 1,
		                           ARG0(SCMP_CMP_EQ, allowed_personalities[i], 0))) < 0)
			goto fail;
	if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
	                           ARG0(SCMP_CMP_NE, AF_VSOCK_, 0))) < 0)
		goto fail;
	if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
	                           ARG0(SCMP_CMP_MASKED_EQ, CLONE_NS_FLAGS, 0))) < 0)
		goto fail;
	/* Without CAP_SYS_ADMIN clone3 says "not implemented" so libc falls back to clone. */
	if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0)) < 0)
		goto fail;
	return 0;
fail:
	snprintf(compile_error, sizeof(compile_error), "seccomp conditional rule: %s",
	         strerror(-rc));
	return rc;
}

/* ioctl commands refused although ioctl is allowed. Root inside is root of
 * the initial user namespace and owns its files: FS_IOC_FSSETXATTR would move
 * them to another project (out of the storage limit, quota.c) and SETFLAGS
 * could clear a directory's project inheritance. (file_setattr, the system
 * call doing the same, is not in the allow list.) */
static const uint32_t denied_ioctls[] = {
    0x401c5820, /* FS_IOC_FSSETXATTR, also XFS_IOC_FSSETXATTR (same on i386) */
    0x40086602, /* FS_IOC_SETFLAGS (EXT4_IOC_SETFLAGS) */
    0x40046602, /* FS_IOC32_SETFLAGS (i386) */
};

/* The low 32 bits of argument 1: the kernel reads ioctl's command as an
 * unsigned int, whatever the upper half of the register holds. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ARG0_LO (offsetof(struct seccomp_data, args[0]))
#define ARG1_LO (offsetof(struct seccomp_data, args[1]))
#else
#define ARG0_LO (offsetof(struct seccomp_data, args[0]) + 4)
#define ARG1_LO (offsetof(struct seccomp_data, args[1]) + 4)
#endif
#define STMT(code, k) ((struct sock_filter)BPF_STMT((code), (k)))
#define JUMP(code, k, jt, jf) ((struct sock_filter)BPF_JUMP((code), (k), (jt), (jf)))

/* libseccomp cannot say "ioctl, except these commands": a conditional rule
 * conflicts with the unconditional allow, and its 64-bit comparisons would
 * let a command with garbage in the upper half through. So, like runc's
 * patchbpf, a few instructions go in front of its program: for each
 * architecture, ioctl with one of those commands returns EPERM; anything else
 * falls through to libseccomp's program (which loads what it needs itself). */
#define N_DENIED_IOCTLS (sizeof(denied_ioctls) / sizeof(denied_ioctls[0]))
#define PREFIX_BLOCK (5 + N_DENIED_IOCTLS)
#define PREFIX_MAX (2 * PREFIX_BLOCK + 2)

/* One architecture's block at out[at]; deny is the index of the EPERM return. */
static void prefix_block(struct sock_filter *out, size_t at, uint32_t arch, int nr, size_t deny)
{
	struct sock_filter *b = out + at;

	b[0] = STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	b[1] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 0, PREFIX_BLOCK - 2);
	b[2] = STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
	b[3] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, PREFIX_BLOCK - 4);
	b[4] = STMT(BPF_LD | BPF_W | BPF_ABS, ARG1_LO);
	for (size_t c = 0; c < N_DENIED_IOCTLS; c++)
		b[5 + c] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, denied_ioctls[c],
		                (uint8_t)(deny - (at + 5 + c) - 1), 0);
}

/* Fills out (room for PREFIX_MAX); returns the instruction count, 0 if an
 * architecture has no ioctl. */
static size_t ioctl_prefix(struct sock_filter *out)
{
	uint32_t archs[2] = {seccomp_arch_native(), SCMP_ARCH_X86};
	size_t n_archs = archs[0] == SCMP_ARCH_X86_64 ? 2 : 1;
	size_t deny = n_archs * PREFIX_BLOCK + 1, at = 0;

	for (size_t a = 0; a < n_archs; a++, at += PREFIX_BLOCK) {
		int nr = seccomp_syscall_resolve_name_arch(archs[a], "ioctl");

		if (nr == __NR_SCMP_ERROR)
			return 0;
		prefix_block(out, at, archs[a], nr, deny);
	}
	out[at++] = STMT(BPF_JMP | BPF_JA, 1);
	out[at++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA));
	return at;
}

/* libseccomp's program behind the prefix, in one buffer. */
static int add_prefix(void **buf, size_t *len)
{
	struct sock_filter pre[PREFIX_MAX];
	size_t n = ioctl_prefix(pre), bytes = n * sizeof(pre[0]);
	char *out;

	if (n == 0)
		return -ENOSYS;
	if (*len / sizeof(pre[0]) + n > BPF_MAXINSNS)
		return -E2BIG;
	out = xmalloc(bytes + *len);
	memcpy(out, pre, bytes);
	memcpy(out + bytes, *buf, *len);
	free(*buf);
	*buf = out;
	*len += bytes;
	return 0;
}

/* The generated program, through a memfd: one generation, exact size. */
static int export_once(scmp_filter_ctx ctx, void **out, size_t *len)
{
	_cleanup_close_ int fd = memfd_create("rollout-seccomp", MFD_CLOEXEC);
	struct stat st;
	void *buf;
	int rc;

	if (fd < 0)
		return -errno;
	if ((rc = seccomp_export_bpf(ctx, fd)) < 0)
		return rc;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size <= 0 || st.st_size % sizeof(struct sock_filter) ||
	    st.st_size > BPF_MAXINSNS * (off_t)sizeof(struct sock_filter))
		return -E2BIG;
	buf = xmalloc((size_t)st.st_size);
	if (pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
		free(buf);
		return errno ? -errno : -EIO;
	}
	*out = buf;
	*len = (size_t)st.st_size;
	return 0;
}

static void compile(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	size_t len = 0;
	void *buf = NULL;
	int rc;

	if (!ctx) {
		snprintf(compile_error, sizeof(compile_error), "seccomp_init failed");
		return;
	}
	/* The child sets no_new_privs itself; libseccomp only exports here. */
	seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	/* Docker also lists x32 (x86_64's ILP32 ABI, without userland in practice);
	 * leaving it out makes the program a third smaller and its load (once per
	 * environment) cheaper. x32 calls are refused as a foreign architecture. */
	if (seccomp_arch_native() == SCMP_ARCH_X86_64)
		seccomp_arch_add(ctx, SCMP_ARCH_X86);
	if (add_rules(ctx) < 0)
		goto out;
	/* seccomp_export_bpf_mem needs the exact size, and asking for it first
	 * generates the program twice; the fd export generates it once. */
	rc = export_once(ctx, &buf, &len);
	if (rc == 0 && (rc = add_prefix(&buf, &len)) < 0)
		free(buf);
	if (rc < 0) {
		snprintf(compile_error, sizeof(compile_error), "seccomp export: %s", strerror(-rc));
		goto out;
	}
	compiled.filter = buf;
	compiled.len = (unsigned short)(len / sizeof(struct sock_filter));
out:
	seccomp_release(ctx);
}

/* --isolation chroot shares the host's pid namespace: pid 1 is the host's (a
 * CI container's main process) and kill(-1) reaches every process the caller
 * may signal, rollout included. In front of the profile: kill, tkill, tgkill
 * and pidfd_open of pid 1 or -1 return EPERM (what an environment's pid 1
 * would have shrugged off), for each architecture the profile admits. */
static const char *const signal_calls[] = {"kill", "tkill", "tgkill", "pidfd_open"};
#define N_SIGNAL_CALLS (sizeof(signal_calls) / sizeof(signal_calls[0]))
#define SIGNAL_BLOCK (4 + N_SIGNAL_CALLS)
#define SIGNAL_PREFIX_MAX (2 * SIGNAL_BLOCK + 6)

static size_t signal_prefix(struct sock_filter *out)
{
	uint32_t archs[2] = {seccomp_arch_native(), SCMP_ARCH_X86};
	size_t n_archs = archs[0] == SCMP_ARCH_X86_64 ? 2 : 1;
	size_t check = n_archs * SIGNAL_BLOCK + 1, end = check + 5;

	for (size_t a = 0; a < n_archs; a++) {
		size_t at = a * SIGNAL_BLOCK;
		struct sock_filter *b = out + at;

		b[0] = STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
		b[1] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, archs[a], 0, SIGNAL_BLOCK - 2);
		b[2] = STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
		for (size_t c = 0; c < N_SIGNAL_CALLS; c++) {
			int nr = seccomp_syscall_resolve_name_arch(archs[a], signal_calls[c]);

			/* An unknown name matches no call: -1 is no syscall number. */
			b[3 + c] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr,
			                (uint8_t)(check - (at + 3 + c) - 1), 0);
		}
		b[3 + N_SIGNAL_CALLS] = STMT(BPF_JMP | BPF_JA, end - (at + 3 + N_SIGNAL_CALLS) - 1);
	}
	out[check - 1] = STMT(BPF_JMP | BPF_JA, end - check); /* no architecture of ours */
	out[check] = STMT(BPF_LD | BPF_W | BPF_ABS, ARG0_LO);
	out[check + 1] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, 1, 2, 0);
	out[check + 2] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xffffffffu, 1, 0);
	out[check + 3] = STMT(BPF_JMP | BPF_JA, 1);
	out[check + 4] = STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA));
	return end;
}

static struct sock_fprog compiled_chroot;
static pthread_once_t chroot_once = PTHREAD_ONCE_INIT;

static void compile_chroot(void)
{
	struct sock_filter pre[SIGNAL_PREFIX_MAX];
	size_t n = signal_prefix(pre);
	struct sock_filter *buf;

	if (!compiled.filter || compiled.len + n > BPF_MAXINSNS)
		return;
	buf = xmalloc((n + compiled.len) * sizeof(*buf));
	memcpy(buf, pre, n * sizeof(*buf));
	memcpy(buf + n, compiled.filter, compiled.len * sizeof(*buf));
	compiled_chroot.filter = buf;
	compiled_chroot.len = (unsigned short)(n + compiled.len);
}

int sandbox_seccomp_prog_chroot(const struct sock_fprog **out, struct err *err)
{
	const struct sock_fprog *base;

	if (sandbox_seccomp_prog(&base, err) < 0)
		return -1;
	pthread_once(&chroot_once, compile_chroot);
	if (!compiled_chroot.filter)
		return err_set(err, E2BIG,
		               "the seccomp program for --isolation chroot is too long");
	*out = &compiled_chroot;
	return 0;
}

int sandbox_seccomp_prog(const struct sock_fprog **out, struct err *err)
{
	pthread_once(&compile_once, compile);
	if (!compiled.filter)
		return err_set(err, EINVAL, "%s", compile_error);
	*out = &compiled;
	return 0;
}

int sandbox_seccomp_load(const struct sock_fprog *prog)
{
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, prog) == 0)
		return 0;
	if (errno == ENOSYS || errno == EINVAL) {
		if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog, 0, 0) == 0)
			return 0;
	}
	return -errno;
}
