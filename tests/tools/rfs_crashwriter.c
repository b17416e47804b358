/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tests/tools/rfs_crashwriter.c - write to a failed-over .img from several
 * threads, journal what fsync acknowledged, kill the daemon at a chosen
 * point; later, verify that every acknowledged write reads back (SPEC §7).
 *
 *   rfs_crashwriter write  --img IMG --journal J --seed S [--threads N]
 *                          [--kill-pid PID --kill-after K] [--batches B]
 *   rfs_crashwriter verify --img IMG --journal J --seed S [--threads N]
 *                          --base BASE
 *
 * The writes. The disk is cut into N regions, one per thread, so no two
 * threads ever write the same byte (region boundaries are deliberately not
 * cluster-aligned: neighbouring threads share a cluster, which exercises
 * the overlay's read-modify-write of partly written clusters). Thread t
 * draws everything from its own generator seeded with (S, t): a batch of
 * 1-8 writes, then fsync or fdatasync, again and again. Write number g of
 * thread t (its generation, from 1) has a random offset and length (1 byte
 * to 256 KiB) inside the region, and its content is a pure function of
 * (S, t, g, disk offset), so the verifier can recompute every write from
 * the seed alone. Only after fsync returned 0 does the thread append
 * "t g\n" (g: its last write of the batch) to the journal, on an ordinary
 * file system, and fdatasync the journal: a journal record is a promise the
 * mount made. With --kill-pid, the thread whose record is the K-th kill -9s
 * the daemon right after writing it: the crash lands at a precise, random
 * point of the stream, with the other threads in the middle of a batch.
 * After the kill every thread stops at its first failing call.
 *
 * The verification, byte by byte of each region. Let A be thread t's last
 * journaled generation (0 if none) and let the next batch be generations
 * A+1..A+n (recomputed from the seed: the thread may have issued any prefix
 * of it, and any part of any of those writes may have reached the overlay,
 * since they were never made durable). For a byte, let a be the newest
 * generation <= A that wrote it. Acceptable values:
 *   - generation a's byte (or the base image's byte if a = 0): everything
 *     up to A was fsync'd, so it must be there unless overwritten by
 *   - the byte of any generation in A+1..A+n that covers it.
 * Nothing older than a is accepted: an fsync'd write must never be lost or
 * rolled back, and nothing else (zeros, another thread's data, stale
 * replica data) may appear. Contents differ between generations, so a lost
 * write shows as a run of wrong bytes (a chance match of one byte cannot
 * hide a lost block). Threads never overlap, so each region is checked
 * against its own thread's history only.
 *
 * Links nothing of replicafs: it tests the mount from outside.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAXT 64
#define MAXLEN (256u << 10)
#define MAXBATCH 8

static const char *img_path, *journal_path, *base_path;
static uint64_t seed, disk_size;
static unsigned nthreads = 4, batches = 100000;
static pid_t kill_pid;
static unsigned long kill_after;
static int img_fd, journal_fd;
static pthread_mutex_t journal_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long journaled;
static bool killed;

static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

struct rng { uint64_t s; };
static uint64_t rnd(struct rng *r) { return mix(r->s += 0x9e3779b97f4a7c15ull); }
static uint64_t rndn(struct rng *r, uint64_t n) { return rnd(r) % n; }

/* The byte generation @g of thread @t writes at disk offset @pos. */
static uint8_t pat(unsigned t, uint64_t g, uint64_t pos)
{
	uint64_t h = mix(seed * 0x2545f4914f6cdd1dull ^ ((uint64_t)t << 56) ^ (g << 24) ^ mix(pos >> 3));
	return (uint8_t)(h >> ((pos & 7) * 8));
}

static void region(unsigned t, uint64_t *b, uint64_t *e)
{
	uint64_t per = disk_size / nthreads;

	/* not cluster-aligned: neighbours share a cluster */
	*b = t ? per * t + 1000 + 37 * t : 0;
	*e = t + 1 < nthreads ? per * (t + 1) + 1000 + 37 * (t + 1) : disk_size;
}

