// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/unit/test_image.c - vhd/image.c against real images: the dfvfs
 * Windows-made fixtures (MANIFEST.tsv sums), qemu-img made VHD/VHDX, the
 * differencing VHDs of tests/mkvhd.py that libvhdi 20210425 misreads (one and
 * two levels), broken files, and many threads reading one image at once.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "image.h"
#include "testutil.h"

#define MiB (1024 * 1024)

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

/*
 * vhd_image_locate() against the read: wherever it names a file, that
 * file's bytes at the offset it gives are the disk's (@buf, read by
 * vhd_image_read()); returns how many runs it named.
 */
static unsigned check_locate(struct vhd_image *img, const uint8_t *buf, uint64_t size)
{
	uint8_t *file = malloc(MiB);
	unsigned named = 0;

	assert_non_null(file);
	for (uint64_t off = 0; off < size; off += 65536 + (off % 5) * 4096 + 512) {
		uint64_t len = size - off < MiB ? size - off : MiB, pos, run;
		int fd, r = vhd_image_locate(img, off, len, &fd, &pos, &run);

		if (r == -ENODATA)
			continue;
		assert_int_equal(r, 0);
		assert_true(run >= 1 && run <= len);
		assert_int_equal(pread(fd, file, run, (off_t)pos), (ssize_t)run);
		if (memcmp(file, buf + off, run) != 0)
			fail_msg("locate at %llu: file offset %llu does not hold the disk's bytes",
				 (unsigned long long)off, (unsigned long long)pos);
		named++;
	}
	free(file);
	return named;
}

/* Whole image content; asserts it opens, and that locate agrees with it. */
static uint8_t *read_all(const char *const *paths, size_t n, uint64_t *size)
{
	struct vhd_image_info info;
	struct vhd_image *img;
	char err[512];
	uint8_t *buf;
	int ret;

	ret = vhd_image_open(paths, n, 2, &img, err, sizeof(err));
	if (ret)
		fail_msg("open %s: %d %s", paths[0], ret, err);
	vhd_image_get_info(img, &info);
	buf = malloc(info.virtual_size ? info.virtual_size : 1);
	assert_non_null(buf);
	/* odd-sized pieces cross sector and block boundaries */
	for (uint64_t off = 0; off < info.virtual_size;) {
		size_t len = 300000 + (size_t)(off % 7) * 512 + 3;

		if (len > info.virtual_size - off)
			len = info.virtual_size - off;
		assert_int_equal(vhd_image_read(img, buf + off, len, off), 0);
		off += len;
	}
	check_locate(img, buf, info.virtual_size);
	*size = info.virtual_size;
	vhd_image_close(img);
	return buf;
}

static void assert_sha(const struct fixture *fx, const char *const *paths, size_t n,
		       const char *expected)
{
	uint64_t size;
	uint8_t *buf = read_all(paths, n, &size);
	char hex[65];

	assert_int_equal(sha256_hex(buf, size, fx->dir, hex), 0);
	free(buf);
	if (strcmp(hex, expected) != 0)
		fail_msg("%s: sha256 %s, expected %s", paths[0], hex, expected);
}

static void unxz(const struct fixture *fx, const char *name)
{
	assert_int_equal(sh("xz -dc '%s/dfvfs/%s.xz' > '%s/%s'", testdata(), name, fx->dir, name),
			 0);
}

