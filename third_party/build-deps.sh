#!/bin/sh
# Builds rollout's pinned dependencies (third_party/deps.lock) into a prefix.
#
#   third_party/build-deps.sh musl PREFIX   static libs for the release binary (musl-gcc)
#   third_party/build-deps.sh host PREFIX   same libs built with clang against the host
#                                            libc, for the ASan/UBSan and fuzz builds
#
# Archives come from ROLLOUT_DEPS_ARCHIVES (a directory, for air-gapped hosts) or
# are downloaded into ROLLOUT_DEPS_CACHE/archives; every archive is checked
# against the sha256 in deps.lock before it is unpacked. Missing OS tools are
# installed with apt-get when running as root, otherwise named in an error.
set -eu
unset MAKEFLAGS MFLAGS MAKELEVEL

toolchain=${1:?usage: build-deps.sh musl|host PREFIX}
prefix=${2:?usage: build-deps.sh musl|host PREFIX}
here=$(cd "$(dirname "$0")" && pwd)
cache=${ROLLOUT_DEPS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rollout-build}
archives=${ROLLOUT_DEPS_ARCHIVES:-$cache/archives}

die() { echo "build-deps: $*" >&2; exit 1; }
log() { echo "build-deps: $*" >&2; }

# --- OS tools -------------------------------------------------------------
# Everything below that a minimal Debian 12 (debootstrap --variant=minbase) lacks
# is checked here; tests/integration/test_fresh_debian.sh builds in such a root.
need_pkgs=""
need() { # need COMMAND PACKAGE
	command -v "$1" >/dev/null 2>&1 || case " $need_pkgs " in
		*" $2 "*) ;;
		*) need_pkgs="$need_pkgs $2" ;;
	esac
}
need make make
need tar tar
need sha256sum coreutils
need awk mawk    # configure scripts
need ar binutils # the recipes' static libraries; strip for the Makefile
need strip binutils
# Decompressors for the archives deps.lock names, by suffix.
while read -r name version file rest; do
	case "$name" in '' | '#'*) continue ;; esac
	case "$file" in
	*.tar.gz | *.tgz) need gzip gzip ;;
	*.tar.xz) need xz xz-utils ;;
	*.tar.bz2) need bzip2 bzip2 ;;
	*.tar.zst) need zstd zstd ;;
	*) die "deps.lock: $name: $file: not .tar.gz, .tar.xz, .tar.bz2 or .tar.zst" ;;
	esac
done <"$here/deps.lock"
if ! { [ -d "$archives" ] && [ -n "${ROLLOUT_DEPS_ARCHIVES:-}" ]; }; then
	need curl curl
	# https needs the CA bundle, which minbase lacks.
	if grep -v '^#' "$here/deps.lock" | grep -q 'https://' &&
		[ ! -s /etc/ssl/certs/ca-certificates.crt ]; then
		need_pkgs="$need_pkgs ca-certificates"
	fi
fi
if [ "$toolchain" = musl ]; then
	need musl-gcc musl-tools
	need gcc gcc
	need gperf gperf # libseccomp's configure refuses to run without it
	[ -f /usr/include/linux/openat2.h ] || need_pkgs="$need_pkgs linux-libc-dev"
else
	need clang clang
	need gperf gperf
	# ASan/UBSan/libFuzzer runtimes live in a separate package on Debian.
	ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.asan-x86_64.a >/dev/null 2>&1 ||
		need_pkgs="$need_pkgs libclang-rt-dev"
