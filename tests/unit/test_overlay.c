/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tests/unit/test_overlay.c - vhd/overlay.c against an in-memory replica.
 *
 * Each test works in its own mkdtemp folder (/tmp/overlay-test-*); the
 * ENOSPC and probe tests mount a small tmpfs or a ramfs there (as root) and
 * fail, not skip, when they cannot.
 *
 * Seam: this file defines pwrite, lseek, ftruncate, fdatasync, fsync,
 * fallocate, renameat2 and unlinkat, which reach the kernel through syscall(2). Linked
 * with the core library they are what overlay.c calls, so a test can count
 * its system calls, see the order of its durable steps and make one fail.
 * They pass straight through unless a test arms them.
 *
 * The background closer that cow_close() and cow_remove() hand their
 * descriptors to is tested on its own in test_closer.c (hold, fork, the
 * truncation of unlinked files); here only through the overlay.
 *
 * The randomized test prints its seed; RFS_TEST_SEED=<n> replays it and
 * RFS_TEST_ITERATIONS=<n> sets its length.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "overlay.h"

#define KiB 1024ull
#define MiB (1024ull * KiB)
#define GiB (1024ull * MiB)

/* ---- the seam ---- */

struct fault {
	const char *op;   /* system call to fail once, NULL = none */
	const char *kind; /* on what: "tmp", "overlay", "dir", "other" */
	int err;          /* errno to fail with; 0 = a short pwrite */
};

static atomic_long n_pwrite, n_lseek;
/* Tracing or a fault: classify each call. Per thread: the seams see only
 * the calls of the test's own thread, not those of the overlay's background
 * closer (its ftruncate and close of removed overlays). */
static _Thread_local bool seam_armed;
static bool tracing;
static char trace_log[64][96];
static int trace_len;
static struct fault fault;

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

static const char *path_kind(const char *path)
{
	if (ends_with(path, ".overlay.tmp"))
		return "tmp";
	if (ends_with(path, ".overlay"))
		return "overlay";
	return "other";
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
	return path_kind(path);
}

/* Record @op on @kind; true if it is to fail now (errno set). */
static bool seam(const char *op, const char *kind)
{
	if (tracing && trace_len < 64)
		snprintf(trace_log[trace_len++], sizeof(trace_log[0]), "%s:%s", op, kind);
	if (fault.op && !strcmp(fault.op, op) && !strcmp(fault.kind, kind)) {
		errno = fault.err;
		fault.op = NULL;
		return true;
	}
	return false;
}

static void seam_arm(bool trace, const char *op, const char *kind, int err)
{
	tracing = trace;
	trace_len = 0;
	fault = (struct fault){ op, kind, err };
	seam_armed = trace || op;
}

static void seam_disarm(void)
{
	tracing = false;
	fault.op = NULL;
	seam_armed = false;
}

static int trace_index(const char *event, bool last)
{
	int found = -1;

	for (int i = 0; i < trace_len; i++) {
		if (!strcmp(trace_log[i], event)) {
			found = i;
			if (!last)
				break;
		}
	}
	return found;
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	n_pwrite++;
	if (seam_armed && seam("pwrite", fd_kind(fd))) {
		if (errno)
			return -1;
		len = len > 1 ? len / 2 : len; /* a short write, no error */
	}
	return syscall(SYS_pwrite64, fd, buf, len, off);
}

off_t lseek(int fd, off_t off, int whence)
{
	n_lseek++;
	return syscall(SYS_lseek, fd, off, whence);
}

int ftruncate(int fd, off_t len)
{
	if (seam_armed && seam("ftruncate", fd_kind(fd)))
		return -1;
	return syscall(SYS_ftruncate, fd, len);
}

int fdatasync(int fd)
{
	if (seam_armed && seam("fdatasync", fd_kind(fd)))
		return -1;
	return syscall(SYS_fdatasync, fd);
}

int fsync(int fd)
{
	if (seam_armed && seam("fsync", fd_kind(fd)))
		return -1;
	return syscall(SYS_fsync, fd);
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
	if (seam_armed && seam("fallocate", fd_kind(fd)))
		return -1;
	return syscall(SYS_fallocate, fd, mode, off, len);
}

int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags)
{
	if (seam_armed && seam("rename", path_kind(newpath)))
		return -1;
	return syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, flags);
}

int unlinkat(int dirfd, const char *path, int flags)
{
	if (seam_armed && seam("unlink", path_kind(path)))
		return -1;
	return syscall(SYS_unlinkat, dirfd, path, flags);
}

/* ---- randomness ---- */

static uint64_t rng_state, seed;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Dull;
}

static void fill_random(uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(rnd() >> 56);
}

static unsigned long env_ulong(const char *name, unsigned long dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtoul(v, NULL, 0) : dflt;
}

/* ---- the in-memory replica ---- */

struct mem_source {
	uint8_t *data;    /* NULL: bytes computed from the offset */
	uint64_t size;
	atomic_long reads;
	atomic_bool fail; /* reads fail with EIO */
	atomic_int delay_us; /* each read takes this long: widens race windows */
};

static uint8_t pattern_byte(uint64_t off)
{
	return (uint8_t)((off * 2654435761u) >> 13);
}

static int mem_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct mem_source *m = ctx;

	m->reads++;
	if (m->fail)
		return -EIO;
	if (m->delay_us)
		usleep(m->delay_us);
	if (off > m->size || len > m->size - off)
		return -EFAULT; /* the overlay asked past the replica's end */
	if (m->data) {
		memcpy(buf, m->data + off, len);
	} else {
		for (size_t i = 0; i < len; i++)
			((uint8_t *)buf)[i] = pattern_byte(off + i);
	}
	return 0;
}

/* ---- fixture: a folder, a replica, its model and an overlay ---- */

struct fx {
	char dir[64];
	int dirfd;
	char mnt[80]; /* a filesystem mounted here, "" if none */
	struct mem_source mem;
	struct cow_source src;
	struct cow_identity id;
	uint8_t *model; /* what the disk must read as */
	struct cow_overlay *ov;
};

static int fx_setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	strcpy(fx->dir, "/tmp/overlay-test-XXXXXX");
	if (!mkdtemp(fx->dir))
		goto out_free;
	fx->dirfd = open(fx->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fx->dirfd < 0)
		goto out_rmdir;
	*state = fx;
	return 0;

out_rmdir:
	rmdir(fx->dir);
out_free:
	free(fx);
	return -1;
}

static void remove_all(int dirfd)
{
	DIR *d = fdopendir(dup(dirfd));
	struct dirent *e;

	if (!d)
		return;
	rewinddir(d); /* the dup shares its position with @dirfd */
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dirfd, e->d_name, 0);
	closedir(d);
}

static int fx_teardown(void **state)
{
	struct fx *fx = *state;

	seam_disarm();
	cow_close(fx->ov);
	cow_wait_freed(); /* no closer work spills into the next test */
	remove_all(fx->dirfd);
	close(fx->dirfd);
	if (fx->mnt[0] && umount(fx->mnt) < 0)
		umount2(fx->mnt, MNT_DETACH);
	if (fx->mnt[0])
		rmdir(fx->mnt);
	rmdir(fx->dir);
	free(fx->mem.data);
	free(fx->model);
	free(fx);
	return 0;
}

/* Mount @type at <dir>/mnt and work there from now on. */
static void fx_mount(struct fx *fx, const char *type, const char *opts)
{
	snprintf(fx->mnt, sizeof(fx->mnt), "%s/mnt", fx->dir);
	assert_int_equal(mkdir(fx->mnt, 0700), 0);
	if (mount(type, fx->mnt, type, 0, opts) < 0) {
		int err = errno;

		rmdir(fx->mnt);
		fx->mnt[0] = 0;
		fail_msg("mount -t %s -o %s: %s", type, opts ? opts : "", strerror(err));
	}
	close(fx->dirfd);
	fx->dirfd = open(fx->mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fx->dirfd >= 0);
}

static void fx_identity(struct cow_identity *id, uint64_t vsize, const char *disk)
{
	memset(id, 0, sizeof(*id));
	for (int i = 0; i < 16; i++)
		id->identifier[i] = (uint8_t)(0x40 + i);
	id->virtual_size = vsize;
	snprintf(id->disk, sizeof(id->disk), "%s", disk);
}

/* A replica of @vsize random bytes (or computed ones when !@in_memory) and
 * an empty overlay "disk" over it. */
static void fx_disk(struct fx *fx, uint64_t vsize, bool in_memory)
{
	fx->mem.size = vsize;
	if (in_memory) {
		fx->mem.data = malloc(vsize);
		fx->model = malloc(vsize);
		assert_non_null(fx->mem.data);
		assert_non_null(fx->model);
		fill_random(fx->mem.data, vsize);
		memcpy(fx->model, fx->mem.data, vsize);
	}
	fx->src = (struct cow_source){ mem_read, &fx->mem };
	fx_identity(&fx->id, vsize, "disk");
	assert_int_equal(cow_create(fx->dirfd, "disk", &fx->id, &fx->ov), 0);
}

static void fx_reopen(struct fx *fx)
{
	cow_close(fx->ov);
	fx->ov = NULL;
	assert_int_equal(cow_open(fx->dirfd, "disk", &fx->id, &fx->ov), 0);
}

