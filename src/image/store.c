/* The image store on disk (layout in store.h): opening and locking, references,
 * image records, layers unpacked and committed atomically, lookup, rm, prune,
 * environment marks. Loading is in archive.c, import and build in import.c. */
#include "image/store.h"
#include "image/decompress.h"
#include "image/store_internal.h"
#include "image/tar.h"
#include "rollout/alloc.h"
#include "rollout/cleanup.h"
#include "rollout/err.h"
#include "rollout/fs.h"
#include "rollout/inroot.h"
#include "rollout/json.h"
#include "rollout/log.h"
#include "rollout/sha256.h"
#include "rollout/signals.h"
#include "rollout/strbuf.h"
#include "rollout/timeutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define STORE_VERSION 1

/* ---- opening ---- */

char *store_default_root(void)
{
	const char *home = getenv("ROLLOUT_HOME");
	const char *xdg = getenv("XDG_DATA_HOME");

	if (home && *home)
		return xstrdup(home);
	if (geteuid() == 0)
		return xstrdup("/var/lib/rollout");
	if (xdg && *xdg)
		return xasprintf("%s/rollout", xdg);
	home = getenv("HOME");
	return xasprintf("%s/.local/share/rollout", home && *home ? home : "/tmp");
}

const char *store_root(const struct store *s)
{
	return s->root;
}

enum store_whiteouts store_whiteout_form(const struct store *s)
{
	return s->whiteouts;
}

uint64_t store_max_layer_size(void)
{
	const char *v = getenv("ROLLOUT_MAX_LAYER_SIZE");
	char *end;
	unsigned long long n;

	if (v && *v) {
		n = strtoull(v, &end, 10);
		if (*end == '\0' && n > 0)
			return n;
	}
	return 64ULL << 30;
}

static char *spath(struct store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *spath(struct store *s, const char *fmt, ...)
{
	va_list ap;
	_cleanup_free_ char *rel = NULL;

	va_start(ap, fmt);
	rel = xvasprintf(fmt, ap);
	va_end(ap);
	return xasprintf("%s/%s", s->root, rel);
}

/* trusted.* extended attributes (overlayfs' own whiteout form) need
 * CAP_SYS_ADMIN, which root in a CI job's container does not have: a store
 * made there uses the user.overlay form (mounted with userxattr, which root can
 * use as well). */
static bool trusted_xattrs_allowed(void)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];

	if (geteuid() != 0 || syscall(SYS_capget, &hdr, data) < 0)
		return false;
	return data[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective & CAP_TO_MASK(CAP_SYS_ADMIN);
}

static int read_store_json(struct store *s, struct err *err)
{
	_cleanup_free_ char *path = spath(s, "store.json");
	_cleanup_json_ cJSON *doc = NULL;
	const char *w;

	if (!path_exists(path)) {
		_cleanup_json_ cJSON *n = cJSON_CreateObject();

		cJSON_AddNumberToObject(n, "version", STORE_VERSION);
		cJSON_AddStringToObject(n, "whiteouts",
		                        trusted_xattrs_allowed() ? "trusted" : "user");
		if (json_write_file_atomic(path, n, err) < 0)
			return -1;
	}
	if (json_load_file(path, &doc, err) < 0)
		return -1;
	if (json_get_num(doc, "version", 0) != STORE_VERSION)
		return err_set(err, EINVAL, "%s: unsupported store version", path);
	w = json_get_str(doc, "whiteouts");
	if (w && strcmp(w, "trusted") == 0)
		s->whiteouts = STORE_WHITEOUTS_TRUSTED;
	else if (w && strcmp(w, "user") == 0)
		s->whiteouts = STORE_WHITEOUTS_USER;
	else
		return err_set(err, EINVAL, "%s: bad \"whiteouts\"", path);
	return 0;
}

/* The store and everything in it is its owner's alone: layers hold the images'
 * setuid files and device nodes, envs/ and tmp/ the environments' and builds'
 * files. Nothing else needs to walk these paths: overlayfs checks a lower file
 * with the mounter's credentials (root, or the owner in a rootless user
 * namespace), never the path above the layer. Hence 0700, not Docker's 0710
 * (which it needs only for userns-remap, whose remapped root walks the tree). */
#define STORE_DIR_MODE 0700

/* The store's own directories, and those the sandbox and the builder make in it. */
static const char *const own_dirs[] = {"blobs", "blobs/sha256", "layers", "images", "envs", "tmp"};
static const char *const other_dirs[] = {"trash", "locks", "build-cache", "sandbox"};

/* Creates root 0700 (its missing parents 0755, as mkdir -p would). */
static int make_root(const char *root, struct err *err)
{
	_cleanup_free_ char *parent = xstrdup(root);
	char *slash = strrchr(parent, '/');

	if (mkdir(root, STORE_DIR_MODE) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT || !slash || slash == parent)
		return err_sys(err, "mkdir %s", root);
	*slash = '\0';
	if (mkdir_p(parent, 0755, err) < 0)
		return -1;
	if (mkdir(root, STORE_DIR_MODE) < 0 && errno != EEXIST)
		return err_sys(err, "mkdir %s", root);
	return 0;
}

/* Makes dirfd/name (a directory; "" = dirfd itself) 0700 unless it already is.
 * Returns 1 when it changed the mode, 0 when there was nothing to do. */
static int tighten(int dirfd, const char *name, const char *root, struct err *err)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW | (*name ? 0 : AT_EMPTY_PATH)) < 0)
		return errno == ENOENT ? 0 : err_sys(err, "stat %s/%s", root, name);
	if (!S_ISDIR(st.st_mode) || (st.st_mode & 07777) == STORE_DIR_MODE)
		return 0;
	if (*name ? fchmodat(dirfd, name, STORE_DIR_MODE, 0) < 0
	          : fchmod(dirfd, STORE_DIR_MODE) < 0)
		return err_sys(err, "chmod 0700 %s/%s (the store must be closed to other users)",
		               root, name);
	return 1;
}

