/* rollout login / logout: registry credentials in docker's config.json (or its
 * credential store), checked against the registry first as `docker login` does. */
#include "cli/cli.h"
#include "image/regauth.h"
#include "image/regconf.h"
#include "image/regcreds.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/http.h"
#include "rollout/strbuf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define LOGIN_TIMEOUT 30.0
#define MAX_PASSWORD 65536

static const char login_usage[] =
    "usage: rollout login [-u USER] [--password-stdin] REGISTRY\n"
    "\n"
    "Check a user name and password (or token) against REGISTRY (host[:port];\n"
    "docker.io for Docker Hub) and save them where docker keeps them: through the\n"
    "credential helper ~/.docker/config.json names (credHelpers, credsStore), else\n"
    "in its \"auths\" (file mode 0600, other keys kept). Pulls find them there, as\n"
    "docker, podman and skopeo do (docs/REGISTRIES.md).\n"
    "\n";

static const char logout_usage[] = "usage: rollout logout REGISTRY\n"
                                   "\n"
                                   "Remove what `rollout login` (or `docker login`) saved "
                                   "for REGISTRY.\n"
                                   "\n";

struct login_opts {
	char *user;
	char *password;
	bool password_stdin;
	bool no_verify;
};

#define LO(f) offsetof(struct login_opts, f)

static const struct cli_option login_options[] = {
    CLI_OPT('u', "username", NULL, "USER", "user name (asked on a terminal when missing)",
            cli_opt_str, LO(user)),
    CLI_OPT('p', "password", NULL, "PASSWORD",
            "password or token (visible to other users in ps: prefer --password-stdin)",
            cli_opt_str, LO(password)),
    CLI_OPT(0, "password-stdin", NULL, NULL, "read the password or token from stdin", cli_opt_true,
            LO(password_stdin)),
    CLI_OPT(0, "no-verify", NULL, NULL, "save without checking them against the registry",
            cli_opt_true, LO(no_verify)),
    CLI_END,
};

