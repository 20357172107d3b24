/* rollout's in-container helper and the process killer it shares with the host.
 *
 * The provider bind-mounts this very (static) binary read-only at
 * DOCKER_HELPER_PATH. Started under that name it is not rollout but a helper:
 *   sleep              the container's main process (under Docker's init)
 *   kill MARKER        kill a timed-out exec's processes (see docker_kill_marked)
 *   oom                print the container cgroup's oom_kill counter (-1: unknown)
 *   chown UID GID DIR...  hand the files below DIRs to the host user, never
 *                      following a symlink
 *   merge-stderr CMD...  run CMD with stderr on stdout (one ordered stream)
 *   kill-all           kill every process but pid 1 and print how many (the end
 *                      of the agent phase: daemons and setsid'd children included)
 *   rm-rf PATH         remove PATH (never following its last component), any depth
 * docker_helper_entry (the provider's ops.entry, run before main() by the
 * constructor of providers/providers.c) recognises the name, so every program
 * that can start an environment (rollout itself, the test and bench programs)
 * can serve. */
#include "providers/docker/docker.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/confined.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/proc.h"
#include "rollout/strbuf.h"

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ROUNDS 200
#define CHOWN_MAX_DEPTH 512

static long docker_chown_tree_depth(int dirfd, uid_t uid, gid_t gid, bool change, int depth,
                                    bool self);

/* ---- /proc ------------------------------------------------------------------------ */

int proc_stat_fields(pid_t pid, pid_t *ppid, pid_t *pgid, pid_t *sid,
                     unsigned long long *start_time)
{
	char path[64], buf[1024], state;
	_cleanup_close_ int fd = -1;
	ssize_t n;
	char *p;
	int a, b, c;
	unsigned long long st = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* "pid (comm) state ppid pgrp session ..." where comm may hold anything. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %c %d %d %d", &state, &a, &b, &c) != 4)
		return -1;
	if (start_time) {
		/* field 22; we are at field 3 after ')' */
		int field = 2;

		for (char *q = p + 1; *q; q++) {
			if (*q == ' ' && ++field == 22) {
				st = strtoull(q + 1, NULL, 10);
				break;
			}
		}
		*start_time = st;
	}
	if (ppid)
		*ppid = a;
	if (pgid)
		*pgid = b;
	if (sid)
		*sid = c;
	return state == 'Z' || state == 'X' ? 1 : 0;
}

bool proc_environ_has(pid_t pid, const char *needle)
{
	char path[64], buf[8192];
	size_t nlen = strlen(needle), matched = 0;
	bool in_entry_ok = true; /* the current entry matches needle so far */
	_cleanup_close_ int fd = -1;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == '\0') {
				if (in_entry_ok && matched == nlen)
					return true;
				matched = 0;
				in_entry_ok = true;
			} else if (in_entry_ok) {
				if (matched < nlen && buf[i] == needle[matched])
					matched++;
				else
					in_entry_ok = false;
			}
		}
	}
	return in_entry_ok && matched == nlen;
}

struct proc_entry {
	pid_t pid, ppid, pgid, sid;
	bool marked, target;
};

static bool same_ns(pid_t pid, const struct stat *ns)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	return stat(path, &st) == 0 && st.st_ino == ns->st_ino && st.st_dev == ns->st_dev;
}

static bool in_set(const pid_t *set, size_t n, pid_t v)
{
	for (size_t i = 0; i < n; i++)
		if (set[i] == v)
			return true;
	return false;
}

