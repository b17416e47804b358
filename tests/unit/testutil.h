/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tests/unit/testutil.h - helpers shared by the image and discovery tests:
 * a scratch folder, shell commands (xz, qemu-img, python3 tests/mkvhd.py,
 * sha256sum, all found on PATH) and test data found through $RFS_TESTDATA.
 * Header-only: each test program includes it once.
 */
#ifndef RFS_TESTUTIL_H
#define RFS_TESTUTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* $RFS_TESTDATA, or tests/data relative to the source when run by hand */
static inline const char *testdata(void)
{
	const char *d = getenv("RFS_TESTDATA");

	return d && *d ? d : "tests/data";
}

/* Run a shell command built like printf; returns its exit status. */
static inline int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	if (st != 0)
		fprintf(stderr, "command failed (%d): %s\n", st, cmd);
	return st;
}

/* Output (first line, newline stripped) of a shell command into @out. */
static inline int sh_out(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline int sh_out(char *out, size_t len, const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	FILE *p;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	out[0] = '\0';
	p = popen(cmd, "r");
	if (!p)
		return -1;
	if (!fgets(out, (int)len, p))
		out[0] = '\0';
	out[strcspn(out, "\n")] = '\0';
	return pclose(p);
}

/* A fresh scratch folder under $TMPDIR (or /tmp), removed by rm_tree(). */
static inline char *make_tmpdir(void)
{
	const char *t = getenv("TMPDIR");
	char *dir;

	if (asprintf(&dir, "%s/rfs-unit-XXXXXX", t && *t ? t : "/tmp") < 0)
		return NULL;
	if (!mkdtemp(dir)) {
		free(dir);
		return NULL;
	}
	return dir;
}

static inline void rm_tree(char *dir)
{
	if (dir)
		sh("rm -rf '%s'", dir);
	free(dir);
}

/* The sha256 (hex) of @len bytes at @buf, through sha256sum. */
static inline int sha256_hex(const void *buf, size_t len, const char *tmpdir, char hex[65])
{
	char path[4096], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/.sha-input", tmpdir);
	f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len) {
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	if (sh_out(line, sizeof(line), "sha256sum '%s'", path) != 0 || strlen(line) < 64)
		return -1;
	memcpy(hex, line, 64);
	hex[64] = '\0';
	unlink(path);
	return 0;
}

/* Read a whole file into memory (*len bytes). NULL on error. */
static inline void *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	void *buf = NULL;
	long size;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc(size ? (size_t)size : 1);
		if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
			free(buf);
			buf = NULL;
		}
		*len = (size_t)size;
	}
	fclose(f);
	return buf;
}

#endif