/* Whether every entry of the directory is one a store has: $ROLLOUT_HOME set
 * to a directory of other uses (a home, /var/lib) must not lose its mode. */
static bool holds_only_store_files(int rootfd)
{
	static const char *const files[] = {"lock", "store.json", "refs.json"};
	int fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	bool ok = true;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	while (ok && (de = readdir(d))) {
		const char *n = de->d_name;
		bool known = strcmp(n, ".") == 0 || strcmp(n, "..") == 0;

		for (size_t i = 0; !known && i < ARRAY_SIZE(own_dirs); i++)
			known = strcmp(n, own_dirs[i]) == 0;
		for (size_t i = 0; !known && i < ARRAY_SIZE(other_dirs); i++)
			known = strcmp(n, other_dirs[i]) == 0;
		/* ...and the temporary files of their atomic rewrites */
		for (size_t i = 0; !known && i < ARRAY_SIZE(files); i++)
			known = str_starts_with(n, files[i]);
		ok = known;
	}
	return ok;
}

/* The root always; its subdirectories when the root was open, i.e. in a store
 * made by an older rollout (0711 directories, traversable by every user). */
static int close_to_others(struct store *s, struct err *err)
{
	struct stat st;
	int rc;

	if (fstat(s->rootfd, &st) < 0)
		return err_sys(err, "stat %s", s->root);
	if ((st.st_mode & 07777) == STORE_DIR_MODE)
		return 0;
	if (!holds_only_store_files(s->rootfd))
		return err_set(err, EEXIST,
		               "%s is mode %04o and holds files that are not the store's: "
		               "refusing to make it 0700; point ROLLOUT_HOME at a directory of "
		               "its own",
		               s->root, (unsigned)(st.st_mode & 07777));
	rc = tighten(s->rootfd, "", s->root, err);
	if (rc <= 0)
		return rc;
	for (size_t i = 0; i < ARRAY_SIZE(own_dirs); i++)
		if (tighten(s->rootfd, own_dirs[i], s->root, err) < 0)
			return -1;
	for (size_t i = 0; i < ARRAY_SIZE(other_dirs); i++)
		if (tighten(s->rootfd, other_dirs[i], s->root, err) < 0)
			return -1;
	return 0;
}

int store_open(const char *root, struct store **out, struct err *err)
{
	_cleanup_free_ char *r = root ? xstrdup(root) : store_default_root();
	static const char *const topdirs[] = {"layers", "envs", "tmp"};
	struct store *s;

	if (make_root(r, err) < 0)
		return err_wrap(err, "image store");
	s = xcalloc(1, sizeof(*s));
	s->root = path_real(r);
	s->lockfd = -1;
	s->held = -1;
	if (!s->root) {
		err_sys(err, "image store %s", r);
		free(s);
		return -1;
	}
	s->rootfd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->rootfd < 0) {
		err_sys(err, "open image store %s", s->root);
		goto fail;
	}
	if (close_to_others(s, err) < 0)
		goto fail;
	for (size_t i = 0; i < ARRAY_SIZE(own_dirs); i++) {
		if (mkdirat(s->rootfd, own_dirs[i], STORE_DIR_MODE) < 0 && errno != EEXIST) {
			err_sys(err, "mkdir %s/%s", s->root, own_dirs[i]);
			goto fail;
		}
	}
	/* Each environment is a tree of a few dozen inodes made and deleted within
	 * its trial, each layer a tree of its own: spread over the filesystem they
	 * do not crowd one block group. It matters most on an ext4 without a
	 * journal, whose allocator steps over every recently deleted inode of the
	 * group it allocates in (bench/job_throughput.sh). */
	for (size_t i = 0; i < ARRAY_SIZE(topdirs); i++) {
		_cleanup_free_ char *d = spath(s, "%s", topdirs[i]);

		dir_mark_topdir(d);
	}
	s->lockfd = openat(s->rootfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lockfd < 0) {
		err_sys(err, "open %s/lock", s->root);
		goto fail;
	}
	if (read_store_json(s, err) < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	store_close(s);
	return err_wrap(err, "image store");
}

void store_close(struct store *s)
{
	if (!s)
		return;
	if (s->lockfd >= 0)
		close(s->lockfd);
	if (s->rootfd >= 0)
		close(s->rootfd);
	free(s->root);
	free(s);
}

/* ---- locking ---- */

static int apply_lock(struct store *s, int want, struct err *err)
{
	int op = want < 0 ? LOCK_UN : want == STORE_LOCK_EXCLUSIVE ? LOCK_EX : LOCK_SH;

	if (want == s->held)
		return 0;
	while (flock(s->lockfd, op) < 0) {
		if (errno == EINTR && !cancel_requested())
			continue;
		return err_sys(err, "lock %s/lock", s->root);
	}
	s->held = want;
	return 0;
}

static int wanted_lock(const struct store *s)
{
	int want = -1;

	for (int i = 0; i < s->depth; i++)
		if ((int)s->modes[i] > want)
			want = (int)s->modes[i];
	return want;
}

int store_lock(struct store *s, enum store_lock_mode mode, struct err *err)
{
	if (s->depth >= (int)ARRAY_SIZE(s->modes))
		return err_set(err, EDEADLK, "image store: lock nested too deeply");
	s->modes[s->depth++] = mode;
	if (apply_lock(s, wanted_lock(s), err) < 0) {
		s->depth--;
		return -1;
	}
	return 0;
}

void store_unlock(struct store *s)
{
	if (s->depth == 0)
		return;
	s->depth--;
	/* Downgrading or unlocking cannot block. */
	apply_lock(s, wanted_lock(s), NULL);
}

/* ---- references ---- */

static bool is_hex(const char *s, size_t min)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
			return false;
	return n >= min;
}

