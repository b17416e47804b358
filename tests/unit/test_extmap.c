// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/unit/test_extmap.c - vhd/extmap.c, the block map of one layer,
 * against independent readers: every disk read through the maps alone
 * (a small chain reader below: pread, zeros or the parent, run by run) must
 * equal libvhdi's read (tests/mkvhd.py libvhdi-sha256, through ctypes) and
 * qemu-img's (convert -O raw) wherever those are right, for the dfvfs
 * Windows-made fixtures and for qemu-img/qemu-io made VHD and VHDX files.
 * Also: the runs are maximal and never cross a kind boundary, VHDX blocks
 * crafted into states libvhdi gets wrong (ZERO in a differencing file) or
 * that tell the bit order apart, VHDX disks over 4 GiB (the BAT interleaves
 * a sector bitmap entry per chunk), truncated and non-image files, and
 * vhd_image_extent() over a chain.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "extmap.h"
#include "image.h"
#include "testutil.h"
#include "util.h"

#define MiB (1024 * 1024ull)
#define MAX_CHAIN 4

struct fixture {
	char *dir;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	fx->dir = make_tmpdir();
	if (!fx->dir)
		return -1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	rm_tree(fx->dir);
	free(fx);
	return 0;
}

/* A chain read through the maps alone: [0] is the tip. */
struct mchain {
	size_t n;
	int fd[MAX_CHAIN];
	struct extmap *map[MAX_CHAIN];
	uint64_t size; /* of the tip */
};

/* Map @dir/@names[0..n-1]; asserts every map opens. */
static void mchain_open(struct mchain *c, const char *dir, const char *const *names, size_t n)
{
	char path[4096], err[512];

	memset(c, 0, sizeof(*c));
	c->n = n;
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		c->fd[i] = open(path, O_RDONLY | O_CLOEXEC);
		assert_true(c->fd[i] >= 0);
		if (extmap_open(c->fd[i], &c->map[i], err, sizeof(err)))
			fail_msg("extmap_open %s: %s", names[i], err);
	}
	c->size = extmap_virtual_size(c->map[0]);
}

static void mchain_close(struct mchain *c)
{
	for (size_t i = 0; i < c->n; i++) {
		extmap_close(c->map[i]);
		close(c->fd[i]);
	}
}

/* What layer @i shows at @off: its own runs, zeros, or layer i+1's. */
static void map_read(const struct mchain *c, size_t i, uint8_t *buf, uint64_t len, uint64_t off)
{
	while (len) {
		struct extmap_run run;

		assert_int_equal(extmap_lookup(c->map[i], off, len, &run), 0);
		assert_true(run.len >= 1 && run.len <= len);
		if (run.kind == EXTMAP_FILE)
			assert_int_equal(rfs_pread_full(c->fd[i], buf, run.len, run.file_off), 0);
		else if (run.kind == EXTMAP_MEMORY)
			memcpy(buf, run.data, run.len);
		else if (run.kind == EXTMAP_PARENT && i + 1 < c->n)
			map_read(c, i + 1, buf, run.len, off);
		else if (run.kind == EXTMAP_PARENT)
			fail_msg("layer %zu: parent run at %llu without a parent", i,
				 (unsigned long long)off);
		else
			memset(buf, 0, run.len);
		buf += run.len;
		len -= run.len;
		off += run.len;
	}
}

static uint8_t *map_read_all(const struct mchain *c)
{
	uint8_t *buf = malloc(c->size ? c->size : 1);

	assert_non_null(buf);
	/* odd pieces, so that runs are cut by the length asked too */
	for (uint64_t off = 0; off < c->size;) {
		uint64_t len = 200000 + off % 7 * 512 + 5;

		if (len > c->size - off)
			len = c->size - off;
		map_read(c, 0, buf + off, len, off);
		off += len;
	}
	return buf;
}

/* sha256 (hex) of the chain read through the maps. */
static void map_sha(const struct fixture *fx, const struct mchain *c, char hex[65])
{
	uint8_t *buf = map_read_all(c);

	assert_int_equal(sha256_hex(buf, c->size, fx->dir, hex), 0);
	free(buf);
}

/* sha256 (hex) of @dir/@name's chain read by libvhdi itself. */
static void libvhdi_sha(const char *dir, const char *name, char hex[65])
{
	char out[256];

	assert_int_equal(sh_out(out, sizeof(out), "python3 '%s/../mkvhd.py' libvhdi-sha256 '%s/%s'",
				testdata(), dir, name),
			 0);
	assert_true(strlen(out) >= 64);
	memcpy(hex, out, 64);
	hex[64] = '\0';
}

