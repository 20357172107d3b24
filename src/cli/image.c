/* rollout image: the sandbox provider's local image store (load, import, build, ls, inspect,
 * rm, prune, tag, save). */
#include "cli/cli.h"
#include "image/build.h"
#include "image/pull.h"
#include "image/regsession.h"
#include "image/store.h"
#include "providers/sandbox/sandbox_build.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/json.h"
#include "rollout/log.h"
#include "rollout/signals.h"
#include "rollout/strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: rollout image COMMAND [ARGS...]\n"
    "\n"
    "The local image store of the sandbox provider: $ROLLOUT_HOME (default\n"
    "/var/lib/rollout as root, else ~/.local/share/rollout).\n"
    "\n"
    "Commands:\n"
    "  load FILE|- [--tag REF]     load a docker save archive (also Docker >= 25's\n"
    "                              OCI form) or an OCI image layout (directory or tar)\n"
    "  import ROOTFS.tar[.gz]|- --tag REF [--change 'ENV A=b']...\n"
    "                              make a one-layer image from a rootfs tarball\n"
    "  ls [-q] [-a]                list images (-a: build steps too)\n"
    "  inspect REF                 config (Env, Cmd, Entrypoint, WorkingDir, User, ...),\n"
    "                              layers and size, as JSON\n"
    "  rm REF...                   remove references; unreferenced images go too\n"
    "  prune                       remove what no reference or environment uses\n"
    "  tag REF NEW_REF             add a reference\n"
    "  save REF [-o FILE] [--tag NEW_REF]\n"
    "                              write an image as a docker save archive\n"
    "  build [-t REF] CONTEXT      build a Dockerfile (RUN steps in the sandbox)\n"
    "  pull REF [--platform P]     pull an image from a registry\n";

static struct store *open_store(void)
{
	struct store *s = NULL;
	struct err err = {0};

	if (store_open(NULL, &s, &err) < 0) {
		cli_fail("%s", err.msg);
		return NULL;
	}
	return s;
}

/* A command's one operand (NULL when none; a usage error and -1 for more). */
static int one_operand(const char *cmd, const struct strv *ops, const char *what, const char **out)
{
	*out = ops->n ? ops->v[0] : NULL;
	if (ops->n > 1) {
		cli_usage_error(cmd, "one %s at a time", what);
		return -1;
	}
	return 0;
}

static const char load_usage[] =
    "usage: rollout image load FILE|- [--tag REF]\n\n"
    "Load the images of a docker save archive or an OCI image layout (a directory\n"
    "or a tar, possibly gzip-compressed). Layers already in the store are not\n"
    "unpacked again.\n\n";

static const struct cli_option load_options[] = {
    CLI_OPT('t', "tag", NULL, "REF", "add a reference (archives with one image)", cli_opt_arg, 0),
    CLI_END,
};

static int image_load(int argc, char **argv)
{
	const char *file = NULL, *tag = NULL;
	_cleanup_strvs_ struct strv loaded = STRV_INIT, ops = STRV_INIT;
	struct err err = {0};
	struct store *s;
	int ret;

	ret = cli_parse("image load", load_options, argc, argv, &tag, load_usage, NULL, &ops);
	if (ret >= 0)
		return ret;
	if (one_operand("image load", &ops, "FILE", &file) < 0)
		return EXIT_USAGE;
	if (!file)
		return cli_usage_error("image load", "missing FILE (or - for stdin)");
	if (!(s = open_store()))
		return EXIT_FAIL;
	signals_install_cancel();
	ret = store_load(s, file, tag, &loaded, &err);
	store_close(s);
	if (ret < 0)
		return err.code == ECANCELED ? EXIT_CANCELLED : cli_fail("%s", err.msg);
	for (size_t i = 0; i < loaded.n; i++)
		printf(str_starts_with(loaded.v[i], "sha256:") ? "Loaded image ID: %s\n"
		                                               : "Loaded image: %s\n",
		       loaded.v[i]);
	return EXIT_OK;
}