char *store_normalize_ref(const char *ref, struct err *err)
{
	const char *name = ref, *slash, *colon;
	static const char *const prefixes[] = {
	    "docker.io/library/", "index.docker.io/library/", "registry-1.docker.io/library/",
	    "docker.io/",         "index.docker.io/",         "library/"};

	if (!ref || !*ref || strlen(ref) > 512) {
		err_set(err, EINVAL, "invalid image reference '%.80s'", ref ? ref : "");
		return NULL;
	}
	for (const char *p = ref; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == '"' || *p == '\\' || *p == 0x7f) {
			err_set(err, EINVAL, "invalid image reference '%.80s'", ref);
			return NULL;
		}
	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++)
		if (str_starts_with(name, prefixes[i]) && name[strlen(prefixes[i])]) {
			name = name + strlen(prefixes[i]);
			break;
		}
	if (*name == '/' || *name == ':' || *name == '@' || str_ends_with(name, ":") ||
	    str_ends_with(name, "/")) {
		err_set(err, EINVAL, "invalid image reference '%.80s'", ref);
		return NULL;
	}
	if (strchr(name, '@'))
		return xstrdup(name);
	slash = strrchr(name, '/');
	colon = strrchr(name, ':');
	if (colon && (!slash || colon > slash))
		return xstrdup(name);
	return xasprintf("%s:latest", name);
}

static int refs_load(struct store *s, cJSON **out, struct err *err)
{
	_cleanup_free_ char *path = spath(s, "refs.json");
	cJSON *doc = NULL;

	if (!path_exists(path)) {
		doc = cJSON_CreateObject();
		cJSON_AddItemToObject(doc, "refs", cJSON_CreateObject());
		*out = doc;
		return 0;
	}
	if (json_load_file(path, &doc, err) < 0)
		return -1;
	if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(doc, "refs"))) {
		cJSON_Delete(doc);
		return err_set(err, EINVAL, "%s: missing \"refs\"", path);
	}
	*out = doc;
	return 0;
}

static int refs_save(struct store *s, const cJSON *doc, struct err *err)
{
	_cleanup_free_ char *path = spath(s, "refs.json");

	return json_write_file_atomic(path, doc, err);
}

static cJSON *refs_map(cJSON *doc)
{
	return cJSON_GetObjectItemCaseSensitive(doc, "refs");
}

/* ---- image records ---- */

static char *image_record_path(struct store *s, const char *id)
{
	return spath(s, "images/%s.json", oci_digest_hex(id));
}

static int image_record_load(struct store *s, const char *id, cJSON **out, struct err *err)
{
	_cleanup_free_ char *path = image_record_path(s, id);

	if (json_load_file(path, out, err) < 0)
		return -1;
	if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(*out, "chain_ids"))) {
		cJSON_Delete(*out);
		*out = NULL;
		return err_set(err, EINVAL, "%s: missing chain_ids", path);
	}
	return 0;
}

static bool image_exists(struct store *s, const char *id)
{
	_cleanup_free_ char *path = image_record_path(s, id);

	return path_is_file(path);
}

/* All image IDs in images/. */
static int image_ids(struct store *s, struct strv *out, struct err *err)
{
	_cleanup_free_ char *dir = spath(s, "images");
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return err_sys(err, "open %s", dir);
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);

		if (n == SHA256_HEX_LEN + 5 && str_ends_with(de->d_name, ".json"))
			strv_pushf(out, "sha256:%.*s", SHA256_HEX_LEN, de->d_name);
	}
	return 0;
}

/* Image IDs used by environments (envs/<name>/image), with the env names. */
static int env_uses(struct store *s, struct strv *ids, struct strv *names, struct err *err)
{
	_cleanup_free_ char *dir = spath(s, "envs");
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return err_sys(err, "open %s", dir);
	while ((de = readdir(d))) {
		_cleanup_free_ char *path = NULL, *text = NULL;

		if (de->d_name[0] == '.')
			continue;
		path = xasprintf("%s/%s/image", dir, de->d_name);
		if (read_file(path, 1 << 20, &text, NULL, NULL) < 0)
			continue;
		/* One image ID per line (a build marks several). */
		for (char *line = text, *nl; *line; line = nl) {
			nl = line + strcspn(line, "\r\n");
			if (*nl)
				*nl++ = '\0';
			if (!oci_digest_valid(line))
				continue;
			strv_push(ids, line);
			if (names)
				strv_push(names, de->d_name);
		}
	}
	return 0;
}

/* Resolve a reference or ID to an image ID. ENOENT when unknown. */
static int resolve_image(struct store *s, const char *ref_or_id, char **id, char **ref,
                         struct err *err)
{
	_cleanup_json_ cJSON *refs = NULL;
	_cleanup_free_ char *norm = NULL;
	_cleanup_strvs_ struct strv ids = STRV_INIT;
	const char *hex = ref_or_id;
	const char *found = NULL;

	*id = NULL;
	if (ref)
		*ref = NULL;
	if (oci_digest_valid(ref_or_id)) {
		if (!image_exists(s, ref_or_id))
			return err_set(err, ENOENT, "no image %s in the store", ref_or_id);
		*id = xstrdup(ref_or_id);
		return 0;
	}
	if (refs_load(s, &refs, err) < 0)
		return -1;
	norm = store_normalize_ref(ref_or_id, NULL);
	if (norm) {
		const char *target = json_get_str(refs_map(refs), norm);

		if (target && oci_digest_valid(target)) {
			*id = xstrdup(target);
			if (ref)
				*ref = steal_ptr(&norm);
			return 0;
		}
	}
	if (str_starts_with(hex, "sha256:"))
		hex += 7;
	if (is_hex(hex, 4) && strlen(hex) <= SHA256_HEX_LEN) {
		if (image_ids(s, &ids, err) < 0)
			return -1;
		for (size_t i = 0; i < ids.n; i++) {
			if (!str_starts_with(oci_digest_hex(ids.v[i]), hex))
				continue;
			if (found)
				return err_set(err, EINVAL, "image ID prefix '%s' is ambiguous",
				               hex);
			found = ids.v[i];
		}
		if (found) {
			*id = xstrdup(found);
			return 0;
		}
	}
	return err_set(err, ENOENT, "no image '%s' in the store (%s)", ref_or_id, s->root);
}

/* ---- layers ---- */