/* The chain's first @c->size bytes equal qemu-img's raw conversion of @name. */
static void assert_equals_qemu(const struct fixture *fx, const struct mchain *c,
			       const char *name, const char *fmt)
{
	uint8_t *mine = map_read_all(c), *theirs;
	char path[4096];
	size_t len = 0;

	assert_int_equal(sh("cd '%s' && qemu-img convert -f %s -O raw '%s' qemu.raw", fx->dir,
			    fmt, name),
			 0);
	snprintf(path, sizeof(path), "%s/qemu.raw", fx->dir);
	theirs = slurp(path, &len);
	assert_non_null(theirs);
	/* qemu shows a fixed VHD with its footer: compare the disk only */
	assert_true(len >= c->size);
	if (memcmp(mine, theirs, c->size) != 0)
		fail_msg("%s: map read differs from qemu-img convert", name);
	free(theirs);
	free(mine);
}

static void unxz(const struct fixture *fx, const char *name)
{
	assert_int_equal(sh("xz -dc '%s/dfvfs/%s.xz' > '%s/%s'", testdata(), name, fx->dir, name),
			 0);
}

/*
 * Every dfvfs fixture, children over their parents: map read = MANIFEST
 * sum = libvhdi's read, and = qemu-img's for what qemu reads (not the
 * differencing files, nor image.vhd with its bad footer checksum).
 */
static void test_dfvfs(void **state)
{
	static const struct {
		const char *chain[2];
		const char *qemu_fmt; /* NULL: qemu cannot read it right */
	} cases[] = {
		{ { "ntfs-fixed.vhd" }, "vpc" },
		{ { "ntfs-dynamic.vhd" }, "vpc" },
		{ { "ntfs-parent.vhd" }, "vpc" },
		{ { "ntfs-differential.vhd", "ntfs-parent.vhd" }, NULL },
		{ { "image.vhd" }, NULL },
		{ { "ntfs-fixed.vhdx" }, "vhdx" },
		{ { "ntfs-dynamic.vhdx" }, "vhdx" },
		{ { "ntfs-parent.vhdx" }, "vhdx" },
		{ { "ntfs-differential.vhdx", "ntfs-parent.vhdx" }, NULL },
	};
	struct fixture *fx = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *const *chain = cases[i].chain;
		size_t n = chain[1] ? 2 : 1;
		char mine[65], theirs[65], manifest[65], out[256];
		struct mchain c;

		for (size_t k = 0; k < n; k++)
			unxz(fx, chain[k]);
		mchain_open(&c, fx->dir, chain, n);
		assert_int_equal(extmap_differencing(c.map[0]), n == 2);
		map_sha(fx, &c, mine);
		libvhdi_sha(fx->dir, chain[0], theirs);
		assert_int_equal(sh_out(out, sizeof(out), "grep -F 'dfvfs/%s.xz' '%s/MANIFEST.tsv' | cut -f3",
					chain[0], testdata()),
				 0);
		snprintf(manifest, sizeof(manifest), "%.64s", out);
		if (strcmp(mine, manifest) || strcmp(mine, theirs))
			fail_msg("%s: map %s, MANIFEST %s, libvhdi %s", chain[0], mine, manifest, theirs);
		if (cases[i].qemu_fmt)
			assert_equals_qemu(fx, &c, chain[0], cases[i].qemu_fmt);
		mchain_close(&c);
	}
}

/* Write 0x5a (then other patterns) with qemu-io at a few places of @name. */
static void fill(const struct fixture *fx, const char *name, const char *fmt)
{
	assert_int_equal(sh("cd '%s' && qemu-io -f %s "
			    "-c 'write -P 0x5a 0 4096' -c 'write -P 0x11 1536 1024' "
			    "-c 'write -P 0x5a 3M 2M' -c 'write -P 0x77 9437184 512' "
			    "-c 'write -P 0x33 12582400 1024' '%s' >/dev/null",
			    fx->dir, fmt, name),
			 0);
}

/* qemu-img made VHD and VHDX, dynamic and fixed, block sizes and sector
 * sizes varied: map read = qemu-img's = libvhdi's. */