static const char import_usage[] =
    "usage: rollout image import ROOTFS.tar[.gz]|- --tag REF [--change 'INSTR ARGS']...\n\n"
    "Make a one-layer image from a plain rootfs tarball.\n\n";

struct import_cli {
	const char *tag;
	struct strv changes;
};

static const struct cli_option import_options[] = {
    CLI_OPT('t', "tag", NULL, "REF", "the image's reference (required)", cli_opt_arg,
            offsetof(struct import_cli, tag)),
    CLI_OPT('c', "change", NULL, "'INSTR ARGS'",
            "apply a Dockerfile instruction to the config (repeatable):\n"
            "ENV, CMD, ENTRYPOINT, WORKDIR, USER, LABEL, EXPOSE,\n"
            "VOLUME, STOPSIGNAL",
            cli_opt_strv, offsetof(struct import_cli, changes)),
    CLI_END,
};

static int image_import(int argc, char **argv)
{
	const char *file = NULL, *tag;
	_cleanup_strvs_ struct strv ops = STRV_INIT;
	_cleanup_strvs_ struct strv changes = STRV_INIT;
	_cleanup_free_ char *id = NULL;
	struct import_cli ic = {0};
	struct err err = {0};
	struct store *s;
	int ret;

	ret = cli_parse("image import", import_options, argc, argv, &ic, import_usage, NULL, &ops);
	changes = ic.changes;
	tag = ic.tag;
	if (ret >= 0)
		return ret;
	if (one_operand("image import", &ops, "ROOTFS tarball", &file) < 0)
		return EXIT_USAGE;
	if (!file)
		return cli_usage_error("image import", "missing ROOTFS tarball (or - for stdin)");
	if (!tag)
		return cli_usage_error("image import", "missing --tag REF");
	if (!(s = open_store()))
		return EXIT_FAIL;
	signals_install_cancel();
	ret = store_import(s, file, tag, strv_array(&changes), &id, &err);
	store_close(s);
	if (ret < 0)
		return err.code == ECANCELED ? EXIT_CANCELLED
		                             : cli_fail("import %s: %s", file, err.msg);
	printf("%s\n", id);
	return EXIT_OK;
}

static void human_size(uint64_t n, char *buf, size_t len)
{
	if (n >= (1ULL << 30))
		snprintf(buf, len, "%.1fGB", (double)n / 1e9);
	else if (n >= 1000000)
		snprintf(buf, len, "%.1fMB", (double)n / 1e6);
	else if (n >= 1000)
		snprintf(buf, len, "%.1fkB", (double)n / 1e3);
	else
		snprintf(buf, len, "%" PRIu64 "B", n);
}

struct ls_cli {
	bool quiet, all;
};

static const struct cli_option ls_options[] = {
    CLI_OPT('q', "quiet", NULL, NULL, "print the IDs only", cli_opt_true,
            offsetof(struct ls_cli, quiet)),
    CLI_OPT('a', "all", NULL, NULL, "include the images of build steps", cli_opt_true,
            offsetof(struct ls_cli, all)),
    CLI_END,
};