void prepared_layer_release(struct prepared_layer *l)
{
	free(l->chain_id);
	free(l->diff_id);
	free(l->dir);
	free(l->digest);
	free(l->media_type);
	memset(l, 0, sizeof(*l));
}

bool store_layer_exists(struct store *s, const char *chain_id)
{
	_cleanup_free_ char *p = spath(s, "layers/%s/diff", oci_digest_hex(chain_id));

	return path_is_dir(p);
}

char *store_layer_diff_path(struct store *s, const struct prepared_layer *l)
{
	if (l->dir)
		return xasprintf("%s/diff", l->dir);
	return spath(s, "layers/%s/diff", oci_digest_hex(l->chain_id));
}

void store_extract_opts(struct store *s, struct tar_extract_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->flags = TAR_X_XATTRS | TAR_X_SETID | TAR_X_DEVICES;
	if (geteuid() == 0)
		o->flags |= TAR_X_OWNERS;
	o->whiteouts = s->whiteouts == STORE_WHITEOUTS_TRUSTED ? TAR_WHITEOUTS_OVERLAY
	                                                       : TAR_WHITEOUTS_OVERLAY_USER;
	o->max_bytes = store_max_layer_size();
}

/* ---- jobs ---- */

int store_job_create(struct store *s, struct store_job *j, struct err *err)
{
	uint8_t rnd[6];
	char hex[13];
	_cleanup_free_ char *lock = NULL;

	memset(j, 0, sizeof(*j));
	j->lockfd = -1;
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return err_sys(err, "getrandom");
	hex_encode(rnd, sizeof(rnd), hex);
	j->name = xasprintf("%d-%s", (int)getpid(), hex);
	lock = spath(s, "tmp/%s.lock", j->name);
	j->lockfd = open(lock, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (j->lockfd < 0 || flock(j->lockfd, LOCK_EX | LOCK_NB) < 0) {
		err_sys(err, "create %s", lock);
		store_job_destroy(s, j);
		return -1;
	}
	j->dir = spath(s, "tmp/%s", j->name);
	if (mkdir(j->dir, 0700) < 0) {
		err_sys(err, "mkdir %s", j->dir);
		store_job_destroy(s, j);
		return -1;
	}
	return 0;
}

void store_job_destroy(struct store *s, struct store_job *j)
{
	if (j->dir)
		rm_rf(j->dir, NULL);
	if (j->name) {
		_cleanup_free_ char *lock = spath(s, "tmp/%s.lock", j->name);

		unlink(lock);
	}
	if (j->lockfd >= 0)
		close(j->lockfd);
	free(j->name);
	free(j->dir);
	memset(j, 0, sizeof(*j));
	j->lockfd = -1;
}

/* Work directories whose owner is gone (its flock released). Exclusive lock held. */
static size_t clean_stale_jobs(struct store *s)
{
	_cleanup_free_ char *dir = spath(s, "tmp");
	_cleanup_closedir_ DIR *d = opendir(dir);
	_cleanup_strvs_ struct strv names = STRV_INIT;
	struct dirent *de;
	size_t n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			strv_push(&names, de->d_name);
	for (size_t i = 0; i < names.n; i++) {
		const char *name = names.v[i];
		_cleanup_free_ char *lock = NULL, *work = NULL;
		_cleanup_close_ int fd = -1;

		if (str_ends_with(name, ".lock")) {
			lock = xasprintf("%s/%s", dir, name);
			fd = open(lock, O_RDWR | O_CLOEXEC);
			if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0)
				continue;
			work = xasprintf("%s/%.*s", dir, (int)(strlen(name) - 5), name);
			rm_rf(work, NULL);
			unlink(lock);
			n++;
		} else {
			/* A work dir without a lock file: its owner died between the two. */
			_cleanup_free_ char *l = xasprintf("%s/%s.lock", dir, name);

			work = xasprintf("%s/%s", dir, name);
			if (!path_exists(l) && path_exists(work)) {
				rm_rf(work, NULL);
				n++;
			}
		}
	}
	return n;
}

/* ---- unpacking and committing ---- */

int store_unpack_layer(struct store *s, struct store_job *j, const struct layer_src *src,
                       const int *lowers, size_t n_lowers, struct prepared_layer *out,
                       struct err *err)
{
	struct decompress_opts dopts = {.fd = src->fd,
	                                .offset = src->offset,
	                                .length = src->length,
	                                .threaded = true,
	                                .max_output = store_max_layer_size()};
	struct decompress *d = NULL;
	struct decompress_result res;
	struct tar_extract_opts xo;
	struct tar_extract_stats st;
	struct tar_reader *r = NULL;
	struct tar_input in;
	_cleanup_free_ char *dir = xasprintf("%s/L%u", j->dir, j->n_layers++);
	_cleanup_free_ char *diff = xasprintf("%s/diff", dir);
	_cleanup_close_ int dfd = -1;

	if (mkdir(dir, 0700) < 0 || mkdir(diff, 0755) < 0) {
		err_sys(err, "mkdir %s", diff);
		goto fail;
	}
	dfd = open(diff, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		err_sys(err, "open %s", diff);
		goto fail;
	}
	if (decompress_open(&d, &dopts, err) < 0)
		goto fail;
	if (src->check_compression && decompress_compression(d) != src->compression) {
		err_set(err, EINVAL, "content is %s-compressed but the media type says %s",
		        compression_name(decompress_compression(d)),
		        compression_name(src->compression));
		goto fail;
	}
	in = decompress_tar_input(d);
	r = tar_reader_new(&in);
	store_extract_opts(s, &xo);
	xo.deadline = src->deadline;
	xo.lowers = lowers;
	xo.n_lowers = n_lowers;
	if (tar_extract(r, dfd, &xo, &st, err) < 0 || tar_reader_drain(r, err) < 0 ||
	    decompress_finish(d, &res, err) < 0)
		goto fail;
	if (src->length != DECOMPRESS_STREAM && res.compressed_size != src->length) {
		err_set(err, EIO, "blob is %" PRIu64 " bytes, expected %" PRIu64,
		        res.compressed_size, src->length);
		goto fail;
	}
	if (src->digest && strcmp(src->digest, res.compressed_digest) != 0) {
		err_set(err, EINVAL, "digest mismatch: expected %s, the blob is %s", src->digest,
		        res.compressed_digest);
		goto fail;
	}
	if (src->diff_id && strcmp(src->diff_id, res.uncompressed_digest) != 0) {
		err_set(err, EINVAL, "diff ID mismatch: the config says %s, the layer is %s",
		        src->diff_id, res.uncompressed_digest);
		goto fail;
	}
	tar_reader_free(r);
	decompress_free(d);
	/* The caller may have filled diff_id/digest from the manifest already. */
	free(out->dir);
	free(out->diff_id);
	free(out->digest);
	out->dir = steal_ptr(&dir);
	out->diff_id = xstrdup(res.uncompressed_digest);
	out->digest = xstrdup(res.compressed_digest);
	out->size = st.bytes;
	return 0;
fail:
	tar_reader_free(r);
	decompress_free(d);
	rm_rf(dir, NULL);
	return err_wrap(err, "%s", src->label);
}