static void test_qemu_images(void **state)
{
	static const struct {
		const char *name, *fmt, *opts;
	} cases[] = {
		{ "d.vhd", "vpc", "subformat=dynamic,force_size=on" },
		{ "f.vhd", "vpc", "subformat=fixed,force_size=on" },
		{ "d.vhdx", "vhdx", "subformat=dynamic" },
		{ "d1.vhdx", "vhdx", "subformat=dynamic,block_size=1M" },
		{ "dz.vhdx", "vhdx", "subformat=dynamic,block_size=1M,block_state_zero=off" },
		{ "f.vhdx", "vhdx", "subformat=fixed,block_size=1M" },
		{ "fz.vhdx", "vhdx", "subformat=fixed,block_state_zero=off" },
	};
	struct fixture *fx = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *one[1] = { cases[i].name };
		char mine[65], theirs[65];
		struct mchain c;

		/* 12 MiB + 3 sectors: a short last block */
		assert_int_equal(sh("cd '%s' && qemu-img create -q -f %s -o %s '%s' %llu", fx->dir,
				    cases[i].fmt, cases[i].opts, cases[i].name,
				    12 * MiB + 1536),
				 0);
		fill(fx, cases[i].name, cases[i].fmt);
		mchain_open(&c, fx->dir, one, 1);
		assert_int_equal(c.size, 12 * MiB + 1536);
		assert_false(extmap_differencing(c.map[0]));
		assert_equals_qemu(fx, &c, cases[i].name, cases[i].fmt);
		map_sha(fx, &c, mine);
		libvhdi_sha(fx->dir, cases[i].name, theirs);
		if (strcmp(mine, theirs))
			fail_msg("%s: map %s, libvhdi %s", cases[i].name, mine, theirs);
		mchain_close(&c);
	}
}

/*
 * Over 4 GiB a VHDX BAT holds a sector bitmap entry after each chunk
 * (4096 payload entries for 1 MiB blocks): data past the first chunk is
 * found only if the map skips it. Checked against the patterns written.
 */
static void test_vhdx_beyond_first_chunk(void **state)
{
	static const char *const one[1] = { "big.vhdx" };
	struct fixture *fx = *state;
	uint64_t at = 4 * 1024 * MiB + 3 * MiB; /* payload block 4099 */
	uint8_t *buf = malloc(4 * MiB);
	struct extmap_run run;
	struct mchain c;

	assert_non_null(buf);
	assert_int_equal(sh("cd '%s' && qemu-img create -q -f vhdx -o block_size=1M big.vhdx 5G "
			    "&& qemu-io -f vhdx -c 'write -P 0x5a %llu 1M' -c 'write -P 0x6b "
			    "4095M 1M' big.vhdx >/dev/null",
			    fx->dir, (unsigned long long)at),
			 0);
	mchain_open(&c, fx->dir, one, 1);
	map_read(&c, 0, buf, 4 * MiB, at - MiB);
	for (uint64_t k = 0; k < 4 * MiB; k++) {
		uint8_t want = k >= MiB && k < 2 * MiB ? 0x5a : 0;

		if (buf[k] != want)
			fail_msg("byte %llu: %#x, expected %#x", (unsigned long long)(at - MiB + k),
				 buf[k], want);
	}
	map_read(&c, 0, buf, MiB, 4095 * MiB);
	for (uint64_t k = 0; k < MiB; k++)
		assert_int_equal(buf[k], 0x6b);
	/* the rest of the disk is one hole up to the written block */
	assert_int_equal(extmap_lookup(c.map[0], 4096 * MiB, 5 * 1024 * MiB, &run), 0);
	assert_int_equal(run.kind, EXTMAP_ZERO);
	assert_int_equal(run.len, 3 * MiB);
	mchain_close(&c);

	/* the same in a fixed VHDX, whose BAT interleaves too (libvhdi 20210425
	 * reads a fixed VHDX's BAT without the bitmap entries: zeros here) */
	assert_int_equal(sh("cd '%s' && qemu-img create -q -f vhdx -o subformat=fixed,block_size=1M,"
			    "block_state_zero=off big.vhdx 5G && qemu-io -f vhdx -c 'write -P 0x5a "
			    "%llu 1M' big.vhdx >/dev/null",
			    fx->dir, (unsigned long long)at),
			 0);
	mchain_open(&c, fx->dir, one, 1);
	map_read(&c, 0, buf, 2 * MiB, at - MiB);
	for (uint64_t k = 0; k < 2 * MiB; k++)
		assert_int_equal(buf[k], k >= MiB ? 0x5a : 0);
	assert_int_equal(extmap_lookup(c.map[0], 0, 5 * 1024 * MiB, &run), 0);
	assert_int_equal(run.kind, EXTMAP_FILE); /* qemu lays the blocks out in order */
	mchain_close(&c);
	free(buf);
}