static int image_ls(int argc, char **argv)
{
	struct ls_cli lc = {0};
	struct store_image_info *v;
	struct err err = {0};
	struct store *s;
	size_t n;
	bool quiet, all;
	int rc = cli_parse("image ls", ls_options, argc, argv, &lc,
	                   "usage: rollout image ls [-q] [-a]\n\n"
	                   "List images: reference, ID, load time, size.\n\n",
	                   NULL, NULL);

	if (rc >= 0)
		return rc;
	quiet = lc.quiet;
	all = lc.all;
	if (!(s = open_store()))
		return EXIT_FAIL;
	if (store_list(s, &v, &n, &err) < 0) {
		store_close(s);
		return cli_fail("%s", err.msg);
	}
	if (!quiet)
		printf("%-40s %-12s %-20s %8s %s\n", "REFERENCE", "IMAGE ID", "LOADED", "SIZE",
		       "LAYERS");
	for (size_t i = 0; i < n; i++) {
		char size[32], created[21] = "";

		if (v[i].intermediate && !all)
			continue;
		if (quiet) {
			printf("%s\n", v[i].id);
			continue;
		}
		human_size(v[i].size, size, sizeof(size));
		if (v[i].created)
			snprintf(created, sizeof(created), "%.19s", v[i].created);
		for (size_t k = 0; k == 0 || (v[i].refs[0] && v[i].refs[k]); k++)
			printf("%-40s %-12.12s %-20s %8s %zu%s\n",
			       v[i].refs[k] ? v[i].refs[k] : "<none>", oci_digest_hex(v[i].id),
			       created, size, v[i].n_layers, v[i].in_use ? " (in use)" : "");
	}
	store_list_free(v, n);
	store_close(s);
	return EXIT_OK;
}

static cJSON *strv_json(char **v)
{
	cJSON *a;

	if (!v)
		return cJSON_CreateNull();
	a = cJSON_CreateArray();
	for (; *v; v++)
		cJSON_AddItemToArray(a, cJSON_CreateString(*v));
	return a;
}

static int image_inspect(int argc, char **argv)
{
	struct store_image *img = NULL;
	struct err err = {0};
	_cleanup_json_ cJSON *out = NULL;
	_cleanup_sb_ struct strbuf sb = STRBUF_INIT;
	struct store *s;
	cJSON *cfg, *layers;

	_cleanup_strvs_ struct strv ops = STRV_INIT;
	int rc =
	    cli_parse("image inspect", cli_no_options, argc, argv, NULL,
	              "usage: rollout image inspect REF\n\n"
	              "Print the image's config (Env, Cmd, Entrypoint, WorkingDir, User, ...), "
	              "its\n"
	              "layers (diff ID, chain ID, directory) and size as JSON.\n\n",
	              NULL, &ops);

	if (rc >= 0)
		return rc;
	if (ops.n != 1)
		return cli_usage_error("image inspect", "expected one REF");
	if (!(s = open_store()))
		return EXIT_FAIL;
	if (store_image_lookup(s, ops.v[0], &img, &err) < 0) {
		store_close(s);
		return cli_fail("%s", err.msg);
	}
	out = cJSON_CreateObject();
	cJSON_AddStringToObject(out, "Id", img->id);
	json_add_str_or_null(out, "Ref", img->ref);
	json_add_str_or_null(out, "Created", img->config.created);
	json_add_str_or_null(out, "Architecture", img->config.architecture);
	json_add_str_or_null(out, "Os", img->config.os);
	cfg = cJSON_AddObjectToObject(out, "Config");
	cJSON_AddItemToObject(cfg, "Env", strv_json(img->config.env));
	cJSON_AddItemToObject(cfg, "Cmd", strv_json(img->config.cmd));
	cJSON_AddItemToObject(cfg, "Entrypoint", strv_json(img->config.entrypoint));
	cJSON_AddStringToObject(cfg, "WorkingDir",
	                        img->config.working_dir ? img->config.working_dir : "");
	cJSON_AddStringToObject(cfg, "User", img->config.user ? img->config.user : "");
	json_add_str_or_null(cfg, "StopSignal", img->config.stop_signal);
	cJSON_AddItemToObject(cfg, "Labels", strv_json(img->config.labels));
	cJSON_AddItemToObject(cfg, "ExposedPorts", strv_json(img->config.exposed_ports));
	cJSON_AddItemToObject(cfg, "Volumes", strv_json(img->config.volumes));
	layers = cJSON_AddArrayToObject(out, "Layers");
	for (size_t i = 0; i < img->n_layers; i++) {
		cJSON *l = cJSON_CreateObject();

		cJSON_AddStringToObject(l, "DiffID", img->config.diff_ids[i]);
		cJSON_AddStringToObject(l, "ChainID", img->chain_ids[i]);
		cJSON_AddStringToObject(l, "Dir", img->layer_dirs[i]);
		cJSON_AddItemToArray(layers, l);
	}
	cJSON_AddNumberToObject(out, "Size", (double)img->size);
	json_print(out, &sb);
	printf("%s\n", sb.buf);
	store_image_free(img);
	store_close(s);
	return EXIT_OK;
}

