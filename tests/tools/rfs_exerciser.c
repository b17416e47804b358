/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tests/tools/rfs_exerciser.c - a randomized exerciser of one failed-over
 * .img on a live replicafs mount, in the spirit of xfstests' fsx.
 *
 * It keeps the whole disk in memory (the model), initialised from the raw
 * source image the replica was made from, and runs a long random mix of
 * operations on the .img through the mount: pread/pwrite of 1 byte to
 * several MiB at any alignment (biased towards 4 KiB cluster boundaries and
 * the end of the disk, including reads and writes that cross the end),
 * mmap reads and writes, fsync/fdatasync, reopen (plain, O_SYNC, O_DSYNC,
 * O_DIRECT, read-only), a revert refused while the disk is open (EBUSY,
 * nothing changes), revert + failover (the model goes back to the source),
 * unmount + remount through shell commands given on the command line, and
 * a test VM (SPEC §9) with its own model, made and removed around the
 * failed-over disk (op_test).
 * Every write is read back with a margin around it, every read is compared
 * byte for byte, and the whole disk is compared after every revert, every
 * remount and at the end. The first mismatch is reported with its offset,
 * the op number, the last ops and the seed to replay; the exit status is 1.
 *
 *   rfs_exerciser --img MNT/vms/VM/DISK.img --ctl MNT/ctl/VM --source RAW
 *                 [--ops N] [--seed S] [--maxlen BYTES]
 *                 [--umount-cmd CMD --remount-cmd CMD]
 *
 * The umount command must return only once the daemon is gone and the
 * remount command only once the mount is ready (lib.sh's rfs_umount and
 * rfs_mount do both). Without them, no remounts are done.
 *
 * Links nothing of replicafs: it tests the mount from outside.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define CLUSTER 4096u
#define LOGN 32

static const char *img_path, *ctl_dir, *src_path, *umount_cmd, *remount_cmd;
static uint64_t seed, nops = 2000, maxlen = 4u << 20;
static uint64_t disk_size, opno;
static uint8_t *model, *source, *buf, *rbuf;
static int fd = -1;
static int fd_flags;
static bool direct_ok = true, mmap_ok = true;
static char oplog[LOGN][160];

enum { OP_READ, OP_WRITE, OP_MAPREAD, OP_MAPWRITE, OP_FSYNC, OP_FDATASYNC, OP_REOPEN, OP_WRITE_END,
       OP_READ_END, OP_REVERT_BUSY, OP_REVERT, OP_REMOUNT, OP_FULLCHECK, OP_TEST, OP_N };
static const char *op_names[OP_N] = {"read", "write", "mapread", "mapwrite", "fsync", "fdatasync", "reopen",
				     "write-end", "read-end", "revert-busy", "revert", "remount", "fullcheck",
				     "test-vm"};
static const unsigned op_weight[OP_N] = {300, 340, 40, 40, 35, 35, 40, 20, 20, 8, 8, 8, 6, 4};
static uint8_t *test_model; /* the test VM's disk (op_test) */
static uint64_t op_count[OP_N];

/* splitmix64: the only source of randomness, so a seed replays a run. */
static uint64_t rng_state;
static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}
static uint64_t rndn(uint64_t n) { return n ? rnd() % n : 0; }

static void logop(const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(oplog[opno % LOGN], sizeof(oplog[0]), "%6" PRIu64 " ", opno);

	va_start(ap, fmt);
	vsnprintf(oplog[opno % LOGN] + n, sizeof(oplog[0]) - n, fmt, ap);
	va_end(ap);
}

static void die(const char *fmt, ...)
{
	va_list ap;
	uint64_t i, first = opno >= LOGN ? opno - LOGN + 1 : 0;

	fprintf(stderr, "exerciser: FAIL at op %" PRIu64 ": ", opno);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nexerciser: last ops:\n");
	for (i = first; i <= opno; i++)
		if (oplog[i % LOGN][0])
			fprintf(stderr, "  %s\n", oplog[i % LOGN]);
	fprintf(stderr, "exerciser: replay with --seed %" PRIu64 " --ops %" PRIu64 "\n", seed, opno + 1);
	exit(1);
}