/* The differencing VHDs that libvhdi 20210425 misreads (workaround 1). */
static void test_vhd_bitmap_bug(void **state)
{
	static const char *const two[] = { "c2.vhd", "c1.vhd", "base.vhd" };
	struct fixture *fx = *state;
	char path[4096], mine[65], theirs[65];
	uint8_t *expect, *got;
	struct mchain c;
	size_t len = 0;

	assert_int_equal(sh("cd '%s' && head -c %llu /dev/urandom > base.raw && "
			    "qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on "
			    "base.raw base.vhd && "
			    "python3 '%s/../mkvhd.py' diff base.vhd c1.vhd --seed 7 >/dev/null && "
			    "python3 '%s/../mkvhd.py' diff c1.vhd c2.vhd --seed 8 "
			    "--block-size 524288 --raw-out c2.raw >/dev/null",
			    fx->dir, 6 * MiB + 4096, testdata(), testdata()),
			 0);
	mchain_open(&c, fx->dir, two, 3);
	snprintf(path, sizeof(path), "%s/c2.raw", fx->dir);
	expect = slurp(path, &len);
	assert_non_null(expect);
	assert_int_equal(len, c.size);
	got = map_read_all(&c);
	assert_memory_equal(got, expect, len);
	/* libvhdi really is wrong here: the test is live */
	assert_int_equal(sha256_hex(got, len, fx->dir, mine), 0);
	libvhdi_sha(fx->dir, "c2.vhd", theirs);
	assert_string_not_equal(mine, theirs);
	free(got);
	free(expect);
	mchain_close(&c);
}

/* Patch VHDX @name with the python statements @python, which find the BAT
 * with a tiny parser of their own: entry(k) reads BAT entry k, put(k, v)
 * writes it, f is the file open for writing. */
static void vhdx_patch(const struct fixture *fx, const char *name, const char *python)
{
	assert_int_equal(sh("cd '%s' && python3 - '%s' <<'EOF'\n"
			    "import struct, sys, uuid\n"
			    "f = open(sys.argv[1], 'r+b'); d = f.read()\n"
			    "rt = d[196608:262144]\n"
			    "regs = {str(uuid.UUID(bytes_le=rt[16+32*i:32+32*i])):\n"
			    "        struct.unpack_from('<QI', rt, 32+32*i)\n"
			    "        for i in range(struct.unpack_from('<I', rt, 8)[0])}\n"
			    "bat = regs['2dc27766-f623-4200-9d64-115e9bfd4a08'][0]\n"
			    "def entry(k): return struct.unpack_from('<Q', d, bat + 8 * k)[0]\n"
			    "def put(k, v): f.seek(bat + 8 * k); f.write(struct.pack('<Q', v))\n"
			    "%s\n"
			    "EOF",
			    fx->dir, name, python),
			 0);
}

/* Sector states of ntfs-differential.vhdx (2 MiB blocks, 512-byte
 * sectors, chunk ratio 2048): its sector bitmap block is BAT entry 2048. */