static int image_rm(int argc, char **argv)
{
	struct err err = {0};
	struct store *s;
	int rc = EXIT_OK;

	_cleanup_strvs_ struct strv ops = STRV_INIT;

	rc =
	    cli_parse("image rm", cli_no_options, argc, argv, NULL,
	              "usage: rollout image rm REF|ID...\n\n"
	              "Remove references. An image left without references and not used by an\n"
	              "environment is deleted with the layers no other image needs. An ID removes\n"
	              "every reference to the image.\n\n",
	              NULL, &ops);
	if (rc >= 0)
		return rc;
	rc = EXIT_OK;
	if (ops.n < 1)
		return cli_usage_error("image rm", "expected REF...");
	if (!(s = open_store()))
		return EXIT_FAIL;
	for (size_t i = 0; i < ops.n; i++) {
		if (store_remove(s, ops.v[i], &err) < 0)
			rc = cli_fail("rm %s: %s", ops.v[i], err.msg);
		else
			printf("Removed: %s\n", ops.v[i]);
	}
	store_close(s);
	return rc;
}

static int image_prune(int argc, char **argv)
{
	struct store_prune_result res;
	struct err err = {0};
	struct store *s;
	char size[32];

	int rc =
	    cli_parse("image prune", cli_no_options, argc, argv, NULL,
	              "usage: rollout image prune\n\n"
	              "Delete images that no reference and no environment uses, the layers no\n"
	              "remaining image needs, unreferenced blobs and abandoned work "
	              "directories.\n\n",
	              NULL, NULL);

	if (rc >= 0)
		return rc;
	if (!(s = open_store()))
		return EXIT_FAIL;
	if (store_prune(s, &res, &err) < 0) {
		store_close(s);
		return cli_fail("prune: %s", err.msg);
	}
	human_size(res.bytes, size, sizeof(size));
	printf("Deleted %zu images, %zu layers (%s), %zu blobs, %zu work directories\n", res.images,
	       res.layers, size, res.blobs, res.tmp);
	store_close(s);
	return EXIT_OK;
}

static int image_tag(int argc, char **argv)
{
	struct err err = {0};
	struct store *s;
	int ret;

	_cleanup_strvs_ struct strv ops = STRV_INIT;

	ret = cli_parse("image tag", cli_no_options, argc, argv, NULL,
	                "usage: rollout image tag REF|ID NEW_REF\n\n", NULL, &ops);
	if (ret >= 0)
		return ret;
	if (ops.n != 2)
		return cli_usage_error("image tag", "expected REF NEW_REF");
	if (!(s = open_store()))
		return EXIT_FAIL;
	ret = store_tag(s, ops.v[0], ops.v[1], &err);
	store_close(s);
	return ret < 0 ? cli_fail("tag: %s", err.msg) : EXIT_OK;
}