/* Write through the overlay and into the model; expect success. */
static void fx_write(struct fx *fx, const void *buf, size_t len, uint64_t off)
{
	ssize_t n = cow_write(fx->ov, &fx->src, buf, len, off);

	if (n != (ssize_t)len)
		fail_msg("cow_write(%zu @ %llu) = %zd (seed %llu)", len, (unsigned long long)off, n,
			 (unsigned long long)seed);
	memcpy(fx->model + off, buf, len);
}

static void assert_model(struct fx *fx, uint64_t off, size_t len)
{
	uint8_t *buf = malloc(len ? len : 1);
	int err;

	assert_non_null(buf);
	err = cow_read(fx->ov, &fx->src, buf, len, off);
	if (err)
		fail_msg("cow_read(%zu @ %llu) = %d", len, (unsigned long long)off, err);
	/* memcmp first: a byte loop over MiBs is slow under ThreadSanitizer;
	 * the loop only names the first differing byte */
	for (size_t i = memcmp(buf, fx->model + off, len) ? 0 : len; i < len; i++) {
		if (buf[i] != fx->model[off + i]) {
			unsigned got = buf[i], want = fx->model[off + i];

			free(buf);
			fail_msg("byte %llu reads 0x%02x, model has 0x%02x (seed %llu)",
				 (unsigned long long)(off + i), got, want, (unsigned long long)seed);
		}
	}
	free(buf);
}

/* Every cluster of the overlay is all data or all hole. */
/*
 * The overlay's map (cow_map(): its presence map, kept in memory) says what
 * the file's own allocation says, read here with lseek(): every run it
 * calls present is data in the file, every other run is a hole there.
 */
static void assert_map_is_file(struct fx *fx)
{
	int fd = cow_fd(fx->ov);
	off_t base = (off_t)cow_file_offset(fx->ov, 0);
	uint64_t off = 0, vsize = fx->id.virtual_size;

	while (off < vsize) {
		enum cow_run kind;
		uint64_t run = 0;
		off_t data, hole;

		assert_int_equal(cow_map(fx->ov, off, vsize - off, &run, &kind), 0);
		assert_true(run > 0 && run <= vsize - off);
		data = lseek(fd, base + (off_t)off, SEEK_DATA);
		if (kind == COW_RUN_PRESENT) {
			hole = lseek(fd, base + (off_t)off, SEEK_HOLE);
			if (data != base + (off_t)off || hole < base + (off_t)(off + run))
				fail_msg("map: [%llu, +%llu) present, file: data at %lld, hole at %lld (seed %llu)",
					 (unsigned long long)off, (unsigned long long)run, (long long)(data - base),
					 (long long)(hole - base), (unsigned long long)seed);
		} else if (data >= 0 && data < base + (off_t)(off + run)) {
			fail_msg("map: [%llu, +%llu) absent, file: data at %lld (seed %llu)", (unsigned long long)off,
				 (unsigned long long)run, (long long)(data - base), (unsigned long long)seed);
		}
		off += run;
	}
}

static void assert_cluster_granular(struct fx *fx)
{
	int fd = cow_fd(fx->ov);
	uint64_t c = cow_cluster_size(fx->ov);
	off_t base = (off_t)cow_file_offset(fx->ov, 0);
	off_t end = base + (off_t)fx->id.virtual_size;
	off_t pos = base;

	while (pos < end) {
		off_t data = lseek(fd, pos, SEEK_DATA), hole;

		if (data < 0) {
			assert_int_equal(errno, ENXIO);
			break;
		}
		hole = lseek(fd, data, SEEK_HOLE);
		assert_true(hole > data);
		if ((data - base) % (off_t)c || (hole != end && (hole - base) % (off_t)c))
			fail_msg("data run [%lld, %lld) is not whole clusters of %llu (seed %llu)",
				 (long long)(data - base), (long long)(hole - base), (unsigned long long)c,
				 (unsigned long long)seed);
		pos = hole;
	}
	assert_map_is_file(fx);
}

static int count_entries(int dirfd)
{
	DIR *d = fdopendir(dup(dirfd));
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	rewinddir(d); /* the dup shares its position with @dirfd */
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* ---- format ---- */

/* Bitwise CRC32C, independent of the table-driven one under test. */
static uint32_t ref_crc32c(const uint8_t *p, size_t len)
{
	uint32_t crc = ~0u;

	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & -(crc & 1));
	}
	return ~crc;
}

static uint32_t le32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* The size of a version 2 overlay file of @vsize in clusters of @c: header
 * cluster, data rounded up to a cluster, zero map (a bit per cluster)
 * rounded up to a cluster. Written out here, independent of overlay.c. */
static uint64_t v2_file_size(uint64_t c, uint64_t vsize)
{
	uint64_t clusters = (vsize + c - 1) / c;

	return c + clusters * c + ((clusters + 7) / 8 + c - 1) / c * c;
}

static void test_header_format(void **state)
{
	struct fx *fx = *state;
	uint8_t *hdr;
	struct stat st;
	uint32_t c;
	int fd;

	assert_int_equal(ref_crc32c((const uint8_t *)"123456789", 9), 0xE3069283u);
	fx_disk(fx, 10 * MiB + 512, true);
	c = cow_cluster_size(fx->ov);

	fd = openat(fx->dirfd, "disk.overlay", O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, v2_file_size(c, 10 * MiB + 512));
	assert_int_equal(st.st_mode & 0777, 0600);
	hdr = malloc(c);
	assert_int_equal(pread(fd, hdr, c, 0), c);
	assert_memory_equal(hdr, "RFSCOW01", 8);
	assert_int_equal(le32(hdr + 8), 2);
	assert_int_equal(le32(hdr + 12), 308);
	assert_int_equal(le32(hdr + 16), c);
	assert_memory_equal(hdr + 24, fx->id.identifier, 16);
	assert_int_equal(le64(hdr + 40), 10 * MiB + 512);
	assert_string_equal((char *)hdr + 48, "disk");
	assert_int_equal(le32(hdr + 304), ref_crc32c(hdr, 304));
	for (uint32_t i = 308; i < c; i++)
		assert_int_equal(hdr[i], 0);
	/* The header cluster is one data run, the rest (data and zero map)
	 * one hole. */
	assert_int_equal(lseek(fd, 0, SEEK_DATA), 0);
	assert_int_equal(lseek(fd, 0, SEEK_HOLE), c);
	assert_int_equal(lseek(fd, c, SEEK_DATA), -1);
	assert_int_equal(errno, ENXIO);
	/* Published complete: no ".tmp" left. */
	assert_int_equal(count_entries(fx->dirfd), 1);
	free(hdr);
	close(fd);
}

static void test_create_open_close_remove(void **state)
{
	struct fx *fx = *state;
	struct cow_overlay *ov2 = NULL;
	struct cow_identity other;
	bool written = true;
	int fd;

	assert_false(cow_exists(fx->dirfd, "disk"));
	assert_int_equal(cow_open(fx->dirfd, "disk", &fx->id, &ov2), -ENOENT);
	assert_int_equal(cow_remove(fx->dirfd, "disk"), 0);

	/* A ".tmp" a crash left is cleaned by the next create. */
	fd = openat(fx->dirfd, "disk.overlay.tmp", O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "junk", 4), 4);
	close(fd);
	assert_int_equal(cow_open(fx->dirfd, "disk", &fx->id, &ov2), -ENOENT);

	fx_disk(fx, 3 * MiB, true);
	assert_true(cow_exists(fx->dirfd, "disk"));
	assert_int_equal(faccessat(fx->dirfd, "disk.overlay.tmp", F_OK, 0), -1);
	assert_int_equal(cow_stat(fx->ov, NULL, NULL, &written), 0);
	assert_false(written);

	fx_identity(&other, 3 * MiB, "disk");
	assert_int_equal(cow_create(fx->dirfd, "disk", &other, &ov2), -EEXIST);
	assert_int_equal(count_entries(fx->dirfd), 1);

	fx_reopen(fx);
	assert_int_equal(cow_cluster_size(fx->ov) & (cow_cluster_size(fx->ov) - 1), 0);
	assert_int_equal(cow_file_offset(fx->ov, 5), cow_cluster_size(fx->ov) + 5);
	cow_close(fx->ov);
	fx->ov = NULL;

	/* A second disk beside it, then both removed. */
	fx_identity(&other, 1 * MiB, "data");
	assert_int_equal(cow_create(fx->dirfd, "data", &other, &ov2), 0);
	cow_close(ov2);
	assert_int_equal(count_entries(fx->dirfd), 2);
	assert_int_equal(cow_remove(fx->dirfd, "disk"), 0);
	assert_false(cow_exists(fx->dirfd, "disk"));
	assert_true(cow_exists(fx->dirfd, "data"));
	assert_int_equal(cow_remove(fx->dirfd, "disk"), 0);
	assert_int_equal(cow_open(fx->dirfd, "disk", &fx->id, &ov2), -ENOENT);
	assert_int_equal(cow_remove(fx->dirfd, "data"), 0);
	assert_int_equal(count_entries(fx->dirfd), 0);

	/* A lone ".tmp" is removed too. */
	fd = openat(fx->dirfd, "disk.overlay.tmp", O_CREAT | O_WRONLY, 0600);
	close(fd);
	assert_int_equal(cow_remove(fx->dirfd, "disk"), 0);
	assert_int_equal(count_entries(fx->dirfd), 0);

	/* Names that are not one path component. */
	assert_int_equal(cow_create(fx->dirfd, "a/b", &other, &ov2), -EINVAL);
	assert_int_equal(cow_create(fx->dirfd, "", &other, &ov2), -EINVAL);
	assert_int_equal(cow_create(fx->dirfd, "..", &other, &ov2), -EINVAL);
}

