// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * test_partitions.c - ctl/partitions.c without a mount: which partitions of
 * a table are shown (rfs_parts_select), and the probe through libblkid over
 * disks held in memory: MBR with an extended partition whose EBRs lie far
 * beyond the copied edges, GPT made by sfdisk, a GPT whose headers are
 * corrupt, partitions past the end and overlapping, with the log lines.
 * Only the bytes the probe asks for are read; the test counts them.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "partitions.h"

#define MiB (1024ull * 1024)

/* A disk in memory: only [0, len) is held, the rest reads as zeros. */
struct mem_disk {
	unsigned char *bytes;
	size_t len;
	uint64_t size;
	uint64_t read_bytes;   /* what the probe read */
};

static int mem_read(void *arg, void *buf, size_t len, uint64_t off)
{
	struct mem_disk *m = arg;

	if (off > m->size || len > m->size - off)
		return -EINVAL;
	m->read_bytes += len;
	memset(buf, 0, len);
	if (off < m->len)
		memcpy(buf, m->bytes + off, len < m->len - off ? len : m->len - off);
	return 0;
}

static void put_le32(unsigned char *b, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		b[i] = (unsigned char)(v >> (8 * i));
}

/* MBR entry @i of the sector at @s: type, start and size in sectors. */
static void mbr_entry(unsigned char *s, int i, unsigned char type, uint32_t start, uint32_t size)
{
	unsigned char *e = s + 446 + 16 * i;

	e[4] = type;
	put_le32(e + 8, start);
	put_le32(e + 12, size);
	s[510] = 0x55;
	s[511] = 0xaa;
}

static char logpath[] = "/tmp/test_partitions.log.XXXXXX";

static char *log_text(void)
{
	static char text[8192];
	FILE *f = fopen(logpath, "r");
	size_t n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;

	if (f)
		fclose(f);
	text[n] = 0;
	return text;
}

static void log_reset(void)
{
	rfs_log_close();
	assert_int_equal(truncate(logpath, 0), 0);
	assert_int_equal(rfs_log_open(logpath, false, LOG_DEBUG), 0);
}

static int setup(void **state)
{
	int fd = mkstemp(logpath);

	if (fd < 0)
		return -1;
	close(fd);
	return rfs_log_open(logpath, false, LOG_DEBUG);
}

static int teardown(void **state)
{
	rfs_log_close();
	unlink(logpath);
	return 0;
}

/* --- rfs_parts_select ----------------------------------------------------- */

static void test_select(void **state)
{
	const struct rfs_part p[] = {
		{ 1, 1 * MiB, 10 * MiB, false },   /* fine */
		{ 2, 20 * MiB, 60 * MiB, true },   /* extended container */
		{ 3, 90 * MiB, 20 * MiB, false },  /* past the end of 100 MiB */
		{ 5, 21 * MiB, 10 * MiB, false },  /* logical, inside the container */
		{ 6, 30 * MiB, 10 * MiB, false },  /* overlaps 5 by 1 MiB */
		{ 7, 50 * MiB, 0, false },         /* empty */
		{ 8, 89 * MiB, 1 * MiB, false },   /* touches 3, which is refused anyway */
	};
	enum rfs_part_verdict v[7];
	unsigned other[7];

	rfs_parts_select(p, 7, 100 * MiB, v, other);
	assert_int_equal(v[0], RFS_PART_SHOWN);
	assert_int_equal(v[1], RFS_PART_CONTAINER);
	assert_int_equal(v[2], RFS_PART_PAST_END);
	assert_int_equal(v[3], RFS_PART_OVERLAP);
	assert_int_equal(other[3], 6);
	assert_int_equal(v[4], RFS_PART_OVERLAP);
	assert_int_equal(other[4], 5);
	assert_int_equal(v[5], RFS_PART_EMPTY);
	assert_int_equal(v[6], RFS_PART_SHOWN);
}

static void test_select_exact_end(void **state)
{
	const struct rfs_part p[] = {
		{ 1, 1 * MiB, 99 * MiB, false },            /* ends exactly at the end */
		{ 2, 100 * MiB, 1, false },                 /* starts at the end */
		{ 3, UINT64_MAX - 10, 20, false },          /* wraps */
	};
	enum rfs_part_verdict v[3];
	unsigned other[3];

	rfs_parts_select(p, 3, 100 * MiB, v, other);
	assert_int_equal(v[0], RFS_PART_SHOWN);
	assert_int_equal(v[1], RFS_PART_PAST_END);
	assert_int_equal(v[2], RFS_PART_PAST_END);
}

/* --- the probe ------------------------------------------------------------------ */

static struct rfs_parts *probe(struct mem_disk *m, uint64_t prev_sig)
{
	struct rfs_parts *ps = NULL;