static int save_write(void *ctx, const void *data, size_t n, struct err *err)
{
	const int *fd = ctx;

	for (size_t done = 0; done < n;) {
		ssize_t w = write(*fd, (const char *)data + done, n - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return err_sys(err, "write");
		done += (size_t)w;
	}
	return 0;
}

static const char save_usage[] =
    "usage: rollout image save REF|ID [-o FILE] [--tag NEW_REF]\n\n"
    "Write an image of the store as a docker save archive, to FILE or stdout\n"
    "(`rollout image save REF | docker load`). Its layers are written again from\n"
    "the store, so the archive's diff IDs and image ID differ from the store's;\n"
    "the files and the config do not.\n\n";

struct save_cli {
	const char *file, *tag;
};

static const struct cli_option save_options[] = {
    CLI_OPT('o', "output", NULL, "FILE", "write the archive there (default: stdout)", cli_opt_arg,
            offsetof(struct save_cli, file)),
    CLI_OPT('t', "tag", NULL, "NEW_REF", "name the image in the archive (default: REF)",
            cli_opt_arg, offsetof(struct save_cli, tag)),
    CLI_END,
};

static int image_save(int argc, char **argv)
{
	const char *ref = NULL, *file, *tag;
	_cleanup_strvs_ struct strv ops = STRV_INIT;
	_cleanup_free_ char *tmp = NULL;
	struct save_cli sc = {0};
	struct err err = {0};
	struct store *s;
	int fd = STDOUT_FILENO, ret;
	struct tar_output out = {save_write, &fd};

	ret = cli_parse("image save", save_options, argc, argv, &sc, save_usage, NULL, &ops);
	if (ret >= 0)
		return ret;
	file = sc.file;
	tag = sc.tag;
	if (one_operand("image save", &ops, "REF", &ref) < 0)
		return EXIT_USAGE;
	if (!ref)
		return cli_usage_error("image save", "missing REF");
	if (!file && isatty(STDOUT_FILENO))
		return cli_usage_error(
		    "image save", "not writing an archive to a terminal: -o FILE, or redirect");
	if (file) {
		tmp = xasprintf("%s.part", file);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0)
			return cli_fail("create %s: %s", tmp, strerror(errno));
	}
	if (!(s = open_store())) {
		if (tmp) {
			close(fd);
			unlink(tmp);
		}
		return EXIT_FAIL;
	}
	signals_install_cancel();
	ret = store_save(s, ref, tag, &out, 0, NULL, &err);
	store_close(s);
	if (tmp) {
		if (ret == 0 && (fsync(fd) < 0 || rename(tmp, file) < 0))
			ret = err_sys(&err, "write %s", file);
		close(fd);
		if (ret < 0)
			unlink(tmp);
	}
	if (ret < 0)
		return err.code == ECANCELED ? EXIT_CANCELLED : cli_fail("%s", err.msg);
	return EXIT_OK;
}

static const char build_usage[] =
    "usage: rollout image build [-t REF]... [-f DOCKERFILE] [--build-arg KEY[=VALUE]]...\n"
    "                           [--target STAGE] [--no-cache] [--network host|none]\n"
    "                           [--isolation full|chroot] [--timeout SECONDS] [-q] CONTEXT\n"
    "\n"
    "Build CONTEXT's Dockerfile (or -f DOCKERFILE) into the image store, without a\n"
    "daemon: RUN steps run in the sandbox. Unchanged steps come from the build cache\n"
    "(--no-cache runs everything). Progress goes to stderr, the image ID to stdout.\n"
    "\n";

/* What the flags of `rollout image build` fill. */
struct build_cli {
	struct build_opts o;
	struct strv tags, args;
	enum sandbox_isolation iso;
};

#define BUILD(field) offsetof(struct build_cli, field)

static int opt_network(const struct cli_option *opt, const char *flag, const char *value, void *ctx,
                       struct err *err)
{
	bool *network = (bool *)((char *)ctx + opt->off);

	if (strcmp(value, "host") == 0 || strcmp(value, "default") == 0)
		*network = true;
	else if (strcmp(value, "none") == 0)
		*network = false;
	else
		return err_set(err, EINVAL, "--network: host or none, not '%s'", value);
	return 0;
}

static int opt_build_timeout(const struct cli_option *opt, const char *flag, const char *value,
                             void *ctx, struct err *err)
{
	double *sec = (double *)((char *)ctx + opt->off);
	char *end;

	*sec = strtod(value, &end);
	if (*end || *sec < 0)
		return err_set(err, EINVAL, "--timeout: seconds, not '%s'", value);
	return 0;
}

