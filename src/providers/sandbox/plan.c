/* The plan crosses an exec. The environment's init is a fresh image of rollout
 * (/proc/self/exe), not a copy of the process that starts it: a copy would
 * share every page of the owner copy-on-write (each later write on either side
 * a fault, and a TLB shootdown while the owner has threads) and would carry the
 * owner's memory (its environment, an agent's API keys) into the container. So
 * the plan is flattened into a memfd the init reads back before anything else:
 * a fixed header, then each string as a u32 length (PLAN_NULL for none) and
 * its bytes plus a NUL, then the seccomp program. */
#include "providers/sandbox/sandbox.h"
#include "rollout/err.h"
#include "rollout/strbuf.h"

#include <errno.h>
#include <linux/filter.h>
#include <stdint.h>
#include <string.h>

#define PLAN_MAGIC 0x524c5031u /* "RLP1" */
#define PLAN_NULL 0xffffffffu

struct plan_header {
	uint32_t magic;
	uint32_t n_lowers;
	uint32_t n_cg_views;
	uint32_t seccomp_len; /* instructions; 0 = no filter */
	uint64_t clone_flags;
	uint64_t caps;
	int32_t cg_mode;
	uint8_t userns, netns, userxattr, whole_files, shim, devpts_gid, sysfs_mounted, send_ns_fds,
	    owner_rootfs, owner_netns;
	uint8_t bind_rdonly; /* bit i: bind i is read-only */
	uint8_t chroot;
	uint64_t rlimit_data, rlimit_nproc;
};

static void put_str(struct strbuf *sb, const char *s)
{
	uint32_t n = s ? (uint32_t)strlen(s) : PLAN_NULL;

	sb_add(sb, &n, sizeof(n));
	if (s)
		sb_add(sb, s, (size_t)n + 1);
}

void plan_encode(const struct sandbox_plan *p, struct strbuf *out)
{
	struct plan_header h;

	memset(&h, 0, sizeof(h));
	h.magic = PLAN_MAGIC;
	h.n_lowers = (uint32_t)p->n_lowers;
	h.n_cg_views = (uint32_t)p->n_cg_views;
	h.seccomp_len = p->seccomp ? p->seccomp->len : 0;
	h.clone_flags = p->clone_flags;
	h.caps = p->caps;
	h.cg_mode = (int32_t)p->cg_mode;
	h.userns = p->userns;
	h.netns = p->netns;
	h.userxattr = p->userxattr;
	h.whole_files = p->whole_files;
	h.shim = p->shim;
	h.devpts_gid = p->devpts_gid;
	h.sysfs_mounted = p->sysfs_mounted;
	h.send_ns_fds = p->send_ns_fds;
	h.owner_rootfs = p->owner_rootfs;
	h.owner_netns = p->owner_netns;
	h.bind_rdonly = p->bind_rdonly;
	h.chroot = p->chroot;
	h.rlimit_data = p->rlimit_data;
	h.rlimit_nproc = p->rlimit_nproc;
	sb_add(out, &h, sizeof(h));
	put_str(out, p->rootfs);
	put_str(out, p->etc_scratch);
	for (int i = 0; i < 3; i++)
		put_str(out, p->etc_files[i]);
	put_str(out, p->upper);
	put_str(out, p->work);
	put_str(out, p->overlay_opts);
	put_str(out, p->hostname);
	for (int i = 0; i < LOG_BINDS; i++) {
		put_str(out, p->bind_src[i]);
		put_str(out, p->bind_dst[i]);
	}
	for (size_t i = 0; i < p->n_lowers; i++)
		put_str(out, p->lowers_top_first[i]);
	for (int i = 0; i < p->n_cg_views; i++)
		put_str(out, p->cg_views[i]);
	if (p->seccomp)
		sb_add(out, p->seccomp->filter, sizeof(struct sock_filter) * p->seccomp->len);
}

struct cursor {
	char *at, *end;
};