/* Every dfvfs fixture reads to its MANIFEST.tsv sum, children over parents. */
static void test_dfvfs_manifest(void **state)
{
	struct fixture *fx = *state;
	char manifest[4096], line[1024];
	int checked = 0;
	FILE *f;

	snprintf(manifest, sizeof(manifest), "%s/MANIFEST.tsv", testdata());
	f = fopen(manifest, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char file[256], sha[65], stem[256], name[600], path[4096], ppath[4096], err[512];
		unsigned long long size;
		struct vhd_probe probe;
		const char *chain[2] = { path, ppath };

		if (line[0] == '#' || sscanf(line, "dfvfs/%255[^.\t].%255[^\t]\t%llu\t%64s", stem,
					     file, &size, sha) != 4)
			continue;
		/* file = "vhd.xz" / "vhdx.xz": drop ".xz" */
		file[strlen(file) - 3] = '\0';
		snprintf(name, sizeof(name), "%s.%s", stem, file);
		unxz(fx, name);
		snprintf(path, sizeof(path), "%s/%s", fx->dir, name);
		assert_int_equal(vhd_probe_file(path, &probe, err, sizeof(err)), 0);
		assert_int_equal(probe.virtual_size, size);
		if (probe.type == VHD_TYPE_DIFFERENCING) {
			unxz(fx, probe.parent_name);
			snprintf(ppath, sizeof(ppath), "%s/%s", fx->dir, probe.parent_name);
			assert_sha(fx, chain, 2, sha);
		} else {
			assert_sha(fx, chain, 1, sha);
		}
		checked++;
	}
	fclose(f);
	assert_int_equal(checked, 9);
}

/* The differencing fixtures name their parent and match its identifier. */
static void test_dfvfs_probe_differencing(void **state)
{
	struct fixture *fx = *state;
	struct vhd_probe child, parent;
	char path[4096], err[512];

	unxz(fx, "ntfs-differential.vhdx");
	unxz(fx, "ntfs-parent.vhdx");
	snprintf(path, sizeof(path), "%s/ntfs-differential.vhdx", fx->dir);
	assert_int_equal(vhd_probe_file(path, &child, err, sizeof(err)), 0);
	assert_int_equal(child.format, VHD_FORMAT_VHDX);
	assert_int_equal(child.type, VHD_TYPE_DIFFERENCING);
	assert_string_equal(child.parent_name, "ntfs-parent.vhdx");
	snprintf(path, sizeof(path), "%s/ntfs-parent.vhdx", fx->dir);
	assert_int_equal(vhd_probe_file(path, &parent, err, sizeof(err)), 0);
	assert_int_equal(parent.type, VHD_TYPE_FIXED);
	assert_memory_equal(child.parent_identifier, parent.identifier, 16);

	unxz(fx, "ntfs-differential.vhd");
	snprintf(path, sizeof(path), "%s/ntfs-differential.vhd", fx->dir);
	assert_int_equal(vhd_probe_file(path, &child, err, sizeof(err)), 0);
	assert_int_equal(child.format, VHD_FORMAT_VHD);
	assert_string_equal(child.parent_name, "ntfs-parent.vhd");
}

/* Random raw data converted by qemu-img reads back byte for byte. */
static void test_qemu_formats(void **state)
{
	static const struct {
		const char *name, *fmt, *opts;
		enum vhd_format format;
		enum vhd_type type;
	} cases[] = {
		{ "dyn.vhd", "vpc", "subformat=dynamic,force_size=on", VHD_FORMAT_VHD, VHD_TYPE_DYNAMIC },
		{ "fix.vhd", "vpc", "subformat=fixed,force_size=on", VHD_FORMAT_VHD, VHD_TYPE_FIXED },
		{ "dyn.vhdx", "vhdx", "subformat=dynamic", VHD_FORMAT_VHDX, VHD_TYPE_DYNAMIC },
		{ "fix.vhdx", "vhdx", "subformat=fixed", VHD_FORMAT_VHDX, VHD_TYPE_FIXED },
	};
	struct fixture *fx = *state;
	char raw[4096], path[4096], err[512];
	uint8_t *expect, *got;
	size_t len = 0;

	snprintf(raw, sizeof(raw), "%s/data.raw", fx->dir);
	/* 5 MiB + 3 sectors: a partial last block; holes of zeros in between */
	assert_int_equal(sh("head -c %d /dev/urandom > '%s' && truncate -s %d '%s' && "
			    "dd if=/dev/zero of='%s' bs=1M seek=2 count=1 conv=notrunc 2>/dev/null",
			    5 * MiB + 1536, raw, 5 * MiB + 1536, raw, raw),
			 0);
	expect = slurp(raw, &len);
	assert_non_null(expect);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *chain[1] = { path };
		struct vhd_probe probe;
		uint64_t size;

		snprintf(path, sizeof(path), "%s/%s", fx->dir, cases[i].name);
		assert_int_equal(sh("qemu-img convert -f raw -O %s -o %s '%s' '%s'", cases[i].fmt,
				    cases[i].opts, raw, path),
				 0);
		assert_int_equal(vhd_probe_file(path, &probe, err, sizeof(err)), 0);
		assert_int_equal(probe.format, cases[i].format);
		assert_int_equal(probe.type, cases[i].type);
		got = read_all(chain, 1, &size);
		assert_int_equal(size, len);
		assert_memory_equal(got, expect, len);
		free(got);
	}
	free(expect);
}

