/* A small netlink client for the sandbox's network: rtnetlink (veth pairs,
 * addresses, routes) and nf_tables (rollout's table). Messages are built into a
 * fixed buffer (attributes, nests, nf_tables batches), sent, and answered by
 * acks or walked as dumps. No library: the formats are the kernel's uapi. */
#ifndef ROLLOUT_SANDBOX_NETLINK_H
#define ROLLOUT_SANDBOX_NETLINK_H

#include <linux/netlink.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct err;

#define NL_BUF_SIZE 8192

/* A message (or a batch of them) being built. Writes past the end set
 * overflow instead (nl_send refuses to send it). */
struct nl_buf {
	unsigned char data[NL_BUF_SIZE] __attribute__((aligned(4)));
	size_t len;
	bool overflow;
	uint32_t seq;   /* sequence number of the next message */
	uint32_t first; /* of the first message built */
	int n_acked;    /* messages built with NLM_F_ACK */
};

/* Starts a message of `type` with a family header (ifinfomsg, nfgenmsg...)
 * copied after the netlink header; returns its offset, for nl_msg_end. */
size_t nl_msg_start(struct nl_buf *b, uint16_t type, uint16_t flags, const void *hdr,
                    size_t hdr_len);
void nl_msg_end(struct nl_buf *b, size_t msg);
void nl_put(struct nl_buf *b, uint16_t type, const void *data, size_t len);
/* Bytes that are not an attribute (a family header inside a nest, as veth's
 * VETH_INFO_PEER carries), padded to 4. */
void nl_put_raw(struct nl_buf *b, const void *data, size_t len);
void nl_put_str(struct nl_buf *b, uint16_t type, const char *s);
void nl_put_u8(struct nl_buf *b, uint16_t type, uint8_t v);
void nl_put_u32(struct nl_buf *b, uint16_t type, uint32_t v);
void nl_put_be32(struct nl_buf *b, uint16_t type, uint32_t v);
/* A nested attribute: the offset of its header, for nl_nest_end. */
size_t nl_nest_start(struct nl_buf *b, uint16_t type);
void nl_nest_end(struct nl_buf *b, size_t nest);

/* nf_tables batches: BEGIN (with the generation the batch is valid for, 0 = any)
 * and END around the messages of one transaction. */
void nl_batch_begin(struct nl_buf *b, uint32_t genid);
void nl_batch_end(struct nl_buf *b);
/* A message of nf_tables (subsystem NFNL_SUBSYS_NFTABLES) for `family`. */
size_t nl_nft_msg(struct nl_buf *b, uint16_t nft_type, uint16_t flags, uint8_t family);

/* A netlink socket of `protocol` in the calling thread's network namespace
 * (CLOEXEC, extended acks, a receive timeout so no answer waits forever). */
int nl_open(int protocol, struct err *err);
/* Sends the buffer and waits for the acks of its NLM_F_ACK messages. On the
 * first failure returns -1 with err = "what: kernel message (errno)" and
 * *failed (when not NULL) the index of the failing message among those sent
 * (0 = the first); the errno is err->code. */
int nl_transact(int fd, struct nl_buf *b, const char *what, int *failed, struct err *err);

/* A request whose answer is one message (a GET without NLM_F_DUMP) or a dump:
 * cb is called for each answer message until the end. cb returns < 0 to stop
 * (that value is returned). NLM_F_DUMP_INTR (the set changed during the dump)
 * returns -EAGAIN. Returns 0, or -errno (kernel error, err filled). */
typedef int (*nl_msg_cb)(const struct nlmsghdr *h, void *ctx);
int nl_query(int fd, struct nl_buf *b, nl_msg_cb cb, void *ctx, const char *what, struct err *err);

/* Attributes of a message after its family header of hdr_len bytes, or of a
 * nest: tb[type] for types <= max (others ignored), NULL when absent. */
void nl_parse(const void *data, size_t len, const struct nlattr **tb, int max);
void nl_parse_msg(const struct nlmsghdr *h, size_t hdr_len, const struct nlattr **tb, int max);
static inline const void *nl_data(const struct nlattr *a)
{
	return (const char *)a + NLA_HDRLEN;
}
static inline size_t nl_len(const struct nlattr *a)
{
	return a->nla_len - NLA_HDRLEN;
}
uint32_t nl_get_be32(const struct nlattr *a);
/* The attribute's string when it is NUL-terminated, else "". */
const char *nl_get_str(const struct nlattr *a);

#endif
