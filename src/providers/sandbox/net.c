/* Networking of an environment (see net.h and docs/SANDBOX.md, "Network"):
 * without internet a private network namespace with only loopback up; with
 * internet, as root, a private namespace whose eth0 is one end of a veth pair
 * made here through rtnetlink, the host end routed and NAT'd by rollout's
 * nf_tables table (nft.c); the host's network or pasta when asked for. */
#include "providers/sandbox/net.h"
#include "providers/sandbox/netlink.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/log.h"
#include "rollout/strbuf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- Modes ---- */

const char *net_mode_name(enum net_mode mode)
{
	static const char *const names[] = {"none", "nat", "host", "pasta"};

	return names[mode];
}

static int choose_pasta(bool root, bool pasta_ok, enum net_mode *out)
{
	if (root) {
		log_warn_once("sandbox-pasta", "sandbox: pasta is for unprivileged users; as root "
		                               "environments get rollout's own NAT network");
		*out = NET_NAT;
	} else if (!pasta_ok) {
		log_warn_once("sandbox-pasta", "sandbox: ROLLOUT_SANDBOX_NETWORK=pasta but pasta "
		                               "is not installed; sharing the host's network");
		*out = NET_HOST;
	} else {
		*out = NET_PASTA;
	}
	return 0;
}

int net_choose(bool allow_internet, bool root, bool pasta_ok, enum net_mode *out, struct err *err)
{
	const char *v = getenv("ROLLOUT_SANDBOX_NETWORK");

	if (!allow_internet) {
		*out = NET_NONE;
		return 0;
	}
	if (!v || !*v || strcmp(v, "auto") == 0) {
		*out = root ? NET_NAT : NET_HOST;
		return 0;
	}
	if (strcmp(v, "pasta") == 0)
		return choose_pasta(root, pasta_ok, out);
	if (strcmp(v, "host") == 0) {
		log_warn_once(
		    "sandbox-host-net",
		    "sandbox: ROLLOUT_SANDBOX_NETWORK=host: environments share the host's "
		    "network (its loopback services, abstract sockets, other trials)");
		*out = NET_HOST;
		return 0;
	}
	if (strcmp(v, "nat") == 0) {
		if (!root)
			return err_set(err, EPERM,
			               "ROLLOUT_SANDBOX_NETWORK=nat needs root (a veth pair and "
			               "nf_tables); as an ordinary user use pasta or host");
		*out = NET_NAT;
		return 0;
	}
	return err_set(err, EINVAL, "ROLLOUT_SANDBOX_NETWORK=%s: expected nat, host or pasta", v);
}

/* ---- The address pool ---- */

int net_pool_parse(const char *s, struct net_pool *p, struct err *err)
{
	char addr[32];
	const char *slash = strchr(s, '/');
	struct in_addr a;
	char *end;
	long prefix;

	if (!slash || (size_t)(slash - s) >= sizeof(addr))
		goto bad;
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = '\0';
	prefix = strtol(slash + 1, &end, 10);
	if (*end || end == slash + 1 || inet_pton(AF_INET, addr, &a) != 1 || prefix < 8 ||
	    prefix > 28)
		goto bad;
	p->base = ntohl(a.s_addr);
	p->prefix = (unsigned)prefix;
	if (p->base & ~(~0u << (32 - p->prefix)))
		return err_set(err, EINVAL, "sandbox subnet %s has host bits set", s);
	return 0;
bad:
	return err_set(err, EINVAL,
	               "sandbox subnet %s: expected an IPv4 prefix A.B.C.D/N with "
	               "8 <= N <= 28",
	               s);
}

int net_pool_get(struct net_pool *p, struct err *err)
{
	const char *v = getenv("ROLLOUT_SANDBOX_SUBNET");

	if (net_pool_parse(v && *v ? v : NET_POOL_DEFAULT, p, err) < 0)
		return err_wrap(err, "ROLLOUT_SANDBOX_SUBNET");
	return 0;
}