/*
 * Build base.vhd (qemu-img, @subformat) and with tests/mkvhd.py c1.vhd over
 * it and c2.vhd over c1.vhd; the expected merged disks go to c1.raw, c2.raw.
 */
static void make_bug_chain(const struct fixture *fx, const char *subformat)
{
	char out[256];

	assert_int_equal(sh("cd '%s' && head -c %d /dev/urandom > base.raw && "
			    "qemu-img convert -f raw -O vpc -o subformat=%s,force_size=on "
			    "base.raw base.vhd",
			    fx->dir, 6 * MiB + 4096, subformat),
			 0);
	assert_int_equal(sh_out(out, sizeof(out),
				"cd '%s' && python3 '%s/../mkvhd.py' diff base.vhd c1.vhd --seed 7 "
				"--raw-out c1.raw | sed -n 2p",
				fx->dir, testdata()),
			 0);
	/* the generator reports how many stale sectors libvhdi would serve */
	assert_true(atoi(strrchr(out, ' ') + 1) > 0);
	assert_int_equal(sh("cd '%s' && python3 '%s/../mkvhd.py' diff c1.vhd c2.vhd --seed 8 "
			    "--block-size 524288 --raw-out c2.raw >/dev/null",
			    fx->dir, testdata()),
			 0);
}

static void assert_chain_reads(const struct fixture *fx, const char *const *names, size_t n,
			       const char *raw_name)
{
	char paths[3][4096], raw[4096];
	const char *chain[3];
	uint8_t *expect, *got;
	uint64_t size;
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		snprintf(paths[i], sizeof(paths[i]), "%s/%s", fx->dir, names[i]);
		chain[i] = paths[i];
	}
	snprintf(raw, sizeof(raw), "%s/%s", fx->dir, raw_name);
	expect = slurp(raw, &len);
	assert_non_null(expect);
	got = read_all(chain, n, &size);
	assert_int_equal(size, len);
	assert_memory_equal(got, expect, len);
	free(got);
	free(expect);
}

/* The libvhdi bitmap bug is worked around, at one and two levels. */
static void test_bitmap_bug_dynamic_parent(void **state)
{
	static const char *const one[] = { "c1.vhd", "base.vhd" };
	static const char *const two[] = { "c2.vhd", "c1.vhd", "base.vhd" };
	struct fixture *fx = *state;
	char mine[128], theirs[128];

	make_bug_chain(fx, "dynamic");
	assert_chain_reads(fx, one, 2, "c1.raw");
	assert_chain_reads(fx, two, 3, "c2.raw");
	/* and libvhdi alone really gets these wrong (the proof the test is live) */
	assert_int_equal(sh_out(mine, sizeof(mine), "sha256sum < '%s/c2.raw'", fx->dir), 0);
	assert_int_equal(sh_out(theirs, sizeof(theirs),
				"python3 '%s/../mkvhd.py' libvhdi-sha256 '%s/c2.vhd'", testdata(),
				fx->dir),
			 0);
	assert_int_not_equal(strncmp(mine, theirs, 64), 0);
}

static void test_bitmap_bug_fixed_parent(void **state)
{
	static const char *const two[] = { "c2.vhd", "c1.vhd", "base.vhd" };
	struct fixture *fx = *state;

	make_bug_chain(fx, "fixed");
	assert_chain_reads(fx, two, 3, "c2.raw");
}