/* A string of the buffer in place; *ok cleared when the buffer is short. */
static const char *get_str(struct cursor *c, bool *ok)
{
	uint32_t n;
	char *s;

	if ((size_t)(c->end - c->at) < sizeof(n)) {
		*ok = false;
		return NULL;
	}
	memcpy(&n, c->at, sizeof(n));
	c->at += sizeof(n);
	if (n == PLAN_NULL)
		return NULL;
	if ((size_t)(c->end - c->at) <= n || c->at[n] != '\0') {
		*ok = false;
		return NULL;
	}
	s = c->at;
	c->at += (size_t)n + 1;
	return s;
}

int plan_decode(char *buf, size_t len, struct sandbox_plan *p, const char **lowers,
                size_t max_lowers, struct sock_fprog *prog)
{
	struct cursor c = {buf + sizeof(struct plan_header), buf + len};
	struct plan_header h;
	bool ok = true;
	size_t bytes;

	if (len < sizeof(h))
		return -EINVAL;
	memcpy(&h, buf, sizeof(h));
	if (h.magic != PLAN_MAGIC || h.n_lowers > max_lowers || h.n_cg_views > CG_MAX)
		return -EINVAL;
	memset(p, 0, sizeof(*p));
	p->clone_flags = (unsigned long)h.clone_flags;
	p->caps = h.caps;
	p->cg_mode = (enum cg_mode)h.cg_mode;
	p->userns = h.userns;
	p->netns = h.netns;
	p->userxattr = h.userxattr;
	p->whole_files = h.whole_files;
	p->shim = h.shim;
	p->devpts_gid = h.devpts_gid;
	p->sysfs_mounted = h.sysfs_mounted;
	p->send_ns_fds = h.send_ns_fds;
	p->owner_rootfs = h.owner_rootfs;
	p->owner_netns = h.owner_netns;
	p->bind_rdonly = h.bind_rdonly;
	p->chroot = h.chroot;
	p->rlimit_data = h.rlimit_data;
	p->rlimit_nproc = h.rlimit_nproc;
	p->listen_fd = -1;
	p->proc_fd = -1;
	p->rootfs = get_str(&c, &ok);
	p->etc_scratch = get_str(&c, &ok);
	for (int i = 0; i < 3; i++)
		p->etc_files[i] = get_str(&c, &ok);
	p->upper = get_str(&c, &ok);
	p->work = get_str(&c, &ok);
	p->overlay_opts = get_str(&c, &ok);
	p->hostname = get_str(&c, &ok);
	for (int i = 0; i < LOG_BINDS; i++) {
		p->bind_src[i] = get_str(&c, &ok);
		p->bind_dst[i] = get_str(&c, &ok);
	}
	for (size_t i = 0; i < h.n_lowers; i++)
		lowers[i] = get_str(&c, &ok);
	p->lowers_top_first = lowers;
	p->n_lowers = h.n_lowers;
	for (uint32_t i = 0; i < h.n_cg_views; i++)
		p->cg_views[i] = get_str(&c, &ok);
	p->n_cg_views = (int)h.n_cg_views;
	bytes = (size_t)h.seccomp_len * sizeof(struct sock_filter);
	if (!ok || (size_t)(c.end - c.at) != bytes || h.seccomp_len > 0xffff)
		return -EINVAL;
	if (!p->rootfs || !p->etc_scratch || !p->upper || !p->work || !p->hostname)
		return -EINVAL;
	for (int i = 0; i < 3; i++)
		if (!p->etc_files[i])
			return -EINVAL;
	for (size_t i = 0; i < h.n_lowers; i++)
		if (!lowers[i])
			return -EINVAL;
	for (int i = 0; i < p->n_cg_views; i++)
		if (!p->cg_views[i])
			return -EINVAL;
	if (h.seccomp_len) {
		prog->len = (unsigned short)h.seccomp_len;
		prog->filter = (struct sock_filter *)(void *)c.at;
		p->seccomp = prog;
	}
	return 0;
}