static void test_identity_mismatch(void **state)
{
	struct fx *fx = *state;
	struct cow_overlay *ov2 = NULL;
	struct cow_identity other;

	fx_disk(fx, 2 * MiB, true);
	cow_close(fx->ov);
	fx->ov = NULL;

	other = fx->id;
	other.identifier[15] ^= 1;
	assert_int_equal(cow_open(fx->dirfd, "disk", &other, &ov2), -ESTALE);
	other = fx->id;
	other.virtual_size += 512;
	assert_int_equal(cow_open(fx->dirfd, "disk", &other, &ov2), -ESTALE);
	other = fx->id;
	strcpy(other.disk, "disk2");
	assert_int_equal(cow_open(fx->dirfd, "disk", &other, &ov2), -ESTALE);
	assert_null(ov2);
	fx_reopen(fx);
}

/* Patch @len bytes at @off of the overlay file; fix the CRC if @recrc. */
static void patch_header(struct fx *fx, off_t off, const void *bytes, size_t len, bool recrc)
{
	uint8_t hdr[308];
	int fd = openat(fx->dirfd, "disk.overlay", O_RDWR);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, hdr, sizeof(hdr), 0), sizeof(hdr));
	memcpy(hdr + off, bytes, len);
	if (recrc) {
		uint32_t crc = ref_crc32c(hdr, 304);

		for (int i = 0; i < 4; i++)
			hdr[304 + i] = (uint8_t)(crc >> (8 * i));
	}
	assert_int_equal(pwrite(fd, hdr, sizeof(hdr), 0), sizeof(hdr));
	close(fd);
}

static void test_corrupt_header(void **state)
{
	struct fx *fx = *state;
	struct cow_overlay *ov2 = NULL;
	uint8_t orig[308];
	uint32_t c;
	int fd;

	fx_disk(fx, 2 * MiB, true);
	c = cow_cluster_size(fx->ov);
	cow_close(fx->ov);
	fx->ov = NULL;
	fd = openat(fx->dirfd, "disk.overlay", O_RDONLY);
	assert_int_equal(pread(fd, orig, sizeof(orig), 0), sizeof(orig));
	close(fd);

	/* One flipped bit in the name: the CRC catches it. */
	patch_header(fx, 50, "x", 1, false);
	assert_int_equal(cow_open(fx->dirfd, "disk", &fx->id, &ov2), -EUCLEAN);
	patch_header(fx, 0, orig, sizeof(orig), false);
	assert_int_equal(cow_open(fx->dirfd, "disk", &fx->id, &ov2), 0);
	cow_close(ov2);
	ov2 = NULL;

	patch_header(fx, 0, "RFSCOW02", 8, true); /* bad magic */
	assert_int_equal(cow_open(fx->dirfd, "disk", &fx->id, &ov2), -EUCLEAN);
	patch_header(fx, 0, orig, sizeof(orig), false);
	patch_header(fx, 16, "\x00\x03\x00\x00", 4, true); /* cluster 768 */
	assert_int_equal(cow_open(fx->dirfd, "disk", &fx->id, &ov2), -EUCLEAN);
	patch_header(fx, 0, orig, sizeof(orig), false);
	patch_header(fx, 8, "\x03", 1, true); /* version 3 */
	assert_int_equal(cow_open(fx->dirfd, "disk", &fx->id, &ov2), -EUCLEAN);
	patch_header(fx, 0, orig, sizeof(orig), false);
	/* version 1 with a version 2 file's size (zero map): the size differs */
	patch_header(fx, 8, "\x01", 1, true);
	assert_int_equal(cow_open(fx->dirfd, "disk", &fx->id, &ov2), -EUCLEAN);
	patch_header(fx, 0, orig, sizeof(orig), false);

	/* A file whose size differs from what its header says. */
	fd = openat(fx->dirfd, "disk.overlay", O_RDWR);
	assert_int_equal(ftruncate(fd, c + MiB), 0);
	assert_int_equal(cow_open(fx->dirfd, "disk", &fx->id, &ov2), -EUCLEAN);
	assert_int_equal(ftruncate(fd, 100), 0);
	assert_int_equal(cow_open(fx->dirfd, "disk", &fx->id, &ov2), -EUCLEAN);
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(cow_open(fx->dirfd, "disk", &fx->id, &ov2), -EUCLEAN);
	close(fd);
	assert_null(ov2);
}

/* ---- writes and reads ---- */

static void reset_counts(struct fx *fx)
{
	n_pwrite = 0;
	n_lseek = 0;
	fx->mem.reads = 0;
}

/* Aligned writes are one pwrite and nothing else; partial ones fill. */
static void test_write_syscalls(void **state)
{
	struct fx *fx = *state;
	uint8_t *buf = malloc(MiB + 8192);
	uint64_t c;

	fx_disk(fx, 64 * MiB, true);
	c = cow_cluster_size(fx->ov);
	fill_random(buf, MiB + 8192);

	reset_counts(fx);
	fx_write(fx, buf, c, 5 * c);
	assert_int_equal(n_pwrite, 1);
	assert_int_equal(n_lseek, 0);
	assert_int_equal(fx->mem.reads, 0);

	reset_counts(fx);
	fx_write(fx, buf, MiB, 8 * MiB);
	assert_int_equal(n_pwrite, 1);
	assert_int_equal(n_lseek, 0);
	assert_int_equal(fx->mem.reads, 0);

	/* Partial, into a present cluster: written, no fill, and no lseek:
	 * the presence map knows the cluster. */
	reset_counts(fx);
	fx_write(fx, buf + 7, 100, 5 * c + 10);
	assert_int_equal(n_pwrite, 1);
	assert_int_equal(n_lseek, 0);
	assert_int_equal(fx->mem.reads, 0);

	/* Partial, into an absent cluster: one fill, one whole cluster. */
	reset_counts(fx);
	fx_write(fx, buf + 9, 100, 20 * MiB + 10);
	assert_int_equal(n_pwrite, 1);
	assert_int_equal(fx->mem.reads, 1);

	/* Across the boundary of two absent clusters: two fills. */
	reset_counts(fx);
	fx_write(fx, buf + 11, 100, 24 * MiB - 50);
	assert_int_equal(n_pwrite, 2);
	assert_int_equal(fx->mem.reads, 2);

	/* Unaligned over several clusters: head, middle, tail. */
	reset_counts(fx);
	fx_write(fx, buf, 3 * c, 30 * MiB + 100);
	assert_int_equal(n_pwrite, 3);
	assert_int_equal(fx->mem.reads, 2);

	/* Unaligned, but its end clusters are present: one pwrite. */
	reset_counts(fx);
	fx_write(fx, buf, MiB - 200, 8 * MiB + 100);
	assert_int_equal(n_pwrite, 1);
	assert_int_equal(fx->mem.reads, 0);

	assert_model(fx, 0, 64 * MiB);
	assert_cluster_granular(fx);
	free(buf);
}

/* Edges: first and last byte, a short last cluster, past the end. */
static void test_write_edges(void **state)
{
	struct fx *fx = *state;
	uint64_t vsize = 2 * MiB + 4096 + 1000; /* last cluster is short */
	uint8_t buf[8192];
	struct stat st;
	uint64_t c;

	fx_disk(fx, vsize, true);
	c = cow_cluster_size(fx->ov);
	fill_random(buf, sizeof(buf));

	fx_write(fx, buf, 1, 0);
	fx_write(fx, buf + 1, 1, vsize - 1);
	fx_write(fx, buf + 2, 3, vsize - 3);
	assert_int_equal(cow_write(fx->ov, &fx->src, buf, 0, vsize), 0);
	assert_int_equal(cow_write(fx->ov, &fx->src, buf, 1, vsize), -EINVAL);
	assert_int_equal(cow_write(fx->ov, &fx->src, buf, 2, vsize - 1), -EINVAL);
	assert_int_equal(cow_write(fx->ov, &fx->src, buf, 1, UINT64_MAX), -EINVAL);
	assert_int_equal(cow_write(fx->ov, &fx->src, buf, SIZE_MAX, 1), -EINVAL);
	assert_int_equal(cow_read(fx->ov, &fx->src, buf, 2, vsize - 1), -EINVAL);
	/* A write that ends exactly at the end covers the short cluster. */
	fx_write(fx, buf, 1000, vsize - 1000);
	fx_write(fx, buf, 2000, vsize - 2000);
	assert_model(fx, 0, vsize);
	assert_cluster_granular(fx);
	/* The file never grows past its layout (data, then zero map). */
	assert_int_equal(fstat(cow_fd(fx->ov), &st), 0);
	assert_int_equal(st.st_size, v2_file_size(c, vsize));
}

