/* A static network probe for tests/integration/test_network.sh, copied into
 * environments (busybox has no UDP client, no unix socket client and no
 * packet sniffer). Every wait has a deadline; exit 0 = the thing happened.
 *   net_probe sniff MARKER MS               a packet socket (every interface):
 *                                           "seen" once a packet holds MARKER
 *   net_probe tcp-serve ADDR PORT TEXT      serve TEXT to each connection
 *   net_probe abstract-listen NAME          serve "abstract-secret" on @NAME
 *   net_probe abstract-connect NAME MS      connect to @NAME, print its answer
 *   net_probe udp-echo ADDR PORT            answer each datagram with "echo:DATA
 *                                           from SOURCE-ADDRESS", and log it as
 *                                           "got DATA from SOURCE-ADDRESS"
 *   net_probe udp-ask ADDR PORT MSG MS      send MSG until an answer comes
 *   net_probe udp-send ADDR PORT MSG MS     send MSG every 10 ms for MS
 *   net_probe spoof SRC DST PORT MSG MS     the same from a raw socket, with any
 *                                           source address (CAP_NET_RAW)
 * Servers print "ready" once they can be reached. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void ready(void)
{
	printf("ready\n");
	fflush(stdout);
}

static int fail(const char *what)
{
	printf("%s: %s\n", what, strerror(errno));
	return 1;
}

static int in_addr(const char *addr, const char *port, struct sockaddr_in *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((unsigned short)atoi(port));
	return inet_pton(AF_INET, addr, &sa->sin_addr) == 1 ? 0 : -1;
}

/* Waits up to the deadline for fd to be readable: 1, or 0 when it passed. */
static int wait_readable(int fd, double deadline)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	double left = deadline - now_ms();

	if (left <= 0)
		return 0;
	return poll(&p, 1, (int)left + 1) > 0;
}

static int sniff(const char *marker, int ms)
{
	char buf[65536];
	double deadline = now_ms() + ms;
	long packets = 0;
	int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));

	if (fd < 0)
		return fail("packet socket");
	ready();
	while (wait_readable(fd, deadline)) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0)
			continue;
		packets++;
		if (memmem(buf, (size_t)n, marker, strlen(marker))) {
			printf("seen after %ld packets\n", packets);
			return 0;
		}
	}
	printf("not seen in %ld packets\n", packets);
	return 1;
}

static int serve(int fd, const char *text)
{
	if (listen(fd, 16) < 0)
		return fail("listen");
	ready();
	for (;;) {
		int c = accept(fd, NULL, NULL);

		if (c < 0)
			continue;
		if (write(c, text, strlen(text)) < 0 || write(c, "\n", 1) < 0)
			perror("write");
		close(c);
	}
}

static int tcp_serve(const char *addr, const char *port, const char *text)
{
	struct sockaddr_in sa;
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || in_addr(addr, port, &sa) < 0)
		return fail("tcp socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return fail("bind");
	return serve(fd, text);
}

static socklen_t abstract_addr(const char *name, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, "%s", name);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
}

static int abstract_listen(const char *name)
{
	struct sockaddr_un sa;
	socklen_t len = abstract_addr(name, &sa);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, len) < 0)
		return fail("abstract socket");
	return serve(fd, "abstract-secret");
}

static int abstract_connect(const char *name, int ms)
{
	struct sockaddr_un sa;
	socklen_t len = abstract_addr(name, &sa);
	char buf[64];
	ssize_t n;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, len) < 0)
		return fail("connect");
	if (!wait_readable(fd, now_ms() + ms) || (n = read(fd, buf, sizeof(buf) - 1)) <= 0)
		return fail("read");
	buf[n] = '\0';
	printf("%s", buf);
	return 0;
}

static int udp_socket(const char *addr, const char *port, struct sockaddr_in *sa, int do_bind)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0 || in_addr(addr, port, sa) < 0)
		return -1;
	if (do_bind && bind(fd, (struct sockaddr *)sa, sizeof(*sa)) < 0)
		return -1;
	return fd;
}

static int udp_echo(const char *addr, const char *port)
{
	struct sockaddr_in sa, from;
	char buf[2048], out[2100], src[INET_ADDRSTRLEN];
	int fd = udp_socket(addr, port, &sa, 1);

	if (fd < 0)
		return fail("udp socket");
	ready();
	for (;;) {
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&from, &fl);
		int len;

		if (n < 0)
			continue;
		buf[n] = '\0';
		inet_ntop(AF_INET, &from.sin_addr, src, sizeof(src));
		printf("got %s from %s\n", buf, src);
		fflush(stdout);
		len = snprintf(out, sizeof(out), "echo:%s from %s", buf, src);
		sendto(fd, out, (size_t)len, 0, (struct sockaddr *)&from, fl);
	}
}

