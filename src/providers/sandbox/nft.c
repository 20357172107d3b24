/* rollout's nf_tables table, spoken over netlink (no nft or iptables binary).
 * One table, "inet rollout", installed once per host (not per environment) and
 * matching the environments' host-side interfaces by name prefix:
 *
 *   prerouting (filter, raw priority): from an environment, a source address
 *       not routed back through the same interface is dropped (no spoofing);
 *   input: from an environment to the host itself only replies to connections
 *       the host opened pass: no host service, on any address, is reachable;
 *   forward: nothing IPv6 leaves an environment; no connection to an address
 *       the host DNATs (published ports); to an environment only replies pass,
 *       so environments cannot reach each other and nobody can reach them;
 *   postrouting (nat): the pool is masqueraded on its way out.
 *
 * Everything else is left to the host. The table is replaced atomically when
 * an older rollout installed an older one. Another firewall's forward chain
 * with a drop policy would drop every forwarded packet whatever this table
 * says (an accept here does not override a drop elsewhere): Docker's iptables
 * FORWARD chain is one, and Docker's documented place for a host's own
 * exceptions is its DOCKER-USER chain, where three rules are kept (see
 * "Docker's FORWARD chain" below). The checks run again only when the ruleset's
 * generation changed; every change is one batch valid only for the generation
 * it was computed from (the kernel refuses it otherwise, and it is redone). */
#include "providers/sandbox/net.h"
#include "providers/sandbox/netlink.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter_ipv4/ip_tables.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TABLE "rollout"
#define TABLE_VERSION 1
#define DOCKER_TABLE "filter"
#define DOCKER_USER "DOCKER-USER"
#define DOCKER_STAGE2 "DOCKER-ISOLATION-STAGE-2"
#define PREFIX_LEN (sizeof(NET_IF_PREFIX) - 1)
#define MAX_TRIES 5

/* ---- Expressions ---- */

struct expr {
	size_t elem, data;
};

static struct expr expr_start(struct nl_buf *b, const char *name)
{
	struct expr e;

	e.elem = nl_nest_start(b, NFTA_LIST_ELEM);
	nl_put_str(b, NFTA_EXPR_NAME, name);
	e.data = nl_nest_start(b, NFTA_EXPR_DATA);
	return e;
}

static void expr_end(struct nl_buf *b, struct expr e)
{
	nl_nest_end(b, e.data);
	nl_nest_end(b, e.elem);
}

static void put_data(struct nl_buf *b, uint16_t type, const void *v, size_t len)
{
	size_t n = nl_nest_start(b, type);

	nl_put(b, NFTA_DATA_VALUE, v, len);
	nl_nest_end(b, n);
}

static void e_meta(struct nl_buf *b, uint32_t key)
{
	struct expr e = expr_start(b, "meta");

	nl_put_be32(b, NFTA_META_DREG, NFT_REG_1);
	nl_put_be32(b, NFTA_META_KEY, key);
	expr_end(b, e);
}

static void e_cmp(struct nl_buf *b, uint32_t op, const void *v, size_t len)
{
	struct expr e = expr_start(b, "cmp");

	nl_put_be32(b, NFTA_CMP_SREG, NFT_REG_1);
	nl_put_be32(b, NFTA_CMP_OP, op);
	put_data(b, NFTA_CMP_DATA, v, len);
	expr_end(b, e);
}

/* reg1 = reg1 & mask (len bytes). */
static void e_and(struct nl_buf *b, const void *mask, size_t len)
{
	static const unsigned char zero[16];
	struct expr e = expr_start(b, "bitwise");

	nl_put_be32(b, NFTA_BITWISE_SREG, NFT_REG_1);
	nl_put_be32(b, NFTA_BITWISE_DREG, NFT_REG_1);
	nl_put_be32(b, NFTA_BITWISE_LEN, (uint32_t)len);
	put_data(b, NFTA_BITWISE_MASK, mask, len);
	put_data(b, NFTA_BITWISE_XOR, zero, len);
	expr_end(b, e);
}

static void e_ct(struct nl_buf *b, uint32_t key)
{
	struct expr e = expr_start(b, "ct");

	nl_put_be32(b, NFTA_CT_DREG, NFT_REG_1);
	nl_put_be32(b, NFTA_CT_KEY, key);
	expr_end(b, e);
}

