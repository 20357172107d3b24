/* Unit tests for the sandbox's capability set and seccomp filter: the filter is
 * loaded for real in a forked child and system calls are tried against it. */
#include "harness.h"
#include "providers/sandbox/security.h"
#include "rollout/err.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define AF_VSOCK_ 40

/* Runs fn in a child under the filter (--isolation chroot's when chroot);
 * fn returns 0 when all its checks held. */
static int under_filter_of(int (*fn)(void), bool chroot)
{
	const struct sock_fprog *prog;
	struct err err = {0};
	int st;
	pid_t pid;

	if ((chroot ? sandbox_seccomp_prog_chroot(&prog, &err)
	            : sandbox_seccomp_prog(&prog, &err)) < 0) {
		test_fail_at(__FILE__, __LINE__, "compile: %s", err.msg);
		return -1;
	}
	pid = fork();
	if (pid == 0) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || sandbox_seccomp_load(prog) < 0)
			_exit(100);
		_exit(fn());
	}
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 200 + WTERMSIG(st);
}

static int under_filter(int (*fn)(void))
{
	return under_filter_of(fn, false);
}

/* Expect a failed call with errno e; the line number tells which one broke. */
#define EXPECT_ERRNO(call, e)                                                                      \
	do {                                                                                       \
		errno = 0;                                                                         \
		if ((call) != -1 || errno != (e))                                                  \
			return __LINE__ % 100 + 1;                                                 \
	} while (0)

static int namespaces_and_mounts_are_denied(void)
{
	EXPECT_ERRNO(mount("none", "/tmp", "tmpfs", 0, NULL), EPERM);
	EXPECT_ERRNO(umount2("/proc", MNT_DETACH), EPERM);
	EXPECT_ERRNO(unshare(CLONE_NEWNS), EPERM);
	EXPECT_ERRNO(unshare(CLONE_NEWUSER), EPERM);
	EXPECT_ERRNO(setns(0, 0), EPERM);
	/* clone with a namespace flag is refused, a plain one is not */
	EXPECT_ERRNO(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, NULL), EPERM);
	EXPECT_ERRNO(syscall(SYS_pivot_root, "/", "/"), EPERM);
	return 0;
}

static int kernel_interfaces_are_denied(void)
{
	EXPECT_ERRNO(syscall(SYS_init_module, NULL, 0, ""), EPERM);
	EXPECT_ERRNO(syscall(SYS_finit_module, -1, "", 0), EPERM);
	EXPECT_ERRNO(syscall(SYS_delete_module, "x", 0), EPERM);
	EXPECT_ERRNO(syscall(SYS_reboot, 0, 0, 0, NULL), EPERM);
	EXPECT_ERRNO(syscall(SYS_keyctl, 0, 0, 0, 0, 0), EPERM);
	EXPECT_ERRNO(syscall(SYS_bpf, 0, NULL, 0), EPERM);
	EXPECT_ERRNO(syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0), EPERM);
	EXPECT_ERRNO(syscall(SYS_kexec_load, 0, 0, NULL, 0), EPERM);
	EXPECT_ERRNO(syscall(SYS_open_by_handle_at, -1, NULL, 0), EPERM);
	EXPECT_ERRNO(syscall(SYS_userfaultfd, 0), EPERM);
	return 0;
}

static int clone3_says_not_implemented(void)
{
	EXPECT_ERRNO(syscall(SYS_clone3, NULL, 0), ENOSYS);
	return 0;
}

static int socket_and_personality_arguments(void)
{
	int fd;

	EXPECT_ERRNO(socket(AF_VSOCK_, SOCK_STREAM, 0), EPERM);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0)
		return 90;
	close(fd);
	if (personality(0xffffffff) < 0)
		return 91;
	EXPECT_ERRNO(personality(0x0400000 /* READ_IMPLIES_EXEC */), EPERM);
	return 0;
}

/* Changing a file's project (or a directory's inheritance of it) would take
 * files out of the storage limit; reading the attributes stays allowed. The
 * commands are spelled out: <linux/fs.h> clashes with <sys/mount.h>. */
static int project_changes_are_denied(void)
{
	unsigned char fsx[28] = {0}; /* struct fsxattr */
	long flags = 0;
	int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return 60;
	EXPECT_ERRNO(ioctl(fd, 0x401c5820 /* FS_IOC_FSSETXATTR */, fsx), EPERM);
	EXPECT_ERRNO(ioctl(fd, 0x40086602 /* FS_IOC_SETFLAGS */, &flags), EPERM);
	EXPECT_ERRNO(ioctl(fd, 0x40046602 /* FS_IOC32_SETFLAGS */, &flags), EPERM);
	/* The upper 32 bits are not part of the command. */
	EXPECT_ERRNO(syscall(SYS_ioctl, fd, 0xff000000401c5820UL, fsx), EPERM);
	errno = 0;
	if (ioctl(fd, 0x801c581f /* FS_IOC_FSGETXATTR */, fsx) < 0 && errno == EPERM)
		return 61;
	close(fd);
	return 0;
}