/* Compare @got with the model at @off; die at the first differing byte. */
static void compare(const uint8_t *got, uint64_t off, uint64_t len, const char *what)
{
	uint64_t i;

	if (memcmp(got, model + off, len) == 0)
		return;
	for (i = 0; i < len && got[i] == model[off + i]; i++)
		;
	uint64_t j = i;
	while (j < len && got[j] != model[off + j])
		j++;
	die("%s mismatch at offset %" PRIu64 " (0x%" PRIx64 ", cluster %" PRIu64 " +%" PRIu64 "): expected 0x%02x got 0x%02x,"
	    " %" PRIu64 " bytes differ from there (checked range %" PRIu64 "+%" PRIu64 ")",
	    what, off + i, off + i, (off + i) / CLUSTER, (off + i) % CLUSTER, model[off + i], got[i], j - i, off, len);
}

static void pread_full(uint64_t off, uint64_t len, uint8_t *dst, const char *what)
{
	uint64_t done = 0;

	while (done < len) {
		ssize_t r = pread(fd, dst + done, len - done, off + done);
		if (r < 0)
			die("%s: pread(%" PRIu64 ", %" PRIu64 "): %s", what, off + done, len - done, strerror(errno));
		if (r == 0)
			die("%s: pread(%" PRIu64 ", %" PRIu64 "): unexpected end of file", what, off + done, len - done);
		done += r;
	}
}

static void check_range(uint64_t off, uint64_t len, const char *what)
{
	pread_full(off, len, rbuf, what);
	compare(rbuf, off, len, what);
}

static void full_check(const char *what)
{
	uint64_t off, step = 8u << 20;

	for (off = 0; off < disk_size; off += step) {
		uint64_t n = disk_size - off < step ? disk_size - off : step;
		check_range(off, n, what);
	}
}

static void do_open(int flags)
{
	if (fd >= 0)
		close(fd);
	fd = open(img_path, flags);
	if (fd < 0 && (flags & O_DIRECT) && errno == EINVAL) {
		direct_ok = false;
		printf("exerciser: O_DIRECT refused (EINVAL): no O_DIRECT opens\n");
		flags &= ~O_DIRECT;
		fd = open(img_path, flags);
	}
	if (fd < 0)
		die("open %s (flags 0%o): %s", img_path, flags, strerror(errno));
	fd_flags = flags;
}

static void close_img(void)
{
	if (fd >= 0 && close(fd) != 0)
		die("close: %s", strerror(errno));
	fd = -1;
}

/* Read a ctl file ("state" or "status") without its newline. */
static void ctl_read(const char *name, char *out, size_t size)
{
	char path[4096];
	int f;
	ssize_t r;

	snprintf(path, sizeof(path), "%s/%s", ctl_dir, name);
	f = open(path, O_RDONLY);
	if (f < 0)
		die("open %s: %s", path, strerror(errno));
	r = read(f, out, size - 1);
	if (r < 0)
		die("read %s: %s", path, strerror(errno));
	close(f);
	out[r] = 0;
	while (r > 0 && (out[r - 1] == '\n'))
		out[--r] = 0;
}

/* Write @cmd to the control file; returns 0 or the errno of the write. */
static int ctl_cmd(const char *cmd)
{
	char path[4096], line[64];
	int f, e = 0;
	size_t n = (size_t)snprintf(line, sizeof(line), "%s\n", cmd);

	snprintf(path, sizeof(path), "%s/control", ctl_dir);
	f = open(path, O_WRONLY | O_TRUNC);
	if (f < 0)
		die("open %s: %s", path, strerror(errno));
	if (write(f, line, n) != (ssize_t)n)
		e = errno ? errno : EIO;
	close(f);
	return e;
}

static void expect_state(const char *want, const char *when)
{
	char st[256];

	ctl_read("state", st, sizeof(st));
	if (strcmp(st, want) != 0)
		die("%s: state is '%s', expected '%s'", when, st, want);
}

static void expect_status(const char *want, const char *when)
{
	char st[256];

	ctl_read("status", st, sizeof(st));
	if (strcmp(st, want) != 0)
		die("%s: status is '%s', expected '%s'", when, st, want);
}

static void failover(const char *when)
{
	int e = ctl_cmd("failover");

	if (e)
		die("%s: failover failed: %s", when, strerror(e));
	expect_status("0 Completed with No Error", when);
	expect_state("5 Recovered", when);
}