/* Open must fail with @expect_ret and a reason containing @needle. */
static void assert_open_fails(const char *const *paths, size_t n, int expect_ret,
			      const char *needle)
{
	struct vhd_image *img = NULL;
	char err[512] = "";
	int ret = vhd_image_open(paths, n, 2, &img, err, sizeof(err));

	if (ret != expect_ret || !strstr(err, needle))
		fail_msg("open %s: got %d \"%s\", expected %d \"%s\"", paths[0], ret, err,
			 expect_ret, needle);
	assert_null(img);
}

static void assert_probe_fails(const char *path, int expect_ret, const char *needle)
{
	struct vhd_probe probe;
	char err[512] = "";
	int ret = vhd_probe_file(path, &probe, err, sizeof(err));

	if (ret != expect_ret || !strstr(err, needle))
		fail_msg("probe %s: got %d \"%s\", expected %d \"%s\"", path, ret, err,
			 expect_ret, needle);
}

static void test_broken_files(void **state)
{
	struct fixture *fx = *state;
	char p[8][4096];
	const char *one[1], *two[2];

	make_bug_chain(fx, "dynamic");
	for (int i = 0; i < 8; i++)
		snprintf(p[i], sizeof(p[i]), "%s/f%d", fx->dir, i);

	/* missing parent: the chain stops at a differencing file */
	snprintf(p[0], sizeof(p[0]), "%s/c1.vhd", fx->dir);
	one[0] = p[0];
	assert_open_fails(one, 1, -ENOENT, "missing parent base.vhd");

	/* mismatched parent: another VHD of the same size */
	assert_int_equal(sh("cd '%s' && qemu-img convert -f raw -O vpc -o "
			    "subformat=dynamic,force_size=on base.raw other.vhd",
			    fx->dir),
			 0);
	snprintf(p[1], sizeof(p[1]), "%s/other.vhd", fx->dir);
	two[0] = p[0];
	two[1] = p[1];
	assert_open_fails(two, 2, -EIO, "parent identifier mismatch");

	/* a non-differencing file cannot have a parent */
	two[0] = p[1];
	two[1] = p[1];
	assert_open_fails(two, 2, -EINVAL, "not a differencing disk");

	/* empty, garbage, missing */
	assert_int_equal(sh("cd '%s' && : > empty.vhd && head -c 70000 /dev/urandom > junk.vhdx",
			    fx->dir),
			 0);
	snprintf(p[2], sizeof(p[2]), "%s/empty.vhd", fx->dir);
	snprintf(p[3], sizeof(p[3]), "%s/junk.vhdx", fx->dir);
	snprintf(p[4], sizeof(p[4]), "%s/absent.vhdx", fx->dir);
	assert_probe_fails(p[2], -EINVAL, "not a VHD/VHDX image");
	assert_probe_fails(p[3], -EINVAL, "not a VHD/VHDX image");
	assert_probe_fails(p[4], -ENOENT, "No such file");
	one[0] = p[3];
	assert_open_fails(one, 1, -EINVAL, "junk.vhdx: not a VHD/VHDX image");

	/* truncated: a dynamic VHD loses its footer, a differencing VHD its blocks */
	assert_int_equal(sh("cd '%s' && cp base.vhd tb.vhd && truncate -s 1000000 tb.vhd && "
			    "cp c1.vhd tc.vhd && python3 - tc.vhd <<'EOF'\n"
			    "import sys\n"
			    "d = open(sys.argv[1], 'rb').read()\n"
			    "open(sys.argv[1], 'wb').write(d[:len(d) // 2] + d[-512:])\n"
			    "EOF",
			    fx->dir),
			 0);
	snprintf(p[5], sizeof(p[5]), "%s/tb.vhd", fx->dir);
	snprintf(p[6], sizeof(p[6]), "%s/tc.vhd", fx->dir);
	assert_probe_fails(p[5], -EIO, "truncated");
	assert_probe_fails(p[6], -EIO, "its block table points past that");
	two[0] = p[6];
	two[1] = p[1];
	snprintf(p[1], sizeof(p[1]), "%s/base.vhd", fx->dir);
	assert_open_fails(two, 2, -EIO, "tc.vhd: truncated: the file ends at");

	/* a truncated VHDX: its data blocks are gone */
	assert_int_equal(sh("cd '%s' && qemu-img convert -f raw -O vhdx base.raw tx.vhdx && "
			    "truncate -s 4194304 tx.vhdx",
			    fx->dir),
			 0);
	snprintf(p[7], sizeof(p[7]), "%s/tx.vhdx", fx->dir);
	one[0] = p[7];
	assert_open_fails(one, 1, -EIO, "tx.vhdx");
}

