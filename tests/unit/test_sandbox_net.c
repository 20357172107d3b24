/* Unit tests for the sandbox's network pieces that need no root: the address
 * pool and per-environment links (net.c), the choice of mode, the
 * resolv.conf an environment with NAT gets, and the netlink message builder and
 * parser (netlink.c), including attributes cut short. */
#include "harness.h"
#include "providers/sandbox/net.h"
#include "providers/sandbox/netlink.h"
#include "rollout/err.h"
#include "rollout/strbuf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *ip(uint32_t host_order, char *buf)
{
	struct in_addr a = {.s_addr = htonl(host_order)};

	return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

TEST(pool_parse_accepts_prefixes_and_refuses_the_rest)
{
	static const char *const bad[] = {"10.200.0.1/16", "10.0.0.0/7", "10.0.0.0/29",
	                                  "10.0.0.0",      "10.0.0.0/",  "10.0.0.0/x",
	                                  "banana/16",     "::1/64",     "10.0.0.0/16x"};
	struct net_pool p;
	struct err err = {0};

	REQUIRE(net_pool_parse(NET_POOL_DEFAULT, &p, &err) == 0);
	CHECK_INT(p.base, 0x0ac80000);
	CHECK_INT(p.prefix, 16);
	CHECK_INT(net_pool_slots(&p), 16384);
	REQUIRE(net_pool_parse("192.168.64.0/28", &p, &err) == 0);
	CHECK_INT(net_pool_slots(&p), 4);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err_clear(&err);
		CHECK(net_pool_parse(bad[i], &p, &err) < 0);
		CHECK_INT(err.code, EINVAL);
	}
}

TEST(links_are_slash_30s_named_by_their_slot)
{
	struct net_pool p = {.base = 0x0ac80000, .prefix = 16};
	struct net_link l;
	char a[INET_ADDRSTRLEN];

	net_link_for_slot(&p, 0, &l);
	CHECK_STR(l.host_if, "rollout-0");
	CHECK_STR(ip(l.host_addr, a), "10.200.0.1");
	CHECK_STR(ip(l.env_addr, a), "10.200.0.2");
	net_link_for_slot(&p, net_pool_slots(&p) - 1, &l);
	CHECK_STR(l.host_if, "rollout-16383");
	CHECK_STR(ip(l.host_addr, a), "10.200.255.253");
	CHECK_STR(ip(l.env_addr, a), "10.200.255.254");
	/* The largest pool still names fit IFNAMSIZ. */
	p = (struct net_pool){.base = 0x0a000000, .prefix = 8};
	net_link_for_slot(&p, net_pool_slots(&p) - 1, &l);
	CHECK_STR(l.host_if, "rollout-4194303");
}

TEST(mode_follows_internet_root_and_the_variable)
{
	struct err err = {0};
	enum net_mode m;

	unsetenv("ROLLOUT_SANDBOX_NETWORK");
	REQUIRE(net_choose(false, true, false, &m, &err) == 0);
	CHECK_STR(net_mode_name(m), "none");
	REQUIRE(net_choose(true, true, false, &m, &err) == 0);
	CHECK_STR(net_mode_name(m), "nat");
	REQUIRE(net_choose(true, false, false, &m, &err) == 0);
	CHECK_STR(net_mode_name(m), "host");
	setenv("ROLLOUT_SANDBOX_NETWORK", "host", 1);
	REQUIRE(net_choose(true, true, false, &m, &err) == 0);
	CHECK_STR(net_mode_name(m), "host");
	REQUIRE(net_choose(false, true, false, &m, &err) == 0);
	CHECK_STR(net_mode_name(m), "none"); /* no internet stays no internet */
	setenv("ROLLOUT_SANDBOX_NETWORK", "pasta", 1);
	REQUIRE(net_choose(true, false, true, &m, &err) == 0);
	CHECK_STR(net_mode_name(m), "pasta");
	REQUIRE(net_choose(true, true, true, &m, &err) == 0);
	CHECK_STR(net_mode_name(m), "nat"); /* pasta does not run as root */
	setenv("ROLLOUT_SANDBOX_NETWORK", "nat", 1);
	CHECK(net_choose(true, false, false, &m, &err) < 0);
	CHECK_CONTAINS(err.msg, "needs root");
	setenv("ROLLOUT_SANDBOX_NETWORK", "bridge", 1);
	CHECK(net_choose(true, true, false, &m, &err) < 0);
	CHECK_CONTAINS(err.msg, "expected nat, host or pasta");
	unsetenv("ROLLOUT_SANDBOX_NETWORK");
}

