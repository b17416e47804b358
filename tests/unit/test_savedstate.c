// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/unit/test_savedstate.c - ctl/savedstate.c: round trips (every
 * state, 0, 1 and many recorded tips, names of every awkward byte), the
 * exact file format (CRC-32 as zlib computes it), format-1 files as the
 * previous release wrote them, strict parsing (-EBADMSG for anything else,
 * and whatever loads is stored back byte for byte) and atomicity: after a
 * failed store the old file is intact and no temp file is left. The ENOSPC
 * and EROFS cases mount a small tmpfs (root only; skipped otherwise) and
 * always unmount it in the teardown.
 *
 * Seam: this file defines pwrite, fsync, close and renameat, which reach
 * the kernel through syscall(2). Linked with the core library they are what
 * savedstate.c calls, so a test can make one step of a store fail. They
 * pass straight through unless a test arms them (or, for fsync, turns it
 * off to store thousands of times quickly).
 *
 * The randomized test prints its seed; RFS_TEST_SEED=<n> replays it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "savedstate.h"

#define UNUSED __attribute__((unused))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the seam ---- */

struct fault {
	const char *op;   /* system call to fail once, NULL = none */
	const char *kind; /* on what: "tmp", "state", "dir", "other" */
	int err;          /* errno to fail with; 0 = a short pwrite */
};

static struct fault fault;
static int fault_hits;
/* fsync does nothing: for the tests that store thousands of times and test
 * the content, not the durability. */
static bool no_sync;

static bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

static const char *fd_kind(int fd)
{
	char link[64], path[4096];
	struct stat st;
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n < 0)
		return "other";
	path[n] = 0;
	if (!fstat(fd, &st) && S_ISDIR(st.st_mode))
		return "dir";
	if (ends_with(path, "/vm.state.tmp"))
		return "tmp";
	if (ends_with(path, "/vm.state"))
		return "state";
	return "other";
}

/* Is @op on @kind to fail now? (errno set) */
static bool seam(const char *op, const char *kind)
{
	if (fault.op && !strcmp(fault.op, op) && !strcmp(fault.kind, kind)) {
		errno = fault.err;
		fault.op = NULL;
		fault_hits++;
		return true;
	}
	return false;
}

static void seam_arm(const char *op, const char *kind, int err)
{
	fault = (struct fault){ op, kind, err };
	fault_hits = 0;
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	if (fault.op && seam("pwrite", fd_kind(fd))) {
		if (errno)
			return -1;
		len = len > 1 ? len / 2 : len; /* a short write, no error */
	}
	return syscall(SYS_pwrite64, fd, buf, len, off);
}

int fsync(int fd)
{
	if (fault.op && seam("fsync", fd_kind(fd)))
		return -1;
	if (no_sync)
		return 0;
	return (int)syscall(SYS_fsync, fd);
}

/* A failing close still closes (as Linux does). */
int close(int fd)
{
	bool fail = fault.op && seam("close", fd_kind(fd));
	int err = errno;

	if (syscall(SYS_close, fd) < 0)
		return -1;
	errno = err;
	return fail ? -1 : 0;
}

int renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath)
{
	if (fault.op && seam("rename", ends_with(newpath, "vm.state") ? "state" : "other"))
		return -1;
	return (int)syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, 0);
}

/* ---- files ---- */

/* Format 1, byte for byte as the previous release (ee8302e) wrote it. */
#define FILE_5_OK "replicafs-vm-state 1\nstate 5\nstatus 0\ncrc fc955f1d\n"
#define FILE_3 "replicafs-vm-state 1\nstate 3\ncrc bf7cf06b\n"
#define FILE_6_32775 "replicafs-vm-state 1\nstate 6\nstatus 32775\ncrc 546e0a8e\n"

/* Format 2; CRCs computed with Python's zlib.crc32 over the lines above. */
#define FILE2_5_OK "replicafs-vm-state 2\nstate 5\nstatus 0\ncrc 5fc3d9b4\n"
#define FILE2_3 "replicafs-vm-state 2\nstate 3\ncrc 544b4b68\n"
#define FILE2_6_32775 "replicafs-vm-state 2\nstate 6\nstatus 32775\ncrc 228b33b3\n"
#define FILE2_TIPS                                                                   \
	"replicafs-vm-state 2\nstate 5\nstatus 0\n"                                   \
	"tip data/data_7C1E.avhdx 00112233445566778899aabbccddeeff\n"                  \
	"tip sys/sys_3F2A.avhdx 3f2a000102030405060708090a0b0c0d\n"                    \
	"crc f962193b\n"
/* Disk "my disk", file "a\\b\nc\td\x7f" "e\u00e9.vhdx" (UTF-8). */
#define FILE2_ESCAPED                                                                \
	"replicafs-vm-state 2\nstate 6\n"                                             \
	"tip my\\x20disk/a\\x5cb\\x0ac\\x09d\\x7fe\xc3\xa9.vhdx "                   \
	"ffffffffffffffffffffffffffffffff\n"                                          \
	"crc fbc5b3be\n"

static const uint8_t ID_DATA[16] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
				     0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };
static const uint8_t ID_SYS[16] = { 0x3f, 0x2a, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05,
				    0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d };
static const uint8_t ID_FF[16] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
				   0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

/* zlib's CRC-32, computed here independently of savedstate.c. */
static uint32_t zcrc(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint32_t crc = 0xFFFFFFFFu;

	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int b = 0; b < 8; b++)
			crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
	}
	return ~crc;
}

/* @body + its crc line into @out (malloc'd, NUL-terminated); its length. */
static size_t with_crc(const char *body, size_t len, char **out)
{
	char *f = malloc(len + 16);

	assert_non_null(f);
	memcpy(f, body, len);
	snprintf(f + len, 16, "crc %08x\n", (unsigned int)zcrc(body, len));
	*out = f;
	return len + 13;
}

/*
 * The format-1 writer of the previous release (ee8302e ctl/savedstate.c,
 * rfs_saved_store()), verbatim but for the names: what a VM failed over
 * before the upgrade has on disk.
 */
#define SAVED_MAGIC_V1 "replicafs-vm-state 1"
static int v1_format(char *buf, size_t size, int state, bool has_status, int status)
{
	int len, n;

	if (has_status)
		len = snprintf(buf, size, SAVED_MAGIC_V1 "\nstate %d\nstatus %d\n", state, status);
	else
		len = snprintf(buf, size, SAVED_MAGIC_V1 "\nstate %d\n", state);
	n = snprintf(buf + len, size - (size_t)len, "crc %08x\n",
		     (unsigned int)zcrc(buf, (size_t)len));
	return len + n;
}

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

	no_sync = false; /* also after a failed assertion */
	seam_arm(NULL, NULL, 0);

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

/* A new file @name (unlinked first: replacing a file by truncation makes
 * ext4 flush it on close, thousands of times over in the tests below). */
