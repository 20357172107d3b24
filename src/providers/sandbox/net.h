/* The network of sandbox environments (docs/SANDBOX.md, "Network"): which mode
 * an environment gets, the address pool and per-environment links of the NAT
 * mode, rollout's nf_tables table, and /etc/resolv.conf. */
#ifndef ROLLOUT_SANDBOX_NET_H
#define ROLLOUT_SANDBOX_NET_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

struct err;
struct strbuf;

enum net_mode {
	NET_NONE,  /* allow_internet = false: a namespace with only lo */
	NET_NAT,   /* a namespace with eth0, a veth to the host, NAT'd by rollout's table */
	NET_HOST,  /* the host's namespace (ROLLOUT_SANDBOX_NETWORK=host; no isolation) */
	NET_PASTA, /* rootless: a namespace configured by pasta */
};
/* "none", "nat", "host", "pasta": the names state.json records. */
const char *net_mode_name(enum net_mode mode);
/* The mode of an environment: allow_internet, whether we are root, and
 * ROLLOUT_SANDBOX_NETWORK (nat, host, pasta; unset = nat as root, the host's
 * network otherwise). pasta_ok: pasta is installed. */
int net_choose(bool allow_internet, bool root, bool pasta_ok, enum net_mode *out, struct err *err);

/* The IPv4 subnet the NAT mode's addresses come from: one /30 per environment
 * (network, host side .1, environment .2, broadcast). Host byte order. */
struct net_pool {
	uint32_t base;
	unsigned prefix;
};
#define NET_POOL_DEFAULT "10.200.0.0/16"
/* "A.B.C.D/N" with 8 <= N <= 28 and no host bits set. */
int net_pool_parse(const char *s, struct net_pool *p, struct err *err);
/* ROLLOUT_SANDBOX_SUBNET, else NET_POOL_DEFAULT. */
int net_pool_get(struct net_pool *p, struct err *err);
static inline uint32_t net_pool_slots(const struct net_pool *p)
{
	return 1u << (32 - p->prefix - 2);
}

/* Host-side interfaces of environments are named IF_PREFIX<slot>: the kernel's
 * unique interface names are the allocation (no file, nothing to leak), and
 * rollout's table matches them by that prefix. */
#define NET_IF_PREFIX "rollout-"

/* One environment's link in the NAT mode. */
struct net_link {
	char host_if[IFNAMSIZ];
	uint32_t host_addr, env_addr; /* host byte order, prefix length 30 */
	uint32_t slot;
};
void net_link_for_slot(const struct net_pool *p, uint32_t slot, struct net_link *l);

/* Brings lo up in the current network namespace; returns -errno. */
int net_loopback_up(void);
/* Moves the calling thread into a new network namespace with lo up and returns
 * an fd of it (-errno on failure). For a thread that exits right after. */
int net_new_namespace(void);
/* The same for the NAT mode, as root: rollout's table is checked (installed
 * when missing), then the thread moves into a new namespace whose eth0 is one
 * end of a veth pair; the host end (link->host_if) is routed and NAT'd. The
 * pair disappears with the namespace. Returns the namespace fd or -1 (err). */
int net_new_nat_namespace(struct net_link *link, struct err *err);

/* nft.c: rollout's nf_tables table "inet rollout" (and what a foreign firewall
 * needs to let its traffic pass), checked against the ruleset's generation and
 * installed when missing; net.ipv4.ip_forward enabled. nfnl: a
 * NETLINK_NETFILTER socket of the host's namespace. */
int nft_ensure(int nfnl, const struct net_pool *pool, struct err *err);
/* Read-only: whether everything nft_ensure would install is in place (then
 * the next nft_ensure of this process and its forks costs one round trip).
 * Returns 0 when complete, -1 otherwise (nothing is changed, no error). */
int nft_check(int nfnl, const struct net_pool *pool);
/* For a job's orchestrator, before it forks its workers (provider prepare): as
 * root with the NAT mode possible, check the pool against the routes and the
 * ruleset, read-only, so that the workers' starts only compare the ruleset's
 * generation. Changes nothing on the host. */
void net_prepare(void);

/* /etc/resolv.conf of an environment in this mode (heap). NAT: the host's
 * nameservers that are reachable from it (not loopback, IPv4), or those of
 * systemd-resolved's upstream file when the host only has a loopback stub. */
char *net_resolv_conf(enum net_mode mode);
/* The lines of resolv.conf text an environment with NAT can use (nameserver
 * lines with IPv4 addresses outside 127/8, search, domain, options), appended
 * to out; returns the number of nameservers kept. *loopback counts those
 * dropped for being loopback (may be NULL). */
int net_resolv_filter(const char *text, struct strbuf *out, int *loopback);

#endif