/* The deterministic plan of thread t: batch sizes, write extents, sync kind.
 * write() and verify() both walk it with the same calls in the same order. */
struct plan {
	struct rng r;
	uint64_t b, e;
};
static void plan_init(struct plan *p, unsigned t)
{
	p->r.s = mix(seed ^ mix(t + 1));
	region(t, &p->b, &p->e);
}
static unsigned plan_batch(struct plan *p) { return 1 + (unsigned)rndn(&p->r, MAXBATCH); }
static void plan_write(struct plan *p, uint64_t *off, uint64_t *len)
{
	uint64_t span = p->e - p->b, l;

	switch (rndn(&p->r, 4)) {
	case 0: l = 1 + rndn(&p->r, 100); break;
	case 1: l = 4096 * (1 + rndn(&p->r, 8)); break;
	default: l = 1 + rndn(&p->r, MAXLEN); break;
	}
	if (l > span)
		l = span;
	*off = p->b + rndn(&p->r, span - l + 1);
	if (rndn(&p->r, 3) == 0) /* cluster-aligned start, the common case of real file systems */
		*off = (*off & ~4095ull) < p->b ? *off : (*off & ~4095ull);
	*len = l;
}
static bool plan_datasync(struct plan *p) { return rndn(&p->r, 2); }

struct worker {
	pthread_t th;
	unsigned t;
	uint64_t acked, issued;
	int err;         /* errno of the call that stopped it */
	const char *at;  /* which call */
};

static void *writer(void *arg)
{
	struct worker *w = arg;
	struct plan p;
	uint8_t *buf = malloc(MAXLEN);
	uint64_t g = 0, i;
	unsigned k, n;
	char rec[64];

	plan_init(&p, w->t);
	for (k = 0; k < batches && buf; k++) {
		n = plan_batch(&p);
		for (i = 0; i < n; i++) {
			uint64_t off, len, j, done = 0;
			plan_write(&p, &off, &len);
			g++;
			for (j = 0; j < len; j++)
				buf[j] = pat(w->t, g, off + j);
			w->issued = g;
			while (done < len) {
				ssize_t r = pwrite(img_fd, buf + done, len - done, off + done);
				if (r <= 0) {
					w->err = r ? errno : EIO, w->at = "pwrite";
					goto out;
				}
				done += r;
			}
		}
		if ((plan_datasync(&p) ? fdatasync(img_fd) : fsync(img_fd)) != 0) {
			w->err = errno, w->at = "fsync";
			goto out;
		}
		/* Acknowledged: journal it, durably, then maybe pull the plug. */
		w->acked = g;
		n = (unsigned)snprintf(rec, sizeof(rec), "%u %" PRIu64 "\n", w->t, g);
		pthread_mutex_lock(&journal_lock);
		if (write(journal_fd, rec, n) != (ssize_t)n || fdatasync(journal_fd) != 0) {
			perror("crashwriter: journal");
			exit(2);
		}
		journaled++;
		if (kill_pid && journaled == kill_after) {
			killed = true; /* before the kill: the others may fail at once */
			if (kill(kill_pid, SIGKILL) != 0) {
				perror("crashwriter: kill");
				exit(2);
			}
		}
		pthread_mutex_unlock(&journal_lock);
	}
out:
	free(buf);
	return NULL;
}