static size_t pick_len(uint64_t c, uint64_t vsize)
{
	size_t len;

	switch (rnd() % 5) {
	case 0:
		len = 1 + rnd() % 64;
		break;
	case 1:
		len = 1 + rnd() % (3 * c);
		break;
	case 2:
		len = c * (1 + rnd() % 64);
		break;
	case 3:
		len = 512 * (1 + rnd() % 256);
		break;
	default:
		len = 1 + rnd() % (4 * MiB);
		break;
	}
	return len > vsize ? vsize : len;
}

static uint64_t pick_off(uint64_t c, uint64_t vsize, size_t len)
{
	uint64_t off;

	switch (rnd() % 5) {
	case 0:
		off = rnd() % (vsize / c) * c;
		break;
	case 1:
		off = rnd() % (vsize / 512) * 512;
		break;
	case 2:
		off = (rnd() % (vsize / c) + 1) * c - rnd() % 8; /* just before a boundary */
		break;
	case 3:
		off = vsize - len - rnd() % 3; /* at or near the last byte */
		break;
	default:
		off = rnd() % vsize;
		break;
	}
	if (off > vsize - len)
		off = vsize - len;
	return off;
}

/* Random writes of 1 byte to 4 MiB at many alignments, each step checked
 * against the model: reads, cluster granularity, reopen, -EINVAL. */
static void test_random_model(void **state)
{
	struct fx *fx = *state;
	uint64_t vsize = 6 * MiB + 3 * 4096 + 1234;
	unsigned long steps = env_ulong("RFS_TEST_ITERATIONS", 300);
	uint8_t *buf = malloc(4 * MiB);
	uint64_t c;

	assert_non_null(buf);
	fx_disk(fx, vsize, true);
	c = cow_cluster_size(fx->ov);
	print_message("random model: seed %llu, %lu steps, cluster %llu\n", (unsigned long long)seed, steps,
		      (unsigned long long)c);

	for (unsigned long step = 0; step < steps; step++) {
		unsigned op = rnd() % 100;
		size_t len = pick_len(c, vsize);
		uint64_t off = pick_off(c, vsize, len);

		if (op < 70) {
			fill_random(buf, len);
			fx_write(fx, buf, len, off);
		} else if (op < 75) {
			uint64_t bad = vsize - len + 1 + rnd() % (2 * c);

			assert_int_equal(cow_write(fx->ov, &fx->src, buf, len, bad), -EINVAL);
		} else if (op < 92) {
			assert_model(fx, off, len);
		} else {
			fx_reopen(fx);
		}
		assert_model(fx, 0, vsize);
		assert_cluster_granular(fx);
	}
	free(buf);
}

/* Reads and extents across alternating overlay and replica runs. */
static void test_read_runs(void **state)
{
	struct fx *fx = *state;
	uint64_t vsize = 4 * MiB + 700;
	uint8_t *buf = malloc(vsize);
	uint64_t c, nclusters;

	fx_disk(fx, vsize, true);
	c = cow_cluster_size(fx->ov);
	nclusters = (vsize + c - 1) / c;
	fill_random(buf, vsize);
	/* Present: clusters 1, 2, 5, 9, 10, 11, ... (i % 4 == 1, or i/8 odd),
	 * and the short last one. */
	for (uint64_t i = 0; i < nclusters; i++) {
		uint64_t len = i * c + c > vsize ? vsize - i * c : c;

		if (i % 4 == 1 || (i / 8) % 2 || i == nclusters - 1)
			fx_write(fx, buf + i * c, len, i * c);
	}
	assert_model(fx, 0, vsize);
	for (int k = 0; k < 2000; k++) {
		uint64_t off = rnd() % vsize;
		size_t len = 1 + rnd() % (vsize - off < 5 * c ? vsize - off : 5 * c);

		assert_model(fx, off, len);
	}
	assert_model(fx, vsize - 1, 1);
	assert_model(fx, vsize, 0);

	/* cow_extent walks the same runs, clamped to the length asked. */
	for (uint64_t off = 0; off < vsize;) {
		uint64_t run, i = off / c, want_end = off;
		bool in, want;

		assert_int_equal(cow_extent(fx->ov, off, vsize, &run, &in), 0);
		want = i % 4 == 1 || (i / 8) % 2 || i == nclusters - 1;
		assert_int_equal(in, want);
		while (want_end < vsize) {
			uint64_t j = want_end / c;

			if ((j % 4 == 1 || (j / 8) % 2 || j == nclusters - 1) != want)
				break;
			want_end = (j + 1) * c > vsize ? vsize : (j + 1) * c;
		}
		assert_int_equal(run, want_end - off);
		if (in) {
			uint8_t b;

			assert_int_equal(pread(cow_fd(fx->ov), &b, 1, cow_file_offset(fx->ov, off)), 1);
			assert_int_equal(b, fx->model[off]);
		}
		off += run;
	}
	{
		uint64_t run;
		bool in;

		assert_int_equal(cow_extent(fx->ov, c + 10, 5, &run, &in), 0);
		assert_int_equal(run, 5);
		assert_true(in);
		assert_int_equal(cow_extent(fx->ov, 3, c, &run, &in), 0);
		assert_int_equal(run, c - 3);
		assert_false(in);
		assert_int_equal(cow_extent(fx->ov, vsize - 1, 100, &run, &in), 0);
		assert_int_equal(run, 1);
		assert_true(in);
		assert_int_equal(cow_extent(fx->ov, vsize, 1, &run, &in), -EINVAL);
	}
	free(buf);
}

static void test_reopen_keeps_data(void **state)
{
	struct fx *fx = *state;
	uint8_t buf[20000];

	fx_disk(fx, 3 * MiB + 17, true);
	fill_random(buf, sizeof(buf));
	fx_write(fx, buf, sizeof(buf), 12345);
	fx_write(fx, buf, 1, 3 * MiB + 16);
	assert_int_equal(cow_sync(fx->ov, true), 0);
	fx_write(fx, buf + 5, 4096, 2 * MiB);
	assert_int_equal(cow_sync(fx->ov, false), 0);
	fx_reopen(fx);
	assert_model(fx, 0, 3 * MiB + 17);
	fx_reopen(fx);
	assert_model(fx, 0, 3 * MiB + 17);
}

static void test_stat(void **state)
{
	struct fx *fx = *state;
	struct timespec before, after, pause = { 0, 30 * 1000 * 1000 };
	uint64_t held0, held1;
	uint8_t buf[4096] = { 1 };
	bool written = true;

	fx_disk(fx, 8 * MiB, true);
	assert_int_equal(cow_stat(fx->ov, &held0, &before, &written), 0);
	assert_false(written);
	assert_true(held0 >= cow_cluster_size(fx->ov));
	assert_true(held0 < 64 * KiB + cow_cluster_size(fx->ov));
	nanosleep(&pause, NULL);
	fx_write(fx, buf, sizeof(buf), 5 * MiB);
	fx_write(fx, buf, 1, 7 * MiB + 3);
	assert_int_equal(cow_stat(fx->ov, &held1, &after, &written), 0);
	assert_true(written);
	assert_true(held1 >= held0 + 2 * cow_cluster_size(fx->ov));
	assert_true(after.tv_sec > before.tv_sec || (after.tv_sec == before.tv_sec && after.tv_nsec > before.tv_nsec));
	fx_reopen(fx);
	assert_int_equal(cow_stat(fx->ov, NULL, NULL, &written), 0);
	assert_true(written);
}

/* The replica failing: the error comes back, nothing is half-written. */
static void test_source_error(void **state)
{
	struct fx *fx = *state;
	uint8_t buf[100] = { 7 };
	bool written = true;

	fx_disk(fx, 2 * MiB, true);
	fx->mem.fail = true;
	assert_int_equal(cow_write(fx->ov, &fx->src, buf, sizeof(buf), 4097), -EIO);
	assert_int_equal(cow_read(fx->ov, &fx->src, buf, sizeof(buf), 4097), -EIO);
	assert_int_equal(cow_stat(fx->ov, NULL, NULL, &written), 0);
	assert_false(written);
	/* Aligned writes need no replica. */
	fx_write(fx, fx->model, 4096, 8192);
	fx->mem.fail = false;
	assert_model(fx, 0, 2 * MiB);
}

/* A pwrite that writes only part: the rest follows, all of it lands. */
static void test_short_writes(void **state)
{
	struct fx *fx = *state;
	uint8_t *buf = malloc(256 * KiB);

	fx_disk(fx, 4 * MiB, true);
	fill_random(buf, 256 * KiB);
	seam_arm(false, "pwrite", "overlay", 0);
	fx_write(fx, buf, 256 * KiB, MiB);
	assert_null(fault.op); /* it did fire */
	seam_arm(false, "pwrite", "overlay", 0);
	fx_write(fx, buf, 77, 3 * MiB + 5);
	assert_null(fault.op);
	seam_disarm();
	assert_model(fx, 0, 4 * MiB);
	assert_cluster_granular(fx);
	free(buf);
}

/* ---- concurrency ---- */

#define NTHREADS 8
#define GROUP 80 /* each thread owns 7 of every 10 bytes of its tenth */

struct worker {
	struct fx *fx;
	pthread_barrier_t *barrier;
	int id;
	uint64_t base, span; /* the region all threads write into */
	int errors;
};