static int write_blob(struct store *s, const char *data, size_t len, char **digest_out,
                      struct err *err)
{
	char hex[SHA256_HEX_LEN + 1];
	_cleanup_free_ char *path = NULL;

	sha256_hex(data, len, hex);
	path = spath(s, "blobs/sha256/%s", hex);
	if (!path_is_file(path) && write_file_atomic(path, data, len, 0644, err) < 0)
		return -1;
	if (digest_out)
		*digest_out = xasprintf("sha256:%s", hex);
	return 0;
}

static int write_layer_json(const struct prepared_layer *l, const char *parent, struct err *err)
{
	_cleanup_json_ cJSON *j = cJSON_CreateObject();
	_cleanup_free_ char *path = xasprintf("%s/layer.json", l->dir);

	cJSON_AddStringToObject(j, "chain_id", l->chain_id);
	cJSON_AddStringToObject(j, "diff_id", l->diff_id);
	json_add_str_or_null(j, "parent", parent);
	cJSON_AddNumberToObject(j, "size", (double)l->size);
	json_add_str_or_null(j, "digest", l->digest);
	json_add_str_or_null(j, "media_type", l->media_type);
	{
		_cleanup_sb_ struct strbuf sb = STRBUF_INIT;

		json_print(j, &sb);
		return write_file(path, sb.buf, sb.len, 0444, err);
	}
}

static uint64_t layer_size(struct store *s, const char *chain_id)
{
	_cleanup_free_ char *path = spath(s, "layers/%s/layer.json", oci_digest_hex(chain_id));
	_cleanup_json_ cJSON *j = NULL;

	if (json_load_file(path, &j, NULL) < 0)
		return 0;
	return (uint64_t)json_get_num(j, "size", 0);
}

int store_commit_image(struct store *s, const struct store_commit *c, char **out_id,
                       struct err *err)
{
	_cleanup_free_ char *id = NULL, *manifest_digest = NULL;
	_cleanup_json_ cJSON *refs = NULL;
	uint64_t size = 0;
	bool refs_changed = false;
	int ret = -1;

	/* Never store what lookups could not read back: it would be an image in
	 * the list that nothing can use. Checked before any layer moves in. */
	if (c->config_len > STORE_MAX_CONFIG)
		return err_set(err, EFBIG,
		               "the image config is %zu bytes, more than the %d an image config "
		               "may have",
		               c->config_len, STORE_MAX_CONFIG);
	if (store_lock(s, STORE_LOCK_EXCLUSIVE, err) < 0)
		return -1;
	/* Layers the image relies on that were already here must still be. */
	for (size_t i = 0; i < c->n_layers; i++)
		if (!c->layers[i].dir && !store_layer_exists(s, c->layers[i].chain_id)) {
			err_set(err, EAGAIN, "layer %s was removed while loading; try again",
			        c->layers[i].chain_id);
			goto out;
		}
	for (size_t i = 0; i < c->n_layers; i++) {
		struct prepared_layer *l = &c->layers[i];
		_cleanup_free_ char *target = NULL;

		if (!l->dir)
			continue;
		target = spath(s, "layers/%s", oci_digest_hex(l->chain_id));
		if (path_exists(target)) { /* another process committed it first */
			rm_rf(l->dir, NULL);
		} else {
			if (write_layer_json(l, i ? c->layers[i - 1].chain_id : NULL, err) < 0)
				goto out;
			/* Moving a directory needs write access to it (its ".." changes):
			 * make it read-only once in place. */
			if (rename(l->dir, target) < 0) {
				err_sys(err, "move layer into %s", target);
				goto out;
			}
			if (chmod(target, 0555) < 0) {
				err_sys(err, "chmod %s", target);
				goto out;
			}
		}
		free(l->dir);
		l->dir = NULL;
	}
	for (size_t i = 0; i < c->n_layers; i++)
		size += layer_size(s, c->layers[i].chain_id);
	if (write_blob(s, c->config, c->config_len, &id, err) < 0)
		goto out;
	if (c->manifest && write_blob(s, c->manifest, c->manifest_len, &manifest_digest, err) < 0)
		goto out;
	if (!image_exists(s, id)) {
		_cleanup_json_ cJSON *rec = cJSON_CreateObject();
		_cleanup_free_ char *path = image_record_path(s, id);
		cJSON *chains = cJSON_AddArrayToObject(rec, "chain_ids");
		cJSON *diffs;
		char now[ISO8601_LEN];

		cJSON_AddStringToObject(rec, "id", id);
		json_add_str_or_null(rec, "manifest", manifest_digest);
		for (size_t i = 0; i < c->n_layers; i++)
			cJSON_AddItemToArray(chains, cJSON_CreateString(c->layers[i].chain_id));
		diffs = cJSON_AddArrayToObject(rec, "diff_ids");
		for (size_t i = 0; i < c->n_layers; i++)
			cJSON_AddItemToArray(diffs, cJSON_CreateString(c->layers[i].diff_id));
		cJSON_AddNumberToObject(rec, "size", (double)size);
		iso8601_format(wall_now(), now, sizeof(now));
		cJSON_AddStringToObject(rec, "loaded", now);
		json_add_str_or_null(rec, "source", c->source);
		if (c->parent)
			cJSON_AddStringToObject(rec, "parent", c->parent);
		if (c->intermediate)
			cJSON_AddTrueToObject(rec, "intermediate");
		if (json_write_file_atomic(path, rec, err) < 0)
			goto out;
	}
	if (c->refs && c->refs[0]) {
		if (refs_load(s, &refs, err) < 0)
			goto out;
		for (char *const *r = c->refs; *r; r++) {
			const char *old = json_get_str(refs_map(refs), *r);

			if (old && strcmp(old, id) == 0)
				continue;
			cJSON_DeleteItemFromObjectCaseSensitive(refs_map(refs), *r);
			cJSON_AddStringToObject(refs_map(refs), *r, id);
			refs_changed = true;
		}
		if (refs_changed && refs_save(s, refs, err) < 0)
			goto out;
	}
	if (out_id)
		*out_id = steal_ptr(&id);
	ret = 0;
out:
	store_unlock(s);
	return ret;
}

