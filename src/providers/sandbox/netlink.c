/* The netlink client of the sandbox's network (see netlink.h): building
 * messages into a fixed buffer, sending them, reading acks (with the kernel's
 * extended ack message, which says what it refused) and dumps. */
#include "providers/sandbox/netlink.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* On the stack (a thread's): the kernel sizes a dump's datagrams by the
 * largest receive buffer seen on the socket, so this is also the most one
 * datagram can carry. A heap buffer of 64 KiB cost an mmap and a munmap per
 * request (musl maps allocations that large). */
#define NL_RECV_SIZE 16384
#define NL_TIMEOUT_SEC 5
#define NL_MAX_MSGS 64

/* Sequence numbers are unique in the process, so an answer that arrives late
 * on a reused socket is never taken for another request's. */
static uint32_t next_seq(void)
{
	static uint32_t seq;

	return __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED);
}

static void *reserve(struct nl_buf *b, size_t n)
{
	void *p;

	if (b->overflow || b->len + NLMSG_ALIGN(n) > sizeof(b->data)) {
		b->overflow = true;
		return NULL;
	}
	p = b->data + b->len;
	memset(p, 0, NLMSG_ALIGN(n));
	b->len += NLMSG_ALIGN(n);
	return p;
}

size_t nl_msg_start(struct nl_buf *b, uint16_t type, uint16_t flags, const void *hdr,
                    size_t hdr_len)
{
	size_t off = b->len;
	struct nlmsghdr *h = reserve(b, NLMSG_HDRLEN + hdr_len);
	uint32_t seq = next_seq();

	if (!h)
		return off;
	if (off == 0)
		b->first = seq;
	b->seq = seq;
	h->nlmsg_type = type;
	h->nlmsg_flags = NLM_F_REQUEST | flags;
	h->nlmsg_seq = seq;
	if (hdr_len)
		memcpy((char *)h + NLMSG_HDRLEN, hdr, hdr_len);
	if (flags & NLM_F_ACK)
		b->n_acked++;
	return off;
}

void nl_msg_end(struct nl_buf *b, size_t msg)
{
	if (!b->overflow)
		((struct nlmsghdr *)(void *)(b->data + msg))->nlmsg_len = (uint32_t)(b->len - msg);
}

void nl_put(struct nl_buf *b, uint16_t type, const void *data, size_t len)
{
	struct nlattr *a = reserve(b, NLA_HDRLEN + len);

	if (!a)
		return;
	a->nla_type = type;
	a->nla_len = (uint16_t)(NLA_HDRLEN + len);
	if (len)
		memcpy((char *)a + NLA_HDRLEN, data, len);
}

void nl_put_raw(struct nl_buf *b, const void *data, size_t len)
{
	void *p = reserve(b, len);

	if (p)
		memcpy(p, data, len);
}

void nl_put_str(struct nl_buf *b, uint16_t type, const char *s)
{
	nl_put(b, type, s, strlen(s) + 1);
}

void nl_put_u8(struct nl_buf *b, uint16_t type, uint8_t v)
{
	nl_put(b, type, &v, 1);
}

void nl_put_u32(struct nl_buf *b, uint16_t type, uint32_t v)
{
	nl_put(b, type, &v, 4);
}

void nl_put_be32(struct nl_buf *b, uint16_t type, uint32_t v)
{
	v = htonl(v);
	nl_put(b, type, &v, 4);
}

size_t nl_nest_start(struct nl_buf *b, uint16_t type)
{
	size_t off = b->len;

	nl_put(b, type | NLA_F_NESTED, NULL, 0);
	return off;
}

void nl_nest_end(struct nl_buf *b, size_t nest)
{
	if (!b->overflow)
		((struct nlattr *)(void *)(b->data + nest))->nla_len = (uint16_t)(b->len - nest);
}

static size_t nfnl_msg(struct nl_buf *b, uint16_t type, uint16_t flags, uint8_t family,
                       uint16_t res_id)
{
	struct nfgenmsg g = {
	    .nfgen_family = family, .version = NFNETLINK_V0, .res_id = htons(res_id)};

	return nl_msg_start(b, type, flags, &g, sizeof(g));
}

void nl_batch_begin(struct nl_buf *b, uint32_t genid)
{
	size_t m = nfnl_msg(b, NFNL_MSG_BATCH_BEGIN, 0, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);

	/* The kernel refuses the whole batch (ERESTART) when the ruleset changed
	 * since the generation it was computed for. */
	if (genid)
		nl_put_be32(b, NFNL_BATCH_GENID, genid);
	nl_msg_end(b, m);
}