	assert_int_equal(rfs_parts_probe_with(mem_read, m, m->size, "vm/sys", prev_sig, &ps), 0);
	assert_non_null(ps);
	return ps;
}

static void assert_part(const struct rfs_parts *ps, size_t i, unsigned number, uint64_t start, uint64_t size)
{
	const struct rfs_part *p = rfs_parts_at(ps, i);

	assert_int_equal(p->number, number);
	assert_int_equal(p->start, start);
	assert_int_equal(p->size, size);
}

/*
 * A 64 GiB disk: primary 1 at 1 MiB (16 MiB); extended 2 at 1 GiB (40
 * GiB) chaining three logicals whose EBRs sit at 1 GiB, 11 GiB and 30 GiB
 * (far past the copied edges); 4 primary after the extended. Only sector 0
 * and the EBRs are held; the rest reads as zeros.
 */
static void make_mbr(struct mem_disk *m, unsigned char **ebr)
{
	const uint64_t S = 512, G = 1024 * MiB / S, M = MiB / S;
	uint64_t ebrs[3] = { 1 * G, 11 * G, 30 * G };
	/* the logical partition of each EBR: start (relative to its EBR), size */
	uint64_t lstart[3] = { M, 2 * M, 2048 }, lsize[3] = { 5 * G, 10 * G, 2 * G };

	m->size = 64 * 1024 * MiB;
	m->len = 512;
	m->bytes = calloc(1, m->len);
	assert_non_null(m->bytes);
	mbr_entry(m->bytes, 0, 0x83, (uint32_t)M, (uint32_t)(16 * M));
	mbr_entry(m->bytes, 1, 0x0f, (uint32_t)G, (uint32_t)(40 * G));
	mbr_entry(m->bytes, 3, 0x83, (uint32_t)(50 * G), (uint32_t)(4 * G));
	for (int i = 0; i < 3; i++) {
		ebr[i] = calloc(1, 512);
		assert_non_null(ebr[i]);
		mbr_entry(ebr[i], 0, 0x83, (uint32_t)lstart[i], (uint32_t)lsize[i]);
		if (i < 2) /* the link: relative to the extended partition */
			mbr_entry(ebr[i], 1, 0x05, (uint32_t)(ebrs[i + 1] - G), (uint32_t)(4 * G));
	}
	(void)ebrs;
}

/* The MBR disk's reader: sector 0, and the three EBRs at their places. */
struct mbr_disk {
	struct mem_disk m;
	unsigned char *ebr[3];
};

static int mbr_read(void *arg, void *buf, size_t len, uint64_t off)
{
	struct mbr_disk *d = arg;
	const uint64_t at[3] = { 1024 * MiB, 11 * 1024 * MiB, 30 * 1024 * MiB };
	int r = mem_read(&d->m, buf, len, off);

	for (int i = 0; r == 0 && i < 3; i++)
		if (at[i] >= off && at[i] + 512 <= off + len)
			memcpy((unsigned char *)buf + (at[i] - off), d->ebr[i], 512);
	return r;
}

static void test_mbr_extended(void **state)
{
	struct mbr_disk d = { 0 };
	struct rfs_parts *ps = NULL;
	const uint64_t G = 1024 * MiB;

	make_mbr(&d.m, d.ebr);
	log_reset();
	assert_int_equal(rfs_parts_probe_with(mbr_read, &d, d.m.size, "vm/sys", 0, &ps), 0);
	assert_int_equal(rfs_parts_count(ps), 5);
	assert_part(ps, 0, 1, 1 * MiB, 16 * MiB);
	assert_part(ps, 1, 4, 50 * G, 4 * G);
	assert_part(ps, 2, 5, 1 * G + 1 * MiB, 5 * G);
	assert_part(ps, 3, 6, 11 * G + 2 * MiB, 10 * G);
	assert_part(ps, 4, 7, 30 * G + 1 * MiB, 2 * G);
	/* two edges and three EBR sectors: nothing near the disk's size */
	assert_true(d.m.read_bytes <= 2 * RFS_PARTS_EDGE + 3 * 512);
	assert_string_equal(log_text(), "");
	rfs_parts_free(ps);
	for (int i = 0; i < 3; i++)
		free(d.ebr[i]);
	free(d.m.bytes);
}

static void test_no_table(void **state)
{
	struct mem_disk m = { .size = 8 * MiB };
	struct rfs_parts *ps;

	log_reset();
	ps = probe(&m, 0);
	assert_int_equal(rfs_parts_count(ps), 0);
	assert_string_equal(log_text(), "");
	rfs_parts_free(ps);
}