/* ---- lookup ---- */

void store_image_free(struct store_image *img)
{
	if (!img)
		return;
	free(img->id);
	free(img->ref);
	image_config_release(&img->config);
	strv_free(img->layer_dirs);
	strv_free(img->chain_ids);
	free(img);
}

static int load_config_blob(struct store *s, const char *id, struct image_config *cfg,
                            struct err *err)
{
	_cleanup_free_ char *path = spath(s, "blobs/sha256/%s", oci_digest_hex(id));
	_cleanup_free_ char *text = NULL;
	size_t len;

	if (read_file(path, STORE_MAX_CONFIG, &text, &len, err) < 0 ||
	    image_config_parse(text, len, path, cfg, err) < 0) {
		_cleanup_free_ char *why = NULL;

		if (!err)
			return -1;
		why = xstrdup(err->msg);
		return err_set(err, err->code ? err->code : EINVAL,
		               "image %s cannot be read: %s (`rollout image rm %.12s` or `rollout "
		               "image prune` removes it)",
		               id, why, oci_digest_hex(id));
	}
	return 0;
}

int store_lookup_locked(struct store *s, const char *ref_or_id, struct store_image **out,
                        struct err *err)
{
	struct store_image *img = xcalloc(1, sizeof(*img));
	_cleanup_json_ cJSON *rec = NULL;
	const cJSON *it;
	struct strv dirs = STRV_INIT, chains = STRV_INIT;

	if (resolve_image(s, ref_or_id, &img->id, &img->ref, err) < 0 ||
	    image_record_load(s, img->id, &rec, err) < 0 ||
	    load_config_blob(s, img->id, &img->config, err) < 0) {
		store_image_free(img);
		return -1;
	}
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(rec, "chain_ids"))
	{
		_cleanup_free_ char *dir = NULL;

		if (!cJSON_IsString(it) || !oci_digest_valid(it->valuestring)) {
			err_set(err, EINVAL, "image %s: bad chain ID in its record", img->id);
			goto fail;
		}
		dir = spath(s, "layers/%s/diff", oci_digest_hex(it->valuestring));
		if (!path_is_dir(dir)) {
			err_set(err, ENOENT, "image %s: layer %s is missing from the store",
			        img->id, it->valuestring);
			goto fail;
		}
		strv_push(&chains, it->valuestring);
		strv_push_take(&dirs, steal_ptr(&dir));
	}
	if (chains.n != img->config.n_diff_ids) {
		err_set(err, EINVAL, "image %s: %zu layers but %zu diff IDs in its config", img->id,
		        chains.n, img->config.n_diff_ids);
		goto fail;
	}
	img->n_layers = chains.n;
	img->layer_dirs = strv_array(&dirs);
	img->chain_ids = strv_array(&chains);
	img->size = (uint64_t)json_get_num(rec, "size", 0);
	*out = img;
	return 0;
fail:
	strv_release(&dirs);
	strv_release(&chains);
	store_image_free(img);
	return -1;
}

int store_image_lookup(struct store *s, const char *ref_or_id, struct store_image **out,
                       struct err *err)
{
	int ret;

	if (store_lock(s, STORE_LOCK_SHARED, err) < 0)
		return -1;
	ret = store_lookup_locked(s, ref_or_id, out, err);
	store_unlock(s);
	return ret;
}

int store_tag(struct store *s, const char *ref_or_id, const char *new_ref, struct err *err)
{
	_cleanup_free_ char *id = NULL, *norm = store_normalize_ref(new_ref, err);
	_cleanup_json_ cJSON *refs = NULL;
	int ret = -1;

	if (!norm)
		return -1;
	if (store_lock(s, STORE_LOCK_EXCLUSIVE, err) < 0)
		return -1;
	if (resolve_image(s, ref_or_id, &id, NULL, err) < 0 || refs_load(s, &refs, err) < 0)
		goto out;
	cJSON_DeleteItemFromObjectCaseSensitive(refs_map(refs), norm);
	cJSON_AddStringToObject(refs_map(refs), norm, id);
	ret = refs_save(s, refs, err);
out:
	store_unlock(s);
	return ret;
}

/* ---- listing, removing, pruning ---- */

void store_list_free(struct store_image_info *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].id);
		strv_free(v[i].refs);
		free(v[i].created);
	}
	free(v);
}

/* Whether a lookup of the image would succeed: only such images are listed (one
 * that cannot be read is named in a warning, for rm or prune). */
static bool image_readable(struct store *s, const char *id)
{
	struct store_image *img = NULL;
	struct err err;

	if (store_lookup_locked(s, id, &img, &err) == 0) {
		store_image_free(img);
		return true;
	}
	log_warn("not listed: %s", err.msg);
	return false;
}

static int cmp_info(const void *a, const void *b)
{
	const struct store_image_info *x = a, *y = b;
	int c = strcmp(y->created ? y->created : "", x->created ? x->created : "");

	return c ? c : strcmp(x->id, y->id);
}

