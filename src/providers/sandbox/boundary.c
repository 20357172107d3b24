/* Phase boundaries of a trial on the sandbox: killing whatever the agent left
 * running, and making /logs/verifier (bound read-only since the start, so the
 * agent could plant nothing there) writable for the verifier, who also gets
 * room of its own under the storage limit (quota.c). */
#include "providers/sandbox/sandbox.h"
#include "providers/sandbox/sys.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int sandbox_kill_all(struct sandbox_env *env, struct err *err)
{
	_cleanup_close_ int c = sandbox_env_connect(env, err);
	struct ctl_msg m = {.type = CTL_KILL_ALL};

	if (c < 0)
		return -1;
	if (ctl_send(c, &m, sizeof(m), NULL, 0) < 0)
		return err_sys(err, "environment %s: kill its processes", env->name);
	if (ctl_recv(c, &m, sizeof(m), NULL, NULL) <= 0)
		return err_set(err, EIO, "environment %s: no answer from its init", env->name);
	if (m.type != CTL_KILLED)
		return err_set(err, m.value ? m.value : EIO, "environment %s: %.200s", env->name,
		               m.text);
	return m.value;
}

/* In a child entered into the environment's namespaces: clear the read-only
 * flag of the mount at /logs/verifier. root is the environment's root, opened
 * through its init before entering: setns() puts us at the root of the mount
 * namespace's tree, which is the environment's root only when rollout runs at
 * the top of its own tree (in a chroot it is the host's root, with the
 * environment's root mounted somewhere below). Returns an errno value. */
static int child_open_verifier(int userns, int mntns, int root)
{
	struct sb_mount_attr attr = {.attr_clr = SB_MOUNT_ATTR_RDONLY};
	int t;

	if (userns >= 0 && setns(userns, CLONE_NEWUSER) < 0)
		return errno;
	if (setns(mntns, CLONE_NEWNS) < 0)
		return errno;
	t = sys_openat2(root, "logs/verifier", O_PATH | O_DIRECTORY | O_CLOEXEC, 0,
	                RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
	if (t < 0)
		return errno;
	if (sys_mount_setattr(t, "", AT_EMPTY_PATH, &attr) < 0)
		return errno;
	return 0;
}

int sandbox_open_verifier_dir(struct sandbox_env *env, struct err *err)
{
	_cleanup_close_ int userns = -1, root = -1;
	char p[64];
	int status, e;
	pid_t pid;

	if (!env->owner || env->mntns_fd < 0)
		return err_set(err, EPERM,
		               "environment %s: only the process that started it can "
		               "open /logs/verifier",
		               env->name);
	snprintf(p, sizeof(p), "/proc/%d/root", (int)env->init_pid);
	root = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return err_sys(err, "environment %s: its root", env->name);
	if (env->rootless) {
		snprintf(p, sizeof(p), "/proc/%d/ns/user", (int)env->init_pid);
		userns = open(p, O_RDONLY | O_CLOEXEC);
		if (userns < 0)
			return err_sys(err, "environment %s: its user namespace", env->name);
	}
	/* setns needs a single-threaded caller; the owner may have threads. */
	pid = sys_clone(0, NULL);
	if (pid < 0)
		return err_sys(err, "environment %s: open /logs/verifier", env->name);
	if (pid == 0)
		_exit(child_open_verifier(userns, env->mntns_fd, root));
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return err_sys(err, "environment %s: open /logs/verifier", env->name);
	e = WIFEXITED(status) ? WEXITSTATUS(status) : EIO;
	if (e != 0) {
		errno = e;
		return err_sys(err, "environment %s: make /logs/verifier writable", env->name);
	}
	return quota_env_verifier_room(env, err);
}