/*
 * SPEC §2: a VHDX whose log was never replayed is read with the log applied
 * in memory (as qemu's repair of a copy reads), the file untouched; one
 * whose log cannot be replayed (LogGuid set, no valid entry) is refused,
 * never served stale.
 */
static void test_vhdx_dirty_log(void **state)
{
	struct fixture *fx = *state;
	char path[4096], raw[4096], sums[2][256];
	const char *one[1] = { path };
	uint8_t *buf, *want;
	uint64_t size;
	size_t len = 0;

	snprintf(path, sizeof(path), "%s/log.vhdx", fx->dir);
	snprintf(raw, sizeof(raw), "%s/q.raw", fx->dir);
	assert_int_equal(sh("cd '%s' && qemu-img create -q -f vhdx -o block_size=1M x.vhdx 8M && "
			    "qemu-io -f vhdx -c 'write -P 0x11 0 2M' -c 'write -P 0x22 5M 1M' "
			    "x.vhdx >/dev/null && python3 '%s/../mkvhd.py' vhdx-log x.vhdx log.vhdx "
			    "--case torn && cp log.vhdx q.vhdx && qemu-img check -q -r all q.vhdx && "
			    "qemu-img convert -f vhdx -O raw q.vhdx q.raw",
			    fx->dir, testdata()),
			 0);
	assert_int_equal(sh_out(sums[0], sizeof(sums[0]), "sha256sum '%s'", path), 0);
	buf = read_all(one, 1, &size);
	want = slurp(raw, &len);
	assert_non_null(want);
	assert_int_equal(len, size);
	assert_memory_equal(buf, want, len);
	assert_int_equal(sh_out(sums[1], sizeof(sums[1]), "sha256sum '%s'", path), 0);
	assert_string_equal(sums[0], sums[1]);
	free(buf);
	free(want);

	snprintf(path, sizeof(path), "%s/dirty.vhdx", fx->dir);
	assert_int_equal(sh("cd '%s' && head -c 1048576 /dev/urandom > d.raw && "
			    "qemu-img convert -f raw -O vhdx d.raw dirty.vhdx",
			    fx->dir),
			 0);
	buf = read_all(one, 1, &size); /* clean: fine */
	free(buf);
	assert_int_equal(sh("python3 '%s/../mkvhd.py' vhdx-dirty-log '%s'", testdata(), path), 0);
	assert_probe_fails(path, -EIO, "no valid sequence of log entries");
	assert_open_fails(one, 1, -EIO, "no valid sequence of log entries");
}