int store_list(struct store *s, struct store_image_info **out, size_t *n, struct err *err)
{
	_cleanup_strvs_ struct strv ids = STRV_INIT, used = STRV_INIT;
	_cleanup_json_ cJSON *refs = NULL;
	struct store_image_info *v;
	size_t k = 0;
	int ret = -1;

	*out = NULL;
	*n = 0;
	if (store_lock(s, STORE_LOCK_SHARED, err) < 0)
		return -1;
	if (image_ids(s, &ids, err) < 0 || refs_load(s, &refs, err) < 0 ||
	    env_uses(s, &used, NULL, err) < 0)
		goto out;
	v = xcalloc(ids.n + 1, sizeof(*v));
	for (size_t i = 0; i < ids.n; i++) {
		_cleanup_json_ cJSON *rec = NULL;
		struct strv r = STRV_INIT;
		const cJSON *it;

		if (!image_readable(s, ids.v[i]) || image_record_load(s, ids.v[i], &rec, NULL) < 0)
			continue;
		cJSON_ArrayForEach(it, refs_map(refs))
		{
			if (cJSON_IsString(it) && strcmp(it->valuestring, ids.v[i]) == 0)
				strv_push(&r, it->string);
		}
		v[k].id = xstrdup(ids.v[i]);
		v[k].refs = strv_array(&r);
		v[k].created =
		    json_get_str(rec, "loaded") ? xstrdup(json_get_str(rec, "loaded")) : NULL;
		v[k].size = (uint64_t)json_get_num(rec, "size", 0);
		v[k].n_layers =
		    (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(rec, "chain_ids"));
		v[k].in_use = strv_contains(&used, ids.v[i]);
		v[k].intermediate =
		    !v[k].refs[0] &&
		    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "intermediate"));
		k++;
	}
	qsort(v, k, sizeof(*v), cmp_info);
	*out = v;
	*n = k;
	ret = 0;
out:
	store_unlock(s);
	return ret;
}

/* Delete the image record and its blobs; returns how many blobs went. Exclusive
 * lock held. */
static size_t delete_image(struct store *s, const char *id)
{
	_cleanup_json_ cJSON *rec = NULL;
	_cleanup_free_ char *path = image_record_path(s, id);
	_cleanup_free_ char *blob = spath(s, "blobs/sha256/%s", oci_digest_hex(id));
	size_t n = 0;

	if (image_record_load(s, id, &rec, NULL) == 0) {
		const char *m = json_get_str(rec, "manifest");

		if (m && oci_digest_valid(m)) {
			_cleanup_free_ char *mp = spath(s, "blobs/sha256/%s", oci_digest_hex(m));

			n += unlink(mp) == 0;
		}
	}
	unlink(path);
	n += unlink(blob) == 0;
	return n;
}

/* Remove layers (and blobs) no image record refers to. Exclusive lock held. */
static int gc_layers_and_blobs(struct store *s, struct store_prune_result *res, struct err *err)
{
	_cleanup_strvs_ struct strv ids = STRV_INIT, keep_layers = STRV_INIT,
	                            keep_blobs = STRV_INIT;
	_cleanup_free_ char *ldir = spath(s, "layers"), *bdir = spath(s, "blobs/sha256");
	DIR *d;
	struct dirent *de;
	_cleanup_strvs_ struct strv names = STRV_INIT;

	if (image_ids(s, &ids, err) < 0)
		return -1;
	for (size_t i = 0; i < ids.n; i++) {
		_cleanup_json_ cJSON *rec = NULL;
		const cJSON *it;
		const char *m;
		struct err e;

		if (image_record_load(s, ids.v[i], &rec, &e) < 0) {
			/* Its layers are unknown: delete none (prune removes it first). */
			log_warn("%s; no layer removed (`rollout image prune` removes the image)",
			         e.msg);
			return 0;
		}
		cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(rec, "chain_ids"))
		{
			if (cJSON_IsString(it) && oci_digest_valid(it->valuestring))
				strv_push(&keep_layers, oci_digest_hex(it->valuestring));
		}
		strv_push(&keep_blobs, oci_digest_hex(ids.v[i]));
		m = json_get_str(rec, "manifest");
		if (m && oci_digest_valid(m))
			strv_push(&keep_blobs, oci_digest_hex(m));
	}
	d = opendir(ldir);
	if (!d)
		return err_sys(err, "open %s", ldir);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && !strv_contains(&keep_layers, de->d_name))
			strv_push(&names, de->d_name);
	closedir(d);
	for (size_t i = 0; i < names.n; i++) {
		_cleanup_free_ char *chain = xasprintf("sha256:%s", names.v[i]);
		_cleanup_free_ char *p = xasprintf("%s/%s", ldir, names.v[i]);
		uint64_t sz = layer_size(s, chain);

		if (rm_rf(p, err) < 0)
			return err_wrap(err, "prune");
		if (res) {
			res->layers++;
			res->bytes += sz;
		}
	}
	strv_release(&names);
	d = opendir(bdir);
	if (!d)
		return err_sys(err, "open %s", bdir);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && !strv_contains(&keep_blobs, de->d_name))
			strv_push(&names, de->d_name);
	closedir(d);
	for (size_t i = 0; i < names.n; i++) {
		_cleanup_free_ char *p = xasprintf("%s/%s", bdir, names.v[i]);

		if (unlink(p) == 0 && res)
			res->blobs++;
	}
	return 0;
}

