// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vhd/vhdxlog.c - a VHDX log replayed in memory; see vhdxlog.h for the rules
 * (MS-VHDX 2.3) and why (a libvhdi workaround). On-disk fields are
 * little-endian.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "vhdxlog.h"

#define SECTOR VHDX_LOG_SECTOR
#define ENTRY_HEADER_SIZE 64u
#define DESCRIPTOR_SIZE 32u
#define DATA_BYTES 4084u /* of a data sector: the rest is in the descriptor */

/* One replayed range of the file: data, or zeros. */
struct rext {
	uint64_t off;        /* file offset of its first byte */
	uint64_t len;        /* bytes, > 0 */
	const uint8_t *data; /* len bytes inside vhdx_replay.arena, NULL = zeros */
};

struct vhdx_replay {
	uint64_t file_size;  /* bytes in the real file */
	uint64_t size;       /* bytes of the replayed file, >= file_size */
	struct rext *ext;    /* [n], sorted by off, never overlapping */
	size_t n, cap;       /* ranges kept, room for */
	uint8_t *arena;      /* [arena_cap * SECTOR]: the replayed data sectors */
	size_t arena_used;   /* sectors used of arena */
	size_t arena_cap;    /* sectors of arena */
	unsigned entries;    /* entries applied */
	uint64_t first_seq;  /* sequence number of the first entry applied */
	uint64_t last_seq;   /* ... and of the last (the head) */
};

/* A valid entry, as found in the log. */
struct entry {
	uint64_t pos;     /* its offset in the log */
	uint64_t len;     /* EntryLength */
	uint64_t tail;    /* Tail: log offset of the sequence's first entry */
	uint64_t seq;     /* SequenceNumber */
	uint64_t flushed; /* FlushedFileOffset */
	uint64_t last;    /* LastFileOffset */
	uint32_t count;   /* DescriptorCount */
};

/* The log while it is searched: twice over, so an entry that wraps round
 * its end is contiguous in buf. */
struct scan {
	uint8_t *buf;       /* [2 * len]: the log, then the log again */
	uint64_t len;       /* bytes of the log */
	const uint8_t *guid; /* the header's LogGuid */
	struct entry *cur;  /* [len / SECTOR]: the sequence being followed */
	struct entry *best; /* [len / SECTOR]: the active sequence so far */
	size_t ncur, nbest; /* entries in each */
};

static uint64_t round_up(uint64_t v, uint64_t to)
{
	return (v + to - 1) / to * to;
}

/* Bytes of an entry before its data sectors: header and descriptors. */
static uint64_t descriptor_bytes(uint32_t count)
{
	return round_up(ENTRY_HEADER_SIZE + (uint64_t)DESCRIPTOR_SIZE * count, SECTOR);
}

/* The CRC-32C of the @len-byte entry at @p, its checksum field zeroed
 * (the field is restored). */
static uint32_t entry_crc(uint8_t *p, uint64_t len)
{
	uint8_t saved[4];
	uint32_t crc;

	memcpy(saved, p + 4, 4);
	memset(p + 4, 0, 4);
	crc = rfs_crc32c(p, len);
	memcpy(p + 4, saved, 4);
	return crc;
}

/* Descriptor @d of entry @e (at @p) and its data sector are well formed;
 * *data_at moves past the data sector a "desc" consumes. */
static bool descriptor_ok(const uint8_t *p, const struct entry *e, const uint8_t *d,
			  uint64_t *data_at)
{
	const uint8_t *ds;

	if (rfs_le64(d + 24) != e->seq || rfs_le64(d + 16) % SECTOR)
		return false;
	if (!memcmp(d, "zero", 4))
		return rfs_le64(d + 8) % SECTOR == 0;
	if (memcmp(d, "desc", 4) || *data_at + SECTOR > e->len)
		return false;
	ds = p + *data_at;
	*data_at += SECTOR;
	return !memcmp(ds, "data", 4) && rfs_le32(ds + 4) == (uint32_t)(e->seq >> 32) &&
	       rfs_le32(ds + 4092) == (uint32_t)e->seq;
}

