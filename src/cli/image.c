/* rollout image: the sandbox provider's local image store (load, import, build, ls, inspect,
 * rm, prune, tag). */
#include "cli/cli.h"
#include "image/build.h"
#include "image/store.h"
#include "providers/sandbox/build.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/json.h"
#include "rollout/log.h"
#include "rollout/signals.h"
#include "rollout/strbuf.h"

#include <errno.h>
#include <inttypes.h>
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
    "  build [-t REF] CONTEXT      build a Dockerfile (RUN steps in the sandbox)\n"
    "  pull                        pull from a registry (not supported yet)\n";

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

static int image_load(int argc, char **argv)
{
	const char *file = NULL, *tag = NULL;
	_cleanup_strvs_ struct strv loaded = STRV_INIT;
	struct err err = {0};
	struct store *s;
	int ret;

	if (cli_wants_help(argc, argv)) {
		puts(
		    "usage: rollout image load FILE|- [--tag REF]\n\n"
		    "Load the images of a docker save archive or an OCI image layout (a directory\n"
		    "or a tar, possibly gzip-compressed). Layers already in the store are not\n"
		    "unpacked again. --tag adds a reference (archives with one image).");
		return EXIT_OK;
	}
	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "--tag") == 0 || strcmp(argv[i], "-t") == 0) && i + 1 < argc)
			tag = argv[++i];
		else if (str_starts_with(argv[i], "--tag="))
			tag = argv[i] + 6;
		else if (argv[i][0] == '-' && strcmp(argv[i], "-") != 0)
			return cli_usage_error("image load", "unknown option '%s'", argv[i]);
		else if (!file)
			file = argv[i];
		else
			return cli_usage_error("image load", "one FILE at a time");
	}
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

static int image_import(int argc, char **argv)
{
	const char *file = NULL, *tag = NULL;
	_cleanup_strvs_ struct strv changes = STRV_INIT;
	_cleanup_free_ char *id = NULL;
	struct err err = {0};
	struct store *s;
	int ret;

	if (cli_wants_help(argc, argv)) {
		puts("usage: rollout image import ROOTFS.tar[.gz]|- --tag REF [--change 'INSTR "
		     "ARGS']...\n\n"
		     "Make a one-layer image from a plain rootfs tarball. --change applies a\n"
		     "Dockerfile instruction to the config: ENV, CMD, ENTRYPOINT, WORKDIR, USER,\n"
		     "LABEL, EXPOSE, VOLUME, STOPSIGNAL.");
		return EXIT_OK;
	}
	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "--tag") == 0 || strcmp(argv[i], "-t") == 0) && i + 1 < argc)
			tag = argv[++i];
		else if (str_starts_with(argv[i], "--tag="))
			tag = argv[i] + 6;
		else if ((strcmp(argv[i], "--change") == 0 || strcmp(argv[i], "-c") == 0) &&
		         i + 1 < argc)
			strv_push(&changes, argv[++i]);
		else if (str_starts_with(argv[i], "--change="))
			strv_push(&changes, argv[i] + 9);
		else if (argv[i][0] == '-' && strcmp(argv[i], "-") != 0)
			return cli_usage_error("image import", "unknown option '%s'", argv[i]);
		else if (!file)
			file = argv[i];
		else
			return cli_usage_error("image import", "one ROOTFS tarball at a time");
	}
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