fi
if [ -n "$need_pkgs" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		log "installing:$need_pkgs"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q $need_pkgs >&2 ||
			{ apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $need_pkgs >&2; } ||
			die "apt-get install$need_pkgs failed"
	else
		die "missing build tools; install the Debian packages:$need_pkgs"
	fi
fi

[ -f "$prefix/.done" ] && exit 0
mkdir -p "$prefix" "$archives"

# Two builds (two clones, or make -j) may race for the same prefix.
exec 9>"$prefix.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi
[ -f "$prefix/.done" ] && exit 0

# --- fetch and verify -----------------------------------------------------
fetch() { # fetch FILE SHA256 URL
	f="$archives/$1"
	if [ ! -f "$f" ]; then
		[ -z "${ROLLOUT_DEPS_ARCHIVES:-}" ] || die "$1 not found in ROLLOUT_DEPS_ARCHIVES=$archives"
		log "downloading $3"
		curl -fsSL --retry 3 -o "$f.part" "$3" || die "download of $3 failed"
		mv "$f.part" "$f"
	fi
	got=$(sha256sum "$f" | cut -d' ' -f1)
	[ "$got" = "$2" ] || die "$f: sha256 $got, expected $2 (deps.lock)"
}

work=$(mktemp -d "${TMPDIR:-/tmp}/rollout-deps.XXXXXX")
trap 'rm -rf "$work"' EXIT

unpack() { # unpack NAME -> sets $src
	line=$(grep -E "^$1[[:space:]]" "$here/deps.lock") || die "$1 not in deps.lock"
	set -- $line
	fetch "$3" "$4" "$5"
	mkdir -p "$work/$1"
	case "$3" in
	*.tar.xz) z=-J ;;
	*.tar.bz2) z=-j ;;
	*.tar.zst) z=--zstd ;;
	*) z=-z ;;
	esac
	tar "$z" -xf "$archives/$3" -C "$work/$1" --strip-components=1
	src="$work/$1"
}

if [ "$toolchain" = musl ]; then
	CC=musl-gcc
	# musl ships no kernel headers; libseccomp and rollout need linux/, asm/.
	mkdir -p "$prefix/include"
	cp -r /usr/include/linux /usr/include/asm-generic "$prefix/include/"
	cp -r "/usr/include/$(gcc -dumpmachine)/asm" "$prefix/include/"
else
	CC=clang
fi
CFLAGS="-O2 -fPIC -g -I$prefix/include"
jobs=$(nproc 2>/dev/null || echo 2)
mkdir -p "$prefix/lib" "$prefix/include"

# zlib: its own configure script.
unpack zlib
(cd "$src" && CC=$CC CFLAGS="$CFLAGS" ./configure --static --prefix="$prefix" >&2 &&
	make -j"$jobs" libz.a >&2 && make install >&2)

# cJSON: one file; its Makefile builds shared objects we do not want.
unpack cjson
(cd "$src" && $CC $CFLAGS -std=c89 -c cJSON.c -o cJSON.o && ar rcs "$prefix/lib/libcjson.a" cJSON.o &&
	mkdir -p "$prefix/include/cjson" && cp cJSON.h "$prefix/include/cjson/")