static void test_vhdx_crafted_states(void **state)
{
	static const char *const chain[] = { "c.vhdx", "ntfs-parent.vhdx" };
	static const char *const parent[] = { "ntfs-parent.vhdx" };
	struct fixture *fx = *state;
	uint8_t *orig, *got, *par, *zeros = calloc(1, 2 * MiB);
	char mine[65], theirs[65], err[512], path[4096];
	struct mchain c, p;
	struct extmap *m;
	int fd;

	assert_non_null(zeros);
	unxz(fx, "ntfs-differential.vhdx");
	unxz(fx, "ntfs-parent.vhdx");
	assert_int_equal(sh("cd '%s' && cp ntfs-differential.vhdx c.vhdx", fx->dir), 0);
	mchain_open(&c, fx->dir, chain, 2);
	orig = map_read_all(&c);
	mchain_close(&c);
	mchain_open(&p, fx->dir, parent, 1);
	par = map_read_all(&p);
	mchain_close(&p);

	/* ZERO (2) in a differencing file: zeros, not the parent (workaround 2) */
	vhdx_patch(fx, "c.vhdx", "put(1, entry(1) & ~7 | 2)");
	mchain_open(&c, fx->dir, chain, 2);
	got = map_read_all(&c);
	assert_memory_equal(got, orig, 2 * MiB);
	assert_memory_equal(got + 2 * MiB, zeros, 2 * MiB);
	assert_memory_not_equal(par + 2 * MiB, zeros, 2 * MiB); /* the test is live */
	assert_int_equal(sha256_hex(got, c.size, fx->dir, mine), 0);
	libvhdi_sha(fx->dir, "c.vhdx", theirs);
	assert_string_not_equal(mine, theirs); /* libvhdi follows the stale bitmap */
	free(got);
	mchain_close(&c);

	/* NOT_PRESENT (0): the parent's block */
	vhdx_patch(fx, "c.vhdx", "put(1, 0)");
	mchain_open(&c, fx->dir, chain, 2);
	got = map_read_all(&c);
	assert_memory_equal(got, orig, 2 * MiB);
	assert_memory_equal(got + 2 * MiB, par + 2 * MiB, 2 * MiB);
	assert_int_equal(sha256_hex(got, c.size, fx->dir, mine), 0);
	libvhdi_sha(fx->dir, "c.vhdx", theirs);
	assert_string_not_equal(mine, theirs); /* ditto, at file offset 0 */
	free(got);
	mchain_close(&c);
	assert_int_equal(sh("cd '%s' && cp ntfs-differential.vhdx c.vhdx", fx->dir), 0);

	/* a mixed bitmap byte (0x0f then 0xa5): sectors 0-3 of the byte in the
	 * child, 4-7 in the parent if LSB-first; libvhdi (LSB-first for VHDX)
	 * must agree byte for byte */
	vhdx_patch(fx, "c.vhdx",
		   "sb = entry(2048) >> 20 << 20\n"
		   "f.seek(sb + 52); f.write(bytes([0x0f, 0xa5]))");
	mchain_open(&c, fx->dir, chain, 2);
	got = map_read_all(&c);
	assert_memory_equal(got + 416 * 512, orig + 416 * 512, 4 * 512);
	assert_memory_equal(got + 420 * 512, par + 420 * 512, 4 * 512);
	assert_int_equal(sha256_hex(got, c.size, fx->dir, mine), 0);
	libvhdi_sha(fx->dir, "c.vhdx", theirs);
	assert_string_equal(mine, theirs);
	free(got);
	mchain_close(&c);

	/* the reserved state 4 is refused */
	vhdx_patch(fx, "c.vhdx", "put(0, entry(0) & ~7 | 4)");
	snprintf(path, sizeof(path), "%s/c.vhdx", fx->dir);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(extmap_open(fd, &m, err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "reserved state 4"));
	close(fd);
	free(orig);
	free(par);
	free(zeros);
}

/*
 * Runs are maximal and never cross a kind boundary: walking the disk with
 * whole-disk lookups, each run agrees with a sector-by-sector walk (same
 * kind, file offsets following on), and the next run is of another kind
 * or, for file runs, not contiguous in the file.
 */
static void assert_runs_exact(const struct mchain *c, size_t layer, uint32_t step)
{
	const struct extmap *m = c->map[layer];
	struct extmap_run prev = { 0 }, run, one;
	uint64_t off = 0;
	unsigned runs = 0;

	while (off < c->size) {
		assert_int_equal(extmap_lookup(m, off, UINT64_MAX, &run), 0);
		assert_true(run.len >= 1 && run.len <= c->size - off);
		if (runs++)
			assert_false(run.kind == prev.kind &&
				     (run.kind == EXTMAP_FILE ? run.file_off == prev.file_off + prev.len
				      : run.kind != EXTMAP_MEMORY || run.data == prev.data + prev.len));
		for (uint64_t k = 0; k < run.len; k += step) {
			uint64_t want = run.len - k < step ? run.len - k : step;

			assert_int_equal(extmap_lookup(m, off + k, want, &one), 0);
			assert_int_equal(one.kind, run.kind);
			assert_int_equal(one.len, want);
			if (run.kind == EXTMAP_FILE)
				assert_int_equal(one.file_off, run.file_off + k);
			if (run.kind == EXTMAP_MEMORY)
				assert_ptr_equal(one.data, run.data + k);
		}
		prev = run;
		off += run.len;
	}
	assert_int_equal(off, c->size);
	/* lengths asked are honoured, and bad arguments refused */
	assert_int_equal(extmap_lookup(m, 0, 1, &run), 0);
	assert_int_equal(run.len, 1);
	assert_int_equal(extmap_lookup(m, c->size, 1, &run), -EINVAL);
	assert_int_equal(extmap_lookup(m, 0, 0, &run), -EINVAL);
}

