/* Networking of an environment: without internet a private network namespace
 * with only loopback up; with internet the host's network, or pasta when asked
 * for and installed (it gives the namespace a copy of the host's addresses). */
#include "providers/sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

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