/* Is there a valid entry at log offset @pos? Fills @e if so. */
static bool entry_at(struct scan *s, uint64_t pos, struct entry *e)
{
	uint8_t *p = s->buf + pos;
	uint64_t data_at;

	if (memcmp(p, "loge", 4) || memcmp(p + 32, s->guid, 16))
		return false;
	e->pos = pos;
	e->len = rfs_le32(p + 8);
	e->tail = rfs_le32(p + 12);
	e->seq = rfs_le64(p + 16);
	e->count = rfs_le32(p + 24);
	e->flushed = rfs_le64(p + 48);
	e->last = rfs_le64(p + 56);
	if (!e->len || e->len % SECTOR || e->len > s->len || e->tail % SECTOR ||
	    e->tail >= s->len || !e->seq)
		return false;
	data_at = descriptor_bytes(e->count);
	if (data_at > e->len || entry_crc(p, e->len) != rfs_le32(p + 4))
		return false;
	for (uint32_t i = 0; i < e->count; i++)
		if (!descriptor_ok(p, e, p + ENTRY_HEADER_SIZE + (uint64_t)DESCRIPTOR_SIZE * i,
				   &data_at))
			return false;
	return true;
}

/* Follow valid entries from log offset @pos into s->cur, each the next one
 * in the log and in sequence, never more than the log holds. */
static void follow(struct scan *s, uint64_t pos)
{
	uint64_t used = 0;
	struct entry e;

	s->ncur = 0;
	while (entry_at(s, pos, &e) && used + e.len <= s->len &&
	       (!s->ncur || e.seq == s->cur[s->ncur - 1].seq + 1)) {
		s->cur[s->ncur++] = e;
		used += e.len;
		pos = (pos + e.len) % s->len;
	}
}

/* Index in s->cur of the entry at log offset @tail, or -1. */
static long find_tail(const struct scan *s, uint64_t tail)
{
	for (size_t i = 0; i < s->ncur; i++)
		if (s->cur[i].pos == tail)
			return (long)i;
	return -1;
}

/* The active sequence (MS-VHDX 2.3.3): s->best[0..nbest), tail first. */
static void find_active(struct scan *s)
{
	uint64_t at = 0, old;

	s->nbest = 0;
	do {
		const struct entry *head;
		long t;

		old = at;
		follow(s, at);
		if (!s->ncur) {
			at = (at + SECTOR) % s->len;
			continue;
		}
		head = &s->cur[s->ncur - 1];
		t = find_tail(s, head->tail);
		if (t >= 0 && (!s->nbest || head->seq > s->best[s->nbest - 1].seq)) {
			s->nbest = s->ncur - (size_t)t;
			memcpy(s->best, s->cur + t, s->nbest * sizeof(*s->best));
		}
		at = (head->pos + SECTOR) % s->len;
	} while (at > old);
}

/* ---- the overlay ------------------------------------------------------ */

/* Room for @more ranges. Returns 0 or -ENOMEM. */
static int ext_room(struct vhdx_replay *r, size_t more)
{
	size_t cap = r->cap ? r->cap : 16;
	struct rext *p;

	while (cap < r->n + more)
		cap *= 2;
	if (cap == r->cap)
		return 0;
	p = realloc(r->ext, cap * sizeof(*p));
	if (!p)
		return -ENOMEM;
	r->ext = p;
	r->cap = cap;
	return 0;
}

