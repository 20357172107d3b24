/* What an untrusted command runs under: Docker's default capability set and
 * seccomp profile (compiled once per process with libseccomp, loaded as raw BPF
 * in the child right before execve). */
#ifndef ROLLOUT_SANDBOX_SECURITY_H
#define ROLLOUT_SANDBOX_SECURITY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct err;
struct sock_fprog;

/* Docker's 14 default capabilities, as a bit mask (bit n = capability n). */
uint64_t caps_default_mask(void);
/* Drops every capability outside mask from the bounding set and from the
 * permitted, effective and inheritable sets. Allocation free; returns -errno. */
int caps_limit_to(uint64_t mask);
/* Docker's default set less what would reach the host from a chroot in its
 * namespaces: CAP_SYS_CHROOT (a second chroot walks out of the first),
 * CAP_MKNOD (no nodev mount, no device cgroup of ours) and CAP_NET_RAW (the
 * host's network is shared). */
uint64_t caps_chroot_mask(void);
/* After setresuid in an exec child: uid 0 keeps mask, everyone else gets none. */
int caps_apply_for_user(uid_t uid, uint64_t mask);
/* Name of capability n ("CAP_MKNOD"), for messages and tests. */
const char *caps_name(int n);

/* The compiled filter equivalent to Docker's default seccomp profile for the
 * default capability set: ERRNO(EPERM) by default, clone3 → ENOSYS, socket
 * without AF_VSOCK, clone without namespace flags, a few personalities.
 * Compiled on first use and cached for the process (thread safe). */
int sandbox_seccomp_prog(const struct sock_fprog **out, struct err *err);
/* The same for --isolation chroot, which shares the host's pid namespace:
 * kill, tkill, tgkill and pidfd_open of pid 1 or -1 also return EPERM. */
int sandbox_seccomp_prog_chroot(const struct sock_fprog **out, struct err *err);
/* Loads raw BPF into the calling thread (needs no_new_privs or CAP_SYS_ADMIN).
 * Allocation free; returns -errno. */
int sandbox_seccomp_load(const struct sock_fprog *prog);
/* Names allowed unconditionally by the profile (NULL-terminated), for tests. */
extern const char *const sandbox_seccomp_allowed[];

#endif
