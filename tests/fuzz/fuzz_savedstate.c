// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/fuzz/fuzz_savedstate.c - libFuzzer target for rfs_saved_load(), the
 * parser of vm.state (ctl/savedstate.h), which must refuse anything its
 * writer would not write.
 *
 * Input: one mode byte, then the file. Mode bit 0 set: the rest is a body
 * and the harness appends its correct crc line, so that the fuzzer gets
 * past the CRC and tests the meaning of what it wrote; clear: the rest is
 * the file as is. The file is written to vm.state in a scratch folder
 * (/dev/shm when there is one, removed at exit) and loaded. Checks:
 *   - the result is 0, -EBADMSG or -ENOMEM; a failed load owns nothing;
 *   - what loads keeps the header's promises: state 3/5/6, version 1 or 2,
 *     no tips in state 3 nor in format 1, at most RFS_SAVED_MAX_TIPS tips,
 *     strictly sorted by disk, names of 1..NAME_MAX bytes without "/";
 *   - canonical: a format-2 file that loads is stored back byte for byte;
 *     a format-1 file is exactly what the previous release's writer wrote.
 *
 * Build: configure with CC=clang -DRFS_FUZZ=ON (scripts/fuzz.sh).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "savedstate.h"

static int dirfd_scratch = -1;

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

static char scratch_path[64];

/* At exit: the scratch folder goes (a crash leaves it for inspection). */
static void scratch_remove(void)
{
	unlinkat(dirfd_scratch, "vm.state", 0);
	unlinkat(dirfd_scratch, "vm.state.tmp", 0);
	close(dirfd_scratch);
	rmdir(scratch_path);
}

static int scratch(void)
{
	char *path = scratch_path;

	if (dirfd_scratch >= 0)
		return dirfd_scratch;
	snprintf(path, sizeof(scratch_path), "/dev/shm/fuzz-saved-XXXXXX");
	if (!mkdtemp(path)) {
		snprintf(path, sizeof(scratch_path), "/tmp/fuzz-saved-XXXXXX");
		if (!mkdtemp(path))
			abort();
	}
	dirfd_scratch = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd_scratch < 0)
		abort();
	atexit(scratch_remove);
	return dirfd_scratch;
}

static void put(int dirfd, const void *data, size_t len)
{
	int fd;

	unlinkat(dirfd, "vm.state", 0);
	fd = openat(dirfd, "vm.state", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len || close(fd) < 0)
		abort();
}

/* The whole of vm.state in a malloc'd buffer. */
static char *get(int dirfd, size_t *len)
{
	size_t cap = RFS_SAVED_MAX + 1;
	char *buf = malloc(cap);
	int fd = openat(dirfd, "vm.state", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (!buf || fd < 0)
		abort();
	*len = 0;
	while ((n = read(fd, buf + *len, cap - *len)) > 0)
		*len += (size_t)n;
	close(fd);
	return buf;
}

static void check_loaded(const struct rfs_saved *s)
{
	if (s->state != RFS_STATE_REPLICATING && s->state != RFS_STATE_RECOVERED &&
	    s->state != RFS_STATE_COMMITTED)
		abort();
	if (s->version != 1 && s->version != 2)
		abort();
	if (s->ntips && (s->state == RFS_STATE_REPLICATING || s->version == 1 || !s->tips))
		abort();
	if (s->ntips > RFS_SAVED_MAX_TIPS)
		abort();
	for (size_t i = 0; i < s->ntips; i++) {
		const struct rfs_saved_tip *t = &s->tips[i];
		size_t dl = strnlen(t->disk, sizeof(t->disk)), fl = strnlen(t->file, sizeof(t->file));

		if (dl == 0 || dl > NAME_MAX || fl == 0 || fl > NAME_MAX)
			abort();
		if (memchr(t->disk, '/', dl) || memchr(t->file, '/', fl))
			abort();
		if (i && strcmp(s->tips[i - 1].disk, t->disk) >= 0)
			abort();
		if (rfs_saved_find_tip(s, t->disk) != t)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int dirfd = scratch();
	struct rfs_saved s, copy;
	char *file, *again;
	size_t len, alen;
	int r;

	if (size < 1 || size > RFS_SAVED_MAX + 16)
		return 0;
	file = malloc(size + 16);
	if (!file)
		return 0;
	len = size - 1;
	memcpy(file, data + 1, len);
	if (data[0] & 1) {
		snprintf(file + len, 16, "crc %08x\n", (unsigned int)zcrc(file, len));
		len += 13;
	}
	put(dirfd, file, len);

	r = rfs_saved_load(dirfd, &s);
	if (r != 0 && r != -EBADMSG && r != -ENOMEM)
		abort();
	if (r != 0) {
		if (s.ntips || s.tips)
			abort();
		goto out;
	}
	check_loaded(&s);

	if (s.version == 1) {
		/* ee8302e's writer: the only format-1 files there are. */
		char v1[128];
		int n = s.has_status ? snprintf(v1, sizeof(v1),
						"replicafs-vm-state 1\nstate %d\nstatus %d\n",
						(int)s.state, s.status)
				     : snprintf(v1, sizeof(v1), "replicafs-vm-state 1\nstate %d\n",
						(int)s.state);

		n += snprintf(v1 + n, sizeof(v1) - (size_t)n, "crc %08x\n",
			      (unsigned int)zcrc(v1, (size_t)n));
		/* The old parser took uppercase CRC digits: compare without case. */
		if ((size_t)n != len || strncasecmp(v1, file, len) != 0)
			abort();
	} else {
		if (rfs_saved_store(dirfd, &s) != 0)
			abort();
		again = get(dirfd, &alen);
		if (alen != len || memcmp(again, file, len) != 0)
			abort();
		free(again);
	}

	/* A deep copy loads the same way and survives the original. */
	rfs_saved_init(&copy);
	if (rfs_saved_copy(&copy, &s) == 0) {
		rfs_saved_free(&s);
		check_loaded(&copy);
	}
	rfs_saved_free(&copy);
out:
	rfs_saved_free(&s);
	free(file);
	return 0;
}
