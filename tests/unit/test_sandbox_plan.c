/* Unit tests for the sandbox plan's wire form (plan.c): what the owner writes
 * into the memfd the exec'd init reads back. Every field survives the round
 * trip; a short, padded or altered buffer is refused, never read past. */
#include "harness.h"
#include "providers/sandbox/sandbox.h"
#include "rollout/alloc.h"
#include "rollout/strbuf.h"

#include <errno.h>
#include <linux/filter.h>
#include <stdlib.h>
#include <string.h>

static const struct sock_filter insns[] = {
    {0x20, 0, 0, 4}, {0x15, 0, 1, 0xc000003e}, {0x06, 0, 0, 0x7fff0000}, {0x06, 0, 0, 0}};

static void sample(struct sandbox_plan *p, struct sock_fprog *prog)
{
	static const char *lowers[] = {"/s/skel.1", "/s/layers/ab/diff", "/s/layers/cd/diff"};

	memset(p, 0, sizeof(*p));
	prog->len = 4;
	prog->filter = (struct sock_filter *)insns;
	p->clone_flags = 0x60020000UL;
	p->userns = false;
	p->netns = true;
	p->cg_mode = CG_V1;
	p->cg_views[0] = "cpu";
	p->cg_views[1] = "memory";
	p->n_cg_views = 2;
	p->rootfs = "/s/root";
	p->etc_scratch = "/s/etc";
	p->etc_files[0] = "127.0.0.1\tlocalhost\n";
	p->etc_files[1] = "nameserver 127.0.0.1\n";
	p->etc_files[2] = "";
	p->lowers_top_first = lowers;
	p->n_lowers = 3;
	p->upper = "/e/upper";
	p->work = "/e/work";
	p->overlay_opts = NULL;
	p->userxattr = true;
	p->whole_files = true;
	p->hostname = "trial-1";
	p->bind_src[0] = "/jobs/t/agent";
	p->bind_dst[0] = "logs/agent";
	p->bind_dst[1] = "logs/verifier";
	p->seccomp = prog;
	p->caps = 0xa80425fbULL;
	p->devpts_gid = true;
	p->sysfs_mounted = true;
	p->owner_rootfs = true;
	p->owner_netns = true;
}

TEST(plan_round_trip_keeps_every_field)
{
	struct sandbox_plan in, out;
	struct sock_fprog prog, got;
	const char *lowers[8];
	struct strbuf sb = STRBUF_INIT;

	sample(&in, &prog);
	plan_encode(&in, &sb);
	CHECK_INT(plan_decode(sb.buf, sb.len, &out, lowers, 8, &got), 0);
	CHECK(out.clone_flags == in.clone_flags);
	CHECK(out.caps == in.caps);
	CHECK_INT(out.cg_mode, CG_V1);
	CHECK(out.netns && !out.userns && out.userxattr && out.whole_files && !out.shim);
	CHECK(out.devpts_gid && out.sysfs_mounted && !out.send_ns_fds);
	CHECK(out.owner_rootfs && out.owner_netns);
	CHECK_STR(out.rootfs, "/s/root");
	CHECK_STR(out.etc_scratch, "/s/etc");
	CHECK_STR(out.etc_files[0], "127.0.0.1\tlocalhost\n");
	CHECK_STR(out.etc_files[2], "");
	CHECK_STR(out.upper, "/e/upper");
	CHECK_STR(out.work, "/e/work");
	CHECK(out.overlay_opts == NULL);
	CHECK_STR(out.hostname, "trial-1");
	CHECK_STR(out.bind_src[0], "/jobs/t/agent");
	CHECK(out.bind_src[1] == NULL && out.bind_src[2] == NULL);
	CHECK_STR(out.bind_dst[1], "logs/verifier");
	CHECK(out.bind_dst[2] == NULL);
	CHECK_INT((int)out.n_lowers, 3);
	CHECK_STR(out.lowers_top_first[0], "/s/skel.1");
	CHECK_STR(out.lowers_top_first[2], "/s/layers/cd/diff");
	CHECK_INT(out.n_cg_views, 2);
	CHECK_STR(out.cg_views[1], "memory");
	CHECK(out.seccomp == &got);
	CHECK_INT(got.len, 4);
	CHECK(memcmp(got.filter, insns, sizeof(insns)) == 0);
	CHECK_INT(out.listen_fd, -1);
	sb_release(&sb);
}

TEST(plan_without_filter_or_options)
{
	struct sandbox_plan in, out;
	struct sock_fprog prog, got;
	const char *lowers[8];
	struct strbuf sb = STRBUF_INIT;

	sample(&in, &prog);
	in.seccomp = NULL;
	in.overlay_opts = "lowerdir=/a:/b,upperdir=/u,workdir=/w,volatile";
	in.n_cg_views = 0;
	plan_encode(&in, &sb);
	CHECK_INT(plan_decode(sb.buf, sb.len, &out, lowers, 8, &got), 0);
	CHECK(out.seccomp == NULL);
	CHECK_STR(out.overlay_opts, "lowerdir=/a:/b,upperdir=/u,workdir=/w,volatile");
	CHECK_INT(out.n_cg_views, 0);
	sb_release(&sb);
}

TEST(plan_refuses_short_long_and_altered_buffers)
{
	struct sandbox_plan in, out;
	struct sock_fprog prog, got;
	const char *lowers[8];
	struct strbuf sb = STRBUF_INIT;
	char *copy;

	sample(&in, &prog);
	plan_encode(&in, &sb);
	/* Every truncation (the filter's length no longer matches, or a string runs
	 * off the end) is refused; ASan checks nothing is read past the copy. */
	for (size_t n = 0; n < sb.len; n++) {
		copy = xmalloc(n ? n : 1);
		memcpy(copy, sb.buf, n);
		CHECK_INT(plan_decode(copy, n, &out, lowers, 8, &got), -EINVAL);
		free(copy);
	}
	/* Trailing bytes. */
	sb_addc(&sb, 'x');
	CHECK_INT(plan_decode(sb.buf, sb.len, &out, lowers, 8, &got), -EINVAL);
	sb.len--;
	/* More layers than the caller has room for. */
	CHECK_INT(plan_decode(sb.buf, sb.len, &out, lowers, 2, &got), -EINVAL);
	/* Another magic. */
	sb.buf[0] ^= 1;
	CHECK_INT(plan_decode(sb.buf, sb.len, &out, lowers, 8, &got), -EINVAL);
	sb.buf[0] ^= 1;
	/* A string whose NUL was overwritten. */
	{
		char *nul = memchr(sb.buf + 64, '\0', sb.len - 64);

		CHECK(nul != NULL);
		*nul = 'y';
		CHECK_INT(plan_decode(sb.buf, sb.len, &out, lowers, 8, &got), -EINVAL);
	}
	sb_release(&sb);
}