static int ordinary_calls_work(void)
{
	pid_t c;
	int st;

	if (getpid() <= 0 || access("/", R_OK) < 0)
		return 80;
	c = fork();
	if (c == 0)
		_exit(7);
	if (c < 0 || waitpid(c, &st, 0) < 0 || WEXITSTATUS(st) != 7)
		return 81;
	return 0;
}

#if defined(__x86_64__)
/* 32-bit system calls go through the same allow list (Docker's x86 sub-arch). */
static long int80(long nr, long a)
{
	long ret;

	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a) : "memory");
	return ret;
}

static long int80_2(long nr, long a, long b)
{
	long ret;

	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b) : "memory");
	return ret;
}

static int i386_calls_are_filtered_too(void)
{
	if (int80(20 /* i386 getpid */, 0) != getpid())
		return 70;
	if (int80(52 /* i386 umount2 */, 0) != -EPERM)
		return 71;
	return 0;
}
#endif

TEST(seccomp_denies_namespaces_and_mounts)
{
	CHECK_INT(under_filter(namespaces_and_mounts_are_denied), 0);
}

TEST(seccomp_denies_kernel_interfaces)
{
	CHECK_INT(under_filter(kernel_interfaces_are_denied), 0);
}

TEST(seccomp_clone3_is_enosys)
{
	CHECK_INT(under_filter(clone3_says_not_implemented), 0);
}

TEST(seccomp_argument_rules)
{
	CHECK_INT(under_filter(socket_and_personality_arguments), 0);
}

TEST(seccomp_denies_project_changes)
{
	CHECK_INT(under_filter(project_changes_are_denied), 0);
}

TEST(seccomp_allows_ordinary_calls)
{
	CHECK_INT(under_filter(ordinary_calls_work), 0);
}

#if defined(__x86_64__)
/* Kernels built without IA32 emulation (or booted with ia32_emulation=0) kill
 * a process that makes a 32-bit call, filter or not. */
static bool kernel_runs_i386_calls(void)
{
	int st;
	pid_t pid = fork();

	if (pid == 0)
		_exit(int80(20 /* i386 getpid */, 0) == getpid() ? 0 : 1);
	return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}
#endif

TEST(seccomp_covers_i386_syscalls)
{
#if defined(__x86_64__)
	if (!kernel_runs_i386_calls())
		SKIP("this kernel runs no 32-bit system calls (no IA32 emulation): nothing to "
		     "filter");
	CHECK_INT(under_filter(i386_calls_are_filtered_too), 0);
#else
	SKIP("x86_64 only");
#endif
}

#if defined(__x86_64__)
static int x32_call(void)
{
	syscall(0x40000000 | SYS_getpid); /* the x32 ABI: a foreign architecture here */
	return 60;
}
#endif

TEST(seccomp_refuses_the_x32_abi)
{
#if defined(__x86_64__)
	CHECK_INT(under_filter(x32_call), 200 + SIGSYS);
#else
	SKIP("x86_64 only");
#endif
}

/* At --isolation chroot pid 1 is the host's and kill(-1) reaches everything
 * the caller may signal: refused. Signalling oneself, or a child, is not. */
#if defined(__x86_64__)
static bool i386_calls; /* found before the filter: the probe forks a child that may crash */
#endif

static int host_wide_signals_are_refused(void)
{
	pid_t child;
	int st;

	EXPECT_ERRNO(kill(1, 0), EPERM);
	EXPECT_ERRNO(kill(-1, 0), EPERM);
	EXPECT_ERRNO(syscall(SYS_tkill, 1, 0), EPERM);
	EXPECT_ERRNO(syscall(SYS_tgkill, 1, 1, 0), EPERM);
	EXPECT_ERRNO(syscall(SYS_pidfd_open, 1, 0), EPERM);
	if (kill(getpid(), 0) != 0 || kill(0, 0) != 0)
		return 50;
	child = fork();
	if (child == 0)
		pause();
	if (child < 0 || kill(child, SIGKILL) != 0 || waitpid(child, &st, 0) != child)
		return 51;
#if defined(__x86_64__)
	/* the same through the i386 entry point: kill is 37 there (signal 0) */
	if (i386_calls && int80_2(37, -1, 0) != -EPERM)
		return 52;
#endif
	return 0;
}

TEST(seccomp_at_chroot_refuses_signals_to_pid_1_and_everyone)
{
#if defined(__x86_64__)
	i386_calls = kernel_runs_i386_calls();
#endif
	CHECK_INT(under_filter_of(host_wide_signals_are_refused, true), 0);
	/* the full sandbox's own profile lets them through (its pid 1 is the init) */
	CHECK(under_filter(host_wide_signals_are_refused) != 0);
}

TEST(seccomp_filter_is_compiled_once)
{
	const struct sock_fprog *a, *b;
	struct err err = {0};

	REQUIRE(sandbox_seccomp_prog(&a, &err) == 0);
	REQUIRE(sandbox_seccomp_prog(&b, &err) == 0);
	CHECK(a == b);
	CHECK(a->len > 100);
}

TEST(capabilities_are_dockers_default_set)
{
	/* CapEff of a root process in a default Docker container. */
	CHECK_INT(caps_default_mask(), 0xa80425fbULL);
	CHECK_STR(caps_name(27), "CAP_MKNOD");
	CHECK(caps_name(21) == NULL); /* CAP_SYS_ADMIN is not in it */
}