static uint8_t thread_byte(int t, uint64_t pos)
{
	return (uint8_t)(0x11 * (t + 1) + pos * 7);
}

/* Thread @t owns [g*GROUP + t*10, +7) for every group g of the region;
 * threads start on different groups of the same clusters so that their
 * first writes to each absent cluster race. */
static void *partial_writer(void *arg)
{
	struct worker *w = arg;
	uint64_t groups = w->span / GROUP;
	uint8_t bytes[7];

	pthread_barrier_wait(w->barrier);
	for (uint64_t k = 0; k < groups; k++) {
		uint64_t g = (k * 7919 + (uint64_t)w->id * 13) % groups;
		uint64_t pos = w->base + g * GROUP + (uint64_t)w->id * 10;

		for (int i = 0; i < 7; i++)
			bytes[i] = thread_byte(w->id, pos + i);
		if (cow_write(w->fx->ov, &w->fx->src, bytes, 7, pos) != 7)
			w->errors++;
	}
	return NULL;
}

static void test_concurrent_partial_writes(void **state)
{
	struct fx *fx = *state;
	pthread_barrier_t barrier;
	pthread_t th[NTHREADS];
	struct worker w[NTHREADS];
	uint64_t c, base, span;

	fx_disk(fx, 16 * MiB, true);
	c = cow_cluster_size(fx->ov);
	for (int round = 0; round < 4; round++) {
		base = (1 + (uint64_t)round * 40) * c + (uint64_t)round * 3; /* some ranges straddle clusters */
		span = 32 * c / GROUP * GROUP;
		pthread_barrier_init(&barrier, NULL, NTHREADS);
		for (int t = 0; t < NTHREADS; t++) {
			w[t] = (struct worker){ fx, &barrier, t, base, span, 0 };
			assert_int_equal(pthread_create(&th[t], NULL, partial_writer, &w[t]), 0);
		}
		for (int t = 0; t < NTHREADS; t++) {
			pthread_join(th[t], NULL);
			assert_int_equal(w[t].errors, 0);
		}
		pthread_barrier_destroy(&barrier);
		/* Every thread's bytes, and the replica's in the bytes nobody owns. */
		for (uint64_t g = 0; g < span / GROUP; g++)
			for (int t = 0; t < NTHREADS; t++)
				for (int i = 0; i < 7; i++) {
					uint64_t pos = base + g * GROUP + (uint64_t)t * 10 + i;

					fx->model[pos] = thread_byte(t, pos);
				}
		assert_model(fx, 0, 16 * MiB);
		assert_cluster_granular(fx);
	}
}

struct race {
	struct fx *fx;
	pthread_barrier_t barrier;
	uint64_t first, count; /* clusters raced over */
	atomic_uint_least64_t current;
	atomic_bool done;
	int errors;
	long bad_reads;
};

#define PART_OFF 100
#define PART_LEN 10

static uint8_t full_byte(uint64_t pos)
{
	return (uint8_t)(pos * 13 + 0x5a);
}

static uint8_t part_byte(uint64_t pos)
{
	return (uint8_t)(pos * 3 + 0xc3);
}

static void *full_writer(void *arg)
{
	struct race *r = arg;
	uint64_t c = cow_cluster_size(r->fx->ov);
	uint8_t *buf = malloc(c);

	for (uint64_t k = r->first; k < r->first + r->count; k++) {
		for (uint64_t i = 0; i < c; i++)
			buf[i] = full_byte(k * c + i);
		pthread_barrier_wait(&r->barrier);
		r->current = k;
		if (cow_write(r->fx->ov, &r->fx->src, buf, c, k * c) != (ssize_t)c)
			r->errors++;
	}
	r->done = true;
	free(buf);
	return NULL;
}

static void *part_writer(void *arg)
{
	struct race *r = arg;
	uint64_t c = cow_cluster_size(r->fx->ov);
	uint8_t buf[PART_LEN];

	for (uint64_t k = r->first; k < r->first + r->count; k++) {
		uint64_t pos = k * c + PART_OFF;

		for (int i = 0; i < PART_LEN; i++)
			buf[i] = part_byte(pos + i);
		pthread_barrier_wait(&r->barrier);
		if (cow_write(r->fx->ov, &r->fx->src, buf, PART_LEN, pos) != PART_LEN)
			r->errors++;
	}
	return NULL;
}

/* Each byte the reader sees is the replica's or one of the writers'. */
static void *racing_reader(void *arg)
{
	struct race *r = arg;
	uint64_t c = cow_cluster_size(r->fx->ov);
	uint8_t *buf = malloc(c);

	while (!r->done) {
		uint64_t k = r->current;

		if (cow_read(r->fx->ov, &r->fx->src, buf, c, k * c)) {
			r->bad_reads++;
			continue;
		}
		for (uint64_t i = 0; i < c; i++) {
			uint64_t pos = k * c + i;
			bool ok = buf[i] == r->fx->mem.data[pos] || buf[i] == full_byte(pos) ||
				  (i >= PART_OFF && i < PART_OFF + PART_LEN && buf[i] == part_byte(pos));

			if (!ok)
				r->bad_reads++;
		}
	}
	free(buf);
	return NULL;
}

/* A full-cluster write racing a partial one (which fills) into the same
 * absent cluster: the fill must never land over the full write. */
static void test_concurrent_full_and_partial(void **state)
{
	struct fx *fx = *state;
	struct race r = { 0 };
	pthread_t a, b, reader;
	uint64_t c;

	fx_disk(fx, 32 * MiB, true);
	c = cow_cluster_size(fx->ov);
	r.fx = fx;
	r.first = 1;
	r.count = 32 * MiB / c - 2 < 3000 ? 32 * MiB / c - 2 : 3000;
	fx->mem.delay_us = 100; /* a fill slow enough for the full write to land in it */
	pthread_barrier_init(&r.barrier, NULL, 2);
	assert_int_equal(pthread_create(&reader, NULL, racing_reader, &r), 0);
	assert_int_equal(pthread_create(&a, NULL, full_writer, &r), 0);
	assert_int_equal(pthread_create(&b, NULL, part_writer, &r), 0);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	pthread_join(reader, NULL);
	pthread_barrier_destroy(&r.barrier);
	fx->mem.delay_us = 0;
	assert_int_equal(r.errors, 0);
	assert_int_equal(r.bad_reads, 0);

	{
		uint8_t *buf = malloc(c);
		long full_last = 0;

		for (uint64_t k = r.first; k < r.first + r.count; k++) {
			assert_int_equal(cow_read(fx->ov, &fx->src, buf, c, k * c), 0);
			for (uint64_t i = 0; i < c; i++) {
				uint64_t pos = k * c + i;

				if (i >= PART_OFF && i < PART_OFF + PART_LEN) {
					assert_true(buf[i] == full_byte(pos) || buf[i] == part_byte(pos));
					full_last += i == PART_OFF && buf[i] == full_byte(pos);
				} else if (buf[i] != full_byte(pos)) {
					fail_msg("cluster %llu byte %llu: the full write was undone",
						 (unsigned long long)k, (unsigned long long)i);
				}
			}
		}
		print_message("full vs partial: %llu races, full write last in %ld\n",
			      (unsigned long long)r.count, full_last);
		free(buf);
	}
	assert_cluster_granular(fx);
}

/* ---- the commit's fill (cow_fill, cow_unfill) ---- */

/* Is the cluster at disk offset @off present in the overlay file? */
static bool present(struct fx *fx, uint64_t off)
{
	uint64_t run = 0;
	bool in = false;

	assert_int_equal(cow_extent(fx->ov, off, 1, &run, &in), 0);
	return in;
}

/* cow_fill writes the absent, non-zero clusters only; cow_unfill punches
 * the clusters that equal the source and keeps the others. */
static void test_fill_unfill(void **state)
{
	struct fx *fx = *state;
	uint64_t c, written = 0;
	uint8_t *buf;

	fx_disk(fx, 4 * MiB, true);
	c = cow_cluster_size(fx->ov);
	memset(fx->mem.data + 2 * c, 0, c); /* an all-zero replica cluster */
	memcpy(fx->model, fx->mem.data, 4 * MiB);
	buf = malloc(4 * MiB);
	assert_non_null(buf);
	fill_random(buf, c);
	fx_write(fx, buf, c, 5 * c); /* a guest write first: present */
	memcpy(buf, fx->mem.data, 4 * MiB);
	assert_int_equal(cow_fill(fx->ov, buf, 4 * MiB, 0, &written), 0);
	assert_int_equal(written, 4 * MiB - 2 * c); /* not the zero one, not the guest's */
	assert_true(present(fx, 0));
	assert_false(present(fx, 2 * c));
	assert_true(present(fx, 5 * c));
	assert_model(fx, 0, 4 * MiB);
	/* only cluster-aligned ranges inside the disk */
	assert_int_equal(cow_fill(fx->ov, buf, c, 1, &written), -EINVAL);
	assert_int_equal(cow_fill(fx->ov, buf, c - 1, 0, &written), -EINVAL);
	assert_int_equal(cow_fill(fx->ov, buf, 2 * c, 4 * MiB - c, &written), -EINVAL);
	/* a second fill finds everything present */
	assert_int_equal(cow_fill(fx->ov, buf, 4 * MiB, 0, &written), 0);
	assert_int_equal(written, 0);

	/* a guest write after the fill differs from the replica: kept */
	fill_random(buf, 100);
	fx_write(fx, buf, 100, 7 * c + 10);
	assert_int_equal(cow_unfill(fx->ov, &fx->src, 4 * MiB, 0), 0);
	assert_false(present(fx, 0));
	assert_true(present(fx, 5 * c));
	assert_true(present(fx, 7 * c));
	assert_false(present(fx, 8 * c));
	assert_model(fx, 0, 4 * MiB);
	assert_int_equal(cow_unfill(fx->ov, &fx->src, 8 * MiB, 0), -EINVAL);
	assert_cluster_granular(fx);
	free(buf);
}

