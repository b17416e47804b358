// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ctl/partitions.c - partition tables through libblkid, over a sparse memfd
 * copy of the bytes a table lives in (contract in partitions.h).
 *
 * The probe:
 *   1. memfd of the disk's size (sparse: costs only what is written);
 *      copy the first and last RFS_PARTS_EDGE bytes (MBR; GPT header and
 *      entries at LBA 1.., the backup GPT at the end). All-zero runs are
 *      not written (they read as zeros anyway).
 *   2. libblkid lists the table (only "dos" and "gpt" probers enabled).
 *   3. For each extended partition, copy the EBR sectors its chain links
 *      (the link entry is found exactly as libblkid's dos.c follows it:
 *      first entry of extended type with a non-zero start, relative to the
 *      extended partition, strictly advancing, inside it), then list again.
 *      Only the link is read here; libblkid decides what the EBRs hold.
 *   4. rfs_parts_select() decides what is shown.
 */
#include "partitions.h"

#include <blkid/blkid.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define SECTOR 512u
#define MBR_ENTRIES 446u
#define MBR_TYPE_GPT 0xee

struct rfs_parts {
	uint64_t sig;
	size_t n;
	struct rfs_part part[];     /* the shown ones, by number */
};

/* --- the decision (pure) ----------------------------------------------------- */

void rfs_parts_select(const struct rfs_part *p, size_t n, uint64_t disk_size,
		      enum rfs_part_verdict *verdict, unsigned *other)
{
	for (size_t i = 0; i < n; i++) {
		other[i] = 0;
		if (p[i].container)
			verdict[i] = RFS_PART_CONTAINER;
		else if (p[i].size == 0)
			verdict[i] = RFS_PART_EMPTY;
		else if (p[i].start > disk_size || p[i].size > disk_size - p[i].start)
			verdict[i] = RFS_PART_PAST_END;
		else
			verdict[i] = RFS_PART_SHOWN;
	}
	/* Overlaps among the data partitions that fit (one past the end
	 * already is not shown; it does not take a good one with it). */
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < n; k++) {
			if (k == i || p[i].container || p[k].container || !p[i].size || !p[k].size)
				continue;
			if (verdict[k] == RFS_PART_PAST_END || verdict[i] == RFS_PART_PAST_END)
				continue;
			if (p[i].start < p[k].start + p[k].size && p[k].start < p[i].start + p[i].size) {
				verdict[i] = RFS_PART_OVERLAP;
				other[i] = p[k].number;
				break;
			}
		}
	}
}

/* --- the copy libblkid reads ------------------------------------------------ */

struct probe_ctx {
	rfs_parts_read_fn read;
	void *arg;
	uint64_t size;
	int fd;                     /* the memfd */
	unsigned char buf[RFS_PARTS_EDGE];
};

static bool all_zero(const unsigned char *b, size_t len)
{
	return len == 0 || (b[0] == 0 && memcmp(b, b + 1, len - 1) == 0);
}

/* Copy [off, off + len) of the disk into the memfd (len <= RFS_PARTS_EDGE);
 * the bytes stay in ctx->buf. */
static int copy_range(struct probe_ctx *c, uint64_t off, size_t len)
{
	int r;

	if (off >= c->size)
		return -EINVAL;
	if (len > c->size - off)
		len = c->size - off;
	r = c->read(c->arg, c->buf, len, off);
	if (r < 0)
		return r;
	if (!all_zero(c->buf, len))
		r = rfs_pwrite_full(c->fd, c->buf, len, off);
	return r < 0 ? r : 0;
}

