/* Processes: child processes described once and waited for with a deadline (in
 * the manner of git's run-command), and what rollout's in-environment helpers need. */
#ifndef ROLLOUT_PROC_H
#define ROLLOUT_PROC_H

#include "rollout/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* One child. Zero-initialise (PROC_INIT), fill in what to run and how, then
 * proc_run(), or proc_start() + proc_finish(). The fields below "results" are
 * written by the calls.
 *
 * stdio (in, out, err), as in git's run-command: 0 inherits the caller's; -1 asks
 * for a pipe, whose parent end (O_CLOEXEC, O_NONBLOCK) is stored back in the field
 * by proc_start; a positive fd is dup'd into place (the caller keeps and closes
 * it). no_stdin/no_stdout/no_stderr connect /dev/null instead. extra_fds[i]
 * becomes fd 3 + i in the child (at most 16). Every other descriptor of rollout is O_CLOEXEC,
 * so the child gets nothing more -- after exec: a fn child keeps every descriptor
 * of the caller but proc's own pipes, and closes what it must not hold. */
struct proc {
	const char *const *argv; /* exec'd with a PATH lookup (argv[0]) ... */
	int (*fn)(void *arg);    /* ... or, instead of exec, run: its return is the exit status */
	void *arg;               /* for fn and setup */
	/* Runs in the child once its fds, group and directory are in place, before
	 * exec or fn (namespaces, rlimits, ...). Non-zero: the child ends, and
	 * proc_start reports errno. Async-signal-safe calls only (no malloc). */
	int (*setup)(void *arg);

	/* The child's environment: env (complete, "K=V") or else the caller's, then
	 * env_add on top ("K=V" sets, "K" unsets). Built before the fork; for exec only (a fn child
	 * keeps the caller's). */
	const char *const *env;
	const char *const *env_add;
	const char *dir; /* chdir here in the child */

	int in, out, err;
	bool no_stdin, no_stdout, no_stderr;
	const int *extra_fds;
	size_t n_extra_fds;
	/* proc_finish hands what the child writes to out/err pipes (stream 1 or 2)
	 * here; without it the output is read and dropped. */
	void (*on_output)(void *ctx, int stream, const char *buf, size_t n);
	void *output_ctx;

	bool new_pgroup;      /* its own process group: kills reach everything it started */
	bool new_session;     /* setsid(): no controlling terminal (implies a group) */
	bool default_signals; /* SIGINT, SIGTERM, SIGPIPE back to default in the child */

	double deadline;   /* mono_now() time after which the child is killed; 0: none */
	double kill_grace; /* at the deadline SIGTERM first, SIGKILL this much later; 0: SIGKILL */
	bool cancellable;  /* cancel_requested() kills it (SIGKILL) */
	bool kill_group_at_exit; /* once it exits, SIGKILL what is left in its group */

	/* results */
	pid_t pid;
	int status;    /* as from waitpid */
	int exit_code; /* its exit status, or 128 + the signal that ended it */
	bool signalled, timed_out, cancelled;
	int term_sig;  /* the signal that ended it, when signalled */
	bool owned[3]; /* in/out/err hold a pipe end of proc's, closed by proc_finish */
};

#define PROC_INIT                                                                                  \
	{                                                                                          \
		0                                                                                  \
	}

/* Fork and exec (or run fn). On failure to start (pipe, fork, the directory, setup,
 * exec: "exec git: No such file or directory" with errno ENOENT) the child has
 * been reaped and -1 is returned. */
int proc_start(struct proc *p, struct err *err);

/* Wait until the child exits, reading its out/err pipes to on_output meanwhile;
 * at the deadline or on cancellation kill it (its group with new_pgroup or
 * new_session) and reap it. Once it exited, what it left in the pipes is read
 * and the pipes closed. Returns 0 with the results filled in, however it ended;
 * -1 only when waiting itself failed (the child is killed and reaped then). */
int proc_finish(struct proc *p, struct err *err);

/* proc_start then proc_finish. */
int proc_run(struct proc *p, struct err *err);

/* Send sig to the child, or to its whole group with new_pgroup/new_session. */
void proc_signal(const struct proc *p, int sig);

/* Fills in exit_code, signalled and term_sig from a wait status. */
void proc_set_status(struct proc *p, int status);

/* Kills every process of the caller's pid namespace except pid 1 and the
 * caller (for an environment's init, or a helper exec'd into a container):
 * each round stops then SIGKILLs everything /proc lists, until a round finds
 * nothing alive or `budget_sec` has passed. Zombies count as gone. Returns how
 * many processes were killed, or -1 when /proc cannot be read. */
int proc_kill_all_but_init(double budget_sec);

#endif