static void revert(const char *when)
{
	int e = ctl_cmd("revert");

	if (e)
		die("%s: revert failed: %s", when, strerror(e));
	expect_status("0 Completed with No Error", when);
	expect_state("3 Replicating", when);
	memcpy(model, source, disk_size);
}

/* A length: mostly small, sometimes clusters, sometimes MiBs. */
static uint64_t pick_len(void)
{
	uint64_t l;

	switch (rndn(20)) {
	case 0: case 1: case 2: case 3: case 4: case 5: case 6: l = 1 + rndn(64); break;
	case 7: case 8: case 9: case 10: l = 1 + rndn(2 * CLUSTER + 1); break;
	case 11: case 12: l = CLUSTER * (1 + rndn(16)); break;
	case 13: case 14: case 15: l = 1 + rndn(256 << 10); break;
	default: l = 1 + rndn(maxlen); break;
	}
	return l < disk_size ? l : disk_size;
}

/* An offset for @len bytes within the disk: uniform, near a cluster
 * boundary, cluster-aligned, or near/at the end. */
static uint64_t pick_off(uint64_t len)
{
	uint64_t max = disk_size - len, off;

	switch (rndn(10)) {
	case 0: case 1: case 2: off = rndn(max + 1); break;
	case 3: case 4: case 5: { /* straddle a cluster boundary */
		uint64_t d = rndn(33);
		off = rndn(disk_size / CLUSTER) * CLUSTER;
		off = off + d >= 16 ? off + d - 16 : 0;
		break;
	}
	case 6: case 7: off = rndn(disk_size / CLUSTER) * CLUSTER; break;
	case 8: off = max - rndn(max < 64 ? max + 1 : 64); break; /* ends at/near the end */
	default: off = disk_size - CLUSTER * (1 + rndn(4)) + rndn(CLUSTER); break;
	}
	return off > max ? max : off;
}

static void fill(uint8_t *p, uint64_t len)
{
	uint64_t i, v = 0;

	if (rndn(8) == 0) { /* a run of one byte (zeros sometimes): compresses, and tests holes */
		memset(p, rndn(2) ? 0 : (int)(opno & 0xff), len);
		return;
	}
	for (i = 0; i < len; i++) {
		if ((i & 7) == 0)
			v = rnd();
		p[i] = (uint8_t)(v >> ((i & 7) * 8));
	}
}

static bool writable(void) { return (fd_flags & O_ACCMODE) == O_RDWR; }

static void op_write(void)
{
	uint64_t len = pick_len(), off = pick_off(len), done = 0;

	logop("write %" PRIu64 "+%" PRIu64 " (0x%" PRIx64 "..0x%" PRIx64 ")", off, len, off, off + len);
	fill(buf, len);
	while (done < len) {
		ssize_t r = pwrite(fd, buf + done, len - done, off + done);
		if (r <= 0)
			die("pwrite(%" PRIu64 ", %" PRIu64 "): %s", off + done, len - done, r ? strerror(errno) : "wrote 0");
		done += r;
	}
	memcpy(model + off, buf, len);
	/* read it back with a margin on each side (neighbours untouched) */
	uint64_t a = off > 2 * CLUSTER ? off - rndn(2 * CLUSTER) : 0;
	uint64_t b = off + len + rndn(2 * CLUSTER);
	check_range(a, (b < disk_size ? b : disk_size) - a, "read-back after write");
}

static void op_read(void)
{
	uint64_t len = pick_len(), off = pick_off(len);

	logop("read %" PRIu64 "+%" PRIu64, off, len);
	check_range(off, len, "read");
}

static void op_map(bool wr)
{
	long pg = sysconf(_SC_PAGESIZE);
	uint64_t len = pick_len(), off = pick_off(len);
	uint64_t moff = off & ~(uint64_t)(pg - 1), mlen = off + len - moff;
	uint8_t *m;

	logop("%s %" PRIu64 "+%" PRIu64, wr ? "mapwrite" : "mapread", off, len);
	m = mmap(NULL, mlen, wr ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, moff);
	if (m == MAP_FAILED) {
		if (errno == ENODEV && mmap_ok) {
			mmap_ok = false;
			printf("exerciser: mmap not supported (ENODEV): no mmap ops\n");
			return;
		}
		die("mmap(%" PRIu64 ", %" PRIu64 "): %s", moff, mlen, strerror(errno));
	}
	if (wr) {
		fill(buf, len);
		memcpy(m + (off - moff), buf, len);
		if (msync(m, mlen, MS_SYNC) != 0)
			die("msync: %s", strerror(errno));
		memcpy(model + off, buf, len);
	}
	compare(m + (off - moff), off, len, wr ? "mmap read-back after mapwrite" : "mapread");
	munmap(m, mlen);
	if (wr)
		check_range(off, len, "pread after mapwrite");
}