/* One line from fd 0 (no echo on a terminal when secret). */
static char *read_line(const char *prompt, bool secret)
{
	struct termios old, quiet;
	bool tty = isatty(0), restore = false;
	struct strbuf sb = STRBUF_INIT;
	char c;

	if (prompt && tty) {
		fputs(prompt, stderr);
		fflush(stderr);
	}
	if (secret && tty && tcgetattr(0, &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		restore = tcsetattr(0, TCSAFLUSH, &quiet) == 0;
	}
	while (sb.len < MAX_PASSWORD && read(0, &c, 1) == 1 && c != '\n')
		sb_addc(&sb, c);
	if (restore) {
		tcsetattr(0, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (sb.len && sb.buf[sb.len - 1] == '\r')
		sb.buf[--sb.len] = '\0';
	return sb_detach(&sb);
}

/* GET URL/v2/ with an optional Authorization value: the status and the challenge. */
static int ping(const struct regconf_endpoint *ep, const char *auth, int *status, char **challenge,
                struct err *err)
{
	_cleanup_free_ char *url = xasprintf("%s/v2/", ep->url);
	struct http_get g = {.url = url,
	                     .authorization = auth,
	                     .timeout = LOGIN_TIMEOUT,
	                     .redirects = {.max = 3},
	                     .tls = ep->tls};
	const char *wa;

	if (http_get_open(&g, err) < 0)
		return -1;
	*status = g.resp.status;
	wa = http_header(&g.resp, "WWW-Authenticate");
	*challenge = wa ? xstrdup(wa) : NULL;
	http_get_close(&g);
	return 0;
}

/* Log in to one endpoint: 0 accepted, -1 with err. */
static int verify_endpoint(const char *registry, const struct regconf_endpoint *ep,
                           const struct regauth_creds *creds, struct err *err)
{
	_cleanup_free_ char *challenge = NULL, *again = NULL;
	_cleanup_sb_ struct strbuf auth = STRBUF_INIT;
	struct regauth_ctx ctx = {.registry = registry,
	                          .creds = creds,
	                          .tls = ep->tls,
	                          .insecure = ep->insecure,
	                          .timeout = LOGIN_TIMEOUT};
	int status;

	if (ping(ep, NULL, &status, &challenge, err) < 0)
		return -1;
	if (status == 200)
		return 0; /* no authentication at all */
	if (status != 401)
		return regauth_status_error(status, registry, "", NULL, NULL, err);
	if (regauth_authorize(&ctx, challenge, "", &auth, err) < 0)
		return -1;
	if (ping(ep, auth.buf, &status, &again, err) < 0)
		return -1;
	if (status == 401 || status == 403)
		return err_set(err, EACCES, "%s: login refused: wrong user name or password",
		               registry);
	if (status != 200)
		return regauth_status_error(status, registry, "", NULL, NULL, err);
	return 0;
}

static int verify(const char *registry, const struct regauth_creds *creds, struct err *err)
{
	struct regconf_endpoints eps;
	int rc = -1;

	if (regconf_endpoints(registry, "", &eps, err) < 0)
		return -1;
	for (size_t i = 0; i < eps.n; i++) {
		if (eps.v[i].mirror)
			continue;
		err_clear(err);
		rc = verify_endpoint(registry, &eps.v[i], creds, err);
		/* an insecure registry: https first, then http when it did not answer */
		if (rc == 0 || err->code == EACCES || i + 1 == eps.n)
			break;
	}
	regconf_endpoints_release(&eps);
	return rc;
}

int cmd_login(int argc, char **argv)
{
	struct login_opts o = {0};
	_cleanup_strvs_ struct strv operands = STRV_INIT;
	struct regauth_creds creds = {0};
	_cleanup_free_ char *where = NULL;
	struct err err = {0};
	int rc = cli_parse("login", login_options, argc, argv, &o, login_usage, NULL, &operands);

	if (rc >= 0)
		goto out;
	rc = EXIT_USAGE;
	if (operands.n != 1) {
		rc = cli_usage_error("login", "expected one REGISTRY");
		goto out;
	}
	if (o.password && o.password_stdin) {
		rc = cli_usage_error("login", "--password and --password-stdin exclude each other");
		goto out;
	}
	if (!o.user) {
		if (o.password_stdin || !isatty(0)) {
			rc = cli_usage_error("login",
			                     "-u USER is needed when stdin is not a terminal");
			goto out;
		}
		o.user = read_line("Username: ", false);
	}
	if (o.password_stdin)
		o.password = read_line(NULL, true);
	else if (!o.password) {
		if (!isatty(0)) {
			rc = cli_usage_error("login", "give the password with --password-stdin");
			goto out;
		}
		o.password = read_line("Password: ", true);
	} else {
		fprintf(stderr, "rollout: warning: a password on the command line is visible to "
		                "other users; use --password-stdin\n");
	}
	if (!*o.user || !*o.password) {
		rc = cli_fail("login: empty user name or password");
		goto out;
	}
	creds.username = o.user;
	creds.password = o.password;
	if (!o.no_verify && verify(operands.v[0], &creds, &err) < 0) {
		rc = cli_fail("%s", err.msg);
		goto out;
	}
	if (regcreds_store(operands.v[0], o.user, o.password, &where, &err) < 0) {
		rc = cli_fail("login: %s", err.msg);
		goto out;
	}
	printf("Login succeeded: credentials for %s saved in %s\n", operands.v[0], where);
	rc = EXIT_OK;
out:
	free(o.user);
	free(o.password);
	return rc;
}

int cmd_logout(int argc, char **argv)
{
	_cleanup_strvs_ struct strv operands = STRV_INIT;
	struct err err = {0};
	bool found;
	int rc =
	    cli_parse("logout", cli_no_options, argc, argv, NULL, logout_usage, NULL, &operands);

	if (rc >= 0)
		return rc;
	if (operands.n != 1)
		return cli_usage_error("logout", "expected one REGISTRY");
	if (regcreds_erase(operands.v[0], &found, &err) < 0)
		return cli_fail("logout: %s", err.msg);
	if (!found)
		printf("Not logged in to %s\n", operands.v[0]);
	else
		printf("Removed the credentials for %s\n", operands.v[0]);
	return EXIT_OK;
}