static void test_bounds_and_info(void **state)
{
	static const char *const two[] = { "c1.vhd", "base.vhd" };
	struct fixture *fx = *state;
	char paths[2][4096], err[512];
	const char *chain[2] = { paths[0], paths[1] };
	struct vhd_image_info info, st;
	struct vhd_image *img;
	uint8_t buf[1024];

	make_bug_chain(fx, "dynamic");
	for (int i = 0; i < 2; i++)
		snprintf(paths[i], sizeof(paths[i]), "%s/%s", fx->dir, two[i]);
	assert_int_equal(vhd_image_open(chain, 2, 1, &img, err, sizeof(err)), 0);
	vhd_image_get_info(img, &info);
	assert_int_equal(info.format, VHD_FORMAT_VHD);
	assert_int_equal(info.type, VHD_TYPE_DIFFERENCING);
	assert_int_equal(info.virtual_size, 6 * MiB + 4096);
	assert_int_equal(info.sector_size, 512);
	assert_true(info.allocated_bytes > 0);
	assert_int_equal(vhd_image_stat(img, &st), 0);
	assert_int_equal(st.allocated_bytes, info.allocated_bytes);
	assert_int_equal(st.mtime.tv_sec, info.mtime.tv_sec);
	assert_int_equal(vhd_image_read(img, buf, 0, info.virtual_size), 0);
	assert_int_equal(vhd_image_read(img, buf, 1, info.virtual_size), -EINVAL);
	assert_int_equal(vhd_image_read(img, buf, 512, info.virtual_size - 256), -EINVAL);
	assert_int_equal(vhd_image_read(img, buf, 2, UINT64_MAX), -EINVAL);
	assert_int_equal(vhd_image_read(img, buf, 256, info.virtual_size - 256), 0);
	{
		uint64_t pos, run;
		int fd, fds[2] = { -1, -1 };

		assert_int_equal(vhd_image_locate(img, info.virtual_size, 1, &fd, &pos, &run), -EINVAL);
		assert_int_equal(vhd_image_locate(img, 0, 0, &fd, &pos, &run), -EINVAL);
		assert_int_equal(vhd_image_locate(img, info.virtual_size - 256, 512, &fd, &pos, &run),
				 -EINVAL);
		/* a chain's runs lie in the child's file and in the parent's */
		for (uint64_t off = 0; off < info.virtual_size; off += 4096) {
			if (vhd_image_locate(img, off, 4096, &fd, &pos, &run) != 0)
				continue;
			if (fds[0] < 0 || fds[0] == fd)
				fds[0] = fd;
			else
				fds[1] = fd;
		}
		assert_true(fds[0] >= 0 && fds[1] >= 0);
	}
	vhd_image_close(img);
}

struct reader {
	struct vhd_image *img;
	const uint8_t *expect;
	uint64_t size;
	unsigned seed;
	int failures;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	uint8_t *buf = malloc(256 * 1024);

	for (int i = 0; buf && i < 300; i++) {
		size_t len = 1 + (size_t)rand_r(&r->seed) % (256 * 1024);
		uint64_t off;

		if (len > r->size)
			len = (size_t)r->size;
		off = ((uint64_t)rand_r(&r->seed) * 7919u) % (r->size - len + 1);
		if (vhd_image_read(r->img, buf, len, off) != 0 ||
		    memcmp(buf, r->expect + off, len) != 0)
			r->failures++;
	}
	free(buf);
	return NULL;
}

/* Eight threads, three handles, random offsets: every byte as expected. */
static void test_concurrent_reads(void **state)
{
	static const char *const names[] = { "c2.vhd", "c1.vhd", "base.vhd" };
	struct fixture *fx = *state;
	char paths[3][4096], raw[4096], err[512];
	const char *chain[3] = { paths[0], paths[1], paths[2] };
	struct reader readers[8];
	pthread_t threads[8];
	struct vhd_image *img;
	uint8_t *expect;
	size_t len = 0;

	make_bug_chain(fx, "dynamic");
	for (int i = 0; i < 3; i++)
		snprintf(paths[i], sizeof(paths[i]), "%s/%s", fx->dir, names[i]);
	snprintf(raw, sizeof(raw), "%s/c2.raw", fx->dir);
	expect = slurp(raw, &len);
	assert_non_null(expect);
	assert_int_equal(vhd_image_open(chain, 3, 3, &img, err, sizeof(err)), 0);
	for (int i = 0; i < 8; i++) {
		readers[i] = (struct reader){ img, expect, len, (unsigned)i * 2654435761u + 1, 0 };
		assert_int_equal(pthread_create(&threads[i], NULL, reader_main, &readers[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(threads[i], NULL);
		assert_int_equal(readers[i].failures, 0);
	}
	vhd_image_close(img);
	free(expect);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dfvfs_manifest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dfvfs_probe_differencing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_qemu_formats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bitmap_bug_dynamic_parent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bitmap_bug_fixed_parent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broken_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vhdx_dirty_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounds_and_info, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_reads, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