static int opt_build_isolation(const struct cli_option *opt, const char *flag, const char *value,
                               void *ctx, struct err *err)
{
	enum sandbox_isolation *iso = (enum sandbox_isolation *)((char *)ctx + opt->off);

	if (strcmp(value, "full") != 0 && strcmp(value, "chroot") != 0)
		return err_set(err, EINVAL, "--isolation: full or chroot, not '%s'", value);
	*iso = strcmp(value, "chroot") == 0 ? SANDBOX_CHROOT : SANDBOX_FULL;
	return 0;
}

static const struct cli_option build_options[] = {
    CLI_OPT('t', "tag", NULL, "REF", "name the image (several allowed)", cli_opt_strv, BUILD(tags)),
    CLI_OPT('f', "file", NULL, "DOCKERFILE", "the Dockerfile (default CONTEXT/Dockerfile)",
            cli_opt_arg, BUILD(o.dockerfile)),
    CLI_OPT(0, "build-arg", NULL, "KEY=VALUE", "set an ARG (KEY alone: the value of $KEY here)",
            cli_opt_strv, BUILD(args)),
    CLI_OPT(0, "target", NULL, "STAGE", "build that stage of a multi-stage Dockerfile", cli_opt_arg,
            BUILD(o.target)),
    CLI_OPT(0, "no-cache", NULL, NULL, "run every step (no build cache)", cli_opt_true,
            BUILD(o.no_cache)),
    CLI_OPT(0, "network", NULL, "host|none",
            "RUN steps share the host's network (default) or have none", opt_network,
            BUILD(o.network)),
    CLI_OPT(0, "isolation", NULL, "full|chroot",
            "how RUN steps are isolated (docs/SANDBOX.md, \"Isolation\n"
            "levels\"): chroot where namespaces are forbidden (a CI\n"
            "container); default full",
            opt_build_isolation, BUILD(iso)),
    CLI_OPT(0, "timeout", NULL, "SECONDS", "give up after this long", opt_build_timeout,
            BUILD(o.timeout_sec)),
    CLI_OPT('q', "quiet", NULL, NULL, "print only the image ID", cli_opt_true, BUILD(o.quiet)),
    CLI_END,
};

static int cmd_image_build(int argc, char **argv)
{
	_cleanup_strvs_ struct strv ops = STRV_INIT;
	_cleanup_strvs_ struct strv tags = STRV_INIT, args = STRV_INIT;
	_cleanup_free_ char *id = NULL;
	struct build_cli bc = {.o = {.network = true, .log_fd = STDERR_FILENO},
	                       .iso = SANDBOX_FULL};
	struct build_opts o;
	struct err err = {0};
	struct store *s;
	int ret;

	ret = cli_parse("image build", build_options, argc, argv, &bc, build_usage, NULL, &ops);
	tags = bc.tags;
	args = bc.args;
	if (ret >= 0)
		return ret;
	o = bc.o;
	if (one_operand("image build", &ops, "CONTEXT", &o.context_dir) < 0)
		return EXIT_USAGE;
	if (!o.context_dir)
		return cli_usage_error("image build", "missing CONTEXT (a directory)");
	o.tags = (const char *const *)strv_array(&tags);
	o.build_args = (const char *const *)strv_array(&args);
	o.runner = sandbox_build_runner(bc.iso);
	if (!(s = open_store()))
		return EXIT_FAIL;
	signals_install_cancel();
	ret = image_build(s, &o, &id, &err);
	store_close(s);
	if (ret < 0)
		return err.code == ECANCELED ? EXIT_CANCELLED : cli_fail("build: %s", err.msg);
	printf("%s\n", id);
	return EXIT_OK;
}