static uint32_t le32_at(const unsigned char *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static bool is_extended_type(unsigned char t)
{
	return t == 0x05 || t == 0x0f || t == 0x85;
}

static bool mbr_magic(const unsigned char *s)
{
	return s[510] == 0x55 && s[511] == 0xaa;
}

/* Copy the EBR chain of the extended partition [@ex_start, @ex_start +
 * @ex_size) (sectors), following the links as libblkid does. */
static int copy_ebr_chain(struct probe_ctx *c, uint64_t ex_start, uint64_t ex_size)
{
	uint64_t cur = ex_start, ex_end = ex_start + ex_size;

	if (c->size < SECTOR)
		return 0;
	for (unsigned hop = 0; hop < RFS_PARTS_MAX_EBR && cur; hop++) {
		uint64_t next = 0, size = 0;
		int r;

		if (cur > (c->size - SECTOR) / SECTOR)
			return 0; /* the EBR is past the end: libblkid reads nothing there */
		r = copy_range(c, cur * SECTOR, SECTOR);
		if (r < 0)
			return r;
		if (!mbr_magic(c->buf))
			return 0;
		for (unsigned i = 0; i < 4; i++) {
			const unsigned char *e = c->buf + MBR_ENTRIES + 16 * i;

			size = le32_at(e + 12);
			if (size && is_extended_type(e[4]) && le32_at(e + 8)) {
				next = ex_start + le32_at(e + 8);
				break;
			}
		}
		if (!next || next + size > ex_end || next <= cur)
			return 0;
		cur = next;
	}
	return 0;
}

/* --- libblkid ---------------------------------------------------------------- */

/* What one libblkid pass listed (top-level table only: nested BSD/minix
 * labels inside a primary partition are not shown). */
struct listing {
	struct rfs_part *p;
	size_t n;
	bool table;                 /* libblkid found a table */
};

static int list_table(int fd, uint64_t size, struct listing *out)
{
	static char dos[] = "dos", gpt[] = "gpt";
	char *only[] = { dos, gpt, NULL };
	blkid_probe pr = blkid_new_probe();
	blkid_partlist ls;
	blkid_parttable top;
	int n, r = 0;

	memset(out, 0, sizeof(*out));
	if (!pr)
		return -ENOMEM;
	if (blkid_probe_set_device(pr, fd, 0, (blkid_loff_t)size) != 0 ||
	    blkid_probe_enable_superblocks(pr, 0) != 0 || blkid_probe_enable_partitions(pr, 1) != 0 ||
	    blkid_probe_filter_partitions_type(pr, BLKID_FLTR_ONLYIN, only) != 0) {
		r = -EIO;
		goto out;
	}
	ls = blkid_probe_get_partitions(pr);
	top = ls ? blkid_partlist_get_table(ls) : NULL;
	if (!top)
		goto out; /* no table */
	out->table = true;
	n = blkid_partlist_numof_partitions(ls);
	out->p = calloc(n > 0 ? (size_t)n : 1, sizeof(*out->p));
	if (!out->p) {
		r = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < n; i++) {
		blkid_partition par = blkid_partlist_get_partition(ls, i);
		struct rfs_part *p = &out->p[out->n];

		if (!par || blkid_partition_get_table(par) != top || blkid_partition_get_partno(par) <= 0)
			continue;
		p->number = (unsigned)blkid_partition_get_partno(par);
		p->start = (uint64_t)blkid_partition_get_start(par) * SECTOR;
		p->size = (uint64_t)blkid_partition_get_size(par) * SECTOR;
		p->container = blkid_partition_is_extended(par) != 0;
		out->n++;
	}
out:
	blkid_free_probe(pr);
	return r;
}

/* --- the result -------------------------------------------------------------- */

static uint64_t fnv(uint64_t h, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		h = (h ^ (v & 0xff)) * 0x100000001b3ull;
	return h;
}

static void log_refused(const char *name, const struct rfs_part *p, enum rfs_part_verdict v,
			unsigned other, uint64_t disk_size)
{
	if (v == RFS_PART_PAST_END)
		rfs_log(LOG_WARNING,
			"%s: partition %u not shown: it ends at byte %llu, past the disk's end (%llu bytes)",
			name, p->number, (unsigned long long)(p->start + p->size),
			(unsigned long long)disk_size);
	else if (v == RFS_PART_OVERLAP)
		rfs_log(LOG_WARNING, "%s: partition %u not shown: it overlaps partition %u", name,
			p->number, other);
}

/* Decide, sign and (when the table changed) log @l's partitions. */
static int make_result(const struct listing *l, bool gpt_rejected, uint64_t size, const char *name,
		       uint64_t prev_sig, struct rfs_parts **out)
{
	enum rfs_part_verdict *v = calloc(l->n ? l->n : 1, sizeof(*v));
	unsigned *other = calloc(l->n ? l->n : 1, sizeof(*other));
	struct rfs_parts *ps = calloc(1, sizeof(*ps) + (l->n ? l->n : 1) * sizeof(ps->part[0]));
	uint64_t h = 0xcbf29ce484222325ull;

	if (!v || !other || !ps) {
		free(v);
		free(other);
		free(ps);
		return -ENOMEM;
	}
	rfs_parts_select(l->p, l->n, size, v, other);
	h = fnv(h, gpt_rejected);
	for (size_t i = 0; i < l->n; i++) {
		h = fnv(fnv(fnv(fnv(h, l->p[i].number), l->p[i].start), l->p[i].size), v[i]);
		if (v[i] == RFS_PART_SHOWN)
			ps->part[ps->n++] = l->p[i];
	}
	ps->sig = h ? h : 1;
	if (ps->sig != prev_sig) {
		if (gpt_rejected)
			rfs_log(LOG_WARNING, "%s: a GPT protective MBR but no valid GPT (header or "
				"entries corrupt, or past the disk's end): no partition shown", name);
		for (size_t i = 0; i < l->n; i++)
			log_refused(name, &l->p[i], v[i], other[i], size);
	}
	/* by number: libblkid lists in table order, the tree wants no more */
	for (size_t i = 1; i < ps->n; i++)
		for (size_t k = i; k > 0 && ps->part[k - 1].number > ps->part[k].number; k--) {
			struct rfs_part t = ps->part[k];

			ps->part[k] = ps->part[k - 1];
			ps->part[k - 1] = t;
		}
	free(v);
	free(other);
	*out = ps;
	return 0;
}

/* Sector 0 as copied (in ctx->buf after the first copy_range) names a GPT
 * protective partition. */
static bool has_pmbr(const unsigned char *s0)
{
	if (!mbr_magic(s0))
		return false;
	for (unsigned i = 0; i < 4; i++)
		if (s0[MBR_ENTRIES + 16 * i + 4] == MBR_TYPE_GPT)
			return true;
	return false;
}

int rfs_parts_probe_with(rfs_parts_read_fn read, void *arg, uint64_t size, const char *name,
			 uint64_t prev_sig, struct rfs_parts **out)
{
	struct probe_ctx *c = malloc(sizeof(*c));
	struct listing l = { 0 };
	bool pmbr = false, chained = false;
	int r;

	if (!c)
		return -ENOMEM;
	c->read = read;
	c->arg = arg;
	c->size = size;
	c->fd = memfd_create("replicafs-partitions", MFD_CLOEXEC);
	if (c->fd < 0) {
		r = -errno;
		goto out;
	}
	if (ftruncate(c->fd, (off_t)size) < 0) {
		r = -errno;
		goto out;
	}
	r = size ? copy_range(c, 0, RFS_PARTS_EDGE) : 0;
	if (r == 0 && size >= SECTOR)
		pmbr = has_pmbr(c->buf);
	if (r == 0 && size > RFS_PARTS_EDGE)
		r = copy_range(c, size > 2 * RFS_PARTS_EDGE ? size - RFS_PARTS_EDGE : RFS_PARTS_EDGE,
			       RFS_PARTS_EDGE);
	if (r == 0)
		r = list_table(c->fd, size, &l);
	for (size_t i = 0; r == 0 && i < l.n; i++) {
		if (l.p[i].container && l.p[i].start % SECTOR == 0) {
			r = copy_ebr_chain(c, l.p[i].start / SECTOR, l.p[i].size / SECTOR);
			chained = true;
		}
	}
	if (r == 0 && chained) {
		free(l.p);
		r = list_table(c->fd, size, &l);
	}
	if (r == 0)
		r = make_result(&l, pmbr && !l.table, size, name, prev_sig, out);
	if (r < 0 && r != -ESTALE) /* a disk that left its VM: nothing to say */
		rfs_log(LOG_ERR, "%s: partition table cannot be read: %s", name, strerror(-r));
out:
	free(l.p);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
	return r;
}

static int disk_read(void *arg, void *buf, size_t len, uint64_t off)
{
	return rfs_disk_read(arg, buf, len, off);
}

int rfs_parts_probe(struct rfs_disk *d, const char *vm_name, uint64_t prev_sig, struct rfs_parts **out)
{
	char name[2 * NAME_MAX + 2];

	snprintf(name, sizeof(name), "%s/%s", vm_name, rfs_disk_name(d));
	return rfs_parts_probe_with(disk_read, d, rfs_disk_size(d), name, prev_sig, out);
}

size_t rfs_parts_count(const struct rfs_parts *ps)
{
	return ps->n;
}

const struct rfs_part *rfs_parts_at(const struct rfs_parts *ps, size_t i)
{
	return &ps->part[i];
}

uint64_t rfs_parts_sig(const struct rfs_parts *ps)
{
	return ps->sig;
}

void rfs_parts_free(struct rfs_parts *ps)
{
	free(ps);
}