/* A write that crosses the end is short (it ends at the end); one that
 * starts at or past the end fails; neither changes the size. */
static void op_write_end(void)
{
	uint64_t len = 1 + rndn(3 * CLUSTER), before = len > 1 ? rndn(len) : 0;
	uint64_t off = disk_size - before;
	struct stat st;
	ssize_t r;

	if (rndn(4) == 0)
		off = disk_size + rndn(2 * CLUSTER), before = 0;
	logop("write-end %" PRIu64 "+%" PRIu64 " (fd flags 0%o)", off, len, fd_flags);
	fill(buf, len);
	errno = 0;
	r = pwrite(fd, buf, len, off);
	if (before > 0) {
		if (r != (ssize_t)before)
			die("pwrite(%" PRIu64 ", %" PRIu64 ") across the end returned %zd (%s), expected %" PRIu64,
			    off, len, r, strerror(errno), before);
		memcpy(model + off, buf, before);
		check_range(off - (off >= CLUSTER ? CLUSTER : 0) , disk_size - off + (off >= CLUSTER ? CLUSTER : 0),
			    "read-back after write across the end");
	} else if (r >= 0) {
		die("pwrite(%" PRIu64 ", %" PRIu64 ") at/after the end returned %zd, expected an error", off, len, r);
	}
	if (fstat(fd, &st) != 0)
		die("fstat: %s", strerror(errno));
	if ((uint64_t)st.st_size != disk_size)
		die("size changed to %lld after a write at the end (was %" PRIu64 ")", (long long)st.st_size, disk_size);
}

static void op_read_end(void)
{
	uint64_t len = 1 + rndn(3 * CLUSTER), before = rndn(len + 1), off = disk_size - before;
	ssize_t r;

	if (rndn(4) == 0)
		off = disk_size + rndn(2 * CLUSTER), before = 0;
	logop("read-end %" PRIu64 "+%" PRIu64, off, len);
	r = pread(fd, rbuf, len, off);
	if (r != (ssize_t)before)
		die("pread(%" PRIu64 ", %" PRIu64 ") across the end returned %zd (%s), expected %" PRIu64, off, len, r,
		    r < 0 ? strerror(errno) : "short", before);
	compare(rbuf, off, before, "read across the end");
}

static void op_reopen(void)
{
	int flags;

	switch (rndn(6)) {
	case 0: flags = O_RDWR | O_SYNC; break;
	case 1: flags = O_RDWR | O_DSYNC; break;
	case 2: flags = direct_ok ? O_RDWR | O_DIRECT : O_RDWR; break;
	case 3: flags = O_RDONLY; break;
	default: flags = O_RDWR; break;
	}
	logop("reopen flags 0%o", flags);
	do_open(flags);
}

static void op_revert_busy(void)
{
	int e;

	logop("revert while open (expect EBUSY)");
	e = ctl_cmd("revert");
	if (e != EBUSY)
		die("revert while the .img is open: %s, expected EBUSY", e ? strerror(e) : "succeeded");
	expect_status("32774 System is in use", "revert while open");
	expect_state("5 Recovered", "revert while open");
	uint64_t len = pick_len(), off = pick_off(len);
	check_range(off, len, "read after a refused revert");
}

static void op_revert(void)
{
	int flags = fd_flags, f;

	logop("revert + failover");
	close_img();
	revert("revert");
	do_open(O_RDONLY);
	full_check("whole disk after revert (must equal the replica)");
	close_img();
	f = open(img_path, O_RDWR);
	if (f >= 0 || errno != EROFS)
		die("open for write after revert: %s, expected EROFS", f >= 0 ? "succeeded" : strerror(errno));
	failover("failover after revert");
	do_open(flags);
}

/*
 * The test VM "<vm> - Test" (SPEC §9) over the newest point (the source):
 * made while the VM is failed over, its disk written through its own model,
 * stop-test refused while it is open (32774), then removed by stop-test or
 * by revert written to its own control. The VM's state and disk do not
 * change meanwhile (its disk stays open throughout).
 */