int store_remove(struct store *s, const char *ref_or_id, struct err *err)
{
	_cleanup_free_ char *id = NULL, *ref = NULL;
	_cleanup_json_ cJSON *refs = NULL;
	_cleanup_strvs_ struct strv used = STRV_INIT, users = STRV_INIT;
	bool by_id, still_referenced = false;
	const cJSON *it;
	int ret = -1;

	if (store_lock(s, STORE_LOCK_EXCLUSIVE, err) < 0)
		return -1;
	if (resolve_image(s, ref_or_id, &id, &ref, err) < 0 || refs_load(s, &refs, err) < 0 ||
	    env_uses(s, &used, &users, err) < 0)
		goto out;
	by_id = ref == NULL;
	if (by_id) {
		for (size_t i = 0; i < used.n; i++)
			if (strcmp(used.v[i], id) == 0) {
				err_set(err, EBUSY, "image %s is used by environment '%s'", id,
				        users.v[i]);
				goto out;
			}
		for (cJSON *r = refs_map(refs)->child, *next; r; r = next) {
			next = r->next;
			if (cJSON_IsString(r) && strcmp(r->valuestring, id) == 0)
				cJSON_DeleteItemFromObjectCaseSensitive(refs_map(refs), r->string);
		}
	} else {
		cJSON_DeleteItemFromObjectCaseSensitive(refs_map(refs), ref);
	}
	if (refs_save(s, refs, err) < 0)
		goto out;
	cJSON_ArrayForEach(it, refs_map(refs))
	{
		if (cJSON_IsString(it) && strcmp(it->valuestring, id) == 0)
			still_referenced = true;
	}
	if (!still_referenced && !strv_contains(&used, id)) {
		delete_image(s, id);
		if (gc_layers_and_blobs(s, NULL, err) < 0)
			goto out;
	}
	ret = 0;
out:
	store_unlock(s);
	return ret;
}

/* Images a lookup cannot read (a config too large or not JSON, a record or a
 * layer gone) are of no use, referenced or not: they go, with their references,
 * unless an environment runs them. Other errors (EIO, EMFILE...) keep them.
 * Exclusive lock held; the deleted IDs leave ids. */
static int prune_unreadable(struct store *s, struct strv *ids, const struct strv *used, cJSON *refs,
                            struct store_prune_result *res, struct err *err)
{
	bool refs_changed = false;

	for (size_t i = 0; i < ids->n;) {
		const char *id = ids->v[i];
		struct store_image *img = NULL;
		struct err e;

		if (strv_contains(used, id) || store_lookup_locked(s, id, &img, &e) == 0 ||
		    (e.code != ENOENT && e.code != EINVAL && e.code != EFBIG)) {
			store_image_free(img);
			i++;
			continue;
		}
		log_warn("removing: %s", e.msg);
		for (cJSON *r = refs_map(refs)->child, *next; r; r = next) {
			next = r->next;
			if (cJSON_IsString(r) && strcmp(r->valuestring, id) == 0) {
				cJSON_DeleteItemFromObjectCaseSensitive(refs_map(refs), r->string);
				refs_changed = true;
			}
		}
		res->blobs += delete_image(s, id);
		res->images++;
		free(ids->v[i]);
		ids->v[i] = ids->v[--ids->n];
		ids->v[ids->n] = NULL;
	}
	return refs_changed ? refs_save(s, refs, err) : 0;
}

int store_prune(struct store *s, struct store_prune_result *res, struct err *err)
{
	_cleanup_strvs_ struct strv ids = STRV_INIT, used = STRV_INIT;
	_cleanup_json_ cJSON *refs = NULL;
	const cJSON *it;
	int ret = -1;

	memset(res, 0, sizeof(*res));
	if (store_lock(s, STORE_LOCK_EXCLUSIVE, err) < 0)
		return -1;
	res->tmp = clean_stale_jobs(s);
	if (image_ids(s, &ids, err) < 0 || refs_load(s, &refs, err) < 0 ||
	    env_uses(s, &used, NULL, err) < 0 ||
	    prune_unreadable(s, &ids, &used, refs, res, err) < 0)
		goto out;
	cJSON_ArrayForEach(it, refs_map(refs))
	{
		if (cJSON_IsString(it))
			strv_push(&used, it->valuestring);
	}
	/* Build steps an image kept was built from are kept with it (the build
	 * cache of its Dockerfile). */
	for (size_t i = 0; i < used.n && i < 100000; i++) {
		_cleanup_json_ cJSON *rec = NULL;
		const char *parent;

		if (image_record_load(s, used.v[i], &rec, NULL) < 0)
			continue;
		parent = json_get_str(rec, "parent");
		if (parent && oci_digest_valid(parent) && !strv_contains(&used, parent))
			strv_push(&used, parent);
	}
	for (size_t i = 0; i < ids.n; i++)
		if (!strv_contains(&used, ids.v[i])) {
			res->blobs += delete_image(s, ids.v[i]);
			res->images++;
		}
	ret = gc_layers_and_blobs(s, res, err);
out:
	store_unlock(s);
	return ret;
}

/* ---- environments ---- */

static int check_env_name(const char *name, struct err *err)
{
	if (!name || !*name || strchr(name, '/') || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0 || strlen(name) > 200)
		return err_set(err, EINVAL, "invalid environment name '%s'", name ? name : "");
	return 0;
}

int store_env_mark(struct store *s, const char *env_name, const char *id, struct err *err)
{
	_cleanup_free_ char *dir = NULL, *file = NULL, *line = NULL;

	if (check_env_name(env_name, err) < 0)
		return -1;
	dir = spath(s, "envs/%s", env_name);
	if (mkdir_p(dir, 0700, err) < 0)
		return -1;
	file = xasprintf("%s/image", dir);
	line = xasprintf("%s\n", id);
	return write_file(file, line, strlen(line), 0644, err);
}

int store_env_use(struct store *s, const char *env_name, const char *ref_or_id, struct err *err)
{
	_cleanup_free_ char *id = NULL;
	int ret = -1;

	if (store_lock(s, STORE_LOCK_SHARED, err) < 0)
		return -1;
	if (resolve_image(s, ref_or_id, &id, NULL, err) == 0)
		ret = store_env_mark(s, env_name, id, err);
	store_unlock(s);
	return ret;
}

int store_env_release(struct store *s, const char *env_name, struct err *err)
{
	_cleanup_free_ char *file = NULL;

	if (check_env_name(env_name, err) < 0)
		return -1;
	file = spath(s, "envs/%s/image", env_name);
	if (unlink(file) < 0 && errno != ENOENT)
		return err_sys(err, "remove %s", file);
	return 0;
}