/* Index of the first range that ends after @off. */
static size_t ext_first(const struct vhdx_replay *r, uint64_t off)
{
	size_t lo = 0, hi = r->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->ext[mid].off + r->ext[mid].len <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Replace what the ranges say about [off, off + len) with @data (NULL:
 * zeros), keeping the parts of older ranges on either side. */
static int ext_put(struct vhdx_replay *r, uint64_t off, uint64_t len, const uint8_t *data)
{
	uint64_t end = off + len;
	struct rext left = { 0 }, right = { 0 }, mine = { off, len, data };
	size_t i, j, k = 0, n;
	struct rext add[3];

	if (ext_room(r, 3))
		return -ENOMEM;
	i = ext_first(r, off);
	for (j = i; j < r->n && r->ext[j].off < end; j++)
		;
	if (j > i && r->ext[i].off < off) {
		left = r->ext[i];
		left.len = off - left.off;
		add[k++] = left;
	}
	add[k++] = mine;
	if (j > i && r->ext[j - 1].off + r->ext[j - 1].len > end) {
		right = r->ext[j - 1];
		right.len = right.off + right.len - end;
		if (right.data)
			right.data += end - right.off;
		right.off = end;
		add[k++] = right;
	}
	n = r->n - j;
	memmove(r->ext + i + k, r->ext + j, n * sizeof(*r->ext));
	memcpy(r->ext + i, add, k * sizeof(*add));
	r->n = i + k + n;
	return 0;
}

/* Apply descriptor @d of entry @e (its data sector at *data). */
static int apply_descriptor(struct vhdx_replay *r, const uint8_t *p, const struct entry *e,
			    const uint8_t *d, uint64_t *data_at, char *err, size_t errlen)
{
	uint64_t off = rfs_le64(d + 16), len = SECTOR, limit;
	uint8_t *sec = NULL;

	if (!memcmp(d, "zero", 4)) {
		len = rfs_le64(d + 8);
	} else {
		sec = r->arena + r->arena_used++ * SECTOR;
		memcpy(sec, d + 8, 8);
		memcpy(sec + 8, p + *data_at + 8, DATA_BYTES);
		memcpy(sec + 8 + DATA_BYTES, d + 4, 4);
		*data_at += SECTOR;
	}
	limit = e->last > r->file_size ? e->last : r->file_size;
	if (off > limit || len > limit - off) {
		snprintf(err, errlen, "VHDX log entry %llu writes past the end of the file "
			 "(file offset %llu); refused", (unsigned long long)e->seq,
			 (unsigned long long)off);
		return -EIO;
	}
	if (!len)
		return 0;
	if (ext_put(r, off, len, sec)) {
		snprintf(err, errlen, "out of memory replaying the VHDX log");
		return -ENOMEM;
	}
	return 0;
}

/* Data sectors of the entries of the active sequence. */
static size_t data_sectors(const struct scan *s)
{
	size_t n = 0;

	for (size_t k = 0; k < s->nbest; k++) {
		const uint8_t *p = s->buf + s->best[k].pos;

		for (uint32_t i = 0; i < s->best[k].count; i++)
			n += !memcmp(p + ENTRY_HEADER_SIZE + (uint64_t)DESCRIPTOR_SIZE * i, "desc", 4);
	}
	return n;
}

/* Apply the active sequence, tail to head. */
static int apply(struct vhdx_replay *r, const struct scan *s, char *err, size_t errlen)
{
	const struct entry *head = &s->best[s->nbest - 1];
	int ret;

	if (head->flushed > r->file_size) {
		snprintf(err, errlen, "VHDX log says the file was flushed at %llu bytes, it has %llu "
			 "(truncated?); refused", (unsigned long long)head->flushed,
			 (unsigned long long)r->file_size);
		return -EIO;
	}
	r->arena_cap = data_sectors(s);
	r->arena = malloc(r->arena_cap ? r->arena_cap * SECTOR : 1);
	if (!r->arena) {
		snprintf(err, errlen, "out of memory replaying the VHDX log");
		return -ENOMEM;
	}
	r->size = r->file_size;
	for (size_t k = 0; k < s->nbest; k++) {
		const struct entry *e = &s->best[k];
		const uint8_t *p = s->buf + e->pos;
		uint64_t data_at = descriptor_bytes(e->count);

		for (uint32_t i = 0; i < e->count; i++) {
			ret = apply_descriptor(r, p, e, p + ENTRY_HEADER_SIZE +
					       (uint64_t)DESCRIPTOR_SIZE * i, &data_at, err, errlen);
			if (ret)
				return ret;
		}
		if (e->last > r->size)
			r->size = e->last;
	}
	if (r->n && r->ext[r->n - 1].off + r->ext[r->n - 1].len > r->size)
		r->size = r->ext[r->n - 1].off + r->ext[r->n - 1].len;
	r->entries = (unsigned)s->nbest;
	r->first_seq = s->best[0].seq;
	r->last_seq = head->seq;
	return 0;
}

static void scan_free(struct scan *s)
{
	free(s->buf);
	free(s->cur);
	free(s->best);
}

int vhdx_replay_build(const uint8_t *log, size_t log_len, const uint8_t guid[16],
		      uint64_t file_size, struct vhdx_replay **out, char *err, size_t errlen)
{
	struct scan s = { .len = log_len, .guid = guid };
	size_t slots = log_len / SECTOR;
	struct vhdx_replay *r;
	int ret;

	if (!log_len || log_len % SECTOR || log_len > VHDX_LOG_MAX) {
		snprintf(err, errlen, "VHDX log of %zu bytes cannot be replayed", log_len);
		return -EINVAL;
	}
	r = calloc(1, sizeof(*r));
	s.buf = malloc(2 * log_len);
	s.cur = calloc(slots, sizeof(*s.cur));
	s.best = calloc(slots, sizeof(*s.best));
	if (!r || !s.buf || !s.cur || !s.best) {
		snprintf(err, errlen, "out of memory replaying the VHDX log");
		ret = -ENOMEM;
		goto out_free;
	}
	memcpy(s.buf, log, log_len);
	memcpy(s.buf + log_len, log, log_len);
	r->file_size = file_size;
	find_active(&s);
	if (!s.nbest) {
		snprintf(err, errlen, "VHDX log cannot be replayed: no valid sequence of log "
			 "entries (corrupt log; its host stopped uncleanly)");
		ret = -EIO;
		goto out_free;
	}
	ret = apply(r, &s, err, errlen);
	if (ret)
		goto out_free;
	scan_free(&s);
	*out = r;
	return 0;

out_free:
	scan_free(&s);
	vhdx_replay_free(r);
	return ret;
}

void vhdx_replay_free(struct vhdx_replay *r)
{
	if (!r)
		return;
	free(r->ext);
	free(r->arena);
	free(r);
}

uint64_t vhdx_replay_size(const struct vhdx_replay *r)
{
	return r->size;
}

unsigned vhdx_replay_entries(const struct vhdx_replay *r, uint64_t *first_seq,
			     uint64_t *last_seq)
{
	*first_seq = r->first_seq;
	*last_seq = r->last_seq;
	return r->entries;
}

void vhdx_replay_lookup(const struct vhdx_replay *r, uint64_t off, uint64_t len,
			struct vhdx_replay_run *run)
{
	size_t i = ext_first(r, off);

	run->data = NULL;
	run->len = len;
	if (i < r->n && r->ext[i].off <= off) {
		const struct rext *x = &r->ext[i];

		if (run->len > x->off + x->len - off)
			run->len = x->off + x->len - off;
		run->kind = x->data ? VHDX_REPLAY_MEMORY : VHDX_REPLAY_ZERO;
		if (x->data)
			run->data = x->data + (off - x->off);
		return;
	}
	if (i < r->n && run->len > r->ext[i].off - off)
		run->len = r->ext[i].off - off;
	if (off >= r->file_size) {
		run->kind = VHDX_REPLAY_ZERO;
		return;
	}
	run->kind = VHDX_REPLAY_FILE;
	if (run->len > r->file_size - off)
		run->len = r->file_size - off;
}

int vhdx_replay_pread(const struct vhdx_replay *r, int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	if (off > r->size || len > r->size - off)
		return -EIO;
	while (len) {
		struct vhdx_replay_run run;
		int ret;

		vhdx_replay_lookup(r, off, len, &run);
		if (run.kind == VHDX_REPLAY_FILE) {
			ret = rfs_pread_full(fd, p, run.len, off);
			if (ret)
				return ret;
		} else if (run.kind == VHDX_REPLAY_MEMORY) {
			memcpy(p, run.data, run.len);
		} else {
			memset(p, 0, run.len);
		}
		p += run.len;
		off += run.len;
		len -= run.len;
	}
	return 0;
}