static int do_write(void)
{
	struct worker w[MAXT];
	unsigned t;
	uint64_t acked = 0;
	int rc = 0;

	img_fd = open(img_path, O_RDWR);
	if (img_fd < 0)
		return fprintf(stderr, "crashwriter: open %s: %s\n", img_path, strerror(errno)), 1;
	journal_fd = open(journal_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	if (journal_fd < 0)
		return fprintf(stderr, "crashwriter: open %s: %s\n", journal_path, strerror(errno)), 1;
	for (t = 0; t < nthreads; t++) {
		memset(&w[t], 0, sizeof(w[t]));
		w[t].t = t;
		if (pthread_create(&w[t].th, NULL, writer, &w[t]) != 0)
			return fprintf(stderr, "crashwriter: pthread_create failed\n"), 1;
	}
	for (t = 0; t < nthreads; t++)
		pthread_join(w[t].th, NULL);
	for (t = 0; t < nthreads; t++) {
		acked += w[t].acked;
		printf("crashwriter: thread %u: %" PRIu64 " writes acknowledged, %" PRIu64 " issued, stopped by %s%s%s\n",
		       t, w[t].acked, w[t].issued, w[t].at ? w[t].at : "the end of its batches", w[t].at ? ": " : "",
		       w[t].at ? strerror(w[t].err) : "");
		/* Before the kill nothing may fail; after it everything must. */
		if (w[t].at && !killed) {
			fprintf(stderr, "crashwriter: thread %u: %s failed before the kill: %s\n", t, w[t].at,
				strerror(w[t].err));
			rc = 1;
		}
	}
	close(img_fd);
	close(journal_fd);
	if (kill_pid && !killed) {
		fprintf(stderr, "crashwriter: only %lu records journaled, the kill (after %lu) never happened\n",
			journaled, kill_after);
		rc = 1;
	}
	printf("crashwriter: %lu batches journaled, %" PRIu64 " writes acknowledged%s\n", journaled, acked,
	       killed ? ", daemon killed" : "");
	return rc;
}

static int read_all(int fd, uint8_t *p, uint64_t len, uint64_t off, const char *what)
{
	uint64_t done = 0;

	while (done < len) {
		ssize_t r = pread(fd, p + done, len - done, off + done);
		if (r <= 0) {
			fprintf(stderr, "crashwriter: read %s at %" PRIu64 ": %s\n", what, off + done,
				r ? strerror(errno) : "unexpected end of file");
			return -1;
		}
		done += r;
	}
	return 0;
}

static int do_verify(void)
{
	uint64_t acked[MAXT] = {0}, total_acked = 0, checked = 0;
	unsigned t, u;
	uint64_t g;
	int bad_threads = 0;
	char line[128];
	FILE *j = fopen(journal_path, "r");
	int bf = open(base_path, O_RDONLY);

	img_fd = open(img_path, O_RDONLY);
	if (!j || bf < 0 || img_fd < 0)
		return fprintf(stderr, "crashwriter: open: %s\n", strerror(errno)), 1;
	while (fgets(line, sizeof(line), j)) {
		if (sscanf(line, "%u %" SCNu64, &u, &g) != 2 || u >= nthreads || g <= acked[u]) {
			fprintf(stderr, "crashwriter: bad journal record '%s'\n", line);
			return 1;
		}
		acked[u] = g;
	}
	fclose(j);

	for (t = 0; t < nthreads; t++) {
		struct plan p;
		uint64_t b, e, len, i, off, wl, gen = 0;
		uint64_t fly_off[MAXBATCH], fly_len[MAXBATCH];
		unsigned n, k, nfly = 0;
		uint32_t *last;
		uint8_t *got, *base;
		uint64_t nbad = 0, first_bad = 0;

		plan_init(&p, t);
		b = p.b, e = p.e, len = e - b;
		last = calloc(len, sizeof(*last));
		got = malloc(len);
		base = malloc(len);
		if (!last || !got || !base)
			return fprintf(stderr, "crashwriter: out of memory\n"), 1;
		/* Paint the acknowledged generations, then note the next batch. */
		while (gen < acked[t]) {
			n = plan_batch(&p);
			for (k = 0; k < n; k++) {
				plan_write(&p, &off, &wl);
				gen++;
				for (i = off - b; i < off - b + wl; i++)
					last[i] = (uint32_t)gen;
			}
			plan_datasync(&p);
		}
		if (gen != acked[t]) {
			fprintf(stderr, "crashwriter: thread %u: journal generation %" PRIu64 " is not a batch end\n", t,
				acked[t]);
			return 1;
		}
		nfly = plan_batch(&p);
		for (k = 0; k < nfly; k++)
			plan_write(&p, &fly_off[k], &fly_len[k]);
		if (read_all(img_fd, got, len, b, img_path) || read_all(bf, base, len, b, base_path))
			return 1;
		for (i = 0; i < len; i++) {
			uint64_t pos = b + i;
			uint8_t want = last[i] ? pat(t, last[i], pos) : base[i];
			if (got[i] == want)
				continue;
			for (k = 0; k < nfly; k++)
				if (pos >= fly_off[k] && pos < fly_off[k] + fly_len[k] && got[i] == pat(t, acked[t] + 1 + k, pos))
					break;
			if (k < nfly)
				continue;
			if (!nbad++)
				first_bad = i;
		}
		if (nbad) {
			i = first_bad;
			fprintf(stderr,
				"crashwriter: thread %u: %" PRIu64 " bytes wrong in region %" PRIu64 "..%" PRIu64
				"; first at offset %" PRIu64 " (cluster %" PRIu64 " +%" PRIu64 "): got 0x%02x, want 0x%02x"
				" (generation %u%s, last acknowledged %" PRIu64 ")\n",
				t, nbad, b, e, b + i, (b + i) / 4096, (b + i) % 4096, got[i],
				last[i] ? pat(t, last[i], b + i) : base[i], last[i], last[i] ? "" : " = base image",
				acked[t]);
			bad_threads++;
		}
		total_acked += acked[t];
		checked += len;
		free(last), free(got), free(base);
	}
	close(img_fd);
	close(bf);
	if (bad_threads) {
		fprintf(stderr, "crashwriter: VERIFY FAILED (seed %" PRIu64 ")\n", seed);
		return 1;
	}
	printf("crashwriter: verified %" PRIu64 " acknowledged writes, %" PRIu64 " bytes, seed %" PRIu64 "\n",
	       total_acked, checked, seed);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: rfs_crashwriter write --img IMG --journal J --seed S [--threads N]\n"
			"                         [--kill-pid PID --kill-after K] [--batches B]\n"
			"       rfs_crashwriter verify --img IMG --journal J --seed S [--threads N] --base BASE\n");
	exit(2);
}