int docker_kill_marked(const char *marker, pid_t ns_pid)
{
	_cleanup_free_ char *needle = xasprintf("%s=%s", DOCKER_EXEC_MARKER, marker);
	struct stat ns;
	pid_t self = getpid();
	int total = 0;

	if (ns_pid > 0) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)ns_pid);
		if (stat(path, &ns) < 0)
			return -1;
	}
	for (int round = 0; round < MAX_ROUNDS; round++) {
		_cleanup_closedir_ DIR *d = opendir("/proc");
		struct proc_entry *ps = NULL;
		size_t n = 0, cap = 0, ngroups = 0, ntargets = 0;
		pid_t groups[64];
		struct dirent *de;
		bool grew;

		if (!d)
			return round == 0 ? -1 : total;
		if (ns_pid > 0)
			groups[ngroups++] = ns_pid; /* the exec leader: pid = pgid = sid */
		while ((de = readdir(d))) {
			struct proc_entry e = {0};
			char *end;
			long v = strtol(de->d_name, &end, 10);

			if (*end || v <= 1 || v == self)
				continue;
			e.pid = (pid_t)v;
			if (ns_pid > 0 && !same_ns(e.pid, &ns))
				continue;
			if (proc_stat_fields(e.pid, &e.ppid, &e.pgid, &e.sid, NULL) != 0)
				continue; /* gone, or a zombie: already dead */
			e.marked = proc_environ_has(e.pid, needle);
			if (e.marked && e.pid == e.sid && ngroups < ARRAY_SIZE(groups) &&
			    !in_set(groups, ngroups, e.pid))
				groups[ngroups++] = e.pid;
			if (n == cap) {
				cap = cap ? 2 * cap : 256;
				ps = xrealloc(ps, cap * sizeof(*ps));
			}
			ps[n++] = e;
		}
		for (size_t i = 0; i < n; i++)
			ps[i].target = ps[i].marked || in_set(groups, ngroups, ps[i].pgid) ||
			               in_set(groups, ngroups, ps[i].sid);
		/* Descendants of targets, however far they moved from the group. */
		do {
			grew = false;
			for (size_t i = 0; i < n; i++) {
				if (ps[i].target)
					continue;
				for (size_t j = 0; j < n; j++) {
					if (ps[j].target && ps[j].pid == ps[i].ppid) {
						ps[i].target = grew = true;
						break;
					}
				}
			}
		} while (grew);
		for (size_t i = 0; i < ngroups; i++)
			kill(-groups[i], SIGKILL);
		for (size_t i = 0; i < n; i++) {
			if (ps[i].target) {
				kill(ps[i].pid, SIGKILL);
				ntargets++;
			}
		}
		free(ps);
		total += (int)ntargets;
		if (ntargets == 0)
			break;
		usleep(round < 10 ? 2000 : 20000);
	}
	return total;
}

void docker_owner_identity(char *boot_id, size_t nb, char *pid_ns, size_t np, char *host, size_t nh)
{
	_cleanup_free_ char *b = NULL;
	size_t len = 0;
	ssize_t n;

	snprintf(boot_id, nb, "unknown");
	if (read_file("/proc/sys/kernel/random/boot_id", 256, &b, &len, NULL) == 0) {
		while (len && (b[len - 1] == '\n' || b[len - 1] == ' '))
			b[--len] = '\0';
		snprintf(boot_id, nb, "%s", b);
	}
	n = readlink("/proc/self/ns/pid", pid_ns, np - 1);
	pid_ns[n > 0 ? n : 0] = '\0';
	if (gethostname(host, nh) < 0)
		snprintf(host, nh, "unknown");
	host[nh - 1] = '\0';
}

/* ---- the host side: which binary to mount ------------------------------------------ */

/* A dynamically linked binary has a PT_INTERP program header. */
static int elf_is_static(const char *path, struct err *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	Elf64_Ehdr eh;

	if (fd < 0)
		return err_sys(err, "open %s", path);
	if (read_full(fd, &eh, sizeof(eh)) != (ssize_t)sizeof(eh) ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64)
		return err_set(err, ENOEXEC, "%s is not a 64-bit ELF executable", path);
	for (int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		if (pread(fd, &ph, sizeof(ph),
		          (off_t)(eh.e_phoff + (uint64_t)i * eh.e_phentsize)) !=
		    (ssize_t)sizeof(ph))
			return err_set(err, ENOEXEC, "%s: truncated ELF program headers", path);
		if (ph.p_type == PT_INTERP)
			return err_set(
			    err, ENOEXEC,
			    "%s is dynamically linked; the docker provider mounts rollout "
			    "into containers and needs the static build (or set "
			    "ROLLOUT_DOCKER_HELPER to a static rollout binary)",
			    path);
	}
	return 0;
}