struct fill_race {
	struct fx *fx;
	atomic_uint_least64_t pos; /* where the filler is */
	atomic_bool done;
	int errors;
};

/* Fill the whole disk from the replica, one cluster at a time (the most
 * presence checks, the most chances for a write to slip in). */
static void *filler(void *arg)
{
	struct fill_race *r = arg;
	uint64_t size = r->fx->mem.size, c = cow_cluster_size(r->fx->ov);

	for (uint64_t off = 0; off < size; off += c) {
		r->pos = off;
		if (cow_fill(r->fx->ov, r->fx->mem.data + off, c, off, NULL))
			r->errors++;
	}
	r->done = true;
	return NULL;
}

/* Guest writes racing the commit's fill, aimed just ahead of it: every
 * guest write wins, whole or partial, never undone by the fill's copy of
 * the replica. Fresh overlays, several rounds. */
static void test_fill_races_writes(void **state)
{
	struct fx *fx = *state;
	uint64_t c, n = 0;
	uint8_t *buf;

	fx_disk(fx, 4 * MiB, true);
	c = cow_cluster_size(fx->ov);
	buf = malloc(c);
	assert_non_null(buf);
	for (int round = 0; round < 8; round++) {
		struct fill_race r = { .fx = fx };
		pthread_t t;

		cow_close(fx->ov);
		assert_int_equal(cow_remove(fx->dirfd, "disk"), 0);
		assert_int_equal(cow_create(fx->dirfd, "disk", &fx->id, &fx->ov), 0);
		memcpy(fx->model, fx->mem.data, 4 * MiB);
		assert_int_equal(pthread_create(&t, NULL, filler, &r), 0);
		while (!r.done) {
			uint64_t k = r.pos / c + rnd() % 3;
			size_t len = rnd() % 2 ? c : 1 + rnd() % (c - 1);
			uint64_t off = k * c + (len == c ? 0 : rnd() % (c - len + 1));

			if (off + len > 4 * MiB)
				continue;
			fill_random(buf, len);
			fx_write(fx, buf, len, off);
			n++;
		}
		pthread_join(t, NULL);
		assert_int_equal(r.errors, 0);
		assert_model(fx, 0, 4 * MiB);
	}
	print_message("fill vs guest writes: %llu writes during 8 fills\n", (unsigned long long)n);
	free(buf);
}

/* ---- space and durability ---- */

/* A 1 MiB tmpfs: writes fail with ENOSPC, earlier data stays, and a create
 * without room leaves nothing behind. */
static void test_enospc(void **state)
{
	struct fx *fx = *state;
	uint64_t vsize = 8 * MiB, c, pos, filled = 0;
	uint8_t *buf = malloc(MiB), *old = malloc(MiB), *seen = malloc(MiB);
	struct cow_overlay *ov2 = NULL;
	struct cow_identity other;
	struct statvfs sv;
	ssize_t n = 0;

	fx_mount(fx, "tmpfs", "size=1m");
	fx_disk(fx, vsize, true);
	c = cow_cluster_size(fx->ov);
	fill_random(buf, MiB);

	/* Some partial writes (filled), then whole clusters until full. */
	fx_write(fx, buf, 10, 3);
	fx_write(fx, buf + 10, 100, 7 * MiB + 4090);
	for (pos = MiB; pos < vsize; pos += c) {
		fill_random(buf, c);
		n = cow_write(fx->ov, &fx->src, buf, c, pos);
		if (n < 0)
			break;
		assert_int_equal(n, c);
		memcpy(fx->model + pos, buf, c);
		filled++;
	}
	assert_int_equal(n, -ENOSPC);
	assert_true(filled > 0 && filled < MiB / c);
	print_message("tmpfs full after %llu clusters of %llu\n", (unsigned long long)filled, (unsigned long long)c);
	assert_model(fx, 0, vsize);

	/* Full: partial and large writes into absent clusters fail... */
	assert_int_equal(cow_write(fx->ov, &fx->src, buf, 1, 6 * MiB + 1), -ENOSPC);
	assert_int_equal(cow_write(fx->ov, &fx->src, buf, 5000, 6 * MiB - 2500), -ENOSPC);
	memcpy(old, fx->model + 5 * MiB, MiB);
	assert_int_equal(cow_write(fx->ov, &fx->src, buf, MiB, 5 * MiB), -ENOSPC);
	/* ... a failed write leaves each byte of its range old or new ... */
	assert_int_equal(cow_read(fx->ov, &fx->src, seen, MiB, 5 * MiB), 0);
	for (uint64_t i = 0; i < MiB; i++)
		assert_true(seen[i] == old[i] || seen[i] == buf[i]);
	memcpy(fx->model + 5 * MiB, seen, MiB);
	assert_model(fx, 0, vsize);
	/* ... while present clusters can still be overwritten. */
	fx_write(fx, buf, c, MiB);
	fx_write(fx, buf + 3, 17, MiB + c + 5);
	fx_write(fx, buf, 1, 0);
	assert_int_equal(cow_sync(fx->ov, true), 0);
	assert_model(fx, 0, vsize);

	/* No room for another overlay: nothing of it is left. */
	fx_identity(&other, 4 * MiB, "other");
	assert_int_equal(cow_create(fx->dirfd, "other", &other, &ov2), -ENOSPC);
	assert_null(ov2);
	assert_int_equal(count_entries(fx->dirfd), 1);
	assert_false(cow_exists(fx->dirfd, "other"));

	/* The data survives a reopen; removing gives the space back. */
	fx_reopen(fx);
	assert_model(fx, 0, vsize);
	cow_close(fx->ov);
	fx->ov = NULL;
	assert_int_equal(cow_remove(fx->dirfd, "disk"), 0);
	assert_false(cow_exists(fx->dirfd, "disk")); /* the name goes at once */
	cow_wait_freed();                            /* the space by a background close */
	assert_int_equal(fstatvfs(fx->dirfd, &sv), 0);
	assert_true(sv.f_bfree * sv.f_bsize >= MiB - 2 * c);
	assert_int_equal(cow_create(fx->dirfd, "other", &other, &ov2), 0);
	cow_close(ov2);
	assert_int_equal(cow_remove(fx->dirfd, "other"), 0);
	assert_int_equal(count_entries(fx->dirfd), 0);
	free(buf);
	free(old);
	free(seen);
}