TEST(resolv_conf_keeps_what_an_environment_can_reach)
{
	const char *host = "# generated\n"
	                   "nameserver 127.0.0.53\n"
	                   "nameserver ::1\n"
	                   "  nameserver 10.255.255.53\n"
	                   "nameserver 2001:db8::53\n"
	                   "nameserver 0.0.0.0\n"
	                   "nameserver 127.1.2.3\n"
	                   "nameserver 192.0.2.53 # trailing\n"
	                   "search corp.example\n"
	                   "options edns0 trust-ad\n"
	                   "sortlist 10.0.0.0\n"
	                   "nameserver\n";
	struct strbuf sb = STRBUF_INIT;
	int loopback = 0;

	CHECK_INT(net_resolv_filter(host, &sb, &loopback), 2);
	CHECK_STR(sb.buf, "nameserver 10.255.255.53\n"
	                  "nameserver 192.0.2.53\n"
	                  "search corp.example\n"
	                  "options edns0 trust-ad\n");
	CHECK_INT(loopback, 3);
	sb_reset(&sb);
	loopback = 0;
	CHECK_INT(net_resolv_filter("nameserver 127.0.0.53\noptions edns0\n", &sb, &loopback), 0);
	CHECK_INT(loopback, 1);
	sb_release(&sb);
}

TEST(netlink_messages_nest_and_parse_back)
{
	struct nl_buf b = {0};
	const struct nlattr *tb[8], *in[8];
	const struct nlmsghdr *h;
	uint32_t v = 7;
	size_t m, n;

	m = nl_msg_start(&b, 16, NLM_F_ACK, &v, sizeof(v));
	nl_put_str(&b, 1, "eth0");
	n = nl_nest_start(&b, 2);
	nl_put_be32(&b, 1, 0x01020304);
	nl_put_u8(&b, 3, 9);
	nl_nest_end(&b, n);
	nl_msg_end(&b, m);
	REQUIRE(!b.overflow);
	h = (const void *)b.data;
	CHECK_INT(h->nlmsg_len, b.len);
	CHECK_INT(h->nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK);
	CHECK_INT(b.n_acked, 1);
	nl_parse_msg(h, sizeof(v), tb, 7);
	REQUIRE(tb[1] && tb[2] && !tb[3]);
	CHECK_STR(nl_get_str(tb[1]), "eth0");
	CHECK(tb[2]->nla_type & NLA_F_NESTED);
	nl_parse(nl_data(tb[2]), nl_len(tb[2]), in, 7);
	REQUIRE(in[1] && in[3]);
	CHECK_INT(nl_get_be32(in[1]), 0x01020304);
	CHECK_INT(*(const uint8_t *)nl_data(in[3]), 9);
}

TEST(netlink_parse_stops_at_a_cut_attribute)
{
	struct nl_buf b = {0};
	const struct nlattr *tb[4];

	nl_put_str(&b, 1, "first");
	nl_put_str(&b, 2, "second-attribute");
	/* The second attribute claims more bytes than there are. */
	nl_parse(b.data, b.len - 4, tb, 3);
	CHECK(tb[1] != NULL);
	CHECK(tb[2] == NULL);
	/* A string without its NUL reads as empty. */
	nl_put(&b, 3, "abc", 3);
	nl_parse(b.data, b.len, tb, 3);
	CHECK_STR(nl_get_str(tb[3]), "");
	CHECK_INT(nl_get_be32(tb[3]), 0);
}

TEST(netlink_buffer_overflow_is_flagged_not_written)
{
	struct nl_buf b = {0};
	char big[1024];

	memset(big, 'x', sizeof(big));
	for (int i = 0; i < 16; i++)
		nl_put(&b, 1, big, sizeof(big));
	CHECK(b.overflow);
	CHECK(b.len <= sizeof(b.data));
}