void net_link_for_slot(const struct net_pool *p, uint32_t slot, struct net_link *l)
{
	memset(l, 0, sizeof(*l));
	l->slot = slot;
	l->host_addr = p->base + slot * 4 + 1;
	l->env_addr = p->base + slot * 4 + 2;
	/* At most 2^22 slots (a /8): 7 digits after the 8 of the prefix. */
	snprintf(l->host_if, sizeof(l->host_if), NET_IF_PREFIX "%u", (unsigned)(slot & 0x3fffff));
}

/* ---- Namespaces ---- */

int net_loopback_up(void)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = 0;

	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	/* The kernel assigns 127.0.0.1/8 and ::1 when lo goes up. */
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		rc = -errno;
	else {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
			rc = -errno;
	}
	close(fd);
	return rc;
}

int net_new_namespace(void)
{
	int rc, fd;

	if (unshare(CLONE_NEWNET) < 0)
		return -errno;
	if ((rc = net_loopback_up()) < 0)
		return rc;
	fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

/* ---- The veth pair of the NAT mode ---- */

static size_t link_msg(struct nl_buf *b, uint16_t type, uint16_t flags, int index, unsigned ifflags)
{
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC,
	                        .ifi_index = index,
	                        .ifi_flags = ifflags,
	                        .ifi_change = ifflags};

	return nl_msg_start(b, type, flags | NLM_F_ACK, &ifi, sizeof(ifi));
}

/* One queue each way (the default is one per CPU): fewer kernel objects to
 * make and remove per environment, and a veth queue is only a software one. */
static void put_one_queue(struct nl_buf *b)
{
	nl_put_u32(b, IFLA_NUM_TX_QUEUES, 1);
	nl_put_u32(b, IFLA_NUM_RX_QUEUES, 1);
}

/* RTM_NEWLINK of the pair: `name` in our namespace, its peer eth0 in the
 * namespace of ns_fd, both down (a veth end cannot be brought up before its
 * peer is attached: ENOTCONN). Returns 0, -EEXIST (the name is taken:
 * another environment's), or -1 (err). */
static int veth_add(int rt, const char *name, int ns_fd, struct err *err)
{
	struct nl_buf b = {0};
	struct ifinfomsg peer = {.ifi_family = AF_UNSPEC};
	size_t m = link_msg(&b, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0, 0), info, data, p;

	nl_put_str(&b, IFLA_IFNAME, name);
	put_one_queue(&b);
	info = nl_nest_start(&b, IFLA_LINKINFO);
	nl_put_str(&b, IFLA_INFO_KIND, "veth");
	data = nl_nest_start(&b, IFLA_INFO_DATA);
	p = nl_nest_start(&b, VETH_INFO_PEER);
	nl_put_raw(&b, &peer, sizeof(peer));
	nl_put_str(&b, IFLA_IFNAME, "eth0");
	put_one_queue(&b);
	nl_put_u32(&b, IFLA_NET_NS_FD, (uint32_t)ns_fd);
	nl_nest_end(&b, p);
	nl_nest_end(&b, data);
	nl_nest_end(&b, info);
	nl_msg_end(&b, m);
	if (nl_transact(rt, &b, "create a veth pair", NULL, err) < 0) {
		if (err->code == EEXIST) {
			err_clear(err);
			return -EEXIST;
		}
		if (err->code == EOPNOTSUPP || err->code == ENOENT)
			err_wrap(err, "this kernel has no veth driver (CONFIG_VETH)");
		return -1;
	}
	return 0;
}

/* IPv6 stays off the link: no link-local address is generated on either end
 * (addr_gen_mode none), so the environment has no IPv6 route anywhere. */
static void put_no_ipv6(struct nl_buf *b, int index)
{
	size_t m = link_msg(b, RTM_SETLINK, 0, index, 0), spec, inet6;

	spec = nl_nest_start(b, IFLA_AF_SPEC);
	inet6 = nl_nest_start(b, AF_INET6);
	nl_put_u8(b, IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE);
	nl_nest_end(b, inet6);
	nl_nest_end(b, spec);
	nl_msg_end(b, m);
}