static void put_file(int dirfd, const char *name, const void *data, size_t len)
{
	int fd;

	unlinkat(dirfd, name, 0);
	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

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

/* Load @len bytes of @data; the result, with the loaded state freed. */
static int load_mem(int dirfd, const void *data, size_t len)
{
	struct rfs_saved out;
	int r = load_bytes(dirfd, data, len, &out);

	if (r < 0) /* a failed load leaves nothing owned */
		assert_true(out.ntips == 0 && out.tips == NULL && out.state == 3);
	rfs_saved_free(&out);
	return r;
}

static int load_str(int dirfd, const char *s)
{
	return load_mem(dirfd, s, strlen(s));
}

/* @body with its crc line appended, loaded. */
static int load_body(int dirfd, const char *body)
{
	char *f;
	size_t len = with_crc(body, strlen(body), &f);
	int r = load_mem(dirfd, f, len);

	free(f);
	return r;
}

static void assert_saved_equal(const struct rfs_saved *a, const struct rfs_saved *b)
{
	assert_int_equal(a->state, b->state);
	assert_int_equal(a->has_status, b->has_status);
	if (a->has_status)
		assert_int_equal(a->status, b->status);
	assert_int_equal(a->ntips, b->ntips);
	for (size_t i = 0; i < a->ntips; i++) {
		assert_string_equal(a->tips[i].disk, b->tips[i].disk);
		assert_string_equal(a->tips[i].file, b->tips[i].file);
		assert_memory_equal(a->tips[i].identifier, b->tips[i].identifier, 16);
	}
}

static void make_id(uint8_t id[16], unsigned n)
{
	for (int k = 0; k < 16; k++)
		id[k] = (uint8_t)(n * 37u + (unsigned)k * 11u);
}

/* @n tips on disks "d000", "d001" ... (added in reverse order). */
static void add_tips(struct rfs_saved *s, unsigned n)
{
	for (unsigned i = n; i-- > 0;) {
		char disk[16], file[64];
		uint8_t id[16];

		snprintf(disk, sizeof(disk), "d%03u", i);
		snprintf(file, sizeof(file), "d%03u_%08X-0000-4000-8000-%012u.avhdx", i, i * 7919u, i);
		make_id(id, i);
		assert_int_equal(rfs_saved_set_tip(s, disk, file, id), 0);
	}
}

/* Store @in, check no temp file is left, load it back and compare. */
static void round_trip(int dirfd, const struct rfs_saved *in)
{
	struct rfs_saved out;

	assert_int_equal(rfs_saved_store(dirfd, in), 0);
	assert_false(exists(dirfd, "vm.state.tmp"));
	memset(&out, 0xA5, sizeof(out));
	assert_int_equal(rfs_saved_load(dirfd, &out), 0);
	assert_int_equal(out.version, in->standalone ? 3 : 2);
	assert_int_equal(out.standalone, in->standalone);
	assert_saved_equal(in, &out);
	rfs_saved_free(&out);
}

/* ---- the struct ---- */

static void test_init_copy_free(void **state UNUSED)
{
	struct rfs_saved a, b;

	memset(&a, 0xA5, sizeof(a));
	rfs_saved_init(&a);
	assert_int_equal(a.state, RFS_STATE_REPLICATING);
	assert_false(a.has_status);
	assert_int_equal(a.version, 2);
	assert_int_equal(a.ntips, 0);
	assert_null(a.tips);

	a.state = RFS_STATE_RECOVERED;
	a.has_status = true;
	a.status = 32775;
	add_tips(&a, 5);
	rfs_saved_init(&b);
	assert_int_equal(rfs_saved_set_tip(&b, "x", "y", ID_FF), 0);
	assert_int_equal(rfs_saved_copy(&b, &a), 0); /* frees b's tip */
	assert_ptr_not_equal(a.tips, b.tips);
	assert_saved_equal(&a, &b);
	assert_int_equal(rfs_saved_copy(&b, &b), 0);
	assert_saved_equal(&a, &b);
	/* Changing one leaves the other alone. */
	assert_int_equal(rfs_saved_set_tip(&b, "d002", "new.avhdx", ID_FF), 0);
	assert_string_equal(rfs_saved_find_tip(&a, "d002")->file,
			    "d002_00003DDE-0000-4000-8000-000000000002.avhdx");
	rfs_saved_free(&a);
	assert_int_equal(a.ntips, 0);
	assert_null(a.tips);
	assert_int_equal(a.state, RFS_STATE_REPLICATING);
	assert_int_equal(a.version, 2);
	assert_int_equal(rfs_saved_copy(&a, &b), 0);
	assert_string_equal(rfs_saved_find_tip(&a, "d002")->file, "new.avhdx");
	rfs_saved_free(&b);
	/* A copy of nothing owns nothing. */
	assert_int_equal(rfs_saved_copy(&a, &b), 0);
	assert_null(a.tips);
	rfs_saved_free(&a);
	rfs_saved_free(&a); /* twice is harmless */
}

static void test_set_find_tip(void **state UNUSED)
{
	struct rfs_saved s;
	char long_name[NAME_MAX + 2];
	uint8_t id[16];
	const struct rfs_saved_tip *t;

	rfs_saved_init(&s);
	assert_null(rfs_saved_find_tip(&s, "sys"));
	assert_int_equal(rfs_saved_set_tip(&s, "sys", "sys_1.avhdx", ID_SYS), 0);
	assert_int_equal(rfs_saved_set_tip(&s, "data", "data_1.avhdx", ID_DATA), 0);
	assert_int_equal(rfs_saved_set_tip(&s, "zz", "zz.vhdx", ID_FF), 0);
	assert_int_equal(rfs_saved_set_tip(&s, "b", "b.vhdx", ID_FF), 0);
	assert_int_equal(s.ntips, 4);
	assert_string_equal(s.tips[0].disk, "b");
	assert_string_equal(s.tips[1].disk, "data");
	assert_string_equal(s.tips[2].disk, "sys");
	assert_string_equal(s.tips[3].disk, "zz");
	/* Replace: same count, new file and identifier. */
	assert_int_equal(rfs_saved_set_tip(&s, "sys", "sys_2.avhdx", ID_DATA), 0);
	assert_int_equal(s.ntips, 4);
	t = rfs_saved_find_tip(&s, "sys");
	assert_non_null(t);
	assert_string_equal(t->file, "sys_2.avhdx");
	assert_memory_equal(t->identifier, ID_DATA, 16);
	assert_null(rfs_saved_find_tip(&s, "sy"));
	assert_null(rfs_saved_find_tip(&s, "sysx"));
	assert_null(rfs_saved_find_tip(&s, ""));
	/* Byte order, not locale: "B" < "a" < "\xc3..." */
	assert_int_equal(rfs_saved_set_tip(&s, "\xc3\xa9t\xc3\xa9", "f", ID_FF), 0);
	assert_int_equal(rfs_saved_set_tip(&s, "B", "f", ID_FF), 0);
	assert_string_equal(s.tips[0].disk, "B");
	assert_string_equal(s.tips[5].disk, "\xc3\xa9t\xc3\xa9");

	/* Bad names change nothing. */
	memset(long_name, 'n', NAME_MAX + 1);
	long_name[NAME_MAX + 1] = '\0';
	assert_int_equal(rfs_saved_set_tip(&s, "", "f", ID_FF), -EINVAL);
	assert_int_equal(rfs_saved_set_tip(&s, "d", "", ID_FF), -EINVAL);
	assert_int_equal(rfs_saved_set_tip(&s, ".", "f", ID_FF), -EINVAL);
	assert_int_equal(rfs_saved_set_tip(&s, "d", "..", ID_FF), -EINVAL);
	assert_int_equal(rfs_saved_set_tip(&s, "d", "a/b", ID_FF), -EINVAL);
	assert_int_equal(rfs_saved_set_tip(&s, "/d", "f", ID_FF), -EINVAL);
	assert_int_equal(rfs_saved_set_tip(&s, long_name, "f", ID_FF), -EINVAL);
	assert_int_equal(rfs_saved_set_tip(&s, "sys", long_name, ID_FF), -EINVAL);
	assert_int_equal(s.ntips, 6);
	assert_string_equal(rfs_saved_find_tip(&s, "sys")->file, "sys_2.avhdx");
	long_name[NAME_MAX] = '\0'; /* NAME_MAX bytes: fine */
	assert_int_equal(rfs_saved_set_tip(&s, long_name, long_name, ID_FF), 0);
	assert_int_equal(rfs_saved_set_tip(&s, "...", "..a", ID_FF), 0);
	rfs_saved_free(&s);

	/* At most RFS_SAVED_MAX_TIPS disks; replacing one still works. */
	add_tips(&s, RFS_SAVED_MAX_TIPS);
	assert_int_equal(s.ntips, RFS_SAVED_MAX_TIPS);
	for (size_t i = 1; i < s.ntips; i++)
		assert_true(strcmp(s.tips[i - 1].disk, s.tips[i].disk) < 0);
	make_id(id, 9999);
	assert_int_equal(rfs_saved_set_tip(&s, "zzz", "f", id), -EINVAL);
	assert_int_equal(rfs_saved_set_tip(&s, "d100", "f", id), 0);
	assert_int_equal(s.ntips, RFS_SAVED_MAX_TIPS);
	assert_memory_equal(rfs_saved_find_tip(&s, "d100")->identifier, id, 16);
	rfs_saved_free(&s);
}

/* ---- round trips and the exact format ---- */

static void test_missing(void **state)
{
	struct fixture *fx = *state;
	struct rfs_saved out;

	memset(&out, 0xA5, sizeof(out));
	assert_int_equal(rfs_saved_load(fx->dirfd, &out), -ENOENT);
	assert_int_equal(out.state, RFS_STATE_REPLICATING); /* initialised */
	assert_false(out.has_status);
	assert_int_equal(out.ntips, 0);
	assert_null(out.tips);
	/* A leftover temp file is not the state. */
	put_file(fx->dirfd, "vm.state.tmp", FILE2_TIPS, strlen(FILE2_TIPS));
	assert_int_equal(rfs_saved_load(fx->dirfd, &out), -ENOENT);
	rfs_saved_free(&out);
}

static void test_round_trip(void **state)
{
	static const int states[] = { 3, 5, 6 };
	static const int codes[] = { 0,     4096,  32768, 32769, 32770, 32771, 32772,
				     32773, 32774, 32775, 32776, 32777, 32778, 32779 };
	static const unsigned ntips[] = { 0, 1, 2, 17, RFS_SAVED_MAX_TIPS };
	struct fixture *fx = *state;

	no_sync = true;
	for (size_t s = 0; s < ARRAY_SIZE(states); s++) {
		for (size_t t = 0; t < ARRAY_SIZE(ntips); t++) {
			struct rfs_saved in;

			if (states[s] == 3 && ntips[t])
				continue; /* state 3 records no point */
			rfs_saved_init(&in);
			in.state = (enum rfs_state)states[s];
			add_tips(&in, ntips[t]);
			round_trip(fx->dirfd, &in);
			for (size_t c = 0; c < ARRAY_SIZE(codes); c++) {
				in.has_status = true;
				in.status = codes[c];
				round_trip(fx->dirfd, &in);
			}
			/* The version asked for is ignored: format 2 is written. */
			in.version = 1;
			round_trip(fx->dirfd, &in);
			rfs_saved_free(&in);
		}
	}
	no_sync = false;
}

/* A name of @len bytes cycling through @alphabet. */
static void fill_name(char *name, size_t len, const char *alphabet)
{
	size_t n = strlen(alphabet);

	for (size_t i = 0; i < len; i++)
		name[i] = alphabet[i % n];
	name[len] = '\0';
}

/* Names with every byte but NUL and "/" round-trip; the file stays within
 * RFS_SAVED_MAX even when every byte of every name is escaped. */
static void test_names_round_trip(void **state)
{
	static const char *const names[] = {
		"sys",
		"my disk",
		" leading and trailing ",
		"tab\there",
		"new\nline",
		"\n",
		"\\",
		"\\\\x41",
		"\\x",
		"back\\slash\\",
		"cr\r\nlf",
		"\x01\x02\x1f\x7f",
		"del\x7f",
		"UTF-8 \xc3\xa9t\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x92\xbe.vhdx",
		"\xff\xfe\x80 invalid UTF-8 is still a name",
		"...",
		".a",
		"..b",
		"x20",
		"tip a b 00",
		"crc 00000000",
	};
	struct fixture *fx = *state;
	struct rfs_saved in;
	char all_bytes[NAME_MAX + 1], big[NAME_MAX + 1], escapes[NAME_MAX + 1];
	uint8_t id[16];
	size_t n = 0, i;
	struct stat st;

	/* Every allowed byte value once, over two names. */
	for (i = 1; i < 256; i++)
		if (i != '/')
			all_bytes[n++] = (char)i;
	assert_int_equal(n, 254);
	all_bytes[n] = '\0';

	rfs_saved_init(&in);
	in.state = RFS_STATE_RECOVERED;
	for (i = 0; i < ARRAY_SIZE(names); i++) {
		make_id(id, (unsigned)i);
		assert_int_equal(rfs_saved_set_tip(&in, names[i], names[ARRAY_SIZE(names) - 1 - i], id),
				 0);
	}
	assert_int_equal(rfs_saved_set_tip(&in, all_bytes, all_bytes + 100, ID_FF), 0);
	assert_int_equal(rfs_saved_set_tip(&in, all_bytes + 200, all_bytes, ID_DATA), 0);
	fill_name(big, NAME_MAX, "0123456789abcdef");
	assert_int_equal(rfs_saved_set_tip(&in, big, big, ID_SYS), 0);
	fill_name(escapes, NAME_MAX, " \n\\\t\x7f");
	assert_int_equal(rfs_saved_set_tip(&in, escapes, escapes, ID_SYS), 0);
	fill_name(big, NAME_MAX, "\xc3\xa9");
	big[NAME_MAX - 1] = 'e'; /* 255 bytes: no half character at the end */
	assert_int_equal(rfs_saved_set_tip(&in, big, big, ID_SYS), 0);
	round_trip(fx->dirfd, &in);
	rfs_saved_free(&in);

	/* The largest file there can be. */
	rfs_saved_init(&in);
	in.state = RFS_STATE_COMMITTED;
	in.has_status = true;
	in.status = 32779;
	for (i = 0; i < RFS_SAVED_MAX_TIPS; i++) {
		fill_name(escapes, NAME_MAX, "\n");
		escapes[0] = (char)(1 + i / 31);
		escapes[1] = (char)(1 + i % 31); /* distinct, all escaped */
		assert_int_equal(rfs_saved_set_tip(&in, escapes, escapes, ID_FF), 0);
	}
	assert_int_equal(in.ntips, RFS_SAVED_MAX_TIPS);
	round_trip(fx->dirfd, &in);
	assert_int_equal(fstatat(fx->dirfd, "vm.state", &st, 0), 0);
	assert_true(st.st_size <= RFS_SAVED_MAX);
	assert_true(st.st_size > RFS_SAVED_MAX - 64);
	rfs_saved_free(&in);
}

/* The bytes on disk are the documented format, with zlib's CRC-32. */
static void test_exact_format(void **state)
{
	struct fixture *fx = *state;
	struct rfs_saved s;
	char buf[1024];
	struct stat st;

	rfs_saved_init(&s);
	s.state = RFS_STATE_RECOVERED;
	s.has_status = true;
	s.status = 0;
	assert_int_equal(rfs_saved_store(fx->dirfd, &s), 0);
	assert_true(get_file(fx->dirfd, "vm.state", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, FILE2_5_OK);
	assert_int_equal(fstatat(fx->dirfd, "vm.state", &st, 0), 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	assert_int_equal(rfs_saved_set_tip(&s, "sys", "sys_3F2A.avhdx", ID_SYS), 0);
	assert_int_equal(rfs_saved_set_tip(&s, "data", "data_7C1E.avhdx", ID_DATA), 0);
	assert_int_equal(rfs_saved_store(fx->dirfd, &s), 0);
	assert_true(get_file(fx->dirfd, "vm.state", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, FILE2_TIPS);
	rfs_saved_free(&s);

	s.state = RFS_STATE_COMMITTED;
	assert_int_equal(rfs_saved_set_tip(&s, "my disk", "a\\b\nc\td\x7f" "e\xc3\xa9.vhdx", ID_FF),
			 0);
	assert_int_equal(rfs_saved_store(fx->dirfd, &s), 0);
	assert_true(get_file(fx->dirfd, "vm.state", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, FILE2_ESCAPED);
	rfs_saved_free(&s);

	assert_int_equal(rfs_saved_store(fx->dirfd, &s), 0);
	assert_true(get_file(fx->dirfd, "vm.state", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, FILE2_3);

	s.state = RFS_STATE_COMMITTED;
	s.has_status = true;
	s.status = 32775;
	assert_int_equal(rfs_saved_store(fx->dirfd, &s), 0);
	assert_true(get_file(fx->dirfd, "vm.state", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, FILE2_6_32775);
}

/* Format-2 files written by hand load as documented. */
static void test_load_known_files(void **state)
{
	struct fixture *fx = *state;
	struct rfs_saved out;

	assert_int_equal(load_bytes(fx->dirfd, FILE2_TIPS, strlen(FILE2_TIPS), &out), 0);
	assert_int_equal(out.version, 2);
	assert_int_equal(out.state, 5);
	assert_true(out.has_status);
	assert_int_equal(out.status, 0);
	assert_int_equal(out.ntips, 2);
	assert_string_equal(out.tips[0].disk, "data");
	assert_string_equal(out.tips[0].file, "data_7C1E.avhdx");
	assert_memory_equal(out.tips[0].identifier, ID_DATA, 16);
	assert_string_equal(rfs_saved_find_tip(&out, "sys")->file, "sys_3F2A.avhdx");
	assert_memory_equal(rfs_saved_find_tip(&out, "sys")->identifier, ID_SYS, 16);
	rfs_saved_free(&out);

	assert_int_equal(load_bytes(fx->dirfd, FILE2_ESCAPED, strlen(FILE2_ESCAPED), &out), 0);
	assert_int_equal(out.state, 6);
	assert_false(out.has_status);
	assert_int_equal(out.ntips, 1);
	assert_string_equal(out.tips[0].disk, "my disk");
	assert_string_equal(out.tips[0].file, "a\\b\nc\td\x7f" "e\xc3\xa9.vhdx");
	assert_memory_equal(out.tips[0].identifier, ID_FF, 16);
	rfs_saved_free(&out);

	assert_int_equal(load_bytes(fx->dirfd, FILE2_3, strlen(FILE2_3), &out), 0);
	assert_int_equal(out.state, 3);
	assert_false(out.has_status);
	assert_int_equal(out.ntips, 0);
	rfs_saved_free(&out);

	/* State 5 with no tips recorded yet is a valid format-2 file. */
	assert_int_equal(load_bytes(fx->dirfd, FILE2_5_OK, strlen(FILE2_5_OK), &out), 0);
	assert_int_equal(out.version, 2);
	assert_int_equal(out.ntips, 0);
	rfs_saved_free(&out);
}

/* Format 3: a committed VM that reads nothing from its replica. */
static void test_format3(void **state)
{
	struct fixture *fx = *state;
	struct rfs_saved s;
	char buf[1024];

	rfs_saved_init(&s);
	s.state = RFS_STATE_COMMITTED;
	s.standalone = true;
	s.has_status = true;
	s.status = 0;
	assert_int_equal(rfs_saved_set_tip(&s, "sys", "sys_3F2A.avhdx", ID_SYS), 0);
	round_trip(fx->dirfd, &s);
	assert_true(get_file(fx->dirfd, "vm.state", buf, sizeof(buf)) > 0);
	assert_true(starts_with(buf, "replicafs-vm-state 3\nstate 6\nstatus 0\nstandalone\ntip sys/"));
	s.has_status = false;
	round_trip(fx->dirfd, &s);
	assert_true(get_file(fx->dirfd, "vm.state", buf, sizeof(buf)) > 0);
	assert_true(starts_with(buf, "replicafs-vm-state 3\nstate 6\nstandalone\ntip sys/"));
	/* only in state 6 */
	s.state = RFS_STATE_RECOVERED;
	assert_int_equal(rfs_saved_store(fx->dirfd, &s), -EINVAL);
	rfs_saved_free(&s);

	assert_int_equal(load_body(fx->dirfd, "replicafs-vm-state 3\nstate 6\nstandalone\n"), 0);
	assert_int_equal(load_body(fx->dirfd, "replicafs-vm-state 3\nstate 5\nstandalone\n"), -EBADMSG);
	assert_int_equal(load_body(fx->dirfd, "replicafs-vm-state 3\nstate 6\nstatus 0\n"), -EBADMSG);
	assert_int_equal(load_body(fx->dirfd, "replicafs-vm-state 2\nstate 6\nstandalone\n"), -EBADMSG);
	assert_int_equal(load_body(fx->dirfd, "replicafs-vm-state 3\nstate 6\nstandalone \n"), -EBADMSG);
	assert_int_equal(load_body(fx->dirfd, "replicafs-vm-state 4\nstate 6\nstandalone\n"), -EBADMSG);
	/* a committed state that is not standalone (older releases) stays format 2 */
	assert_int_equal(load_body(fx->dirfd, "replicafs-vm-state 2\nstate 6\nstatus 0\n"), 0);
}

/* ---- format 1 ---- */

/* Files of the previous release load as version 1 with no tips; storing
 * them again writes format 2 (the caller's migration). */
static void test_load_format1(void **state)
{
	static const int states[] = { 3, 5, 6 };
	static const int codes[] = { 0,     4096,  32768, 32769, 32770, 32771, 32772,
				     32773, 32774, 32775, 32776, 32777, 32778, 32779 };
	struct fixture *fx = *state;
	struct rfs_saved out;
	char file[128], buf[256];
	int len;

	/* Literal files the old writer produced. */
	assert_int_equal(load_bytes(fx->dirfd, FILE_5_OK, strlen(FILE_5_OK), &out), 0);
	assert_int_equal(out.version, 1);
	assert_int_equal(out.state, 5);
	assert_true(out.has_status);
	assert_int_equal(out.status, 0);
	assert_int_equal(out.ntips, 0);
	assert_null(out.tips);

	/* Migration: the struct as loaded, stored, is format 2. */
	assert_int_equal(rfs_saved_set_tip(&out, "sys", "sys_3F2A.avhdx", ID_SYS), 0);
	assert_int_equal(rfs_saved_set_tip(&out, "data", "data_7C1E.avhdx", ID_DATA), 0);
	assert_int_equal(rfs_saved_store(fx->dirfd, &out), 0);
	assert_true(get_file(fx->dirfd, "vm.state", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, FILE2_TIPS);
	rfs_saved_free(&out);

	assert_int_equal(load_bytes(fx->dirfd, FILE_3, strlen(FILE_3), &out), 0);
	assert_int_equal(out.version, 1);
	assert_int_equal(out.state, 3);
	assert_false(out.has_status);
	rfs_saved_free(&out);

	assert_int_equal(load_bytes(fx->dirfd, FILE_6_32775, strlen(FILE_6_32775), &out), 0);
	assert_int_equal(out.version, 1);
	assert_int_equal(out.state, 6);
	assert_int_equal(out.status, 32775);
	rfs_saved_free(&out);

	/* Everything the old writer could write. */
	for (size_t s = 0; s < ARRAY_SIZE(states); s++) {
		len = v1_format(file, sizeof(file), states[s], false, 0);
		assert_int_equal(load_bytes(fx->dirfd, file, (size_t)len, &out), 0);
		assert_int_equal(out.version, 1);
		assert_int_equal(out.state, states[s]);
		assert_false(out.has_status);
		assert_int_equal(out.ntips, 0);
		for (size_t c = 0; c < ARRAY_SIZE(codes); c++) {
			len = v1_format(file, sizeof(file), states[s], true, codes[c]);
			assert_int_equal(load_bytes(fx->dirfd, file, (size_t)len, &out), 0);
			assert_int_equal(out.version, 1);
			assert_int_equal(out.state, states[s]);
			assert_true(out.has_status);
			assert_int_equal(out.status, codes[c]);
			assert_int_equal(out.ntips, 0);
		}
	}
	assert_string_equal((v1_format(file, sizeof(file), 5, true, 0), file), FILE_5_OK);

	/* The old parser took hex digits of either case: so does this one. */
	assert_int_equal(load_str(fx->dirfd, "replicafs-vm-state 1\nstate 5\nstatus 0\n"
					     "crc FC955F1D\n"),
			 0);
	/* Format 1 has no tip lines. */
	assert_int_equal(load_body(fx->dirfd, "replicafs-vm-state 1\nstate 5\nstatus 0\n"
					      "tip sys/sys_3F2A.avhdx "
					      "3f2a000102030405060708090a0b0c0d\n"),
			 -EBADMSG);
	assert_int_equal(load_body(fx->dirfd, "replicafs-vm-state 1\nstate 5\nstatus 0\n"), 0);
}

/* ---- refusals ---- */

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
		"replicafs-vm-state 1\nstate 5\nstatus 0\ncrc 5fc3d9b4\n",
		"replicafs-vm-state 3\nstate 5\nstatus 0\ncrc fc955f1d\n",
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
		/* Format 2: lowercase CRC only, nothing after it. */
		"replicafs-vm-state 2\nstate 5\nstatus 0\ncrc 5FC3D9B4\n",
		"replicafs-vm-state 2\nstate 5\nstatus 0\ncrc 5fc3d9b4\n\n",
		"replicafs-vm-state 2\nstate 5\nstatus 0\ncrc 5fc3d9b4",
		"replicafs-vm-state 02\nstate 5\nstatus 0\ncrc 5fc3d9b4\n",
	};
	struct fixture *fx = *state;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int r = load_str(fx->dirfd, bad[i]);

		if (r != -EBADMSG)
			print_error("case %zu: got %d\n", i, r);
		assert_int_equal(r, -EBADMSG);
	}
}

#define TIP_SYS "tip sys/sys.avhdx 3f2a000102030405060708090a0b0c0d\n"
#define TIP_DATA "tip data/data.avhdx 00112233445566778899aabbccddeeff\n"
#define V2_5 "replicafs-vm-state 2\nstate 5\nstatus 0\n"

/* Well-formed files whose CRC is right but whose content is not allowed:
 * state, status, numbers, tips and names must be exactly what a store
 * writes. */
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
		"replicafs-vm-state 0\nstate 5\n",
		"replicafs-vm-state 3\nstate 5\n",
		"replicafs-vm-state 1\nstate 5\n" TIP_SYS,
		"replicafs-vm-state 2\nstate 8\n",
		"replicafs-vm-state 2\nstate 5\nstatus 1\n",
		"replicafs-vm-state 2\n",
		/* Tips: in state 3, out of order, twice, before the status. */
		"replicafs-vm-state 2\nstate 3\n" TIP_SYS,
		"replicafs-vm-state 2\nstate 3\nstatus 0\n" TIP_SYS,
		V2_5 TIP_SYS TIP_DATA,
		V2_5 TIP_SYS TIP_SYS,
		V2_5 TIP_DATA TIP_SYS TIP_DATA,
		V2_5 "tip sys/other.avhdx 3f2a000102030405060708090a0b0c0d\n" TIP_SYS,
		"replicafs-vm-state 2\nstate 5\n" TIP_SYS "status 0\n",
		V2_5 TIP_SYS "status 0\n",
		V2_5 TIP_DATA "\n" TIP_SYS,
		V2_5 "tip\n",
		V2_5 "tip \n",
		V2_5 "tips sys/sys.avhdx 3f2a000102030405060708090a0b0c0d\n",
		V2_5 "Tip sys/sys.avhdx 3f2a000102030405060708090a0b0c0d\n",
		/* Identifier: 32 lowercase hex digits exactly. */
		V2_5 "tip sys/sys.avhdx 3F2A000102030405060708090A0B0C0D\n",
		V2_5 "tip sys/sys.avhdx 3f2a000102030405060708090a0b0c0\n",
		V2_5 "tip sys/sys.avhdx 3f2a000102030405060708090a0b0c0d0\n",
		V2_5 "tip sys/sys.avhdx 3f2a000102030405060708090a0b0c0g\n",
		V2_5 "tip sys/sys.avhdx 3f2a0001-0203-0405-0607-08090a0b0c0d\n",
		V2_5 "tip sys/sys.avhdx {3f2a000102030405060708090a0b0c0}\n",
		V2_5 "tip sys/sys.avhdx  3f2a000102030405060708090a0b0c0d\n",
		V2_5 "tip sys/sys.avhdx 3f2a000102030405060708090a0b0c0d \n",
		V2_5 "tip sys/sys.avhdx\n",
		V2_5 "tip sys/sys.avhdx \n",
		V2_5 "tip  sys/sys.avhdx 3f2a000102030405060708090a0b0c0d\n",
		/* Names: one "/", not empty, not "." or "..", escaped canonically. */
		V2_5 "tip sys 3f2a000102030405060708090a0b0c0d\n",
		V2_5 "tip sys/a/b 3f2a000102030405060708090a0b0c0d\n",
		V2_5 "tip /sys.avhdx 3f2a000102030405060708090a0b0c0d\n",
		V2_5 "tip sys/ 3f2a000102030405060708090a0b0c0d\n",
		V2_5 "tip ./sys.avhdx 3f2a000102030405060708090a0b0c0d\n",
		V2_5 "tip sys/.. 3f2a000102030405060708090a0b0c0d\n",
		V2_5 "tip sys/. 3f2a000102030405060708090a0b0c0d\n",
		V2_5 "tip my disk/sys.avhdx 3f2a000102030405060708090a0b0c0d\n",
		V2_5 "tip sys/my file 3f2a000102030405060708090a0b0c0d\n",
		V2_5 "tip sys/tab\there 3f2a000102030405060708090a0b0c0d\n",
		V2_5 "tip sys/cr\r 3f2a000102030405060708090a0b0c0d\n",
		V2_5 "tip sys/del\x7f 3f2a000102030405060708090a0b0c0d\n",
		V2_5 "tip sys/back\\slash 3f2a000102030405060708090a0b0c0d\n",
		V2_5 "tip sys/end\\ 3f2a000102030405060708090a0b0c0d\n",
		V2_5 "tip sys/a\\x2 3f2a000102030405060708090a0b0c0d\n",
		V2_5 "tip sys/a\\x 3f2a000102030405060708090a0b0c0d\n",
		V2_5 "tip sys/a\\X20b 3f2a000102030405060708090a0b0c0d\n",
		V2_5 "tip sys/a\\x5Cb 3f2a000102030405060708090a0b0c0d\n",
		V2_5 "tip sys/a\\x41b 3f2a000102030405060708090a0b0c0d\n",
		V2_5 "tip sys/a\\xc3\\xa9 3f2a000102030405060708090a0b0c0d\n",
		V2_5 "tip sys/a\\x00b 3f2a000102030405060708090a0b0c0d\n",
		V2_5 "tip sys/a\\x2fb 3f2a000102030405060708090a0b0c0d\n",
		V2_5 "tip sys/a\\x2Fb 3f2a000102030405060708090a0b0c0d\n",
		V2_5 "tip sys/a\\sb 3f2a000102030405060708090a0b0c0d\n",
		V2_5 "tip sys/a\\nb 3f2a000102030405060708090a0b0c0d\n",
		V2_5 "tip sys/a\\\\b 3f2a000102030405060708090a0b0c0d\n",
		V2_5 "tip sys/a\\x2g 3f2a000102030405060708090a0b0c0d\n",
		V2_5 "tip sys\\x2f/a 3f2a000102030405060708090a0b0c0d\n",
	};
	struct fixture *fx = *state;
	char nul_name[] = V2_5 "tip sys/a\0b 3f2a000102030405060708090a0b0c0d\n";
	char *f;
	size_t len;
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(bodies); i++) {
		r = load_body(fx->dirfd, bodies[i]);
		if (r != -EBADMSG)
			print_error("case %zu: got %d\n", i, r);
		assert_int_equal(r, -EBADMSG);
	}
	/* The two tips in order (and a name of an escaped "/" look-alike) are
	 * fine: the cases above fail for what they show, not by accident. */
	assert_int_equal(load_body(fx->dirfd, V2_5 TIP_DATA TIP_SYS), 0);
	assert_int_equal(load_body(fx->dirfd, V2_5 "tip sys/a\\x5cx2fb "
						 "3f2a000102030405060708090a0b0c0d\n"),
			 0);
	/* A raw NUL in a name. */
	len = with_crc(nul_name, sizeof(nul_name) - 1, &f);
	assert_int_equal(load_mem(fx->dirfd, f, len), -EBADMSG);
	free(f);
}

/* Names over NAME_MAX bytes, however they are spelled, and more than
 * RFS_SAVED_MAX_TIPS tips are refused; exactly the limits load. */
static void test_limits(void **state)
{
	struct fixture *fx = *state;
	size_t size = RFS_SAVED_MAX * 2, len;
	char *body = malloc(size), *p;
	char name[4 * (NAME_MAX + 1) + 1];

	assert_non_null(body);
	for (int over = 0; over <= 1; over++) {
		/* Plain bytes. */
		fill_name(name, NAME_MAX + (size_t)over, "n");
		len = (size_t)snprintf(body, size, V2_5 "tip sys/%s %s\n", name,
				       "3f2a000102030405060708090a0b0c0d");
		assert_int_equal(load_body(fx->dirfd, body), over ? -EBADMSG : 0);
		len = (size_t)snprintf(body, size, V2_5 "tip %s/f %s\n", name,
				       "3f2a000102030405060708090a0b0c0d");
		assert_int_equal(load_body(fx->dirfd, body), over ? -EBADMSG : 0);
		/* Escaped bytes: 4 in the file for each of the name. */
		name[0] = '\0';
		for (size_t i = 0; i < NAME_MAX + (size_t)over; i++)
			strcat(name, "\\x0a");
		snprintf(body, size, V2_5 "tip sys/%s %s\n", name,
			 "3f2a000102030405060708090a0b0c0d");
		assert_int_equal(load_body(fx->dirfd, body), over ? -EBADMSG : 0);
	}

	/* RFS_SAVED_MAX_TIPS tips load; one more does not. */
	for (int over = 0; over <= 1; over++) {
		p = body + snprintf(body, size, V2_5);
		for (unsigned i = 0; i < RFS_SAVED_MAX_TIPS + (unsigned)over; i++)
			p += snprintf(p, size - (size_t)(p - body), "tip d%04u/f %032x\n", i, i);
		assert_int_equal(load_body(fx->dirfd, body), over ? -EBADMSG : 0);
	}
	(void)len;
	free(body);
}

/* Every proper prefix of a valid file is refused. */
static void test_truncated(void **state)
{
	static const char *const goods[] = { FILE_6_32775, FILE2_6_32775, FILE2_TIPS,
					     FILE2_ESCAPED };
	struct fixture *fx = *state;

	for (size_t g = 0; g < ARRAY_SIZE(goods); g++) {
		size_t full = strlen(goods[g]);

		for (size_t len = 0; len < full; len++)
			assert_int_equal(load_mem(fx->dirfd, goods[g], len), -EBADMSG);
		assert_int_equal(load_mem(fx->dirfd, goods[g], full), 0);
	}
}

/* Any single corrupted byte is caught (by the syntax or by the CRC). In
 * format 1 the flips leave out 0x20, which would only change the case of a
 * hex digit of the CRC (the old parser took both); format 2 takes one case
 * only, so every bit of every byte counts. */
static void test_bad_crc(void **state)
{
	static const unsigned char flips1[] = { 0x01, 0x02, 0x10, 0x40, 0x80 };
	static const char *const v2[] = { FILE2_5_OK, FILE2_TIPS, FILE2_ESCAPED };
	struct fixture *fx = *state;
	char file[512];
	size_t len = strlen(FILE_5_OK);

	for (size_t i = 0; i < len; i++) {
		for (size_t f = 0; f < sizeof(flips1); f++) {
			memcpy(file, FILE_5_OK, len);
			file[i] = (char)(file[i] ^ flips1[f]);
			assert_int_equal(load_mem(fx->dirfd, file, len), -EBADMSG);
		}
	}
	for (size_t v = 0; v < ARRAY_SIZE(v2); v++) {
		len = strlen(v2[v]);
		for (size_t i = 0; i < len; i++) {
			for (int bit = 0; bit < 8; bit++) {
				memcpy(file, v2[v], len);
				file[i] = (char)(file[i] ^ (1 << bit));
				if (load_mem(fx->dirfd, file, len) != -EBADMSG)
					print_error("file %zu byte %zu bit %d\n", v, i, bit);
				assert_int_equal(load_mem(fx->dirfd, file, len), -EBADMSG);
			}
		}
	}
	/* A correct-looking file with the CRC of another. */
	assert_int_equal(load_str(fx->dirfd, "replicafs-vm-state 1\nstate 3\nstatus 0\n"
					     "crc fc955f1d\n"),
			 -EBADMSG);
	assert_int_equal(load_str(fx->dirfd, "replicafs-vm-state 1\nstate 5\nstatus 0\n"
					     "crc 00000000\n"),
			 -EBADMSG);
	assert_int_equal(load_str(fx->dirfd, "replicafs-vm-state 2\nstate 6\nstatus 0\n"
					     "crc 5fc3d9b4\n"),
			 -EBADMSG);
}

static void test_binary_and_large(void **state)
{
	struct fixture *fx = *state;
	unsigned char junk[4096];
	char *big = malloc(RFS_SAVED_MAX + 2);
	unsigned int seed = 7;
	struct stat st;
	int fd;

	assert_non_null(big);
	for (size_t i = 0; i < sizeof(junk); i++) {
		seed = seed * 1103515245u + 12345u;
		junk[i] = (unsigned char)(seed >> 16);
	}
	assert_int_equal(load_mem(fx->dirfd, junk, sizeof(junk)), -EBADMSG);
	assert_int_equal(load_mem(fx->dirfd, junk, 40), -EBADMSG);

	/* A valid beginning followed by far too much: just over the limit,
	 * and exactly at it (then refused by the syntax, not the size). */
	memset(big, '\n', RFS_SAVED_MAX + 2);
	memcpy(big, FILE2_TIPS, strlen(FILE2_TIPS));
	assert_int_equal(load_mem(fx->dirfd, big, RFS_SAVED_MAX + 1), -EBADMSG);
	assert_int_equal(load_mem(fx->dirfd, big, RFS_SAVED_MAX), -EBADMSG);
	free(big);

	/* A huge sparse file is refused without being read. */
	fd = openat(fx->dirfd, "vm.state", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, FILE2_5_OK, strlen(FILE2_5_OK), 0), (ssize_t)strlen(FILE2_5_OK));
	assert_int_equal(ftruncate(fd, 1ll << 40), 0);
	close(fd);
	assert_int_equal(fstatat(fx->dirfd, "vm.state", &st, 0), 0);
	{
		struct rfs_saved out;

		assert_int_equal(rfs_saved_load(fx->dirfd, &out), -EBADMSG);
		rfs_saved_free(&out);
	}
}

/* An I/O error is not "bad content": vm.state is a folder. */
static void test_load_io_error(void **state)
{
	struct fixture *fx = *state;
	struct rfs_saved out;

	assert_int_equal(mkdirat(fx->dirfd, "vm.state", 0700), 0);
	assert_int_equal(rfs_saved_load(fx->dirfd, &out), -EISDIR);
	assert_int_equal(rfs_saved_load(-1, &out), -EBADF);
	rfs_saved_free(&out);
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
		{ .state = RFS_STATE_RECOVERED, .ntips = 1, .tips = NULL },
	};
	static const struct {
		const char *disk, *file;
	} bad_names[] = { { "", "f" },	 { "d", "" },	  { ".", "f" },
			  { "d", ".." }, { "a/b", "f" }, { "d", "a/b" } };
	struct fixture *fx = *state;
	struct rfs_saved out, s;
	char buf[256];

	put_file(fx->dirfd, "vm.state", FILE2_5_OK, strlen(FILE2_5_OK));
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(rfs_saved_store(fx->dirfd, &bad[i]), -EINVAL);
	assert_int_equal(rfs_saved_store(fx->dirfd, NULL), -EINVAL);

	/* Tips in state 3. */
	rfs_saved_init(&s);
	assert_int_equal(rfs_saved_set_tip(&s, "sys", "f", ID_SYS), 0);
	assert_int_equal(rfs_saved_store(fx->dirfd, &s), -EINVAL);
	/* Tips not sorted, or twice (built by hand, not by set_tip). */
	s.state = RFS_STATE_RECOVERED;
	assert_int_equal(rfs_saved_set_tip(&s, "data", "f", ID_SYS), 0);
	s.tips[0] = s.tips[1];
	assert_int_equal(rfs_saved_store(fx->dirfd, &s), -EINVAL);
	snprintf(s.tips[0].disk, sizeof(s.tips[0].disk), "zz");
	assert_int_equal(rfs_saved_store(fx->dirfd, &s), -EINVAL);
	/* Names set_tip would refuse. */
	snprintf(s.tips[0].disk, sizeof(s.tips[0].disk), "a");
	for (size_t i = 0; i < ARRAY_SIZE(bad_names); i++) {
		snprintf(s.tips[1].disk, sizeof(s.tips[1].disk), "%s", bad_names[i].disk);
		snprintf(s.tips[1].file, sizeof(s.tips[1].file), "%s", bad_names[i].file);
		assert_int_equal(rfs_saved_store(fx->dirfd, &s), -EINVAL);
	}
	memset(s.tips[1].file, 'f', sizeof(s.tips[1].file)); /* no NUL */
	snprintf(s.tips[1].disk, sizeof(s.tips[1].disk), "b");
	assert_int_equal(rfs_saved_store(fx->dirfd, &s), -EINVAL);
	rfs_saved_free(&s);
	/* Too many tips. */
	s.state = RFS_STATE_RECOVERED;
	add_tips(&s, RFS_SAVED_MAX_TIPS);
	s.ntips++;
	assert_int_equal(rfs_saved_store(fx->dirfd, &s), -EINVAL);
	s.ntips--;
	rfs_saved_free(&s);

	assert_true(get_file(fx->dirfd, "vm.state", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, FILE2_5_OK);
	assert_false(exists(fx->dirfd, "vm.state.tmp"));
	/* A status is ignored when has_status is false. */
	out = (struct rfs_saved){ .state = RFS_STATE_REPLICATING, .status = 12345 };
	assert_int_equal(rfs_saved_store(fx->dirfd, &out), 0);
	assert_true(get_file(fx->dirfd, "vm.state", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, FILE2_3);
}

/*
 * Whatever loads is what a store writes: random states are stored, their
 * files mutated one byte at a time (with a fresh CRC) and loaded; every
 * mutant that loads as format 2 must be stored back byte for byte.
 */
static uint64_t rng_state;

static unsigned rnd(unsigned n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (unsigned)((rng_state >> 11) % n);
}

static char rnd_byte(void)
{
	static const char pool[] = "\\ \n\tx0123456789abcdefABCDEF./-_\x7f\x01\x80\xc3\xa9\xff";

	return rnd(4) ? pool[rnd(sizeof(pool) - 1)] : (char)(1 + rnd(255));
}

static void rnd_name(char *name)
{
	size_t len = rnd(8) ? 1 + rnd(12) : 1 + rnd(NAME_MAX);

	do {
		for (size_t i = 0; i < len; i++) {
			do
				name[i] = rnd_byte();
			while (name[i] == '/' || name[i] == '\0');
		}
		name[len] = '\0';
	} while (!strcmp(name, ".") || !strcmp(name, ".."));
}

static void test_canonical(void **state)
{
	static const int states[] = { 3, 5, 6 };
	struct fixture *fx = *state;
	const char *env = getenv("RFS_TEST_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
	size_t cap = RFS_SAVED_MAX + 64;
	char *orig = malloc(cap), *mut = malloc(cap), *again = malloc(cap);
	unsigned loaded = 0, stores = 0;

	assert_true(orig && mut && again);
	print_message("test_canonical: seed %llu (RFS_TEST_SEED to replay)\n",
		      (unsigned long long)seed);
	rng_state = seed * 2654435761u + 1;
	no_sync = true;
	for (int round = 0; round < 60; round++) {
		struct rfs_saved in, out;
		ssize_t olen;
		size_t body;

		rfs_saved_init(&in);
		in.state = (enum rfs_state)states[rnd(3)];
		in.has_status = rnd(2);
		in.status = in.has_status ? 32768 + (int)rnd(12) : 0;
		for (unsigned t = in.state == 3 ? 0 : rnd(6); t > 0; t--) {
			char disk[NAME_MAX + 1], file[NAME_MAX + 1];
			uint8_t id[16];

			rnd_name(disk);
			rnd_name(file);
			for (int k = 0; k < 16; k++)
				id[k] = (uint8_t)rnd(256);
			assert_int_equal(rfs_saved_set_tip(&in, disk, file, id), 0);
		}
		round_trip(fx->dirfd, &in);
		olen = get_file(fx->dirfd, "vm.state", orig, cap);
		assert_true(olen > 13);
		body = (size_t)olen - 13; /* without "crc xxxxxxxx\n" */

		for (int m = 0; m < 150; m++) {
			size_t at = rnd((unsigned)body + 1), mlen = body, flen;
			char *f;
			int r;

			memcpy(mut, orig, body);
			switch (rnd(3)) {
			case 0: /* replace */
				if (at == body)
					at--;
				mut[at] = rnd_byte();
				break;
			case 1: /* insert */
				memmove(mut + at + 1, mut + at, body - at);
				mut[at] = rnd_byte();
				mlen++;
				break;
			default: /* delete */
				if (at == body)
					at--;
				memmove(mut + at, mut + at + 1, body - at - 1);
				mlen--;
				break;
			}
			flen = with_crc(mut, mlen, &f);
			r = load_bytes(fx->dirfd, f, flen, &out);
			assert_true(r == 0 || r == -EBADMSG);
			if (r == 0) {
				ssize_t alen;

				loaded++;
				if (out.version == 1) {
					/* Only what the old writer wrote. */
					alen = v1_format(again, cap, (int)out.state, out.has_status,
							 out.status);
				} else {
					stores++;
					assert_int_equal(rfs_saved_store(fx->dirfd, &out), 0);
					alen = get_file(fx->dirfd, "vm.state", again, cap);
				}
				if (alen != (ssize_t)flen || memcmp(again, f, flen) != 0)
					print_error("loaded but not canonical: %.*s\n", (int)flen, f);
				assert_int_equal(alen, (ssize_t)flen);
				assert_memory_equal(again, f, flen);
			}
			rfs_saved_free(&out);
			free(f);
		}
		rfs_saved_free(&in);
	}
	no_sync = false;
	print_message("test_canonical: %u mutants loaded, %u stored back\n", loaded, stores);
	free(orig);
	free(mut);
	free(again);
}

/* ---- atomicity ---- */

/* A temp file left by a crash is replaced, and gone after the store. */
static void test_stale_tmp(void **state)
{
	struct fixture *fx = *state;
	struct rfs_saved in, out;
	char junk[8192];

	rfs_saved_init(&in);
	in.state = RFS_STATE_RECOVERED;
	in.has_status = true;
	memset(junk, 'j', sizeof(junk));
	put_file(fx->dirfd, "vm.state.tmp", junk, sizeof(junk));
	assert_int_equal(rfs_saved_store(fx->dirfd, &in), 0);
	assert_false(exists(fx->dirfd, "vm.state.tmp"));
	assert_int_equal(rfs_saved_load(fx->dirfd, &out), 0);
	assert_int_equal(out.state, RFS_STATE_RECOVERED);
	rfs_saved_free(&out);
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

/* Each step of a store fails in turn (through the seam): before the rename
 * the old file is intact and no temp file is left; a failed fsync of the
 * folder after it is reported, with the new file in place. */
static void test_store_faults(void **state)
{
	static const struct fault faults[] = {
		{ "pwrite", "tmp", EIO },   { "pwrite", "tmp", ENOSPC }, { "pwrite", "tmp", EDQUOT },
		{ "fsync", "tmp", EIO },    { "fsync", "tmp", ENOSPC },	 { "close", "tmp", EIO },
		{ "rename", "state", EIO }, { "rename", "state", EXDEV },
	};
	struct fixture *fx = *state;
	struct rfs_saved in, out;
	char *want, *buf = malloc(RFS_SAVED_MAX + 1);
	size_t want_len;
	ssize_t n;

	assert_non_null(buf);
	put_file(fx->dirfd, "vm.state", FILE2_TIPS, strlen(FILE2_TIPS));
	rfs_saved_init(&in);
	in.state = RFS_STATE_COMMITTED;
	in.has_status = true;
	in.status = 0;
	add_tips(&in, 40);

	for (size_t i = 0; i < ARRAY_SIZE(faults); i++) {
		seam_arm(faults[i].op, faults[i].kind, faults[i].err);
		assert_int_equal(rfs_saved_store(fx->dirfd, &in), -faults[i].err);
		assert_int_equal(fault_hits, 1);
		seam_arm(NULL, NULL, 0);
		assert_false(exists(fx->dirfd, "vm.state.tmp"));
		assert_true(get_file(fx->dirfd, "vm.state", buf, RFS_SAVED_MAX + 1) > 0);
		assert_string_equal(buf, FILE2_TIPS);
	}

	/* A short write is no failure: the rest follows. */
	seam_arm("pwrite", "tmp", 0);
	assert_int_equal(rfs_saved_store(fx->dirfd, &in), 0);
	assert_int_equal(fault_hits, 1);
	n = get_file(fx->dirfd, "vm.state", buf, RFS_SAVED_MAX + 1);
	assert_true(n > 0);
	want = malloc((size_t)n);
	assert_non_null(want);
	memcpy(want, buf, (size_t)n);
	want_len = (size_t)n;
	assert_int_equal(rfs_saved_load(fx->dirfd, &out), 0);
	assert_saved_equal(&in, &out);
	rfs_saved_free(&out);

	/* The folder's fsync fails after the rename: reported; new file. */
	put_file(fx->dirfd, "vm.state", FILE2_TIPS, strlen(FILE2_TIPS));
	seam_arm("fsync", "dir", EIO);
	assert_int_equal(rfs_saved_store(fx->dirfd, &in), -EIO);
	assert_int_equal(fault_hits, 1);
	seam_arm(NULL, NULL, 0);
	assert_false(exists(fx->dirfd, "vm.state.tmp"));
	assert_int_equal(get_file(fx->dirfd, "vm.state", buf, RFS_SAVED_MAX + 1), (ssize_t)want_len);
	assert_memory_equal(buf, want, want_len);
	/* A folder that cannot be synced at all (EINVAL) is not an error. */
	seam_arm("fsync", "dir", EINVAL);
	assert_int_equal(rfs_saved_store(fx->dirfd, &in), 0);
	seam_arm(NULL, NULL, 0);

	rfs_saved_free(&in);
	free(want);
	free(buf);
}

/* An O_PATH folder handle works for both calls. */
static void test_opath_dirfd(void **state)
{
	struct fixture *fx = *state;
	struct rfs_saved in = { .state = RFS_STATE_COMMITTED, .has_status = true, .status = 4096 };
	struct rfs_saved out;
	int pfd = open(fx->path, O_PATH | O_DIRECTORY | O_CLOEXEC);

	assert_true(pfd >= 0);
	assert_int_equal(rfs_saved_set_tip(&in, "sys", "sys_3F2A.avhdx", ID_SYS), 0);
	assert_int_equal(rfs_saved_store(pfd, &in), 0);
	assert_int_equal(rfs_saved_load(pfd, &out), 0);
	assert_saved_equal(&in, &out);
	rfs_saved_free(&in);
	rfs_saved_free(&out);
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
 * intact, no temp file is left, and a store works again once there is room.
 * A state larger than the whole file system fails the same way. */
static void test_store_enospc(void **state)
{
	struct fixture *fx = *state;
	struct rfs_saved old = { .state = RFS_STATE_RECOVERED, .has_status = true, .status = 0 };
	struct rfs_saved in = { .state = RFS_STATE_COMMITTED, .has_status = true, .status = 0 };
	struct rfs_saved huge, out;
	char block[4096], buf[256], name[NAME_MAX + 1];
	int fd, r;

	skip_unless_mounted(fx);
	assert_int_equal(rfs_saved_store(fx->dirfd, &old), 0);

	/* Bigger than the 64 KiB tmpfs. */
	rfs_saved_init(&huge);
	huge.state = RFS_STATE_COMMITTED;
	for (unsigned i = 0; i < 100; i++) {
		fill_name(name, NAME_MAX, " ");
		snprintf(name, 8, "%06u", i);
		name[6] = ' ';
		assert_int_equal(rfs_saved_set_tip(&huge, name, name, ID_FF), 0);
	}
	assert_int_equal(rfs_saved_store(fx->dirfd, &huge), -ENOSPC);
	assert_false(exists(fx->dirfd, "vm.state.tmp"));
	assert_true(get_file(fx->dirfd, "vm.state", buf, sizeof(buf)) > 0);
	assert_string_equal(buf, FILE2_5_OK);
	rfs_saved_free(&huge);

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
	assert_string_equal(buf, FILE2_5_OK);
	assert_int_equal(rfs_saved_load(fx->dirfd, &out), 0);
	assert_int_equal(out.state, RFS_STATE_RECOVERED);

	assert_int_equal(unlinkat(fx->dirfd, "filler", 0), 0);
	assert_int_equal(rfs_saved_store(fx->dirfd, &in), 0);
	assert_int_equal(rfs_saved_load(fx->dirfd, &out), 0);
	assert_int_equal(out.state, RFS_STATE_COMMITTED);
	rfs_saved_free(&out);
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
	assert_string_equal(buf, FILE2_5_OK);
	assert_int_equal(rfs_saved_load(fx->dirfd, &out), 0);
	assert_int_equal(out.state, RFS_STATE_RECOVERED);
	rfs_saved_free(&out);
}

#define DIR_TEST(f) cmocka_unit_test_setup_teardown(f, dir_setup, dir_teardown)
#define TMPFS_TEST(f) cmocka_unit_test_setup_teardown(f, tmpfs_setup, dir_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_copy_free),
		cmocka_unit_test(test_set_find_tip),
		DIR_TEST(test_format3),
		DIR_TEST(test_missing),
		DIR_TEST(test_round_trip),
		DIR_TEST(test_names_round_trip),
		DIR_TEST(test_exact_format),
		DIR_TEST(test_load_known_files),
		DIR_TEST(test_load_format1),
		DIR_TEST(test_garbage),
		DIR_TEST(test_bad_values_with_good_crc),
		DIR_TEST(test_limits),
		DIR_TEST(test_truncated),
		DIR_TEST(test_bad_crc),
		DIR_TEST(test_binary_and_large),
		DIR_TEST(test_load_io_error),
		DIR_TEST(test_store_refuses_bad_input),
		DIR_TEST(test_canonical),
		DIR_TEST(test_stale_tmp),
		DIR_TEST(test_rename_failure),
		DIR_TEST(test_store_faults),
		DIR_TEST(test_opath_dirfd),
		TMPFS_TEST(test_store_enospc),
		TMPFS_TEST(test_store_erofs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