/* Entries of the folder @path ("." and ".." included), -1 if unreadable. */
static int count_dir(const char *path)
{
	DIR *d = opendir(path);
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static int count_fds(void)
{
	int n = count_dir("/proc/self/fd");

	assert_true(n > 0);
	return n;
}

/* As a revert does it: the name goes while the overlay is open, then the
 * overlay is closed. Both descriptors are closed by the background closer
 * (the unlinked file is truncated in steps first); once cow_wait_freed()
 * returns, the space is back and no descriptor is left. Twice, so the
 * closer thread is reused. */
static void test_remove_while_open(void **state)
{
	struct fx *fx = *state;
	uint8_t *buf = malloc(4 * MiB);
	struct statvfs sv;
	uint64_t free0;
	int fds0;

	assert_non_null(buf);
	fx_mount(fx, "tmpfs", "size=16m");
	fill_random(buf, 4 * MiB);
	for (int round = 0; round < 2; round++) {
		fds0 = count_fds();
		assert_int_equal(fstatvfs(fx->dirfd, &sv), 0);
		free0 = (uint64_t)sv.f_bfree * sv.f_bsize;
		free(fx->mem.data);
		free(fx->model);
		fx_disk(fx, 8 * MiB, true);
		fx_write(fx, buf, 4 * MiB, 3 * MiB + 17);
		assert_int_equal(cow_sync(fx->ov, true), 0);
		assert_int_equal(fstatvfs(fx->dirfd, &sv), 0);
		assert_true((uint64_t)sv.f_bfree * sv.f_bsize + 4 * MiB <= free0);

		assert_int_equal(cow_remove(fx->dirfd, "disk"), 0);
		assert_false(cow_exists(fx->dirfd, "disk"));
		assert_model(fx, 0, 8 * MiB); /* still readable until closed */
		cow_close(fx->ov);
		fx->ov = NULL;
		cow_wait_freed();
		assert_int_equal(count_fds(), fds0);
		assert_int_equal(fstatvfs(fx->dirfd, &sv), 0);
		assert_int_equal((uint64_t)sv.f_bfree * sv.f_bsize, free0);
		assert_int_equal(count_entries(fx->dirfd), 0);
	}
	free(buf);
}

/* The durable steps in their order: data, fdatasync, rename, folder. */
static void test_durability_order(void **state)
{
	struct fx *fx = *state;
	uint8_t buf[4096] = { 3 };
	int pw, tr, ds, rn, fs;

	seam_arm(true, NULL, NULL, 0);
	fx_disk(fx, 4 * MiB, true);
	seam_disarm();
	for (int i = 0; i < trace_len; i++)
		print_message("  create: %s\n", trace_log[i]);
	pw = trace_index("pwrite:tmp", true);
	tr = trace_index("ftruncate:tmp", true);
	ds = trace_index("fdatasync:tmp", false);
	rn = trace_index("rename:overlay", false);
	fs = trace_index("fsync:dir", false);
	assert_true(pw >= 0 && tr >= 0);
	assert_true(pw < ds && tr < ds);
	assert_true(ds < rn);
	assert_true(rn < fs);
	assert_int_equal(fs, trace_len - 1);
	assert_int_equal(trace_index("pwrite:overlay", false), -1);

	seam_arm(true, NULL, NULL, 0);
	fx_write(fx, buf, sizeof(buf), 8192);
	assert_int_equal(cow_sync(fx->ov, true), 0);
	assert_int_equal(cow_sync(fx->ov, false), 0);
	seam_disarm();
	assert_int_equal(trace_len, 3);
	assert_string_equal(trace_log[0], "pwrite:overlay");
	assert_string_equal(trace_log[1], "fdatasync:overlay");
	assert_string_equal(trace_log[2], "fsync:overlay");

	cow_close(fx->ov);
	fx->ov = NULL;
	seam_arm(true, NULL, NULL, 0);
	assert_int_equal(cow_remove(fx->dirfd, "disk"), 0);
	seam_disarm();
	assert_true(trace_index("unlink:overlay", false) >= 0);
	assert_int_equal(trace_index("fsync:dir", false), trace_len - 1);
}

/* Each durable step of create failing: the error, and nothing behind. */
static void test_create_failures(void **state)
{
	static const struct fault faults[] = {
		{ "pwrite", "other", ENOSPC },   /* the cluster probe */
		{ "pwrite", "tmp", ENOSPC },     /* the header */
		{ "ftruncate", "tmp", EFBIG },   /* its size */
		{ "fdatasync", "tmp", EIO },     /* making it durable */
		{ "rename", "overlay", EIO },    /* publishing it */
		{ "fsync", "dir", EIO },         /* making that durable */
	};
	struct fx *fx = *state;
	struct cow_overlay *ov = NULL;

	fx_identity(&fx->id, 4 * MiB, "disk");
	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
		seam_arm(false, faults[i].op, faults[i].kind, faults[i].err);
		assert_int_equal(cow_create(fx->dirfd, "disk", &fx->id, &ov), -faults[i].err);
		if (fault.op)
			fail_msg("fault %s:%s never fired", faults[i].op, faults[i].kind);
		seam_disarm();
		assert_null(ov);
		assert_int_equal(count_entries(fx->dirfd), 0);
	}
	assert_int_equal(cow_create(fx->dirfd, "disk", &fx->id, &ov), 0);
	cow_close(ov);
	assert_int_equal(count_entries(fx->dirfd), 1);
}

/* ---- the cluster probe ---- */

static void check_probe(struct fx *fx)
{
	uint8_t *buf;
	struct stat st;
	uint64_t c;
	int fd;

	fx_disk(fx, 64 * MiB, true);
	c = cow_cluster_size(fx->ov);
	fd = cow_fd(fx->ov);
	assert_int_equal(fstat(fd, &st), 0);
	print_message("cluster %llu (st_blksize %ld)\n", (unsigned long long)c, (long)st.st_blksize);
	assert_int_equal(c & (c - 1), 0);
	assert_true(c >= 4096 && c >= (uint64_t)st.st_blksize && c <= 2 * MiB);
	/* One cluster written is exactly one data run. */
	buf = malloc(c);
	fill_random(buf, c);
	fx_write(fx, buf, c, 3 * c);
	assert_int_equal(lseek(fd, cow_file_offset(fx->ov, 0), SEEK_DATA), cow_file_offset(fx->ov, 3 * c));
	assert_int_equal(lseek(fd, cow_file_offset(fx->ov, 3 * c), SEEK_HOLE), cow_file_offset(fx->ov, 4 * c));
	/* And one byte of another fills exactly that cluster. */
	fx_write(fx, buf, 1, 9 * c + 1);
	assert_int_equal(lseek(fd, cow_file_offset(fx->ov, 4 * c), SEEK_DATA), cow_file_offset(fx->ov, 9 * c));
	assert_int_equal(lseek(fd, cow_file_offset(fx->ov, 9 * c), SEEK_HOLE), cow_file_offset(fx->ov, 10 * c));
	assert_model(fx, 0, 64 * MiB);
	free(buf);
}

static void test_probe_local(void **state)
{
	check_probe(*state);
}

static void test_probe_tmpfs(void **state)
{
	struct fx *fx = *state;

	fx_mount(fx, "tmpfs", "size=16m");
	check_probe(fx);
}

/* ramfs has no holes to report: -EOPNOTSUPP, nothing left. */
static void test_probe_ramfs(void **state)
{
	struct fx *fx = *state;
	struct cow_overlay *ov = NULL;

	fx_mount(fx, "ramfs", NULL);
	fx_identity(&fx->id, 4 * MiB, "disk");
	assert_int_equal(cow_create(fx->dirfd, "disk", &fx->id, &ov), -EOPNOTSUPP);
	assert_null(ov);
	assert_int_equal(count_entries(fx->dirfd), 0);
}

/* ---- memory ---- */

static long rss_kib(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	assert_non_null(f);
	assert_int_equal(fscanf(f, "%ld %ld", &pages, &rss), 2);
	fclose(f);
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* 100 000 clusters written over a 127 GiB disk: no memory per cluster
 * written, only the presence map's fixed bit per cluster of the disk (4 MiB
 * for 127 GiB in 4 KiB clusters, all of it touched by writes this spread). */
static void test_rss_flat(void **state)
{
	struct fx *fx = *state;
	uint64_t vsize = 127 * GiB, c, stride, runs = 0;
	unsigned long count = env_ulong("RFS_TEST_CLUSTERS", 100000);
	long before, after;
	uint8_t *buf;

	fx_disk(fx, vsize, false);
	c = cow_cluster_size(fx->ov);
	stride = vsize / count / c * c;
	buf = malloc(c);
	fill_random(buf, c);
	assert_int_equal(cow_write(fx->ov, &fx->src, buf, c, 0), c);
	before = rss_kib();
	for (unsigned long i = 1; i < count; i++) {
		/* Mostly aligned; every 16th partial, so it fills. */
		uint64_t off = i * stride + (i % 16 ? 0 : 100);
		size_t len = i % 16 ? c : 10;

		assert_int_equal(cow_write(fx->ov, &fx->src, buf, len, off), len);
	}
	after = rss_kib();
	print_message("rss %ld KiB -> %ld KiB after %lu clusters over %llu GiB\n", before, after, count,
		      (unsigned long long)(vsize / GiB));
#ifdef __SANITIZE_THREAD__
	/* ThreadSanitizer keeps metadata for every byte an atomic touched
	 * (here the presence map's, +34 MiB): that RSS is its own, not ours. */
	print_message("rss bound not checked under ThreadSanitizer\n");
#else
	assert_true(after - before < 2048 + (long)(vsize / c / 8 / 1024));
#endif
	/* Walking every run of the disk. */
	for (uint64_t off = 0; off < vsize; runs++) {
		uint64_t run;
		bool in;

		assert_int_equal(cow_extent(fx->ov, off, vsize, &run, &in), 0);
		off += run;
	}
	assert_int_equal(runs, 2 * count);
	/* A partial write read back: replica around it, the new bytes in it. */
	{
		uint8_t got[4096];
		uint64_t off = 16 * stride;

		assert_int_equal(cow_read(fx->ov, &fx->src, got, c < 4096 ? c : 4096, off), 0);
		for (uint64_t i = 0; i < (c < 4096 ? c : 4096); i++)
			assert_int_equal(got[i], i >= 100 && i < 110 ? buf[i - 100] : pattern_byte(off + i));
	}
	free(buf);
}

/* ---- discard: zero marks ---- */

static void fx_discard(struct fx *fx, uint64_t off, uint64_t len)
{
	int err = cow_discard(fx->ov, &fx->src, off, len);

	if (err)
		fail_msg("cow_discard(%llu @ %llu) = %d (seed %llu)", (unsigned long long)len,
			 (unsigned long long)off, err, (unsigned long long)seed);
	memset(fx->model + off, 0, len);
}

/* From @off, the run cow_map() gives must be @kind for @len bytes. */
static void assert_map(struct fx *fx, uint64_t off, enum cow_run kind, uint64_t len)
{
	enum cow_run got = COW_RUN_REPLICA;
	uint64_t run = 0;

	assert_int_equal(cow_map(fx->ov, off, fx->id.virtual_size, &run, &got), 0);
	if (got != kind || run != len)
		fail_msg("cow_map(%llu): kind %d for %llu bytes, want kind %d for %llu", (unsigned long long)off,
			 got, (unsigned long long)run, kind, (unsigned long long)len);
}

