/* Who a command runs as: "uid", "uid:gid", "name", "name:group" resolved like
 * runc/Docker against the image's /etc/passwd and /etc/group, read through the
 * environment's root fd (never a host path). Supplementary groups come from
 * /etc/group when no group was given. */
#include "providers/sandbox/sandbox.h"
#include "providers/sandbox/sys.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DB_MAX (4 << 20)

/* Next line of text as a heap copy split on ':' into at most max fields. */
static int next_record(const char **pos, char **line, char **f, int max)
{
	const char *p = *pos, *eol;
	int n = 0;

	if (!p || !*p)
		return -1;
	eol = strchr(p, '\n');
	*line = xstrndup(p, eol ? (size_t)(eol - p) : strlen(p));
	*pos = eol ? eol + 1 : NULL;
	for (char *s = *line; n < max;) {
		f[n++] = s;
		s = strchr(s, ':');
		if (!s)
			break;
		*s++ = '\0';
	}
	return n;
}

static bool parse_id(const char *s, unsigned long *out)
{
	char *end;

	if (!*s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return !*end && !errno && *out <= 0xfffffffeUL;
}

int users_lookup_passwd(const char *passwd, const char *name, uid_t uid, bool by_name,
                        struct sandbox_user *u)
{
	const char *pos = passwd;
	char *line, *f[7];
	int n;

	while ((n = next_record(&pos, &line, f, 7)) >= 0) {
		unsigned long id, gid;
		bool match;

		if (n < 4 || !parse_id(f[2], &id) || !parse_id(f[3], &gid)) {
			free(line);
			continue;
		}
		match = by_name ? strcmp(f[0], name) == 0 : id == uid;
		if (match) {
			u->uid = (uid_t)id;
			u->gid = (gid_t)gid;
			snprintf(u->home, sizeof(u->home), "%s", n >= 6 && *f[5] ? f[5] : "/");
			free(line);
			return 0;
		}
		free(line);
	}
	return -1;
}

int users_lookup_group(const char *group, const char *name, gid_t *gid)
{
	const char *pos = group;
	char *line, *f[4];
	int n;

	while ((n = next_record(&pos, &line, f, 4)) >= 0) {
		unsigned long id;

		if (n >= 3 && strcmp(f[0], name) == 0 && parse_id(f[2], &id)) {
			*gid = (gid_t)id;
			free(line);
			return 0;
		}
		free(line);
	}
	return -1;
}

int users_supplementary(const char *group, const char *user, gid_t primary, struct sandbox_user *u)
{
	const char *pos = group;
	char *line, *f[4];
	int n;

	u->ngroups = 0;
	while ((n = next_record(&pos, &line, f, 4)) >= 0) {
		unsigned long id;
		bool member = false;

		if (n >= 4 && parse_id(f[2], &id) && (gid_t)id != primary) {
			for (char *save = NULL, *m = strtok_r(f[3], ",", &save); m;
			     m = strtok_r(NULL, ",", &save))
				member |= strcmp(m, user) == 0;
		}
		if (member && u->ngroups < CTL_MAX_GROUPS) {
			bool dup = false;

			for (int i = 0; i < u->ngroups; i++)
				dup |= u->groups[i] == (gid_t)id;
			if (!dup)
				u->groups[u->ngroups++] = (gid_t)id;
		}
		free(line);
	}
	return 0;
}

/* A file of the image, read inside the root; "" when absent or not a regular file. */
static char *read_db(int root_fd, const char *rel)
{
	int fd = sys_openat2(root_fd, rel, O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0,
	                     RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
	struct strbuf sb = STRBUF_INIT;
	struct stat st;
	char buf[16384];
	ssize_t r;

	if (fd < 0)
		return xstrdup("");
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return xstrdup("");
	}
	while (sb.len < DB_MAX && (r = read(fd, buf, sizeof(buf))) > 0)
		sb_add(&sb, buf, (size_t)r);
	close(fd);
	return sb.buf ? sb_detach(&sb) : xstrdup("");
}

int users_resolve(int root_fd, const char *spec, struct sandbox_user *u, struct err *err)
{
	_cleanup_free_ char *passwd = read_db(root_fd, "etc/passwd");
	_cleanup_free_ char *group = NULL;
	_cleanup_free_ char *user = xstrdup(spec && *spec ? spec : "0");
	char *grp = strchr(user, ':');
	unsigned long id;
	char name[256] = "";

	memset(u, 0, sizeof(*u));
	snprintf(u->home, sizeof(u->home), "/");
	if (grp)
		*grp++ = '\0';
	if (parse_id(user, &id)) {
		/* A numeric uid need not exist in passwd (gid 0, HOME=/ then). */
		if (users_lookup_passwd(passwd, NULL, (uid_t)id, false, u) < 0) {
			u->uid = (uid_t)id;
			u->gid = 0;
		} else {
			const char *pos = passwd;
			char *line, *f[7];
			int n;

			while ((n = next_record(&pos, &line, f, 7)) >= 0) {
				unsigned long pid;

				if (n >= 3 && parse_id(f[2], &pid) && pid == id && !*name)
					snprintf(name, sizeof(name), "%s", f[0]);
				free(line);
			}
		}
	} else {
		if (users_lookup_passwd(passwd, user, 0, true, u) < 0)
			return err_set(err, ENOENT,
			               "unable to find user %s: no matching entries in "
			               "passwd file",
			               user);
		snprintf(name, sizeof(name), "%s", user);
	}
	group = read_db(root_fd, "etc/group");
	if (grp && *grp) {
		gid_t gid;

		if (parse_id(grp, &id))
			u->gid = (gid_t)id;
		else if (users_lookup_group(group, grp, &gid) == 0)
			u->gid = gid;
		else
			return err_set(err, ENOENT,
			               "unable to find group %s: no matching entries in "
			               "group file",
			               grp);
		u->ngroups = 0;
	} else if (*name) {
		users_supplementary(group, name, u->gid, u);
	}
	return 0;
}