# libyaml: the release tag has no generated configure; the sources build as is.
unpack libyaml
(cd "$src" && for f in src/*.c; do
	$CC $CFLAGS -Iinclude -Isrc -DYAML_VERSION_MAJOR=0 -DYAML_VERSION_MINOR=2 \
		-DYAML_VERSION_PATCH=5 '-DYAML_VERSION_STRING="0.2.5"' -c "$f" -o "${f%.c}.o" || exit 1
done && ar rcs "$prefix/lib/libyaml.a" src/*.o && cp include/yaml.h "$prefix/include/")

# libseccomp: autotools release tarball with its syscall tables pre-generated.
unpack libseccomp
(cd "$src" && CC=$CC CFLAGS="$CFLAGS" ./configure --prefix="$prefix" --disable-shared \
	--enable-static --disable-python >&2 && make -j"$jobs" -C src >&2 &&
	make -C src install >&2 && make -C include install >&2)

# Mbed TLS: a client-only configuration, written here (so that it is part of the
# Makefile's DEPS_KEY: a change rebuilds) and appended to the default one so that
# the installed headers carry it too.
unpack mbedtls
cat >"$src/include/mbedtls/mbedtls_rollout_config.h" <<'MBEDTLS_CONFIG'
/* rollout's Mbed TLS 3.6 configuration: appended to the default
 * include/mbedtls/mbedtls_config.h by third_party/build-deps.sh, so the library
 * and every file that includes its headers see the same settings.
 *
 * A TLS 1.2 + 1.3 client for HTTPS (registries, registry.json downloads, a
 * remote Docker daemon): certificate parsing and verification, the usual
 * ECDHE/RSA suites with AES-GCM and ChaCha20-Poly1305, the NIST curves and
 * X25519/X448. No server side, no DTLS, no ALPN (a registry behind ALPN may
 * answer HTTP/2), no PSK key exchanges, no files written by PSA key storage. */

/* server side */
#undef MBEDTLS_SSL_SRV_C
#undef MBEDTLS_SSL_CACHE_C
#undef MBEDTLS_SSL_TICKET_C
#undef MBEDTLS_SSL_COOKIE_C

/* DTLS */
#undef MBEDTLS_SSL_PROTO_DTLS
#undef MBEDTLS_SSL_DTLS_ANTI_REPLAY
#undef MBEDTLS_SSL_DTLS_HELLO_VERIFY
#undef MBEDTLS_SSL_DTLS_CLIENT_PORT_REUSE
#undef MBEDTLS_SSL_DTLS_CONNECTION_ID
#undef MBEDTLS_TIMING_C

/* negotiation features a client of HTTP/1.1 servers does not use */
#undef MBEDTLS_SSL_ALPN
#undef MBEDTLS_SSL_RENEGOTIATION
#undef MBEDTLS_SSL_CONTEXT_SERIALIZATION
#undef MBEDTLS_SSL_KEYING_MATERIAL_EXPORT

/* pre-shared keys (session resumption in TLS 1.3 keeps PSK_EPHEMERAL) */
#undef MBEDTLS_KEY_EXCHANGE_PSK_ENABLED
#undef MBEDTLS_KEY_EXCHANGE_DHE_PSK_ENABLED
#undef MBEDTLS_KEY_EXCHANGE_ECDHE_PSK_ENABLED
#undef MBEDTLS_KEY_EXCHANGE_RSA_PSK_ENABLED
#undef MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_PSK_ENABLED

/* rollout does its own sockets; no persistent PSA keys, self tests, debug output */
#undef MBEDTLS_NET_C
#undef MBEDTLS_PSA_CRYPTO_STORAGE_C
#undef MBEDTLS_PSA_ITS_FILE_C
#undef MBEDTLS_SELF_TEST
#undef MBEDTLS_DEBUG_C

/* certificate writing and requests, PKCS#7, LMS, EC J-PAKE */
#undef MBEDTLS_X509_CSR_PARSE_C
#undef MBEDTLS_X509_CREATE_C
#undef MBEDTLS_X509_CRT_WRITE_C
#undef MBEDTLS_X509_CSR_WRITE_C
#undef MBEDTLS_PEM_WRITE_C
#undef MBEDTLS_PKCS7_C
#undef MBEDTLS_LMS_C
#undef MBEDTLS_ECJPAKE_C
MBEDTLS_CONFIG
printf '\n#include "mbedtls/mbedtls_rollout_config.h"\n' >>"$src/include/mbedtls/mbedtls_config.h"
if [ "$toolchain" = musl ]; then tls_opt=-Os; else tls_opt=-O2; fi
(cd "$src" && make -j"$jobs" lib CC="$CC" \
	CFLAGS="$tls_opt -g -fPIC -ffunction-sections -fdata-sections" >&2 &&
	cp library/libmbedtls.a library/libmbedx509.a library/libmbedcrypto.a "$prefix/lib/" &&
	cp -r include/mbedtls include/psa "$prefix/include/")

# zstd: the decompressor only (no compression, dictionary builder or legacy formats).
unpack libzstd
(cd "$src" && make -j"$jobs" -C lib libzstd.a CC="$CC" ZSTD_LIB_COMPRESSION=0 \
	ZSTD_LIB_DICTBUILDER=0 ZSTD_LIB_DEPRECATED=0 ZSTD_LEGACY_SUPPORT=0 \
	MOREFLAGS="-g -fPIC -ffunction-sections -fdata-sections" >&2 &&
	cp lib/libzstd.a "$prefix/lib/" && cp lib/zstd.h lib/zstd_errors.h "$prefix/include/")

touch "$prefix/.done"
log "dependencies ($toolchain) ready in $prefix"