/* A table that lies: 3 ends past the end, 1 and 2 overlap; 4 is fine. Each
 * refused one is logged once, and not again for the same table. */
static void test_bad_mbr(void **state)
{
	struct mem_disk m = { .size = 64 * MiB, .len = 512 };
	struct rfs_parts *ps, *again;
	const char *text;

	m.bytes = calloc(1, 512);
	assert_non_null(m.bytes);
	mbr_entry(m.bytes, 0, 0x83, 2048, 20480);            /* 1 MiB .. 11 MiB */
	mbr_entry(m.bytes, 1, 0x83, 20480, 20480);           /* 10 MiB .. 20 MiB */
	mbr_entry(m.bytes, 2, 0x83, 40960, 131072);          /* 20 MiB .. 84 MiB */
	mbr_entry(m.bytes, 3, 0x07, 100000, 2048);
	log_reset();
	ps = probe(&m, 0);
	assert_int_equal(rfs_parts_count(ps), 1);
	assert_part(ps, 0, 4, 100000ull * 512, 1 * MiB);
	text = log_text();
	assert_non_null(strstr(text, "vm/sys: partition 1 not shown: it overlaps partition 2"));
	assert_non_null(strstr(text, "vm/sys: partition 2 not shown: it overlaps partition 1"));
	assert_non_null(strstr(text, "vm/sys: partition 3 not shown: it ends at byte 88080384, past the "
				     "disk's end (67108864 bytes)"));
	log_reset();
	again = probe(&m, rfs_parts_sig(ps));
	assert_int_equal(rfs_parts_sig(again), rfs_parts_sig(ps));
	assert_string_equal(log_text(), "");
	rfs_parts_free(again);
	rfs_parts_free(ps);
	free(m.bytes);
}

/* --- GPT, made by sfdisk into a file --------------------------------------------- */

static int file_read(void *arg, void *buf, size_t len, uint64_t off)
{
	FILE *f = arg;

	if (fseeko(f, (off_t)off, SEEK_SET) != 0 || fread(buf, 1, len, f) != len)
		return -EIO;
	return 0;
}

static struct rfs_parts *probe_file(const char *path, uint64_t size)
{
	FILE *f = fopen(path, "rb");
	struct rfs_parts *ps = NULL;

	assert_non_null(f);
	assert_int_equal(rfs_parts_probe_with(file_read, f, size, "vm/gpt", 0, &ps), 0);
	fclose(f);
	return ps;
}

static void make_gpt(const char *path)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd),
		 "truncate -s 64M %s && printf 'label: gpt\\nstart=2048, size=20480\\n"
		 "start=22528, size=40960\\nstart=100000, size=2048\\n' | sfdisk -q %s >/dev/null",
		 path, path);
	assert_int_equal(system(cmd), 0);
}

static void test_gpt(void **state)
{
	char path[] = "/tmp/test_partitions.gpt.XXXXXX";
	int fd = mkstemp(path);
	struct rfs_parts *ps;

	assert_true(fd >= 0);
	close(fd);
	make_gpt(path);
	log_reset();
	ps = probe_file(path, 64 * MiB);
	assert_int_equal(rfs_parts_count(ps), 3);
	assert_part(ps, 0, 1, 1 * MiB, 10 * MiB);
	assert_part(ps, 1, 2, 22528ull * 512, 20 * MiB);
	assert_part(ps, 2, 3, 100000ull * 512, 1 * MiB);
	assert_string_equal(log_text(), "");
	rfs_parts_free(ps);
	unlink(path);
}

/* Both GPT headers corrupt (a byte of each header's CRC-covered part): no
 * partition, one line saying why. */
static void test_gpt_corrupt(void **state)
{
	char path[] = "/tmp/test_partitions.gpt.XXXXXX";
	int fd = mkstemp(path);
	struct rfs_parts *ps;
	unsigned char b = 0x5a;

	assert_true(fd >= 0);
	close(fd);
	make_gpt(path);
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &b, 1, 512 + 40), 1);          /* primary: first usable LBA */
	assert_int_equal(pwrite(fd, &b, 1, 64 * MiB - 512 + 40), 1); /* backup */
	close(fd);
	log_reset();
	ps = probe_file(path, 64 * MiB);
	assert_int_equal(rfs_parts_count(ps), 0);
	assert_non_null(strstr(log_text(), "vm/gpt: a GPT protective MBR but no valid GPT"));
	rfs_parts_free(ps);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_select),
		cmocka_unit_test(test_select_exact_end),
		cmocka_unit_test(test_mbr_extended),
		cmocka_unit_test(test_no_table),
		cmocka_unit_test(test_bad_mbr),
		cmocka_unit_test(test_gpt),
		cmocka_unit_test(test_gpt_corrupt),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