static void put_addr(struct nl_buf *b, int index, uint32_t addr)
{
	struct ifaddrmsg ifa = {
	    .ifa_family = AF_INET, .ifa_prefixlen = 30, .ifa_index = (unsigned)index};
	size_t m =
	    nl_msg_start(b, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, &ifa, sizeof(ifa));

	nl_put_be32(b, IFA_LOCAL, addr);
	nl_put_be32(b, IFA_ADDRESS, addr);
	nl_msg_end(b, m);
}

static void put_default_route(struct nl_buf *b, int index, uint32_t gateway)
{
	struct rtmsg rt = {.rtm_family = AF_INET,
	                   .rtm_table = RT_TABLE_MAIN,
	                   .rtm_protocol = RTPROT_STATIC,
	                   .rtm_scope = RT_SCOPE_UNIVERSE,
	                   .rtm_type = RTN_UNICAST};
	size_t m =
	    nl_msg_start(b, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, &rt, sizeof(rt));

	nl_put_be32(b, RTA_GATEWAY, gateway);
	nl_put_u32(b, RTA_OIF, (uint32_t)index);
	nl_msg_end(b, m);
}

/* sock: any socket of the namespace (a netlink socket will do: the kernel's
 * generic interface ioctls serve every family). */
static int ifindex(int sock, const char *name, struct err *err)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(sock, SIOCGIFINDEX, &ifr) < 0)
		return err_sys(err, "interface %s", name);
	return ifr.ifr_ifindex;
}

/* The environment's end, from inside its namespace: no IPv6, its address, up,
 * a default route through the host's end. */
static int configure_env_end(int rt, const struct net_link *l, struct err *err)
{
	struct nl_buf b = {0};
	int index = ifindex(rt, "eth0", err);

	if (index < 0)
		return -1;
	put_no_ipv6(&b, index);
	put_addr(&b, index, l->env_addr);
	nl_msg_end(&b, link_msg(&b, RTM_SETLINK, 0, index, IFF_UP));
	put_default_route(&b, index, l->host_addr);
	return nl_transact(rt, &b, "configure the environment's eth0", NULL, err);
}

/* The host's end: no IPv6, its address, up (the connected route to the
 * environment's /30 comes with the address). */
static int configure_host_end(int rt, const struct net_link *l, struct err *err)
{
	struct nl_buf b = {0};
	int index = ifindex(rt, l->host_if, err);

	if (index < 0)
		return -1;
	put_no_ipv6(&b, index);
	put_addr(&b, index, l->host_addr);
	nl_msg_end(&b, link_msg(&b, RTM_SETLINK, 0, index, IFF_UP));
	return nl_transact(rt, &b, "configure the host's end of the veth pair", NULL, err);
}

/* A random slot to start from: concurrent rollouts rarely try the same names,
 * and a slot freed a moment ago (its conntrack entries may linger) is seldom
 * the next one taken. */
static uint32_t first_slot(uint32_t n)
{
	uint32_t r;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
		r = (uint32_t)getpid() * 2654435761u;
	return r % n;
}

/* Creates the pair under the first free name (the kernel's interface names
 * are unique: a taken name is another environment's slot). */
static int veth_add_free(int rt, int ns_fd, const struct net_pool *pool, struct net_link *l,
                         struct err *err)
{
	uint32_t n = net_pool_slots(pool), start = first_slot(n);

	for (uint32_t i = 0; i < n; i++) {
		int rc;

		net_link_for_slot(pool, (start + i) % n, l);
		rc = veth_add(rt, l->host_if, ns_fd, err);
		if (rc != -EEXIST)
			return rc;
	}
	return err_set(err, ENOSPC, "no free address in the sandbox subnet (%u environments)",
	               (unsigned)n);
}

/* ---- The pool against the host's routes ---- */

struct overlap {
	const struct net_pool *pool;
	char found[96];
};

static bool prefixes_overlap(uint32_t a, unsigned alen, uint32_t b, unsigned blen)
{
	unsigned len = alen < blen ? alen : blen;
	uint32_t mask = len ? ~0u << (32 - len) : 0;

	return ((a ^ b) & mask) == 0;
}