static void e_verdict(struct nl_buf *b, int code, const char *chain)
{
	struct expr e = expr_start(b, "immediate");
	size_t data, verdict;

	nl_put_be32(b, NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
	data = nl_nest_start(b, NFTA_IMMEDIATE_DATA);
	verdict = nl_nest_start(b, NFTA_DATA_VERDICT);
	nl_put_be32(b, NFTA_VERDICT_CODE, (uint32_t)code);
	if (chain)
		nl_put_str(b, NFTA_VERDICT_CHAIN, chain);
	nl_nest_end(b, verdict);
	nl_nest_end(b, data);
	expr_end(b, e);
}

static void e_counter(struct nl_buf *b)
{
	expr_end(b, expr_start(b, "counter"));
}

/* iifname/oifname "rollout-*": the prefix compared, without a NUL. */
static void m_ifname(struct nl_buf *b, bool out, uint32_t op)
{
	e_meta(b, out ? NFT_META_OIFNAME : NFT_META_IIFNAME);
	e_cmp(b, op, NET_IF_PREFIX, PREFIX_LEN);
}

/* ct state/status & bits != 0 (the kernel's registers are host-endian u32). */
static void m_ct_any(struct nl_buf *b, uint32_t key, uint32_t bits)
{
	uint32_t zero = 0;

	e_ct(b, key);
	e_and(b, &bits, 4);
	e_cmp(b, NFT_CMP_NEQ, &zero, 4);
}

static void m_nfproto(struct nl_buf *b, uint8_t proto)
{
	e_meta(b, NFT_META_NFPROTO);
	e_cmp(b, NFT_CMP_EQ, &proto, 1);
}

/* ---- The table ---- */

struct chain_spec {
	const char *name, *type;
	uint32_t hook;
	int32_t prio;
};

static const struct chain_spec chains[] = {
    {"prerouting", "filter", NF_INET_PRE_ROUTING, -300},
    {"input", "filter", NF_INET_LOCAL_IN, 0},
    {"forward", "filter", NF_INET_FORWARD, 0},
    {"postrouting", "nat", NF_INET_POST_ROUTING, 100},
};

static void table_userdata(const struct net_pool *pool, char *buf, size_t size)
{
	struct in_addr a = {.s_addr = htonl(pool->base)};

	snprintf(buf, size, "rollout-net v%d %s/%u", TABLE_VERSION, inet_ntoa(a), pool->prefix);
}

static void add_table(struct nl_buf *b, int type, const char *userdata)
{
	size_t m =
	    nl_nft_msg(b, (uint16_t)type, NLM_F_ACK | (type == NFT_MSG_NEWTABLE ? NLM_F_CREATE : 0),
	               NFPROTO_INET);

	nl_put_str(b, NFTA_TABLE_NAME, TABLE);
	if (userdata)
		nl_put(b, NFTA_TABLE_USERDATA, userdata, strlen(userdata));
	nl_msg_end(b, m);
}

static void add_chain(struct nl_buf *b, const struct chain_spec *c)
{
	size_t m = nl_nft_msg(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_ACK, NFPROTO_INET);
	size_t hook;

	nl_put_str(b, NFTA_CHAIN_TABLE, TABLE);
	nl_put_str(b, NFTA_CHAIN_NAME, c->name);
	hook = nl_nest_start(b, NFTA_CHAIN_HOOK);
	nl_put_be32(b, NFTA_HOOK_HOOKNUM, c->hook);
	nl_put_be32(b, NFTA_HOOK_PRIORITY, (uint32_t)c->prio);
	nl_nest_end(b, hook);
	nl_put_be32(b, NFTA_CHAIN_POLICY, NF_ACCEPT);
	nl_put_str(b, NFTA_CHAIN_TYPE, c->type);
	nl_msg_end(b, m);
}

/* A rule appended to (or, !append, inserted at the top of) table/chain of
 * family; returns the nest of its expressions, for rule_end. */
struct rule {
	size_t msg, exprs;
};

static struct rule rule_start(struct nl_buf *b, uint8_t family, const char *table,
                              const char *chain, bool append)
{
	struct rule r;

	r.msg = nl_nft_msg(b, NFT_MSG_NEWRULE,
	                   NLM_F_CREATE | NLM_F_ACK | (append ? NLM_F_APPEND : 0), family);
	nl_put_str(b, NFTA_RULE_TABLE, table);
	nl_put_str(b, NFTA_RULE_CHAIN, chain);
	r.exprs = nl_nest_start(b, NFTA_RULE_EXPRESSIONS);
	return r;
}

static void rule_end(struct nl_buf *b, struct rule r)
{
	nl_nest_end(b, r.exprs);
	nl_msg_end(b, r.msg);
}

static struct rule our_rule(struct nl_buf *b, const char *chain)
{
	return rule_start(b, NFPROTO_INET, TABLE, chain, true);
}

/* fib saddr . iif oif == 0: no route back to the source through the interface
 * it came in on (strict reverse path filtering, as rp_filter=1). */
static void add_antispoof(struct nl_buf *b)
{
	struct rule r = our_rule(b, "prerouting");
	struct expr e;
	uint32_t zero = 0;

	m_ifname(b, false, NFT_CMP_EQ);
	e = expr_start(b, "fib");
	nl_put_be32(b, NFTA_FIB_DREG, NFT_REG_1);
	nl_put_be32(b, NFTA_FIB_RESULT, NFT_FIB_RESULT_OIF);
	nl_put_be32(b, NFTA_FIB_FLAGS, NFTA_FIB_F_SADDR | NFTA_FIB_F_IIF);
	expr_end(b, e);
	e_cmp(b, NFT_CMP_EQ, &zero, 4);
	e_verdict(b, NF_DROP, NULL);
	rule_end(b, r);
}

#define CT_REPLIES (NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED))

static void add_input(struct nl_buf *b)
{
	struct rule r = our_rule(b, "input");

	m_ifname(b, false, NFT_CMP_EQ);
	m_ct_any(b, NFT_CT_STATE, CT_REPLIES);
	e_verdict(b, NF_ACCEPT, NULL);
	rule_end(b, r);
	r = our_rule(b, "input");
	m_ifname(b, false, NFT_CMP_EQ);
	e_verdict(b, NF_DROP, NULL);
	rule_end(b, r);
}

static void add_forward(struct nl_buf *b)
{
	struct rule r = our_rule(b, "forward");

	m_ifname(b, false, NFT_CMP_EQ);
	m_nfproto(b, NFPROTO_IPV6);
	e_verdict(b, NF_DROP, NULL);
	rule_end(b, r);
	r = our_rule(b, "forward");
	m_ifname(b, false, NFT_CMP_EQ);
	m_ct_any(b, NFT_CT_STATUS, IPS_DST_NAT);
	e_verdict(b, NF_DROP, NULL);
	rule_end(b, r);
	r = our_rule(b, "forward");
	m_ifname(b, true, NFT_CMP_EQ);
	m_ct_any(b, NFT_CT_STATE, CT_REPLIES);
	e_verdict(b, NF_ACCEPT, NULL);
	rule_end(b, r);
	r = our_rule(b, "forward");
	m_ifname(b, true, NFT_CMP_EQ);
	e_verdict(b, NF_DROP, NULL);
	rule_end(b, r);
}

/* ip saddr POOL oifname != "rollout-*" masquerade */
static void add_masquerade(struct nl_buf *b, const struct net_pool *pool)
{
	struct rule r = our_rule(b, "postrouting");
	uint32_t mask = htonl(pool->prefix ? ~0u << (32 - pool->prefix) : 0);
	uint32_t net = htonl(pool->base);
	struct expr e;

	m_nfproto(b, NFPROTO_IPV4);
	e = expr_start(b, "payload");
	nl_put_be32(b, NFTA_PAYLOAD_DREG, NFT_REG_1);
	nl_put_be32(b, NFTA_PAYLOAD_BASE, NFT_PAYLOAD_NETWORK_HEADER);
	nl_put_be32(b, NFTA_PAYLOAD_OFFSET, 12); /* iphdr.saddr */
	nl_put_be32(b, NFTA_PAYLOAD_LEN, 4);
	expr_end(b, e);
	e_and(b, &mask, 4);
	e_cmp(b, NFT_CMP_EQ, &net, 4);
	m_ifname(b, true, NFT_CMP_NEQ);
	expr_end(b, expr_start(b, "masq"));
	rule_end(b, r);
}

/* The whole table, replacing any older one in the same transaction. */
static void build_table(struct nl_buf *b, const struct net_pool *pool)
{
	char ud[96];

	table_userdata(pool, ud, sizeof(ud));
	add_table(b, NFT_MSG_NEWTABLE, NULL);
	add_table(b, NFT_MSG_DELTABLE, NULL);
	add_table(b, NFT_MSG_NEWTABLE, ud);
	for (size_t i = 0; i < sizeof(chains) / sizeof(chains[0]); i++)
		add_chain(b, &chains[i]);
	add_antispoof(b);
	add_input(b);
	add_forward(b);
	add_masquerade(b, pool);
}

/* ---- What the ruleset holds ---- */

#define MAX_OURS 8

struct ruleset {
	uint32_t gen;
	bool table;            /* ours exists */
	char userdata[96];     /* its userdata ("" when the kernel keeps none) */
	char foreign_drop[96]; /* "family table chain" of another forward chain with policy drop */
	bool docker_user, docker_stage2;
	/* rollout's rules in DOCKER-USER, in order: kind, position in the chain
	 * and handle */
	int n_rules, n_ours;
	int kind[MAX_OURS], pos[MAX_OURS];
	uint64_t handle[MAX_OURS];
};

/* Kinds of rules rollout keeps in DOCKER-USER. */
enum { DU_OTHER, DU_IN_STAGE2, DU_IN_ACCEPT, DU_OUT_ACCEPT };

static int on_gen(const struct nlmsghdr *h, void *ctx)
{
	const struct nlattr *tb[NFTA_GEN_MAX + 1];

	nl_parse_msg(h, sizeof(struct nfgenmsg), tb, NFTA_GEN_MAX);
	if (tb[NFTA_GEN_ID])
		*(uint32_t *)ctx = nl_get_be32(tb[NFTA_GEN_ID]);
	return 0;
}

static int get_gen(int fd, uint32_t *gen, struct err *err)
{
	struct nl_buf b = {0};

	nl_msg_end(&b, nl_nft_msg(&b, NFT_MSG_GETGEN, NLM_F_ACK, AF_UNSPEC));
	*gen = 0;
	if (nl_query(fd, &b, on_gen, gen, "nf_tables: ruleset generation", err) < 0)
		return -1;
	return 0;
}

static int on_table(const struct nlmsghdr *h, void *ctx)
{
	struct ruleset *rs = ctx;
	const struct nlattr *tb[NFTA_TABLE_MAX + 1];

	nl_parse_msg(h, sizeof(struct nfgenmsg), tb, NFTA_TABLE_MAX);
	rs->table = true;
	if (tb[NFTA_TABLE_USERDATA] && nl_len(tb[NFTA_TABLE_USERDATA]) < sizeof(rs->userdata)) {
		memcpy(rs->userdata, nl_data(tb[NFTA_TABLE_USERDATA]),
		       nl_len(tb[NFTA_TABLE_USERDATA]));
		rs->userdata[nl_len(tb[NFTA_TABLE_USERDATA])] = '\0';
	}
	return 0;
}

static int get_table(int fd, struct ruleset *rs, struct err *err)
{
	struct nl_buf b = {0};
	size_t m = nl_nft_msg(&b, NFT_MSG_GETTABLE, NLM_F_ACK, NFPROTO_INET);
	int rc;

	nl_put_str(&b, NFTA_TABLE_NAME, TABLE);
	nl_msg_end(&b, m);
	rc = nl_query(fd, &b, on_table, rs, "nf_tables: table inet " TABLE, err);
	if (rc == -ENOENT) {
		err_clear(err);
		return 0;
	}
	return rc < 0 ? -1 : 0;
}

static const char *family_name(int f)
{
	return f == NFPROTO_IPV4   ? "ip"
	       : f == NFPROTO_IPV6 ? "ip6"
	       : f == NFPROTO_INET ? "inet"
	                           : "?";
}

static int on_chain(const struct nlmsghdr *h, void *ctx)
{
	const struct nfgenmsg *g = NLMSG_DATA(h);
	const struct nlattr *tb[NFTA_CHAIN_MAX + 1], *hk[NFTA_HOOK_MAX + 1];
	struct ruleset *rs = ctx;
	const char *table, *name;
	bool ours;

	nl_parse_msg(h, sizeof(*g), tb, NFTA_CHAIN_MAX);
	table = nl_get_str(tb[NFTA_CHAIN_TABLE]);
	name = nl_get_str(tb[NFTA_CHAIN_NAME]);
	ours = g->nfgen_family == NFPROTO_INET && strcmp(table, TABLE) == 0;
	if (g->nfgen_family == NFPROTO_IPV4 && strcmp(table, DOCKER_TABLE) == 0) {
		rs->docker_user |= strcmp(name, DOCKER_USER) == 0;
		rs->docker_stage2 |= strcmp(name, DOCKER_STAGE2) == 0;
	}
	if (ours || !tb[NFTA_CHAIN_HOOK] || !tb[NFTA_CHAIN_POLICY] ||
	    (g->nfgen_family != NFPROTO_IPV4 && g->nfgen_family != NFPROTO_INET))
		return 0;
	nl_parse(nl_data(tb[NFTA_CHAIN_HOOK]), nl_len(tb[NFTA_CHAIN_HOOK]), hk, NFTA_HOOK_MAX);
	if (nl_get_be32(hk[NFTA_HOOK_HOOKNUM]) == NF_INET_FORWARD &&
	    nl_get_be32(tb[NFTA_CHAIN_POLICY]) == NF_DROP)
		snprintf(rs->foreign_drop, sizeof(rs->foreign_drop), "%s %s %s",
		         family_name(g->nfgen_family), table, name);
	return 0;
}

static int get_chains(int fd, struct ruleset *rs, struct err *err)
{
	struct nl_buf b = {0};

	nl_msg_end(&b, nl_nft_msg(&b, NFT_MSG_GETCHAIN, NLM_F_DUMP, NFPROTO_UNSPEC));
	return nl_query(fd, &b, on_chain, rs, "nf_tables: list chains", err) < 0 ? -1 : 0;
}

/* What one expression of a DOCKER-USER rule says about it being one of ours. */
struct rule_scan {
	uint32_t meta_key;
	bool prefix; /* compares the interface name with NET_IF_PREFIX */
	int verdict;
	char target[32];
};

static void scan_verdict(const struct nlattr *data, struct rule_scan *s)
{
	const struct nlattr *im[NFTA_IMMEDIATE_MAX + 1], *d[NFTA_DATA_MAX + 1],
	    *v[NFTA_VERDICT_MAX + 1];

	nl_parse(nl_data(data), nl_len(data), im, NFTA_IMMEDIATE_MAX);
	if (!im[NFTA_IMMEDIATE_DATA])
		return;
	nl_parse(nl_data(im[NFTA_IMMEDIATE_DATA]), nl_len(im[NFTA_IMMEDIATE_DATA]), d,
	         NFTA_DATA_MAX);
	if (!d[NFTA_DATA_VERDICT])
		return;
	nl_parse(nl_data(d[NFTA_DATA_VERDICT]), nl_len(d[NFTA_DATA_VERDICT]), v, NFTA_VERDICT_MAX);
	s->verdict = (int)nl_get_be32(v[NFTA_VERDICT_CODE]);
	snprintf(s->target, sizeof(s->target), "%s", nl_get_str(v[NFTA_VERDICT_CHAIN]));
}

static void scan_expr(const struct nlattr *elem, struct rule_scan *s)
{
	const struct nlattr *ex[NFTA_EXPR_MAX + 1], *a[NFTA_CMP_MAX + 1], *d[NFTA_DATA_MAX + 1];
	const char *name;

	nl_parse(nl_data(elem), nl_len(elem), ex, NFTA_EXPR_MAX);
	name = nl_get_str(ex[NFTA_EXPR_NAME]);
	if (!ex[NFTA_EXPR_DATA])
		return;
	if (strcmp(name, "meta") == 0) {
		nl_parse(nl_data(ex[NFTA_EXPR_DATA]), nl_len(ex[NFTA_EXPR_DATA]), a, NFTA_CMP_MAX);
		s->meta_key = nl_get_be32(a[NFTA_META_KEY]);
	} else if (strcmp(name, "cmp") == 0) {
		nl_parse(nl_data(ex[NFTA_EXPR_DATA]), nl_len(ex[NFTA_EXPR_DATA]), a, NFTA_CMP_MAX);
		if (!a[NFTA_CMP_DATA] || nl_get_be32(a[NFTA_CMP_OP]) != NFT_CMP_EQ)
			return;
		nl_parse(nl_data(a[NFTA_CMP_DATA]), nl_len(a[NFTA_CMP_DATA]), d, NFTA_DATA_MAX);
		s->prefix |= d[NFTA_DATA_VALUE] && nl_len(d[NFTA_DATA_VALUE]) == PREFIX_LEN &&
		             memcmp(nl_data(d[NFTA_DATA_VALUE]), NET_IF_PREFIX, PREFIX_LEN) == 0;
	} else if (strcmp(name, "immediate") == 0) {
		scan_verdict(ex[NFTA_EXPR_DATA], s);
	}
}

static int rule_kind(const struct rule_scan *s)
{
	if (!s->prefix)
		return -1; /* not ours */
	if (s->meta_key == NFT_META_IIFNAME && s->verdict == NFT_JUMP &&
	    strcmp(s->target, DOCKER_STAGE2) == 0)
		return DU_IN_STAGE2;
	if (s->meta_key == NFT_META_IIFNAME && s->verdict == NF_ACCEPT)
		return DU_IN_ACCEPT;
	if (s->meta_key == NFT_META_OIFNAME && s->verdict == NF_ACCEPT)
		return DU_OUT_ACCEPT;
	return DU_OTHER;
}

static int on_rule(const struct nlmsghdr *h, void *ctx)
{
	const struct nlattr *tb[NFTA_RULE_MAX + 1];
	struct ruleset *rs = ctx;
	struct rule_scan s = {0};
	const char *p;
	size_t left;
	uint64_t handle = 0;
	int kind;

	nl_parse_msg(h, sizeof(struct nfgenmsg), tb, NFTA_RULE_MAX);
	if (!tb[NFTA_RULE_EXPRESSIONS] || !tb[NFTA_RULE_HANDLE])
		return 0;
	p = nl_data(tb[NFTA_RULE_EXPRESSIONS]);
	left = nl_len(tb[NFTA_RULE_EXPRESSIONS]);
	while (left >= NLA_HDRLEN) {
		const struct nlattr *a = (const void *)p;

		if (a->nla_len < NLA_HDRLEN || a->nla_len > left)
			break;
		scan_expr(a, &s);
		if ((size_t)NLA_ALIGN(a->nla_len) >= left)
			break;
		p += NLA_ALIGN(a->nla_len);
		left -= (size_t)NLA_ALIGN(a->nla_len);
	}
	rs->n_rules++;
	if ((kind = rule_kind(&s)) < 0 || rs->n_ours >= MAX_OURS)
		return 0;
	memcpy(&handle, nl_data(tb[NFTA_RULE_HANDLE]), 8);
	rs->kind[rs->n_ours] = kind;
	rs->pos[rs->n_ours] = rs->n_rules - 1;
	rs->handle[rs->n_ours++] = handle; /* big-endian, as the kernel wants it back */
	return 0;
}

static int get_docker_rules(int fd, struct ruleset *rs, struct err *err)
{
	struct nl_buf b = {0};
	size_t m = nl_nft_msg(&b, NFT_MSG_GETRULE, NLM_F_DUMP, NFPROTO_IPV4);

	nl_put_str(&b, NFTA_RULE_TABLE, DOCKER_TABLE);
	nl_put_str(&b, NFTA_RULE_CHAIN, DOCKER_USER);
	nl_msg_end(&b, m);
	return nl_query(fd, &b, on_rule, rs, "nf_tables: list ip filter " DOCKER_USER, err) < 0 ? -1
	                                                                                        : 0;
}

static int read_ruleset(int fd, struct ruleset *rs, struct err *err)
{
	memset(rs, 0, sizeof(*rs));
	if (get_gen(fd, &rs->gen, err) < 0 || get_table(fd, rs, err) < 0 ||
	    get_chains(fd, rs, err) < 0)
		return -1;
	if (rs->docker_user && get_docker_rules(fd, rs, err) < 0)
		return -1;
	return 0;
}

/* ---- Docker's FORWARD chain ----
 * Docker sets its iptables FORWARD policy to drop. In DOCKER-USER, which
 * Docker jumps to first and never changes, rollout keeps (iptables-nft's own
 * encoding, so iptables lists them as -i rollout-+ ... like its own):
 *   -i rollout-+ -j DOCKER-ISOLATION-STAGE-2  Docker's bridges stay out of
 *                                             reach (that chain drops what
 *                                             goes to any of them)
 *   -i rollout-+ -j ACCEPT                    the rest passes Docker's chain,
 *   -o rollout-+ -j ACCEPT                    and so do the replies;
 * rollout's own table still decides (its drops are final). */

static int docker_wanted(const struct ruleset *rs, int *want)
{
	int n = 0;

	if (rs->docker_stage2)
		want[n++] = DU_IN_STAGE2;
	want[n++] = DU_IN_ACCEPT;
	want[n++] = DU_OUT_ACCEPT;
	return n;
}

/* Ours, in order, first in the chain. Also with an accept policy: Docker's
 * chain then lets anything forwarded reach its bridges, and the jump keeps
 * them out of reach. */
static bool docker_rules_ok(const struct ruleset *rs)
{
	int want[3], n = docker_wanted(rs, want);

	if (!rs->docker_user)
		return true;
	if (rs->n_ours != n)
		return false;
	for (int i = 0; i < n; i++)
		if (rs->kind[i] != want[i] || rs->pos[i] != i)
			return false;
	return true;
}

static void add_docker_rule(struct nl_buf *b, int kind)
{
	struct rule r = rule_start(b, NFPROTO_IPV4, DOCKER_TABLE, DOCKER_USER, false);

	m_ifname(b, kind == DU_OUT_ACCEPT, NFT_CMP_EQ);
	e_counter(b);
	if (kind == DU_IN_STAGE2)
		e_verdict(b, NFT_JUMP, DOCKER_STAGE2);
	else
		e_verdict(b, NF_ACCEPT, NULL);
	rule_end(b, r);
}

/* Ours removed, then the wanted ones inserted at the top, last first. */
static void build_docker_rules(struct nl_buf *b, const struct ruleset *rs)
{
	int want[3], n = docker_wanted(rs, want);

	for (int i = 0; i < rs->n_ours; i++) {
		size_t m = nl_nft_msg(b, NFT_MSG_DELRULE, NLM_F_ACK, NFPROTO_IPV4);

		nl_put_str(b, NFTA_RULE_TABLE, DOCKER_TABLE);
		nl_put_str(b, NFTA_RULE_CHAIN, DOCKER_USER);
		nl_put(b, NFTA_RULE_HANDLE, &rs->handle[i], 8);
		nl_msg_end(b, m);
	}
	for (int i = n - 1; i >= 0; i--)
		add_docker_rule(b, want[i]);
}

/* ---- Putting it together ---- */

enum table_state { TABLE_OK, TABLE_MISSING, TABLE_OUTDATED };

/* Ours and current, missing, older (to replace), or -1: another subnet's or a
 * newer rollout's, which this one must not replace. */
static int table_state(const struct ruleset *rs, const char *ud, struct err *err)
{
	int v = 0;

	if (!rs->table)
		return TABLE_MISSING;
	/* Kernels older than 5.13 keep no table userdata: taken as ours. */
	if (!rs->userdata[0] || strcmp(rs->userdata, ud) == 0)
		return TABLE_OK;
	if (sscanf(rs->userdata, "rollout-net v%d", &v) == 1 && v < TABLE_VERSION)
		return TABLE_OUTDATED;
	if (v == TABLE_VERSION)
		return err_set(err, EEXIST,
		               "nf_tables: table inet " TABLE " was installed for another subnet "
		               "(\"%s\"): every rollout on a host must use the same "
		               "ROLLOUT_SANDBOX_SUBNET",
		               rs->userdata);
	return err_set(err, EEXIST,
	               "nf_tables: table inet " TABLE " was installed by a newer rollout (\"%s\")",
	               rs->userdata);
}

static int enable_forwarding(struct err *err)
{
	char c = '0';
	int fd = open("/proc/sys/net/ipv4/ip_forward", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return err_sys(err, "open /proc/sys/net/ipv4/ip_forward");
	if (read(fd, &c, 1) == 1 && c == '1') {
		close(fd);
		return 0;
	}
	if (pwrite(fd, "1", 1, 0) != 1) {
		err_sys(err, "enable net.ipv4.ip_forward");
		close(fd);
		return -1;
	}
	close(fd);
	log_info("sandbox: enabled net.ipv4.ip_forward (environments with internet are "
	         "routed and NAT'd by the host, as Docker's are)");
	return 0;
}

static int install_error(struct err *err)
{
	if (err->code == ENOENT || err->code == EOPNOTSUPP || err->code == EAFNOSUPPORT)
		return err_wrap(err, "this kernel lacks part of nf_tables that rollout's NAT "
		                     "needs (CONFIG_NF_TABLES_INET, NFT_NAT, NFT_MASQ, NFT_CT, "
		                     "NFT_FIB_INET)");
	return -1;
}

/* One pass: read the ruleset, change what is missing in one batch valid for
 * what was read. Returns 1 when the batch was refused because the ruleset
 * changed meanwhile (try again), 0 when nothing is missing (*gen: the
 * generation checked), -1 on error. */
static int ensure_once(int fd, const struct net_pool *pool, struct ruleset *rs, struct err *err)
{
	_cleanup_free_ struct nl_buf *b = NULL;
	char ud[96];
	int table;
	bool docker;

	table_userdata(pool, ud, sizeof(ud));
	if (read_ruleset(fd, rs, err) < 0 || (table = table_state(rs, ud, err)) < 0)
		return -1;
	docker = docker_rules_ok(rs);
	if (table == TABLE_OK && docker)
		return 0;
	b = xcalloc(1, sizeof(*b));
	nl_batch_begin(b, rs->gen);
	if (table != TABLE_OK)
		build_table(b, pool);
	if (!docker)
		build_docker_rules(b, rs);
	nl_batch_end(b);
	if (nl_transact(fd, b, "nf_tables: install rollout's rules", NULL, err) < 0) {
		if (err->code == ERESTART || err->code == EAGAIN) {
			err_clear(err);
			return 1;
		}
		return install_error(err);
	}
	if (table != TABLE_OK)
		log_info("sandbox: %s nf_tables table inet " TABLE " (%s)",
		         table == TABLE_OUTDATED ? "replaced the outdated" : "installed", ud);
	if (!docker)
		log_info("sandbox: added rules for " NET_IF_PREFIX "* interfaces to Docker's "
		         "DOCKER-USER chain (its FORWARD chain: %s)",
		         rs->foreign_drop[0] ? "policy drop" : "policy accept");
	return 1; /* read again: the next pass must find everything in place */
}

/* iptables-legacy is invisible to nf_tables. Its filter table, if this
 * namespace has one (/proc/net/ip_tables_names: asking the kernel for a table
 * that is not there would load and create it), is read for the policy of its
 * FORWARD chain: the verdict of the rule at the chain's underflow. */
static bool legacy_forward_drops(void)
{
	_cleanup_free_ char *names = NULL;
	_cleanup_free_ struct ipt_get_entries *entries = NULL;
	_cleanup_close_ int fd = -1;
	struct ipt_getinfo info = {.name = "filter"};
	socklen_t len = sizeof(info);
	const struct ipt_entry *e;
	const struct xt_standard_target *t;
	size_t size;

	if (read_file("/proc/net/ip_tables_names", 4096, &names, &size, NULL) < 0 ||
	    !strstr(names, "filter") ||
	    (fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW)) < 0 ||
	    getsockopt(fd, IPPROTO_IP, IPT_SO_GET_INFO, &info, &len) < 0 ||
	    !(info.valid_hooks & (1u << NF_INET_FORWARD)))
		return false;
	entries = xcalloc(1, sizeof(*entries) + info.size);
	snprintf(entries->name, sizeof(entries->name), "filter");
	entries->size = info.size;
	len = (socklen_t)(sizeof(*entries) + info.size);
	if (getsockopt(fd, IPPROTO_IP, IPT_SO_GET_ENTRIES, entries, &len) < 0 ||
	    info.underflow[NF_INET_FORWARD] + sizeof(*e) > info.size)
		return false;
	e = (const void *)((const char *)entries->entrytable + info.underflow[NF_INET_FORWARD]);
	if (info.underflow[NF_INET_FORWARD] + e->target_offset + sizeof(*t) > info.size)
		return false;
	t = (const void *)((const char *)e + e->target_offset);
	return t->verdict == -NF_DROP - 1;
}

/* A foreign forward chain with a drop policy that rollout cannot open. */
static void warn_foreign_drop(const struct ruleset *rs)
{
	if (legacy_forward_drops())
		log_warn_once("sandbox-legacy-drop",
		              "sandbox: the FORWARD chain of iptables-legacy has policy DROP: "
		              "environments' traffic is dropped there unless it is accepted "
		              "(iptables-legacy -I FORWARD -i " NET_IF_PREFIX "+ -j ACCEPT, and "
		              "the same with -o; rollout's own table still filters it)");
	if (!rs->foreign_drop[0] || rs->docker_user)
		return;
	log_warn_once("sandbox-foreign-drop",
	              "sandbox: the forward chain %s has policy drop: environments' traffic "
	              "is dropped there unless it accepts iifname \"" NET_IF_PREFIX "*\" and "
	              "oifname \"" NET_IF_PREFIX "*\" (rollout's own table still filters it)",
	              rs->foreign_drop);
}

/* The generation (and pool) last found complete, in this process and, when
 * the orchestrator of a job checked before forking, in its workers. */
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t checked_gen;
static struct net_pool checked_pool;

static bool cache_hit(uint32_t gen, const struct net_pool *pool)
{
	bool hit;

	pthread_mutex_lock(&cache_lock);
	hit = gen && gen == checked_gen && checked_pool.base == pool->base &&
	      checked_pool.prefix == pool->prefix;
	pthread_mutex_unlock(&cache_lock);
	return hit;
}

static void cache_set(uint32_t gen, const struct net_pool *pool)
{
	pthread_mutex_lock(&cache_lock);
	checked_gen = gen;
	checked_pool = *pool;
	pthread_mutex_unlock(&cache_lock);
}

static bool forwarding_enabled(void)
{
	_cleanup_free_ char *v = NULL;
	size_t len;

	return read_file("/proc/sys/net/ipv4/ip_forward", 16, &v, &len, NULL) == 0 && v[0] == '1';
}

int nft_check(int fd, const struct net_pool *pool)
{
	struct ruleset rs;
	struct err err = {0};
	char ud[96];

	table_userdata(pool, ud, sizeof(ud));
	if (read_ruleset(fd, &rs, &err) < 0)
		return -1;
	warn_foreign_drop(&rs);
	if (table_state(&rs, ud, &err) != TABLE_OK || !docker_rules_ok(&rs) ||
	    !forwarding_enabled())
		return -1;
	cache_set(rs.gen, pool);
	return 0;
}

int nft_ensure(int fd, const struct net_pool *pool, struct err *err)
{
	struct ruleset rs;
	uint32_t gen;
	int rc = 1;

	/* The common case: nothing changed since the last check. */
	if (get_gen(fd, &gen, err) < 0)
		return err_wrap(err, "nf_tables is not usable (CONFIG_NF_TABLES)");
	if (cache_hit(gen, pool))
		return 0;
	if (enable_forwarding(err) < 0)
		return -1;
	for (int i = 0; i < MAX_TRIES && rc == 1; i++)
		rc = ensure_once(fd, pool, &rs, err);
	if (rc == 1)
		return err_set(err, EBUSY,
		               "nf_tables: the ruleset kept changing while rollout "
		               "installed its table; try again");
	if (rc < 0)
		return -1;
	warn_foreign_drop(&rs);
	cache_set(rs.gen, pool);
	return 0;
}