static void op_test(void)
{
	uint8_t *vm_model = model;
	const char *vm_img = img_path, *vm_ctl = ctl_dir;
	int vm_fd = fd, vm_flags = fd_flags, e, n = 1 + (int)rndn(6), f;
	bool by_revert = rndn(2);
	char tpath[4096], tctl[4096];
	const char *slash = strrchr(img_path, '/');

	snprintf(tpath, sizeof(tpath), "%.*s - Test%s", (int)(slash - img_path), img_path, slash);
	snprintf(tctl, sizeof(tctl), "%s - Test", ctl_dir);
	logop("test VM: %d writes, then %s", n, by_revert ? "revert on it" : "stop-test");
	e = ctl_cmd("TestReplicaSystem");
	if (e)
		die("test: %s", strerror(e));
	expect_status("0 Completed with No Error", "test");
	expect_state("5 Recovered", "test: the VM keeps its state");
	memcpy(test_model, source, disk_size);
	model = test_model, img_path = tpath, ctl_dir = tctl, fd = -1;
	expect_state("5 Recovered", "the test VM");
	do_open(O_RDWR);
	full_check("test VM's disk (must equal the newest point)");
	while (n-- > 0)
		op_write();
	ctl_dir = vm_ctl;
	e = ctl_cmd("stop-test");
	if (e != EBUSY)
		die("stop-test while a test disk is open: %s, expected EBUSY", e ? strerror(e) : "succeeded");
	expect_status("32774 System is in use", "stop-test while open");
	full_check("test VM's disk after a refused stop-test");
	close_img();
	ctl_dir = by_revert ? tctl : vm_ctl;
	e = ctl_cmd(by_revert ? "revert" : "DestroySystem");
	ctl_dir = vm_ctl;
	if (e)
		die("removing the test VM: %s", strerror(e));
	f = open(tpath, O_RDONLY);
	if (f >= 0 || errno != ENOENT)
		die("the test VM's disk after it was removed: %s, expected ENOENT", f >= 0 ? "opens" : strerror(errno));
	model = vm_model, img_path = vm_img, fd = vm_fd, fd_flags = vm_flags;
	expect_state("5 Recovered", "the VM after its test VM left");
	full_check("the VM's disk after its test VM left");
}

static void run_cmd(const char *cmd)
{
	int r;

	fflush(stdout);
	r = system(cmd);
	if (r != 0)
		die("command failed (status %d): %s", r, cmd);
}

static void op_remount(void)
{
	int flags = fd_flags;

	logop("unmount + remount");
	close_img();
	run_cmd(umount_cmd);
	run_cmd(remount_cmd);
	expect_state("5 Recovered", "after remount");
	do_open(O_RDONLY);
	full_check("whole disk after remount");
	do_open(flags);
}

