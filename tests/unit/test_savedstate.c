// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/unit/test_savedstate.c - ctl/savedstate.c: round trips, the exact
 * file format (CRC-32 as zlib computes it), strict parsing (-EBADMSG for
 * anything else) and atomicity: after a failed store the old file is intact
 * and no temp file is left. The ENOSPC and EROFS cases mount a small tmpfs
 * (root only; skipped otherwise) and always unmount it in the teardown.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "savedstate.h"

#define UNUSED __attribute__((unused))

/* CRCs computed with Python's zlib.crc32 over the lines above "crc". */
#define FILE_5_OK "replicafs-vm-state 1\nstate 5\nstatus 0\ncrc fc955f1d\n"
#define FILE_3 "replicafs-vm-state 1\nstate 3\ncrc bf7cf06b\n"
#define FILE_6_32775 "replicafs-vm-state 1\nstate 6\nstatus 32775\ncrc 546e0a8e\n"

struct fixture {
	char path[64];
	int dirfd;
	bool mounted;
};

static int dir_setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	strcpy(fx->path, "/tmp/ctl-saved-XXXXXX");
	if (!mkdtemp(fx->path))
		goto fail;
	fx->dirfd = open(fx->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fx->dirfd < 0)
		goto fail;
	*state = fx;
	return 0;
fail:
	free(fx);
	return -1;
}

/* Empty the folder (one level, plus one level of subfolders) and remove it. */
static void remove_tree(int dirfd, const char *path)
{
	DIR *d;
	struct dirent *de;
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY);

	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (unlinkat(dirfd, de->d_name, 0) < 0 && errno == EISDIR) {
			int sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY);

			if (sub >= 0) {
				remove_tree(sub, NULL);
				close(sub);
			}
			unlinkat(dirfd, de->d_name, AT_REMOVEDIR);
		}
	}
	closedir(d);
	if (path)
		rmdir(path);
}

static int dir_teardown(void **state)
{
	struct fixture *fx = *state;

	if (fx->mounted) {
		close(fx->dirfd);
		fx->dirfd = -1;
		if (umount2(fx->path, MNT_DETACH) < 0)
			fprintf(stderr, "umount %s: %s\n", fx->path, strerror(errno));
		rmdir(fx->path);
	} else {
		remove_tree(fx->dirfd, fx->path);
		close(fx->dirfd);
	}
	free(fx);
	return 0;
}