static void test_runs_maximal(void **state)
{
	static const char *const vhd[] = { "c1.vhd", "base.vhd" };
	static const char *const vhdx[] = { "ntfs-differential.vhdx", "ntfs-parent.vhdx" };
	static const char *const dyn[] = { "d.vhdx" };
	struct fixture *fx = *state;
	struct mchain c;

	assert_int_equal(sh("cd '%s' && head -c %llu /dev/urandom > base.raw && "
			    "qemu-img convert -f raw -O vpc -o subformat=fixed,force_size=on "
			    "base.raw base.vhd && "
			    "python3 '%s/../mkvhd.py' diff base.vhd c1.vhd --seed 9 >/dev/null && "
			    "qemu-img create -q -f vhdx -o block_size=1M d.vhdx %llu",
			    fx->dir, 6 * MiB, testdata(), 12 * MiB + 1536),
			 0);
	fill(fx, "d.vhdx", "vhdx");
	unxz(fx, "ntfs-differential.vhdx");
	unxz(fx, "ntfs-parent.vhdx");
	mchain_open(&c, fx->dir, vhd, 2);
	assert_runs_exact(&c, 0, 512);
	assert_runs_exact(&c, 1, 4096);
	mchain_close(&c);
	mchain_open(&c, fx->dir, vhdx, 2);
	assert_runs_exact(&c, 0, 512);
	mchain_close(&c);
	mchain_open(&c, fx->dir, dyn, 1);
	assert_runs_exact(&c, 0, 512);
	mchain_close(&c);
}

/* Open must fail with @ret and a reason containing @needle. */
static void assert_map_fails(const struct fixture *fx, const char *name, int ret,
			     const char *needle)
{
	char path[4096], err[512] = "";
	struct extmap *m = NULL;
	int fd, got;

	snprintf(path, sizeof(path), "%s/%s", fx->dir, name);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	got = extmap_open(fd, &m, err, sizeof(err));
	close(fd);
	if (got != ret || !strstr(err, needle))
		fail_msg("%s: got %d \"%s\", expected %d \"%s\"", name, got, err, ret, needle);
	assert_null(m);
}

/* Truncated files, non-images and a VHDX log set but empty are refused. */
static void test_refused(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(
		sh("cd '%s' && qemu-img create -q -f vhdx -o block_size=1M x.vhdx 12M && "
		   "qemu-io -f vhdx -c 'write -P 1 10M 1M' x.vhdx >/dev/null && "
		   "cp x.vhdx xt.vhdx && truncate -s -512K xt.vhdx && "
		   "qemu-img create -q -f vhdx -o subformat=fixed,block_size=1M,block_state_zero=off "
		   "xf.vhdx 12M && "
		   "truncate -s -512K xf.vhdx && "
		   "qemu-img create -q -f vpc -o subformat=dynamic,force_size=on v.vhd 12M && "
		   "qemu-io -f vpc -c 'write -P 1 10M 1M' v.vhd >/dev/null && "
		   "python3 -c \"import sys; d = open('v.vhd', 'rb').read(); "
		   "open('vt.vhd', 'wb').write(d[:len(d) // 2] + d[-512:])\" && "
		   "cp v.vhd vf.vhd && truncate -s 1000000 vf.vhd && "
		   "qemu-img create -q -f vpc -o subformat=fixed,force_size=on f.vhd 1M && "
		   "python3 -c \"d = open('f.vhd', 'rb').read(); "
		   "open('ft.vhd', 'wb').write(d[:4096] + d[-512:])\" && "
		   "head -c 70000 /dev/urandom > junk.vhdx && : > empty.vhd && "
		   "cp x.vhdx dirty.vhdx && python3 '%s/../mkvhd.py' vhdx-dirty-log dirty.vhdx",
		   fx->dir, testdata()),
		0);
	assert_map_fails(fx, "xt.vhdx", -EIO, "its block table points past that");
	assert_map_fails(fx, "xf.vhdx", -EIO, "its block table points past that");
	assert_map_fails(fx, "vt.vhd", -EIO, "its block table points past that");
	assert_map_fails(fx, "vf.vhd", -EIO, "without the VHD footer that ends every VHD");
	assert_map_fails(fx, "ft.vhd", -EIO, "a fixed VHD of this size needs");
	assert_map_fails(fx, "junk.vhdx", -EINVAL, "not a VHD/VHDX image");
	assert_map_fails(fx, "empty.vhd", -EINVAL, "not a VHD/VHDX image");
	/* LogGuid set over an empty log: nothing valid to replay */
	assert_map_fails(fx, "dirty.vhdx", -EIO, "no valid sequence of log entries");
}