static int image_ls(int argc, char **argv)
{
	bool quiet = false, all = false;
	struct store_image_info *v;
	struct err err = {0};
	struct store *s;
	size_t n;

	if (cli_wants_help(argc, argv)) {
		puts("usage: rollout image ls [-q] [-a]\n\nList images: reference, ID, load time, "
		     "size.\n"
		     "-q prints the IDs only; -a includes the images of build steps.");
		return EXIT_OK;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-q") == 0 || strcmp(argv[i], "--quiet") == 0)
			quiet = true;
		else if (strcmp(argv[i], "-a") == 0 || strcmp(argv[i], "--all") == 0)
			all = true;
		else
			return cli_usage_error("image ls", "unexpected argument '%s'", argv[i]);
	}
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

	if (cli_wants_help(argc, argv)) {
		puts("usage: rollout image inspect REF\n\n"
		     "Print the image's config (Env, Cmd, Entrypoint, WorkingDir, User, ...), its\n"
		     "layers (diff ID, chain ID, directory) and size as JSON.");
		return EXIT_OK;
	}
	if (argc != 2)
		return cli_usage_error("image inspect", "expected one REF");
	if (!(s = open_store()))
		return EXIT_FAIL;
	if (store_image_lookup(s, argv[1], &img, &err) < 0) {
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

	if (cli_wants_help(argc, argv)) {
		puts("usage: rollout image rm REF|ID...\n\n"
		     "Remove references. An image left without references and not used by an\n"
		     "environment is deleted with the layers no other image needs. An ID removes\n"
		     "every reference to the image.");
		return EXIT_OK;
	}
	if (argc < 2)
		return cli_usage_error("image rm", "expected REF...");
	if (!(s = open_store()))
		return EXIT_FAIL;
	for (int i = 1; i < argc; i++) {
		if (store_remove(s, argv[i], &err) < 0)
			rc = cli_fail("rm %s: %s", argv[i], err.msg);
		else
			printf("Removed: %s\n", argv[i]);
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

	if (cli_wants_help(argc, argv)) {
		puts("usage: rollout image prune\n\n"
		     "Delete images that no reference and no environment uses, the layers no\n"
		     "remaining image needs, unreferenced blobs and abandoned work directories.");
		return EXIT_OK;
	}
	if (argc != 1)
		return cli_usage_error("image prune", "unexpected argument '%s'", argv[1]);
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

	if (cli_wants_help(argc, argv)) {
		puts("usage: rollout image tag REF|ID NEW_REF");
		return EXIT_OK;
	}
	if (argc != 3)
		return cli_usage_error("image tag", "expected REF NEW_REF");
	if (!(s = open_store()))
		return EXIT_FAIL;
	ret = store_tag(s, argv[1], argv[2], &err);
	store_close(s);
	return ret < 0 ? cli_fail("tag: %s", err.msg) : EXIT_OK;
}

static const char build_usage[] =
    "usage: rollout image build [-t REF]... [-f DOCKERFILE] [--build-arg KEY[=VALUE]]...\n"
    "                           [--target STAGE] [--no-cache] [--network host|none]\n"
    "                           [--isolation full|chroot] [--timeout SECONDS] [-q] CONTEXT\n"
    "\n"
    "Build CONTEXT's Dockerfile (or -f DOCKERFILE) into the image store, without a\n"
    "daemon: RUN steps run in the sandbox. Unchanged steps come from the build cache\n"
    "(--no-cache runs everything). Progress goes to stderr, the image ID to stdout.\n"
    "  -t, --tag REF          name the image (several allowed)\n"
    "  --build-arg KEY=VALUE  set an ARG (KEY alone: the value of $KEY here)\n"
    "  --target STAGE         build that stage of a multi-stage Dockerfile\n"
    "  --network host|none    RUN steps share the host's network (default) or have none\n"
    "  --isolation full|chroot  how RUN steps are isolated (docs/SANDBOX.md, \"Isolation\n"
    "                         levels\"): chroot where namespaces are forbidden (a CI\n"
    "                         container); default full\n"
    "  --timeout SECONDS      give up after this long\n"
    "  -q, --quiet            print only the image ID\n";

static int cmd_image_build(int argc, char **argv)
{
	_cleanup_strvs_ struct strv tags = STRV_INIT, args = STRV_INIT;
	_cleanup_free_ char *id = NULL;
	struct build_opts o = {.network = true, .log_fd = STDERR_FILENO};
	enum sandbox_isolation iso = SANDBOX_FULL;
	struct err err = {0};
	struct store *s;
	int ret;

	if (cli_wants_help(argc, argv)) {
		fputs(build_usage, stdout);
		return EXIT_OK;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if ((strcmp(a, "-t") == 0 || strcmp(a, "--tag") == 0) && v) {
			strv_push(&tags, v);
			i++;
		} else if (str_starts_with(a, "--tag=")) {
			strv_push(&tags, a + 6);
		} else if ((strcmp(a, "-f") == 0 || strcmp(a, "--file") == 0) && v) {
			o.dockerfile = v;
			i++;
		} else if (str_starts_with(a, "--file=")) {
			o.dockerfile = a + 7;
		} else if (strcmp(a, "--build-arg") == 0 && v) {
			strv_push(&args, v);
			i++;
		} else if (str_starts_with(a, "--build-arg=")) {
			strv_push(&args, a + 12);
		} else if (strcmp(a, "--target") == 0 && v) {
			o.target = v;
			i++;
		} else if (str_starts_with(a, "--target=")) {
			o.target = a + 9;
		} else if (strcmp(a, "--no-cache") == 0) {
			o.no_cache = true;
		} else if ((strcmp(a, "--network") == 0 && v) || str_starts_with(a, "--network=")) {
			const char *n = str_starts_with(a, "--network=") ? a + 10 : argv[++i];

			if (strcmp(n, "host") == 0 || strcmp(n, "default") == 0)
				o.network = true;
			else if (strcmp(n, "none") == 0)
				o.network = false;
			else
				return cli_usage_error("image build",
				                       "--network: host or none, not '%s'", n);
		} else if ((strcmp(a, "--timeout") == 0 && v) || str_starts_with(a, "--timeout=")) {
			const char *n = str_starts_with(a, "--timeout=") ? a + 10 : argv[++i];
			char *end;

			o.timeout_sec = strtod(n, &end);
			if (*end || o.timeout_sec < 0)
				return cli_usage_error("image build",
				                       "--timeout: seconds, not '%s'", n);
		} else if ((strcmp(a, "--isolation") == 0 && v) ||
		           str_starts_with(a, "--isolation=")) {
			const char *n = str_starts_with(a, "--isolation=") ? a + 12 : argv[++i];

			if (strcmp(n, "full") != 0 && strcmp(n, "chroot") != 0)
				return cli_usage_error("image build",
				                       "--isolation: full or chroot, not '%s'", n);
			iso = strcmp(n, "chroot") == 0 ? SANDBOX_CHROOT : SANDBOX_FULL;
		} else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
			o.quiet = true;
		} else if (a[0] == '-' && a[1]) {
			return cli_usage_error("image build", "unknown option '%s'", a);
		} else if (!o.context_dir) {
			o.context_dir = a;
		} else {
			return cli_usage_error("image build", "one CONTEXT at a time");
		}
	}
	if (!o.context_dir)
		return cli_usage_error("image build", "missing CONTEXT (a directory)");
	o.tags = (const char *const *)strv_array(&tags);
	o.build_args = (const char *const *)strv_array(&args);
	o.runner = sandbox_build_runner(iso);
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

static int image_pull(int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		puts("usage: rollout image pull REF\n\nRegistries are not supported yet.");
		return EXIT_OK;
	}
	return cli_fail("'rollout image pull': registries are not supported yet; use `docker "
	                "save` and `rollout image load`");
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
	    {"build", cmd_image_build, "build an image from a Dockerfile"},
	    {"pull", image_pull, "pull an image"},
	    {NULL, NULL, NULL},
	};

	return cli_dispatch("image", subs, argc, argv, usage);
}