/* Whole clusters are marked and punched, the ends written as zeros; the
 * map tells present, zero-marked and replica runs apart; writes into a
 * marked cluster make it present again; all of it survives a reopen. */
static void test_discard_runs(void **state)
{
	struct fx *fx = *state;
	uint64_t vsize = 2 * MiB, c, held0, held1;
	uint8_t *buf;
	uint64_t run;
	bool in;

	fx_disk(fx, vsize, true);
	c = cow_cluster_size(fx->ov);
	buf = malloc(64 * c);
	assert_non_null(buf);
	fill_random(buf, 64 * c);
	fx_write(fx, buf, 64 * c, 0);
	assert_int_equal(cow_stat(fx->ov, &held0, NULL, NULL), 0);

	fx_discard(fx, 2 * c, 3 * c);          /* whole clusters 2..4 */
	fx_discard(fx, 70 * c, 2 * c);         /* absent clusters 70, 71 */
	fx_discard(fx, 20 * c + 100, c + 50);  /* partial 20 and 21 */
	assert_model(fx, 0, vsize);
	assert_cluster_granular(fx);
	for (int pass = 0; pass < 2; pass++) {
		assert_map(fx, 0, COW_RUN_PRESENT, 2 * c);
		assert_map(fx, 2 * c, COW_RUN_ZERO, 3 * c);
		assert_map(fx, 5 * c, COW_RUN_PRESENT, 59 * c);
		assert_map(fx, 64 * c, COW_RUN_REPLICA, 6 * c);
		assert_map(fx, 70 * c, COW_RUN_ZERO, 2 * c);
		assert_map(fx, 72 * c, COW_RUN_REPLICA, vsize - 72 * c);
		/* cow_extent: present and zero-marked are both the overlay's */
		assert_int_equal(cow_extent(fx->ov, 0, vsize, &run, &in), 0);
		assert_true(in);
		assert_int_equal(run, 64 * c);
		assert_int_equal(cow_extent(fx->ov, 64 * c, vsize, &run, &in), 0);
		assert_false(in);
		assert_int_equal(run, 6 * c);
		fx_reopen(fx);
		assert_model(fx, 0, vsize);
	}

	/* Space: discard 60 of the 64 clusters; the zero map costs a cluster. */
	fx_discard(fx, 4 * c, 60 * c);
	assert_int_equal(cow_sync(fx->ov, true), 0);
	assert_int_equal(cow_stat(fx->ov, &held1, NULL, NULL), 0);
	assert_true(held1 + 50 * c < held0);

	/* A full write and a partial write into marked clusters. */
	fx_write(fx, buf, c, 3 * c);
	fx_write(fx, buf + 7, 10, 70 * c + 33);
	assert_map(fx, 3 * c, COW_RUN_PRESENT, c);
	assert_map(fx, 70 * c, COW_RUN_PRESENT, c);
	assert_map(fx, 71 * c, COW_RUN_ZERO, c);
	assert_model(fx, 0, vsize);
	fx_reopen(fx);
	assert_model(fx, 0, vsize);

	/* Bounds. */
	assert_int_equal(cow_discard(fx->ov, &fx->src, vsize, 0), 0);
	assert_int_equal(cow_discard(fx->ov, &fx->src, vsize, 1), -EINVAL);
	assert_int_equal(cow_discard(fx->ov, &fx->src, vsize - 1, 2), -EINVAL);
	assert_int_equal(cow_discard(fx->ov, &fx->src, 1, UINT64_MAX), -EINVAL);
	free(buf);
}

/* Random writes and discards against the model, a short last cluster,
 * discards to the end, reopens. */
static void test_discard_model(void **state)
{
	struct fx *fx = *state;
	uint64_t vsize = 3 * MiB + 700, c;
	unsigned long iterations = env_ulong("RFS_TEST_ITERATIONS", 300);
	uint8_t *buf = malloc(4 * MiB);

	assert_non_null(buf);
	fx_disk(fx, vsize, true);
	c = cow_cluster_size(fx->ov);
	for (unsigned long k = 0; k < iterations; k++) {
		size_t len = pick_len(c, vsize);
		uint64_t off = pick_off(c, vsize, len);

		if (rnd() % 2) {
			fill_random(buf, len);
			fx_write(fx, buf, len, off);
		} else {
			fx_discard(fx, off, len);
		}
		if (rnd() % 16 == 0)
			fx_reopen(fx);
		if (k % 8 == 0)
			assert_model(fx, 0, vsize);
		else
			assert_model(fx, off, len);
	}
	fx_discard(fx, vsize - 1000, 1000);
	/* the short last cluster is whole, the piece before it written */
	assert_map(fx, vsize / c * c, COW_RUN_ZERO, vsize % c);
	assert_map(fx, vsize / c * c - c, COW_RUN_PRESENT, c);
	assert_cluster_granular(fx);
	fx_reopen(fx);
	assert_model(fx, 0, vsize);
	free(buf);
}

/* The ordering in overlay.h: the zero map written and made durable before
 * the punch; any step failing leaves the clusters as they were, before and
 * after a reopen (a crash at that step). */
static void test_discard_order(void **state)
{
	struct fx *fx = *state;
	static const char *steps[][2] = { { "pwrite", "overlay" },
					  { "fdatasync", "overlay" },
					  { "fallocate", "overlay" } };
	uint8_t buf[4 * 4096];
	int pw, ds, fa;
	uint64_t c;

	fx_disk(fx, 4 * MiB, true);
	c = cow_cluster_size(fx->ov);
	fill_random(buf, sizeof(buf));
	fx_write(fx, buf, 2 * c, 8 * c);
	assert_int_equal(cow_sync(fx->ov, true), 0);

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		seam_arm(false, steps[i][0], steps[i][1], EIO);
		assert_int_equal(cow_discard(fx->ov, &fx->src, 8 * c, 2 * c), -EIO);
		assert_null(fault.op); /* it did fire */
		seam_disarm();
		assert_model(fx, 0, 4 * MiB);
		assert_map(fx, 8 * c, COW_RUN_PRESENT, 2 * c);
		fx_reopen(fx);
		assert_model(fx, 0, 4 * MiB);
	}

	seam_arm(true, NULL, NULL, 0);
	fx_discard(fx, 8 * c, 2 * c);
	seam_disarm();
	for (int i = 0; i < trace_len; i++)
		print_message("  discard: %s\n", trace_log[i]);
	pw = trace_index("pwrite:overlay", false);
	ds = trace_index("fdatasync:overlay", false);
	fa = trace_index("fallocate:overlay", false);
	assert_true(pw >= 0 && pw < ds && ds < fa);
	assert_int_equal(fa, trace_len - 1);
	assert_int_equal(cow_sync(fx->ov, true), 0);
	fx_reopen(fx);
	assert_model(fx, 0, 4 * MiB);
	assert_map(fx, 8 * c, COW_RUN_ZERO, 2 * c);
}

/* An overlay of version 1 (no zero map, as made before it existed) opens,
 * reads and writes as before; discard is refused and changes nothing. */
static void test_version1_overlay(void **state)
{
	struct fx *fx = *state;
	uint64_t vsize = 2 * MiB, c;
	uint8_t buf[5000];
	enum cow_run kind;
	uint64_t run;
	int fd;

	fx_disk(fx, vsize, true);
	c = cow_cluster_size(fx->ov);
	fill_random(buf, sizeof(buf));
	fx_write(fx, buf, sizeof(buf), 3 * c + 5);
	assert_int_equal(cow_sync(fx->ov, true), 0);
	cow_close(fx->ov);
	fx->ov = NULL;
	patch_header(fx, 8, "\x01", 1, true);
	fd = openat(fx->dirfd, "disk.overlay", O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)(c + vsize)), 0);
	close(fd);

	assert_int_equal(cow_open(fx->dirfd, "disk", &fx->id, &fx->ov), 0);
	assert_model(fx, 0, vsize);
	fx_write(fx, buf, 100, vsize - 100);
	assert_int_equal(cow_discard(fx->ov, &fx->src, 0, vsize), -EOPNOTSUPP);
	assert_model(fx, 0, vsize);
	assert_int_equal(cow_map(fx->ov, 0, vsize, &run, &kind), 0);
	assert_int_equal(kind, COW_RUN_REPLICA);
	assert_int_equal(run, 3 * c);
	fx_reopen(fx);
	assert_model(fx, 0, vsize);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_header_format, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_create_open_close_remove, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_identity_mismatch, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_header, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_write_syscalls, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_write_edges, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_random_model, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_read_runs, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_reopen_keeps_data, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_stat, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_source_error, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_short_writes, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_partial_writes, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_full_and_partial, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_fill_unfill, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_fill_races_writes, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_enospc, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_remove_while_open, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_durability_order, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_create_failures, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_probe_local, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_probe_tmpfs, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_probe_ramfs, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_rss_flat, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_discard_runs, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_discard_model, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_discard_order, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_version1_overlay, fx_setup, fx_teardown),
	};

	seed = env_ulong("RFS_TEST_SEED", 0);
	if (!seed)
		seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	rng_state = seed | 1;
	print_message("test_overlay: seed %llu (RFS_TEST_SEED to replay)\n", (unsigned long long)seed);
	return cmocka_run_group_tests_name("overlay", tests, NULL, NULL);
}