/* sha256 (hex) of the file @dir/@name itself. */
static void file_sha(const char *dir, const char *name, char hex[65])
{
	char out[256];

	assert_int_equal(sh_out(out, sizeof(out), "sha256sum '%s/%s'", dir, name), 0);
	assert_true(strlen(out) >= 64);
	memcpy(hex, out, 64);
	hex[64] = '\0';
}

/* The map read of @name (one file) equals qemu's replay of a copy of
 * @ref: qemu-img check -r all replays the log of the copy (qemu's
 * vhdx-log.c), then convert -O raw. */
static void assert_equals_qemu_replay(const struct fixture *fx, const char *name, const char *ref)
{
	const char *one[1] = { name };
	struct mchain c;

	assert_int_equal(sh("cd '%s' && cp '%s' qref.vhdx && qemu-img check -q -r all qref.vhdx",
			    fx->dir, ref),
			 0);
	mchain_open(&c, fx->dir, one, 1);
	assert_equals_qemu(fx, &c, "qref.vhdx", "vhdx");
	assert_runs_exact(&c, 0, 4096);
	mchain_close(&c);
}

/* Entries the map of @name replayed, and their sequence numbers. */
static unsigned replayed(const struct fixture *fx, const char *name, uint64_t *first,
			 uint64_t *last)
{
	const char *one[1] = { name };
	struct mchain c;
	unsigned n;

	mchain_open(&c, fx->dir, one, 1);
	n = extmap_log_entries(c.map[0], first, last);
	mchain_close(&c);
	return n;
}

/*
 * A dirty VHDX log (workaround 3, vhdxlog.h), written by mkvhd.py
 * vhdx-log over a qemu-made dynamic VHDX: a BAT update allocating a
 * block, a zero descriptor, data sectors, a BAT update turning a block
 * ZERO. The map replays it in memory exactly as qemu's repair does; a torn
 * final entry and an entry wrapping round the end of the log included;
 * the file is not modified; libvhdi still reads it stale (if that test
 * fails, libvhdi replays logs now and workaround 3 may go).
 */
static void test_vhdx_log_replay(void **state)
{
	static const char *const cases[] = { "valid", "torn", "wrapped" };
	struct fixture *fx = *state;
	char before[65], after[65], mine[65], theirs[65], name[64];
	uint64_t first, last;

	assert_int_equal(sh("cd '%s' && qemu-img create -q -f vhdx -o block_size=1M x.vhdx 12M && "
			    "qemu-io -f vhdx -c 'write -P 0x11 0 2M' -c 'write -P 0x22 5M 1M' "
			    "x.vhdx >/dev/null",
			    fx->dir),
			 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *one[1] = { name };
		struct mchain c;

		snprintf(name, sizeof(name), "%s.vhdx", cases[i]);
		assert_int_equal(sh("cd '%s' && python3 '%s/../mkvhd.py' vhdx-log x.vhdx %s --case %s",
				    fx->dir, testdata(), name, cases[i]),
				 0);
		file_sha(fx->dir, name, before);
		assert_equals_qemu_replay(fx, name, name);
		file_sha(fx->dir, name, after);
		assert_string_equal(before, after);
		assert_int_equal(replayed(fx, name, &first, &last), 3);
		assert_int_equal(first, 7);
		assert_int_equal(last, 9);
		mchain_open(&c, fx->dir, one, 1);
		map_sha(fx, &c, mine);
		mchain_close(&c);
		libvhdi_sha(fx->dir, name, theirs);
		assert_string_not_equal(mine, theirs); /* libvhdi serves it stale */
	}
}

/*
 * Logs whose entries do not all replay. A sequence number that skips one
 * ends the sequence: only the first entry replays (its own Tail), as qemu
 * replays a log of that entry alone (qemu itself checks neither the
 * sequence nor, in 7.2, the checksum of a broken log, so it is no
 * reference there). A first entry with a bad checksum leaves no valid
 * sequence (the others name it as their tail): refused. A log flushed
 * past the end of the file (truncated since): refused. A log region past
 * the end of the file: refused.
 */