int docker_helper_host_path(char **out, struct err *err)
{
	static char *cached;
	const char *env = getenv("ROLLOUT_DOCKER_HELPER");
	char buf[4096];
	ssize_t n;

	if (cached) {
		*out = xstrdup(cached);
		return 0;
	}
	if (env && *env) {
		snprintf(buf, sizeof(buf), "%s", env);
	} else {
		n = readlink(provider_entry_binary(), buf, sizeof(buf) - 1);
		if (n < 0)
			return err_sys(err, "readlink /proc/self/exe");
		buf[n] = '\0';
		if (str_ends_with(buf, " (deleted)"))
			return err_set(err, ENOENT,
			               "the running rollout binary was deleted (%s); the docker "
			               "provider mounts it into containers",
			               buf);
	}
	if (elf_is_static(buf, err) < 0)
		return -1;
	cached = xstrdup(buf);
	*out = xstrdup(cached);
	return 0;
}

/* ---- the container side ------------------------------------------------------------- */

/* The container's pid 1. It installs no signal handler on purpose: the kernel then
 * drops every signal sent to it from inside the container (only SIGKILL from the
 * host gets through), so an agent cannot stop its own environment with `kill 1` or
 * `kill -9 -1`. SIGCHLD stays blocked and is waited for, to reap orphans as an init
 * must (blocked signals are not dropped). */
__attribute__((noreturn)) static int helper_sleep(void)
{
	sigset_t all;

	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	/* Not dumpable: /proc/1/{mem,environ,root,...} and ptrace need CAP_SYS_PTRACE,
	 * which containers do not have. */
	prctl(PR_SET_DUMPABLE, 0);
	for (int fd = 3; fd < 64; fd++)
		close(fd);
	for (;;) {
		siginfo_t si;
		sigset_t chld;

		sigemptyset(&chld);
		sigaddset(&chld, SIGCHLD);
		sigwaitinfo(&chld, &si);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
}

static long long read_counter(const char *path, const char *key)
{
	_cleanup_free_ char *text = NULL;
	size_t len, klen = strlen(key);

	if (read_file(path, 1 << 16, &text, &len, NULL) < 0)
		return -1;
	for (char *line = text; line && *line;) {
		char *nl = strchr(line, '\n');

		if (strncmp(line, key, klen) == 0 && line[klen] == ' ')
			return strtoll(line + klen + 1, NULL, 10);
		line = nl ? nl + 1 : NULL;
	}
	return -1;
}

static int helper_oom(void)
{
	long long n = read_counter("/sys/fs/cgroup/memory/memory.oom_control", "oom_kill");

	if (n < 0)
		n = read_counter("/sys/fs/cgroup/memory.events", "oom_kill");
	printf("%lld\n", n);
	return 0;
}

static long chown_at(int dirfd, const char *name, uid_t uid, gid_t gid, bool change, int depth)
{
	struct stat st;
	long n = 0;
	int fd;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	if (st.st_uid != uid || st.st_gid != gid) {
		n++;
		if (change)
			fchownat(dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW);
	}
	if (!S_ISDIR(st.st_mode) || depth >= CHOWN_MAX_DEPTH)
		return n;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return n;
	return n + docker_chown_tree_depth(fd, uid, gid, change, depth + 1, false);
}

/* Consumes dirfd. */
static long docker_chown_tree_depth(int dirfd, uid_t uid, gid_t gid, bool change, int depth,
                                    bool self)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	struct stat st;
	long n = 0;

	if (self && fstat(dirfd, &st) == 0 && (st.st_uid != uid || st.st_gid != gid)) {
		n++;
		if (change)
			(void)!fchown(dirfd, uid, gid);
	}
	d = fdopendir(dirfd);
	if (!d) {
		close(dirfd);
		return n;
	}
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		n += chown_at(dirfd, de->d_name, uid, gid, change, depth);
	}
	return n;
}