/* A route of the main table into the pool through an interface that is not an
 * environment's: the pool is someone else's network too. */
static int on_route(const struct nlmsghdr *h, void *ctx)
{
	const struct rtmsg *rt = NLMSG_DATA(h);
	const struct nlattr *tb[RTA_MAX + 1];
	struct overlap *o = ctx;
	char name[IF_NAMESIZE] = "?", dst[INET_ADDRSTRLEN];
	uint32_t table, d;

	nl_parse_msg(h, sizeof(*rt), tb, RTA_MAX);
	table = tb[RTA_TABLE] ? *(const uint32_t *)nl_data(tb[RTA_TABLE]) : rt->rtm_table;
	if (table != RT_TABLE_MAIN || rt->rtm_dst_len == 0 || !tb[RTA_DST] || o->found[0])
		return 0;
	d = nl_get_be32(tb[RTA_DST]);
	if (!prefixes_overlap(d, rt->rtm_dst_len, o->pool->base, o->pool->prefix))
		return 0;
	if (tb[RTA_OIF])
		if_indextoname(*(const uint32_t *)nl_data(tb[RTA_OIF]), name);
	if (strncmp(name, NET_IF_PREFIX, sizeof(NET_IF_PREFIX) - 1) == 0)
		return 0;
	inet_ntop(AF_INET, nl_data(tb[RTA_DST]), dst, sizeof(dst));
	snprintf(o->found, sizeof(o->found), "%s/%u dev %s", dst, rt->rtm_dst_len, name);
	return 0;
}

/* Once per process: the host must not already route (part of) the pool
 * elsewhere, or environments could not reach that network and the NAT of the
 * pool would take its traffic. */
static int pool_check_routes(int rt, const struct net_pool *pool, struct err *err)
{
	static bool checked;
	struct rtmsg req = {.rtm_family = AF_INET};
	struct overlap o = {.pool = pool};
	struct nl_buf b = {0};
	char base[INET_ADDRSTRLEN];
	struct in_addr a = {.s_addr = htonl(pool->base)};

	if (__atomic_load_n(&checked, __ATOMIC_ACQUIRE))
		return 0;
	nl_msg_end(&b, nl_msg_start(&b, RTM_GETROUTE, NLM_F_DUMP, &req, sizeof(req)));
	if (nl_query(rt, &b, on_route, &o, "list the host's routes", err) < 0)
		return -1;
	if (o.found[0])
		return err_set(err, EADDRINUSE,
		               "the sandbox subnet %s/%u overlaps the host's route %s: choose "
		               "another with ROLLOUT_SANDBOX_SUBNET",
		               inet_ntop(AF_INET, &a, base, sizeof(base)), pool->prefix, o.found);
	__atomic_store_n(&checked, true, __ATOMIC_RELEASE);
	return 0;
}

void net_prepare(void)
{
	const char *v = getenv("ROLLOUT_SANDBOX_NETWORK");
	struct net_pool pool;
	struct err err = {0};
	_cleanup_close_ int rt = -1, nf = -1;

	if (geteuid() != 0 || (v && *v && strcmp(v, "nat") != 0 && strcmp(v, "auto") != 0) ||
	    net_pool_get(&pool, &err) < 0 || (rt = nl_open(NETLINK_ROUTE, &err)) < 0 ||
	    (nf = nl_open(NETLINK_NETFILTER, &err)) < 0)
		return;
	if (pool_check_routes(rt, &pool, &err) == 0)
		nft_check(nf, &pool);
}