static const char pull_usage[] =
    "usage: rollout image pull REF [--platform OS/ARCH[/VARIANT]] [--jobs N]\n"
    "                          [--insecure-registry HOST[:PORT]]...\n\n"
    "Pull an image from a registry (Docker Hub for short names: ubuntu is\n"
    "docker.io/library/ubuntu:latest) into the store. A manifest list or OCI index\n"
    "gives the image for --platform (default: this host's). Layers already in the\n"
    "store are not fetched again; the others are downloaded N at a time (default 4,\n"
    "or ROLLOUT_PULL_JOBS) and unpacked as they arrive. Registries are reached over\n"
    "https; an insecure one (127.0.0.0/8 and localhost as in docker,\n"
    "--insecure-registry, ROLLOUT_INSECURE_REGISTRIES, daemon.json, registries.conf)\n"
    "over https unverified, then plain http. Mirrors, rewrites, certs.d and\n"
    "credentials: see docs/REGISTRIES.md (rollout login).\n\n";

struct pull_cli {
	const char *platform;
	int jobs;
	struct strv insecure;
};

static const struct cli_option pull_options[] = {
    CLI_OPT(0, "platform", NULL, "OS/ARCH[/VARIANT]", "the platform to pull from an index",
            cli_opt_arg, offsetof(struct pull_cli, platform)),
    CLI_OPT('j', "jobs", NULL, "N", "layers downloaded at a time (default 4)", cli_opt_int,
            offsetof(struct pull_cli, jobs), .min = 1),
    CLI_OPT(0, "insecure-registry", NULL, "HOST[:PORT]", "mark this registry insecure (repeatable)",
            cli_opt_strv, offsetof(struct pull_cli, insecure)),
    CLI_END,
};

static int image_pull(int argc, char **argv)
{
	_cleanup_strvs_ struct strv ops = STRV_INIT, insecure = STRV_INIT;
	_cleanup_free_ char *ref = NULL;
	struct pull_cli pc = {0};
	struct pull_opts po = {0};
	struct err err = {0};
	const char *name = NULL;
	struct store *s;
	int ret;

	ret = cli_parse("image pull", pull_options, argc, argv, &pc, pull_usage, NULL, &ops);
	insecure = pc.insecure;
	if (ret >= 0)
		return ret;
	if (one_operand("image pull", &ops, "REF", &name) < 0)
		return EXIT_USAGE;
	if (!name)
		return cli_usage_error("image pull", "missing REF");
	po.platform = pc.platform;
	po.jobs = pc.jobs > 0 ? (unsigned)pc.jobs : 0;
	po.insecure = (const char *const *)strv_array(&insecure);
	po.progress_layers = isatty(STDERR_FILENO);
	if (!(s = open_store()))
		return EXIT_FAIL;
	signals_install_cancel();
	po.authorize = regsession_authorize;
	po.authorize_ctx = regsession_new();
	ret = image_pull_ref(s, name, &po, &ref, &err);
	regsession_free(po.authorize_ctx);
	store_close(s);
	if (ret < 0)
		return err.code == ECANCELED ? EXIT_CANCELLED
		                             : cli_fail("pull %s: %s", name, err.msg);
	printf("%s\n", ref);
	return EXIT_OK;
}

int cmd_image(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"load", image_load, "load a docker save archive or OCI layout"},
	    {"import", image_import, "make an image from a rootfs tarball"},
	    {"ls", image_ls, "list images"},
	    {"list", image_ls, "list images"},
	    {"inspect", image_inspect, "show an image"},
	    {"rm", image_rm, "remove images"},
	    {"prune", image_prune, "remove unused images"},
	    {"tag", image_tag, "add a reference"},
	    {"save", image_save, "write an image as a docker save archive"},
	    {"build", cmd_image_build, "build an image from a Dockerfile"},
	    {"pull", image_pull, "pull an image"},
	    {NULL, NULL, NULL},
	};

	return cli_dispatch("image", subs, argc, argv, usage);
}