static void usage(void)
{
	fprintf(stderr, "usage: rfs_exerciser --img IMG --ctl CTLDIR --source RAW [--ops N] [--seed S]\n"
			"       [--maxlen BYTES] [--umount-cmd CMD --remount-cmd CMD]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	bool have_seed = false;
	unsigned total = 0, i;
	int s;
	char st[256];

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (s = 1; s < argc; s++) {
		const char *a = argv[s], *v = s + 1 < argc ? argv[s + 1] : NULL;
		if (!v)
			usage();
		if (!strcmp(a, "--img")) img_path = v;
		else if (!strcmp(a, "--ctl")) ctl_dir = v;
		else if (!strcmp(a, "--source")) src_path = v;
		else if (!strcmp(a, "--ops")) nops = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 0), have_seed = true;
		else if (!strcmp(a, "--maxlen")) maxlen = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--umount-cmd")) umount_cmd = v;
		else if (!strcmp(a, "--remount-cmd")) remount_cmd = v;
		else usage();
		s++;
	}
	if (!img_path || !ctl_dir || !src_path || !maxlen || (!umount_cmd != !remount_cmd))
		usage();
	if (!have_seed) {
		int r = open("/dev/urandom", O_RDONLY);
		if (r < 0 || read(r, &seed, sizeof(seed)) != sizeof(seed))
			return perror("/dev/urandom"), 2;
		close(r);
		seed &= 0xffffffffffffull; /* short enough to copy */
	}
	rng_state = seed;
	printf("exerciser: seed %" PRIu64 " (replay: --seed %" PRIu64 "), %" PRIu64 " ops on %s\n", seed, seed, nops,
	       img_path);

	/* The model starts as the raw source image. */
	int sf = open(src_path, O_RDONLY);
	struct stat sst;
	if (sf < 0 || fstat(sf, &sst) != 0)
		die("source %s: %s", src_path, strerror(errno));
	disk_size = sst.st_size;
	if (disk_size < 4 * CLUSTER)
		die("source %s is too small", src_path);
	source = malloc(disk_size);
	model = malloc(disk_size);
	test_model = malloc(disk_size);
	if (maxlen > disk_size)
		maxlen = disk_size;
	buf = aligned_alloc(CLUSTER, (maxlen + 8 * CLUSTER + CLUSTER - 1) / CLUSTER * CLUSTER);
	rbuf = aligned_alloc(CLUSTER, ((8u << 20) + maxlen + 8 * CLUSTER) / CLUSTER * CLUSTER);
	if (!source || !model || !test_model || !buf || !rbuf)
		die("out of memory");
	for (uint64_t d = 0; d < disk_size;) {
		ssize_t r = pread(sf, source + d, disk_size - d, d);
		if (r <= 0)
			die("read %s: %s", src_path, r ? strerror(errno) : "short");
		d += r;
	}
	close(sf);
	memcpy(model, source, disk_size);

	/* Start from a fresh failover: whatever an earlier run left is reverted. */
	ctl_read("state", st, sizeof(st));
	if (!strcmp(st, "5 Recovered"))
		revert("initial revert");
	else if (strcmp(st, "3 Replicating"))
		die("initial state '%s'", st);
	failover("initial failover");
	do_open(O_RDWR);
	{
		struct stat ist;
		if (fstat(fd, &ist) != 0 || (uint64_t)ist.st_size != disk_size)
			die(".img size %lld differs from the source's %" PRIu64, (long long)ist.st_size, disk_size);
	}
	full_check("whole disk after failover (must equal the replica)");

	for (i = 0; i < OP_N; i++)
		total += op_weight[i];
	for (opno = 1; opno <= nops; opno++) {
		uint64_t w = rndn(total);
		int op;

		for (op = 0; w >= op_weight[op]; op++)
			w -= op_weight[op];
		if ((op == OP_WRITE || op == OP_MAPWRITE || op == OP_WRITE_END) && !writable())
			op = OP_READ;
		if ((op == OP_MAPREAD || op == OP_MAPWRITE) && !mmap_ok)
			op = OP_READ;
		if (op == OP_REMOUNT && !remount_cmd)
			op = OP_FULLCHECK;
		op_count[op]++;
		switch (op) {
		case OP_READ: op_read(); break;
		case OP_WRITE: op_write(); break;
		case OP_MAPREAD: op_map(false); break;
		case OP_MAPWRITE: op_map(true); break;
		case OP_FSYNC:
			logop("fsync");
			if (fsync(fd) != 0)
				die("fsync: %s", strerror(errno));
			break;
		case OP_FDATASYNC:
			logop("fdatasync");
			if (fdatasync(fd) != 0)
				die("fdatasync: %s", strerror(errno));
			break;
		case OP_REOPEN: op_reopen(); break;
		case OP_WRITE_END:
			if (writable())
				op_write_end();
			break;
		case OP_READ_END: op_read_end(); break;
		case OP_REVERT_BUSY: op_revert_busy(); break;
		case OP_REVERT: op_revert(); break;
		case OP_REMOUNT: op_remount(); break;
		case OP_TEST: op_test(); break;
		case OP_FULLCHECK:
			logop("full check");
			full_check("whole disk");
			break;
		}
	}
	opno = nops;
	logop("final full check");
	full_check("whole disk at the end");
	if (fsync(fd) != 0 && errno != EBADF)
		die("final fsync: %s", strerror(errno));
	close_img();

	printf("exerciser: ops:");
	for (i = 0; i < OP_N; i++)
		printf(" %s=%" PRIu64, op_names[i], op_count[i]);
	printf("\n");
	printf("exerciser: %" PRIu64 " ops verified, seed %" PRIu64 "\n", nops, seed);
	return 0;
}