int net_new_nat_namespace(struct net_link *link, struct err *err)
{
	struct net_pool pool;
	/* rt and nf in the host's namespace (opened before the thread leaves it),
	 * rt_ns in the new one. */
	_cleanup_close_ int rt = -1, nf = -1, ns = -1, rt_ns = -1;

	if (net_pool_get(&pool, err) < 0 || (rt = nl_open(NETLINK_ROUTE, err)) < 0 ||
	    (nf = nl_open(NETLINK_NETFILTER, err)) < 0 || pool_check_routes(rt, &pool, err) < 0 ||
	    nft_ensure(nf, &pool, err) < 0)
		return -1;
	if ((ns = net_new_namespace()) < 0)
		return err_set(err, -ns, "new network namespace: %s", strerror(-ns));
	if ((rt_ns = nl_open(NETLINK_ROUTE, err)) < 0 ||
	    veth_add_free(rt, ns, &pool, link, err) < 0 ||
	    configure_env_end(rt_ns, link, err) < 0 || configure_host_end(rt, link, err) < 0)
		return -1;
	return steal_fd(&ns);
}

/* ---- resolv.conf ---- */

static bool nameserver_usable(const char *addr, int *loopback)
{
	struct in_addr a;

	if (inet_pton(AF_INET, addr, &a) != 1)
		return false; /* IPv6 (no route out) or not an address */
	if ((ntohl(a.s_addr) >> 24) == 127 || a.s_addr == 0) {
		if (loopback)
			(*loopback)++;
		return false;
	}
	return true;
}

int net_resolv_filter(const char *text, struct strbuf *out, int *loopback)
{
	_cleanup_free_ char *copy = xstrdup(text);
	int kept = 0;

	for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char key[16], val[64];

		while (isspace((unsigned char)*line))
			line++;
		if (sscanf(line, "%15s %63s", key, val) != 2)
			continue;
		if (strcmp(key, "nameserver") == 0) {
			if (nameserver_usable(val, loopback)) {
				sb_addf(out, "nameserver %s\n", val);
				kept++;
			}
		} else if (strcmp(key, "search") == 0 || strcmp(key, "domain") == 0 ||
		           strcmp(key, "options") == 0) {
			sb_addf(out, "%s\n", line);
		}
	}
	return kept;
}

#define SYSTEMD_UPSTREAM "/run/systemd/resolve/resolv.conf"

static int filter_file(const char *path, struct strbuf *out, int *loopback)
{
	_cleanup_free_ char *text = NULL;
	size_t len;

	if (read_file(path, 1 << 16, &text, &len, NULL) < 0)
		return 0;
	return net_resolv_filter(text, out, loopback);
}

static char *resolv_nat(void)
{
	struct strbuf sb = STRBUF_INIT;
	int loopback = 0;

	sb_adds(&sb, "# rollout sandbox: the host's nameservers\n");
	if (filter_file("/etc/resolv.conf", &sb, &loopback) > 0)
		return sb_detach(&sb);
	sb_reset(&sb);
	sb_adds(&sb, "# rollout sandbox: the upstream nameservers of the host's loopback "
	             "resolver (" SYSTEMD_UPSTREAM ")\n");
	if (loopback > 0 && filter_file(SYSTEMD_UPSTREAM, &sb, NULL) > 0)
		return sb_detach(&sb);
	sb_reset(&sb);
	sb_adds(&sb, "# rollout sandbox: the host has no nameserver an environment can reach\n"
	             "# (/etc/resolv.conf names only loopback or IPv6 ones, and there is no\n"
	             "# " SYSTEMD_UPSTREAM ")\n");
	log_warn_once("sandbox-dns",
	              "sandbox: /etc/resolv.conf has no nameserver environments can reach (only "
	              "loopback or IPv6 ones, and no " SYSTEMD_UPSTREAM "): names will not resolve "
	              "inside environments");
	return sb_detach(&sb);
}

char *net_resolv_conf(enum net_mode mode)
{
	char *text = NULL;
	size_t len;

	switch (mode) {
	case NET_NONE:
		break;
	case NET_NAT:
		return resolv_nat();
	case NET_HOST:
	case NET_PASTA:
		if (read_file("/etc/resolv.conf", 1 << 16, &text, &len, NULL) == 0)
			return text;
		return xstrdup("nameserver 127.0.0.1\n");
	}
	return xstrdup("# rollout sandbox: no network\nnameserver 127.0.0.1\n");
}