static int udp_ask(const char *addr, const char *port, const char *msg, int ms)
{
	struct sockaddr_in sa;
	double deadline = now_ms() + ms;
	char buf[2048];
	int fd = udp_socket(addr, port, &sa, 0);

	if (fd < 0)
		return fail("udp socket");
	while (now_ms() < deadline) {
		double next = now_ms() + 200;

		sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&sa, sizeof(sa));
		if (wait_readable(fd, next < deadline ? next : deadline)) {
			ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);

			if (n > 0) {
				buf[n] = '\0';
				printf("%s\n", buf);
				return 0;
			}
		}
	}
	printf("no answer in %d ms\n", ms);
	return 1;
}

static int udp_send(const char *addr, const char *port, const char *msg, int ms)
{
	struct sockaddr_in sa;
	double deadline = now_ms() + ms;
	int fd = udp_socket(addr, port, &sa, 0);
	struct timespec tick = {0, 10 * 1000 * 1000};

	if (fd < 0)
		return fail("udp socket");
	while (now_ms() < deadline) {
		sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&sa, sizeof(sa));
		nanosleep(&tick, NULL); /* a steady trickle of traffic, not a wait */
	}
	return 0;
}

/* One IPv4 header and UDP header before the message (UDP checksum 0: none). */
static size_t spoofed_packet(char *pkt, size_t size, const struct sockaddr_in *src,
                             const struct sockaddr_in *dst, const char *msg)
{
	struct iphdr *ip = (struct iphdr *)pkt;
	struct udphdr *udp = (struct udphdr *)(pkt + sizeof(*ip));
	size_t n = strlen(msg), len = sizeof(*ip) + sizeof(*udp) + n;

	if (len > size)
		return 0;
	memset(pkt, 0, sizeof(*ip) + sizeof(*udp));
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->tot_len = htons((uint16_t)len);
	ip->saddr = src->sin_addr.s_addr;
	ip->daddr = dst->sin_addr.s_addr;
	udp->source = htons(40000);
	udp->dest = dst->sin_port;
	udp->len = htons((uint16_t)(sizeof(*udp) + n));
	memcpy(pkt + sizeof(*ip) + sizeof(*udp), msg, n);
	return len; /* the kernel fills in the IP checksum and id */
}

static int spoof(const char *from, const char *to, const char *port, const char *msg, int ms)
{
	struct sockaddr_in src, dst;
	char pkt[1500];
	double deadline = now_ms() + ms;
	struct timespec tick = {0, 10 * 1000 * 1000};
	size_t len;
	int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);

	if (fd < 0)
		return fail("raw socket");
	if (in_addr(from, "0", &src) < 0 || in_addr(to, port, &dst) < 0 ||
	    !(len = spoofed_packet(pkt, sizeof(pkt), &src, &dst, msg)))
		return 2;
	while (now_ms() < deadline) {
		if (sendto(fd, pkt, len, 0, (struct sockaddr *)&dst, sizeof(dst)) < 0)
			return fail("sendto");
		nanosleep(&tick, NULL);
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	if (!strcmp(cmd, "sniff") && argc == 4)
		return sniff(argv[2], atoi(argv[3]));
	if (!strcmp(cmd, "tcp-serve") && argc == 5)
		return tcp_serve(argv[2], argv[3], argv[4]);
	if (!strcmp(cmd, "abstract-listen") && argc == 3)
		return abstract_listen(argv[2]);
	if (!strcmp(cmd, "abstract-connect") && argc == 4)
		return abstract_connect(argv[2], atoi(argv[3]));
	if (!strcmp(cmd, "udp-echo") && argc == 4)
		return udp_echo(argv[2], argv[3]);
	if (!strcmp(cmd, "udp-ask") && argc == 6)
		return udp_ask(argv[2], argv[3], argv[4], atoi(argv[5]));
	if (!strcmp(cmd, "spoof") && argc == 7)
		return spoof(argv[2], argv[3], argv[4], argv[5], atoi(argv[6]));
	if (!strcmp(cmd, "udp-send") && argc == 6)
		return udp_send(argv[2], argv[3], argv[4], atoi(argv[5]));
	fprintf(stderr, "usage: see the comment at the top of net_probe.c\n");
	return 2;
}