long docker_chown_tree(int dirfd, uid_t uid, gid_t gid, bool change)
{
	int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);

	if (fd < 0)
		return 0;
	return docker_chown_tree_depth(fd, uid, gid, change, 0, true);
}

/* Open an absolute directory path without following any symlink on the way. */
static int open_dir_nofollow(const char *path)
{
	_cleanup_free_ char *copy = xstrdup(path);
	int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	for (char *save = NULL, *part = strtok_r(copy, "/", &save); part && fd >= 0;
	     part = strtok_r(NULL, "/", &save)) {
		int next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		close(fd);
		fd = next;
	}
	return fd;
}

static int helper_chown(int argc, char **argv)
{
	uid_t uid;
	gid_t gid;

	if (argc < 3)
		return 2;
	uid = (uid_t)strtoul(argv[0], NULL, 10);
	gid = (gid_t)strtoul(argv[1], NULL, 10);
	for (int i = 2; i < argc; i++) {
		int fd = open_dir_nofollow(argv[i]);

		if (fd >= 0)
			docker_chown_tree_depth(fd, uid, gid, true, 0, true);
	}
	return 0;
}

static int helper_rm_rf(const char *path)
{
	_cleanup_free_ char *copy = xstrdup(path);
	_cleanup_close_ int parent = -1;
	char *slash = strrchr(copy, '/');
	struct err err = {0};

	if (!slash || !slash[1] || strcmp(slash + 1, ".") == 0 || strcmp(slash + 1, "..") == 0) {
		fprintf(stderr, "rm-rf %s: not a removable path\n", path);
		return 2;
	}
	*slash = '\0';
	parent = open(slash == copy ? "/" : copy, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (parent < 0 && errno == ENOENT)
		return 0;
	if (parent < 0 || tree_remove_at(parent, slash + 1, &err) < 0) {
		fprintf(stderr, "rm-rf %s: %s\n", path, parent < 0 ? strerror(errno) : err.msg);
		return 1;
	}
	return 0;
}

static int helper_main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "sleep") == 0)
		return helper_sleep();
	if (argc == 3 && strcmp(argv[1], "kill") == 0) {
		int n = docker_kill_marked(argv[2], 0);

		printf("%d\n", n);
		return n < 0 ? 1 : 0;
	}
	if (argc == 2 && strcmp(argv[1], "oom") == 0)
		return helper_oom();
	if (argc >= 3 && strcmp(argv[1], "merge-stderr") == 0) {
		int e;

		if (dup2(1, 2) < 0)
			return 126;
		execvp(argv[2], argv + 2);
		e = errno;
		fprintf(stderr, "%s: %s\n", argv[2], strerror(e));
		return e == ENOENT ? 127 : 126;
	}
	if (argc >= 2 && strcmp(argv[1], "chown") == 0)
		return helper_chown(argc - 2, argv + 2);
	if (argc == 2 && strcmp(argv[1], "kill-all") == 0) {
		int n = proc_kill_all_but_init(30.0);

		printf("%d\n", n);
		return n < 0 ? 1 : 0;
	}
	if (argc == 3 && strcmp(argv[1], "rm-rf") == 0)
		return helper_rm_rf(argv[2]);
	fprintf(stderr, "%s: unknown helper command\n", argv[0]);
	return 2;
}

void docker_helper_entry(void)
{
	_cleanup_free_ char *cmdline = NULL;
	struct strv args = STRV_INIT;
	size_t len = 0;

	if (!program_invocation_name || strcmp(program_invocation_name, DOCKER_HELPER_PATH) != 0)
		return;
	if (read_file("/proc/self/cmdline", 1 << 20, &cmdline, &len, NULL) < 0)
		_exit(127);
	for (size_t i = 0; i < len; i += strlen(cmdline + i) + 1)
		strv_push(&args, cmdline + i);
	fflush(stdout);
	{
		int rc = helper_main((int)args.n, strv_array(&args));

		fflush(stdout);
		_exit(rc);
	}
}