int main(int argc, char **argv)
{
	bool verify;
	struct stat st;
	int i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "write"))
		verify = false;
	else if (!strcmp(argv[1], "verify"))
		verify = true;
	else
		usage();
	for (i = 2; i < argc; i += 2) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			usage();
		if (!strcmp(a, "--img")) img_path = v;
		else if (!strcmp(a, "--journal")) journal_path = v;
		else if (!strcmp(a, "--base")) base_path = v;
		else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--threads")) nthreads = (unsigned)strtoul(v, NULL, 0);
		else if (!strcmp(a, "--kill-pid")) kill_pid = (pid_t)strtol(v, NULL, 0);
		else if (!strcmp(a, "--kill-after")) kill_after = strtoul(v, NULL, 0);
		else if (!strcmp(a, "--batches")) batches = (unsigned)strtoul(v, NULL, 0);
		else usage();
	}
	if (!img_path || !journal_path || !nthreads || nthreads > MAXT || (verify && !base_path) ||
	    (kill_pid && !kill_after))
		usage();
	if (stat(img_path, &st) != 0)
		return fprintf(stderr, "crashwriter: %s: %s\n", img_path, strerror(errno)), 1;
	disk_size = (uint64_t)st.st_size;
	if (disk_size < (uint64_t)nthreads * 2 * MAXLEN)
		return fprintf(stderr, "crashwriter: %s is too small\n", img_path), 1;
	return verify ? do_verify() : do_write();
}