void nl_batch_end(struct nl_buf *b)
{
	nl_msg_end(b, nfnl_msg(b, NFNL_MSG_BATCH_END, 0, AF_UNSPEC, NFNL_SUBSYS_NFTABLES));
}

size_t nl_nft_msg(struct nl_buf *b, uint16_t nft_type, uint16_t flags, uint8_t family)
{
	return nfnl_msg(b, (uint16_t)(NFNL_SUBSYS_NFTABLES << 8 | nft_type), flags, family, 0);
}

int nl_open(int protocol, struct err *err)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	struct timeval tv = {.tv_sec = NL_TIMEOUT_SEC};
	int one = 1, fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);

	if (fd < 0)
		return err_sys(err, "netlink socket (protocol %d)", protocol);
	/* Extended acks carry the kernel's reason for a refusal as text. */
	setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err_sys(err, "netlink socket (protocol %d)", protocol);
		close(fd);
		return -1;
	}
	return fd;
}

static int send_buf(int fd, const struct nl_buf *b, const char *what, struct err *err)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	ssize_t n;

	if (b->overflow)
		return err_set(err, EMSGSIZE, "%s: netlink message too large", what);
	do
		n = sendto(fd, b->data, b->len, 0, (struct sockaddr *)&sa, sizeof(sa));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return err_sys(err, "%s: netlink send", what);
	return 0;
}