/* A fresh folder with a tiny tmpfs mounted on it (root only). */
static int tmpfs_setup(void **state)
{
	struct fixture *fx;

	if (dir_setup(state))
		return -1;
	fx = *state;
	close(fx->dirfd);
	fx->dirfd = -1;
	if (mount("tmpfs", fx->path, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0700") < 0) {
		fx->mounted = false;
		fx->dirfd = open(fx->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		return fx->dirfd < 0 ? -1 : 0; /* the test skips */
	}
	fx->mounted = true;
	fx->dirfd = open(fx->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fx->dirfd < 0 ? -1 : 0;
}

static void put_file(int dirfd, const char *name, const void *data, size_t len)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

/* Whole content of @name, NUL-terminated, in @buf; its length or -errno. */
static ssize_t get_file(int dirfd, const char *name, char *buf, size_t size)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return n;
}

static bool exists(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static int load_bytes(int dirfd, const void *data, size_t len, struct rfs_saved *out)
{
	put_file(dirfd, "vm.state", data, len);
	return rfs_saved_load(dirfd, out);
}

static int load_str(int dirfd, const char *s)
{
	struct rfs_saved out;

	return load_bytes(dirfd, s, strlen(s), &out);
}

static void test_missing(void **state)
{
	struct fixture *fx = *state;
	struct rfs_saved out = { .state = RFS_STATE_COMMITTED, .has_status = true, .status = 1 };

	assert_int_equal(rfs_saved_load(fx->dirfd, &out), -ENOENT);
	/* A leftover temp file is not the state. */
	put_file(fx->dirfd, "vm.state.tmp", FILE_5_OK, strlen(FILE_5_OK));
	assert_int_equal(rfs_saved_load(fx->dirfd, &out), -ENOENT);
	assert_int_equal(out.state, RFS_STATE_COMMITTED); /* untouched */
}

static void test_round_trip(void **state)
{
	static const int states[] = { 3, 5, 6 };
	static const int codes[] = { 0,     4096,  32768, 32769, 32770, 32771, 32772,
				     32773, 32774, 32775, 32776, 32777, 32778, 32779 };
	struct fixture *fx = *state;
	size_t s, c;

	for (s = 0; s < 3; s++) {
		struct rfs_saved in = { .state = (enum rfs_state)states[s] }, out;

		memset(&out, 0xA5, sizeof(out));
		assert_int_equal(rfs_saved_store(fx->dirfd, &in), 0);
		assert_int_equal(rfs_saved_load(fx->dirfd, &out), 0);
		assert_int_equal(out.state, states[s]);
		assert_false(out.has_status);
		assert_false(exists(fx->dirfd, "vm.state.tmp"));

		for (c = 0; c < sizeof(codes) / sizeof(codes[0]); c++) {
			in.has_status = true;
			in.status = codes[c];
			memset(&out, 0xA5, sizeof(out));
			assert_int_equal(rfs_saved_store(fx->dirfd, &in), 0);
			assert_int_equal(rfs_saved_load(fx->dirfd, &out), 0);
			assert_int_equal(out.state, states[s]);
			assert_true(out.has_status);
			assert_int_equal(out.status, codes[c]);
			assert_false(exists(fx->dirfd, "vm.state.tmp"));
		}
	}
}

/* The bytes on disk are the documented format, with zlib's CRC-32. */
static void test_exact_format(void **state)
{
	struct fixture *fx = *state;
	struct rfs_saved s5 = { .state = RFS_STATE_RECOVERED, .has_status = true, .status = 0 };
	struct rfs_saved s3 = { .state = RFS_STATE_REPLICATING };
	struct rfs_saved s6 = { .state = RFS_STATE_COMMITTED, .has_status = true, .status = 32775 };
	char buf[512];
	struct stat st;

	assert_int_equal(rfs_saved_store(fx->dirfd, &s5), 0);
	assert_true(get_file(fx->dirfd, "vm.state", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, FILE_5_OK);
	assert_int_equal(fstatat(fx->dirfd, "vm.state", &st, 0), 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	assert_int_equal(rfs_saved_store(fx->dirfd, &s3), 0);
	assert_true(get_file(fx->dirfd, "vm.state", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, FILE_3);

	assert_int_equal(rfs_saved_store(fx->dirfd, &s6), 0);
	assert_true(get_file(fx->dirfd, "vm.state", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, FILE_6_32775);
}

/* Files written by hand (or by an older build) load. */
static void test_load_known_files(void **state)
{
	struct fixture *fx = *state;
	struct rfs_saved out;

	assert_int_equal(load_bytes(fx->dirfd, FILE_5_OK, strlen(FILE_5_OK), &out), 0);
	assert_int_equal(out.state, 5);
	assert_true(out.has_status);
	assert_int_equal(out.status, 0);

	assert_int_equal(load_bytes(fx->dirfd, FILE_3, strlen(FILE_3), &out), 0);
	assert_int_equal(out.state, 3);
	assert_false(out.has_status);

	assert_int_equal(load_bytes(fx->dirfd, FILE_6_32775, strlen(FILE_6_32775), &out), 0);
	assert_int_equal(out.state, 6);
	assert_int_equal(out.status, 32775);

	/* Hex digits of either case. */
	assert_int_equal(load_str(fx->dirfd, "replicafs-vm-state 1\nstate 5\nstatus 0\n"
					     "crc FC955F1D\n"),
			 0);
}

static void test_garbage(void **state)
{
	static const char *const bad[] = {
		"",
		"\n",
		"garbage",
		"garbage\n",
		"replicafs-vm-state 1\n",
		"replicafs-vm-state 1\nstate 5\n",
		"replicafs-vm-state 1\nstate 5\nstatus 0\n",
		"replicafs-vm-state 2\nstate 5\nstatus 0\ncrc fc955f1d\n",
		"replicafs-vm-state 1 \nstate 5\nstatus 0\ncrc fc955f1d\n",
		"replicafs-vm-state 1\r\nstate 5\r\nstatus 0\r\ncrc fc955f1d\r\n",
		"replicafs-vm-state 1\nstate 5\nstatus 0\ncrc fc955f1d",   /* no final \n */
		"replicafs-vm-state 1\nstate 5\nstatus 0\ncrc fc955f1d\n\n", /* trailing */
		"replicafs-vm-state 1\nstate 5\nstatus 0\ncrc fc955f1d\nx",
		"replicafs-vm-state 1\nstate 5\nstatus 0\ncrc fc955f1d \n",
		"replicafs-vm-state 1\nstate 5\nstatus 0\ncrc  fc955f1d\n",
		"replicafs-vm-state 1\nstate 5\nstatus 0\ncrc 0xfc955f1d\n",
		"replicafs-vm-state 1\nstate 5\nstatus 0\ncrc fc955f1\n",
		"replicafs-vm-state 1\nstate 5\nstatus 0\ncrc fc955f1d0\n",
		"replicafs-vm-state 1\nstate 5\nstatus 0\ncrc fc955f1g\n",
		"replicafs-vm-state 1\nstate 5\nstatus 0\ncrc\n",
		"replicafs-vm-state 1\nstate 5\nstatus 0\nstatus 0\ncrc fc955f1d\n",
		"replicafs-vm-state 1\nstatus 0\nstate 5\ncrc fc955f1d\n",
		"state 5\nreplicafs-vm-state 1\nstatus 0\ncrc fc955f1d\n",
		"\0eplicafs-vm-state 1\nstate 5\nstatus 0\ncrc fc955f1d\n",
		"crc fc955f1d\n",
	};
	struct fixture *fx = *state;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = load_str(fx->dirfd, bad[i]);

		if (r != -EBADMSG)
			print_error("case %zu: got %d\n", i, r);
		assert_int_equal(r, -EBADMSG);
	}
}

/* Well-formed files whose CRC is right but whose content is not allowed:
 * state, status and numbers must be exactly what a store writes. */
static void test_bad_values_with_good_crc(void **state)
{
	static const char *const bodies[] = {
		"replicafs-vm-state 1\nstate 8\n",  "replicafs-vm-state 1\nstate 12\n",
		"replicafs-vm-state 1\nstate 4\n",  "replicafs-vm-state 1\nstate 0\n",
		"replicafs-vm-state 1\nstate 05\n", "replicafs-vm-state 1\nstate +5\n",
		"replicafs-vm-state 1\nstate -5\n", "replicafs-vm-state 1\nstate \n",
		"replicafs-vm-state 1\nstate 5 \n", "replicafs-vm-state 1\nstate  5\n",
		"replicafs-vm-state 1\nstate 5\nstatus 1\n",
		"replicafs-vm-state 1\nstate 5\nstatus 32780\n",
		"replicafs-vm-state 1\nstate 5\nstatus -1\n",
		"replicafs-vm-state 1\nstate 5\nstatus 00\n",
		"replicafs-vm-state 1\nstate 5\nstatus 4294967296\n",
		"replicafs-vm-state 1\nstate 5\nstatus 99999999999999999999\n",
		"replicafs-vm-state 1\nstate 5\nstatus \n",
		"replicafs-vm-state 1\nstate 5\nstatus 0x0\n",
		"replicafs-vm-state 1\nstate 5\nfoo 1\n",
		"replicafs-vm-state 1\nState 5\n",
		"replicafs-vm-state 1\n",
		"replicafs-vm-state 1\nstate 5\n\n",
	};
	struct fixture *fx = *state;
	size_t i;

	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		char file[256];
		uint32_t crc = 0xFFFFFFFFu; /* zlib's CRC-32, computed here */
		int r;

		for (const char *p = bodies[i]; *p; p++) {
			crc ^= (unsigned char)*p;
			for (int b = 0; b < 8; b++)
				crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
		}
		snprintf(file, sizeof(file), "%scrc %08x\n", bodies[i], ~crc);
		r = load_str(fx->dirfd, file);
		if (r != -EBADMSG)
			print_error("case %zu: got %d\n", i, r);
		assert_int_equal(r, -EBADMSG);
	}
}

/* Every proper prefix of a valid file is refused. */
static void test_truncated(void **state)
{
	struct fixture *fx = *state;
	const char *good = FILE_6_32775;
	struct rfs_saved out;
	size_t len;

	for (len = 0; len < strlen(good); len++)
		assert_int_equal(load_bytes(fx->dirfd, good, len, &out), -EBADMSG);
	assert_int_equal(load_bytes(fx->dirfd, good, strlen(good), &out), 0);
}

/* Any single corrupted byte is caught (by the syntax or by the CRC). The
 * flips leave out 0x20, which would only change the case of a hex digit. */
static void test_bad_crc(void **state)
{
	static const unsigned char flips[] = { 0x01, 0x02, 0x10, 0x40, 0x80 };
	struct fixture *fx = *state;
	char file[128];
	size_t len = strlen(FILE_5_OK), i, f;
	struct rfs_saved out;

	for (i = 0; i < len; i++) {
		for (f = 0; f < sizeof(flips); f++) {
			memcpy(file, FILE_5_OK, len);
			file[i] = (char)(file[i] ^ flips[f]);
			assert_int_equal(load_bytes(fx->dirfd, file, len, &out), -EBADMSG);
		}
	}
	/* A correct-looking file with the CRC of another. */
	assert_int_equal(load_str(fx->dirfd, "replicafs-vm-state 1\nstate 3\nstatus 0\n"
					     "crc fc955f1d\n"),
			 -EBADMSG);
	assert_int_equal(load_str(fx->dirfd, "replicafs-vm-state 1\nstate 5\nstatus 0\n"
					     "crc 00000000\n"),
			 -EBADMSG);
}

static void test_binary_and_large(void **state)
{
	struct fixture *fx = *state;
	unsigned char junk[4096];
	char big[1024];
	struct rfs_saved out;
	unsigned int seed = 7;
	size_t i;

	for (i = 0; i < sizeof(junk); i++) {
		seed = seed * 1103515245u + 12345u;
		junk[i] = (unsigned char)(seed >> 16);
	}
	assert_int_equal(load_bytes(fx->dirfd, junk, sizeof(junk), &out), -EBADMSG);
	assert_int_equal(load_bytes(fx->dirfd, junk, 40, &out), -EBADMSG);

	/* A valid beginning followed by far too much. */
	memset(big, '\n', sizeof(big));
	memcpy(big, FILE_5_OK, strlen(FILE_5_OK));
	assert_int_equal(load_bytes(fx->dirfd, big, sizeof(big), &out), -EBADMSG);
}

/* An I/O error is not "bad content": vm.state is a folder. */
static void test_load_io_error(void **state)
{
	struct fixture *fx = *state;
	struct rfs_saved out;

	assert_int_equal(mkdirat(fx->dirfd, "vm.state", 0700), 0);
	assert_int_equal(rfs_saved_load(fx->dirfd, &out), -EISDIR);
	assert_int_equal(rfs_saved_load(-1, &out), -EBADF);
}

static void test_store_refuses_bad_input(void **state)
{
	static const struct rfs_saved bad[] = {
		{ .state = RFS_STATE_CRITICAL },
		{ .state = RFS_STATE_FAILOVER_IN_PROGRESS },
		{ .state = (enum rfs_state)4 },
		{ .state = (enum rfs_state)0 },
		{ .state = RFS_STATE_RECOVERED, .has_status = true, .status = 1 },
		{ .state = RFS_STATE_RECOVERED, .has_status = true, .status = -1 },
		{ .state = RFS_STATE_RECOVERED, .has_status = true, .status = 32780 },
	};
	struct fixture *fx = *state;
	struct rfs_saved out;
	char buf[256];
	size_t i;

	put_file(fx->dirfd, "vm.state", FILE_5_OK, strlen(FILE_5_OK));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(rfs_saved_store(fx->dirfd, &bad[i]), -EINVAL);
	assert_int_equal(rfs_saved_store(fx->dirfd, NULL), -EINVAL);
	assert_true(get_file(fx->dirfd, "vm.state", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, FILE_5_OK);
	assert_false(exists(fx->dirfd, "vm.state.tmp"));
	/* A status is ignored when has_status is false. */
	out = (struct rfs_saved){ .state = RFS_STATE_REPLICATING, .status = 12345 };
	assert_int_equal(rfs_saved_store(fx->dirfd, &out), 0);
	assert_true(get_file(fx->dirfd, "vm.state", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, FILE_3);
}

/* A temp file left by a crash is replaced, and gone after the store. */
static void test_stale_tmp(void **state)
{
	struct fixture *fx = *state;
	struct rfs_saved in = { .state = RFS_STATE_RECOVERED, .has_status = true }, out;
	char junk[8192];

	memset(junk, 'j', sizeof(junk));
	put_file(fx->dirfd, "vm.state.tmp", junk, sizeof(junk));
	assert_int_equal(rfs_saved_store(fx->dirfd, &in), 0);
	assert_false(exists(fx->dirfd, "vm.state.tmp"));
	assert_int_equal(rfs_saved_load(fx->dirfd, &out), 0);
	assert_int_equal(out.state, RFS_STATE_RECOVERED);
}

/* The rename itself fails (vm.state is a non-empty folder): nothing left. */
static void test_rename_failure(void **state)
{
	struct fixture *fx = *state;
	struct rfs_saved in = { .state = RFS_STATE_RECOVERED };
	int sub;

	assert_int_equal(mkdirat(fx->dirfd, "vm.state", 0700), 0);
	sub = openat(fx->dirfd, "vm.state", O_RDONLY | O_DIRECTORY);
	assert_true(sub >= 0);
	put_file(sub, "keep", "x", 1);
	close(sub);
	assert_true(rfs_saved_store(fx->dirfd, &in) < 0);
	assert_false(exists(fx->dirfd, "vm.state.tmp"));
	sub = openat(fx->dirfd, "vm.state", O_RDONLY | O_DIRECTORY);
	assert_true(sub >= 0);
	assert_true(exists(sub, "keep"));
	close(sub);
}

/* An O_PATH folder handle works for both calls. */
static void test_opath_dirfd(void **state)
{
	struct fixture *fx = *state;
	struct rfs_saved in = { .state = RFS_STATE_COMMITTED, .has_status = true, .status = 4096 };
	struct rfs_saved out;
	int pfd = open(fx->path, O_PATH | O_DIRECTORY | O_CLOEXEC);

	assert_true(pfd >= 0);
	assert_int_equal(rfs_saved_store(pfd, &in), 0);
	assert_int_equal(rfs_saved_load(pfd, &out), 0);
	assert_int_equal(out.state, RFS_STATE_COMMITTED);
	assert_int_equal(out.status, 4096);
	close(pfd);
}

static void skip_unless_mounted(struct fixture *fx)
{
	if (!fx->mounted) {
		print_message("tmpfs cannot be mounted here (not root?): skipped\n");
		skip();
	}
}

/* The state folder is full: the store fails with -ENOSPC, the old file is
 * intact, no temp file is left, and a store works again once there is room. */
static void test_store_enospc(void **state)
{
	struct fixture *fx = *state;
	struct rfs_saved old = { .state = RFS_STATE_RECOVERED, .has_status = true, .status = 0 };
	struct rfs_saved in = { .state = RFS_STATE_COMMITTED, .has_status = true, .status = 0 };
	struct rfs_saved out;
	char block[4096], buf[256];
	int fd, r;

	skip_unless_mounted(fx);
	assert_int_equal(rfs_saved_store(fx->dirfd, &old), 0);

	memset(block, 'f', sizeof(block));
	fd = openat(fx->dirfd, "filler", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	while (write(fd, block, sizeof(block)) > 0)
		;
	/* Fill the last partial block too. */
	while (write(fd, block, 1) > 0)
		;
	assert_int_equal(errno, ENOSPC);
	close(fd);

	r = rfs_saved_store(fx->dirfd, &in);
	assert_int_equal(r, -ENOSPC);
	assert_false(exists(fx->dirfd, "vm.state.tmp"));
	assert_true(get_file(fx->dirfd, "vm.state", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, FILE_5_OK);
	assert_int_equal(rfs_saved_load(fx->dirfd, &out), 0);
	assert_int_equal(out.state, RFS_STATE_RECOVERED);

	assert_int_equal(unlinkat(fx->dirfd, "filler", 0), 0);
	assert_int_equal(rfs_saved_store(fx->dirfd, &in), 0);
	assert_int_equal(rfs_saved_load(fx->dirfd, &out), 0);
	assert_int_equal(out.state, RFS_STATE_COMMITTED);
}

/* The state folder went read-only: -EROFS, the old file is intact. */
static void test_store_erofs(void **state)
{
	struct fixture *fx = *state;
	struct rfs_saved old = { .state = RFS_STATE_RECOVERED, .has_status = true, .status = 0 };
	struct rfs_saved in = { .state = RFS_STATE_REPLICATING };
	struct rfs_saved out;
	char buf[256];

	skip_unless_mounted(fx);
	assert_int_equal(rfs_saved_store(fx->dirfd, &old), 0);
	assert_int_equal(mount("tmpfs", fx->path, "tmpfs", MS_REMOUNT | MS_RDONLY, ""), 0);

	assert_int_equal(rfs_saved_store(fx->dirfd, &in), -EROFS);
	assert_false(exists(fx->dirfd, "vm.state.tmp"));
	assert_true(get_file(fx->dirfd, "vm.state", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, FILE_5_OK);
	assert_int_equal(rfs_saved_load(fx->dirfd, &out), 0);
	assert_int_equal(out.state, RFS_STATE_RECOVERED);
}

#define DIR_TEST(f) cmocka_unit_test_setup_teardown(f, dir_setup, dir_teardown)
#define TMPFS_TEST(f) cmocka_unit_test_setup_teardown(f, tmpfs_setup, dir_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		DIR_TEST(test_missing),
		DIR_TEST(test_round_trip),
		DIR_TEST(test_exact_format),
		DIR_TEST(test_load_known_files),
		DIR_TEST(test_garbage),
		DIR_TEST(test_bad_values_with_good_crc),
		DIR_TEST(test_truncated),
		DIR_TEST(test_bad_crc),
		DIR_TEST(test_binary_and_large),
		DIR_TEST(test_load_io_error),
		DIR_TEST(test_store_refuses_bad_input),
		DIR_TEST(test_stale_tmp),
		DIR_TEST(test_rename_failure),
		DIR_TEST(test_opath_dirfd),
		TMPFS_TEST(test_store_enospc),
		TMPFS_TEST(test_store_erofs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