static void test_vhdx_log_refused(void **state)
{
	struct fixture *fx = *state;
	uint64_t first, last;

	assert_int_equal(
		sh("cd '%s' && qemu-img create -q -f vhdx -o block_size=1M x.vhdx 12M && "
		   "qemu-io -f vhdx -c 'write -P 0x11 0 2M' -c 'write -P 0x22 5M 1M' x.vhdx "
		   ">/dev/null && m='%s/../mkvhd.py' && "
		   "python3 $m vhdx-log x.vhdx wrongseq.vhdx --case wrongseq && "
		   "python3 $m vhdx-log x.vhdx one.vhdx --entries 1 && "
		   "python3 $m vhdx-log x.vhdx badcrc.vhdx --case badcrc && "
		   "python3 $m vhdx-log x.vhdx pastfile.vhdx --case pastfile && "
		   "cp x.vhdx nolog.vhdx && python3 $m vhdx-dirty-log nolog.vhdx && "
		   "truncate -s 1M nolog.vhdx",
		   fx->dir, testdata()),
		0);
	assert_equals_qemu_replay(fx, "wrongseq.vhdx", "one.vhdx");
	assert_int_equal(replayed(fx, "wrongseq.vhdx", &first, &last), 1);
	assert_int_equal(first, 7);
	assert_map_fails(fx, "badcrc.vhdx", -EIO, "no valid sequence of log entries");
	assert_map_fails(fx, "pastfile.vhdx", -EIO, "(truncated?)");
	assert_map_fails(fx, "nolog.vhdx", -EIO, "log region");
}

/*
 * vhd_image_extent() over a three-file chain: allocated exactly where some
 * layer's map holds the sector in its file before any layer says zeros,
 * runs maximal and alternating.
 */
static void test_image_extent(void **state)
{
	static const char *const names[] = { "c2.vhd", "c1.vhd", "base.vhd" };
	struct fixture *fx = *state;
	char paths[3][4096], err[512];
	const char *chain[3] = { paths[0], paths[1], paths[2] };
	struct vhd_image *img;
	uint64_t off = 0, run;
	bool alloc, prev = false;
	unsigned holes = 0, data = 0;
	struct mchain c;

	assert_int_equal(sh("cd '%s' && qemu-img create -q -f vpc -o subformat=dynamic,force_size=on "
			    "base.vhd 8M && qemu-io -f vpc -c 'write -P 1 2M 2M' base.vhd >/dev/null "
			    "&& python3 '%s/../mkvhd.py' diff base.vhd c1.vhd --seed 3 >/dev/null && "
			    "python3 '%s/../mkvhd.py' diff c1.vhd c2.vhd --seed 4 "
			    "--block-size 524288 >/dev/null",
			    fx->dir, testdata(), testdata()),
			 0);
	for (int i = 0; i < 3; i++)
		snprintf(paths[i], sizeof(paths[i]), "%s/%s", fx->dir, names[i]);
	assert_int_equal(vhd_image_open(chain, 3, 1, &img, err, sizeof(err)), 0);
	mchain_open(&c, fx->dir, names, 3);
	while (off < c.size) {
		assert_int_equal(vhd_image_extent(img, off, UINT64_MAX, &run, &alloc), 0);
		assert_true(run >= 1 && run <= c.size - off);
		if (off)
			assert_true(alloc != prev);
		alloc ? data++ : holes++;
		for (uint64_t s = off; s < off + run; s += 512) {
			bool want = false;

			for (size_t i = 0; i < 3; i++) {
				struct extmap_run r;

				assert_int_equal(extmap_lookup(c.map[i], s, 512, &r), 0);
				if (r.kind == EXTMAP_PARENT)
					continue;
				want = r.kind == EXTMAP_FILE;
				break;
			}
			if (want != alloc)
				fail_msg("sector at %llu: allocated %d, extent says %d",
					 (unsigned long long)s, want, alloc);
		}
		prev = alloc;
		off += run;
	}
	assert_true(holes > 0 && data > 0);
	assert_int_equal(vhd_image_extent(img, c.size, 1, &run, &alloc), -EINVAL);
	assert_int_equal(vhd_image_extent(img, 0, 0, &run, &alloc), -EINVAL);
	assert_int_equal(vhd_image_extent(img, 0, 1, &run, &alloc), 0);
	assert_int_equal(run, 1);
	mchain_close(&c);
	vhd_image_close(img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dfvfs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_qemu_images, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vhdx_beyond_first_chunk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vhd_bitmap_bug, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vhdx_crafted_states, setup, teardown),
		cmocka_unit_test_setup_teardown(test_runs_maximal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vhdx_log_replay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vhdx_log_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_image_extent, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