static ssize_t recv_some(int fd, void *buf, const char *what, struct err *err)
{
	ssize_t n;

	do
		n = recv(fd, buf, NL_RECV_SIZE, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return err_set(err, ETIMEDOUT, "%s: no answer from the kernel in %d s", what,
		               NL_TIMEOUT_SEC);
	if (n < 0)
		return err_sys(err, "%s: netlink receive", what);
	return n;
}

/* The kernel's error (negative errno, 0 for an ack) and its text, if any. */
static int ack_error(const struct nlmsghdr *h, const char **msg)
{
	const struct nlmsgerr *e = NLMSG_DATA(h);
	const struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
	size_t off = sizeof(*e);

	*msg = NULL;
	if (h->nlmsg_len < NLMSG_HDRLEN + sizeof(*e))
		return -EPROTO;
	if (!(h->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - sizeof(e->msg);
	if ((h->nlmsg_flags & NLM_F_ACK_TLVS) && NLMSG_HDRLEN + off <= h->nlmsg_len) {
		nl_parse((const char *)e + off, h->nlmsg_len - NLMSG_HDRLEN - off, tb,
		         NLMSGERR_ATTR_MAX);
		if (tb[NLMSGERR_ATTR_MSG])
			*msg = nl_get_str(tb[NLMSGERR_ATTR_MSG]);
	}
	return e->error;
}

static int kernel_error(struct err *err, int code, const char *what, const char *msg)
{
	if (msg && *msg)
		return err_set(err, -code, "%s: %s (%s)", what, msg, strerror(-code));
	return err_set(err, -code, "%s: %s", what, strerror(-code));
}

/* The next whole message of a received buffer, or NULL at its end. */
static const struct nlmsghdr *next_msg(const char **p, size_t *left)
{
	const struct nlmsghdr *h = (const void *)*p;
	size_t step;

	if (*left < NLMSG_HDRLEN || h->nlmsg_len < NLMSG_HDRLEN || h->nlmsg_len > *left)
		return NULL;
	step = NLMSG_ALIGN(h->nlmsg_len);
	step = step < *left ? step : *left;
	*p += step;
	*left -= step;
	return h;
}

/* Which of the buffer's messages asked for an ack (by index). */
static uint64_t acked_mask(const struct nl_buf *b)
{
	uint64_t mask = 0;

	for (size_t off = 0; off < b->len;) {
		const struct nlmsghdr *h = (const void *)(b->data + off);
		uint32_t i = h->nlmsg_seq - b->first;

		if ((h->nlmsg_flags & NLM_F_ACK) && i < NL_MAX_MSGS)
			mask |= 1ull << i;
		off += NLMSG_ALIGN(h->nlmsg_len);
	}
	return mask;
}

int nl_transact(int fd, struct nl_buf *b, const char *what, int *failed, struct err *err)
{
	char buf[NL_RECV_SIZE] __attribute__((aligned(4)));
	uint64_t want = acked_mask(b);
	int rc = 0;

	if (send_buf(fd, b, what, err) < 0)
		return -1;
	while (want) {
		ssize_t n = recv_some(fd, buf, what, err);
		const char *p = buf;
		const struct nlmsghdr *h;
		size_t left = n > 0 ? (size_t)n : 0;

		if (n < 0)
			return -1;
		while ((h = next_msg(&p, &left))) {
			uint32_t i = h->nlmsg_seq - b->first;
			const char *msg;
			int e;

			if (h->nlmsg_type != NLMSG_ERROR || i >= NL_MAX_MSGS)
				continue;
			e = ack_error(h, &msg);
			if (e && rc == 0) {
				rc = kernel_error(err, e, what, msg);
				if (failed)
					*failed = (int)i;
			}
			/* An error on a message that wanted no ack (a batch's BEGIN:
			 * ERESTART) ends the batch: nothing else comes. */
			if (!(want & (1ull << i)))
				return e ? rc : 0;
			want &= ~(1ull << i);
		}
	}
	return rc;
}

struct query_state {
	uint32_t seq;
	bool dump, done, intr;
	int rc;
};

/* Handles one received message of a query; sets st->done at its end. */
static int query_one(const struct nlmsghdr *h, struct query_state *st, nl_msg_cb cb, void *ctx,
                     const char *what, struct err *err)
{
	const char *msg;
	int e;

	if (h->nlmsg_seq != st->seq)
		return 0;
	if (h->nlmsg_flags & NLM_F_DUMP_INTR)
		st->intr = true;
	if (h->nlmsg_type == NLMSG_DONE) {
		st->done = true;
		return 0;
	}
	if (h->nlmsg_type == NLMSG_ERROR) {
		st->done = true;
		e = ack_error(h, &msg);
		if (e)
			kernel_error(err, e, what, msg);
		return e;
	}
	if (st->rc == 0 && cb)
		st->rc = cb(h, ctx);
	return 0;
}

int nl_query(int fd, struct nl_buf *b, nl_msg_cb cb, void *ctx, const char *what, struct err *err)
{
	char buf[NL_RECV_SIZE] __attribute__((aligned(4)));
	const struct nlmsghdr *req = (const void *)b->data;
	struct query_state st = {.seq = req->nlmsg_seq,
	                         .dump = (req->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP};

	if (send_buf(fd, b, what, err) < 0)
		return -EIO;
	while (!st.done) {
		ssize_t n = recv_some(fd, buf, what, err);
		const char *p = buf;
		const struct nlmsghdr *h;
		size_t left = n > 0 ? (size_t)n : 0;
		int e;

		if (n < 0)
			return -err->code;
		while ((h = next_msg(&p, &left)))
			if ((e = query_one(h, &st, cb, ctx, what, err)) < 0)
				return e;
		/* A GET of one object without an ack ends with its answer. */
		if (!st.dump && !(req->nlmsg_flags & NLM_F_ACK))
			st.done = true;
	}
	if (st.rc < 0)
		return st.rc;
	if (st.intr)
		return -EAGAIN;
	return 0;
}

void nl_parse(const void *data, size_t len, const struct nlattr **tb, int max)
{
	const char *p = data;

	memset(tb, 0, sizeof(*tb) * (size_t)(max + 1));
	while (len >= NLA_HDRLEN) {
		const struct nlattr *a = (const void *)p;
		int type = a->nla_type & NLA_TYPE_MASK;

		if (a->nla_len < NLA_HDRLEN || a->nla_len > len)
			return;
		if (type <= max)
			tb[type] = a;
		if ((size_t)NLA_ALIGN(a->nla_len) >= len)
			return;
		p += NLA_ALIGN(a->nla_len);
		len -= (size_t)NLA_ALIGN(a->nla_len);
	}
}

void nl_parse_msg(const struct nlmsghdr *h, size_t hdr_len, const struct nlattr **tb, int max)
{
	size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(hdr_len);

	if (h->nlmsg_len < off) {
		memset(tb, 0, sizeof(*tb) * (size_t)(max + 1));
		return;
	}
	nl_parse((const char *)h + off, h->nlmsg_len - off, tb, max);
}

uint32_t nl_get_be32(const struct nlattr *a)
{
	uint32_t v = 0;

	if (a && nl_len(a) >= 4)
		memcpy(&v, nl_data(a), 4);
	return ntohl(v);
}

const char *nl_get_str(const struct nlattr *a)
{
	const char *s;
	size_t n;

	if (!a || (n = nl_len(a)) == 0)
		return "";
	s = nl_data(a);
	return memchr(s, '\0', n) ? s : "";
}
