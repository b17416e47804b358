// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ctl/savedstate.c - the per-VM saved state file "vm.state" (see
 * savedstate.h for the format and the atomicity promise).
 *
 * The parser accepts exactly what rfs_saved_store() writes and nothing else:
 * fixed line order, single spaces, "\n" endings, decimal numbers without
 * sign or leading zeros, eight hex digits of CRC-32 (IEEE 802.3, as zlib),
 * and nothing after the crc line. Anything else is -EBADMSG, so a damaged
 * file is reported (state 8/32771 upstream) instead of half-believed.
 *
 * Callers serialise stores of one VM (its lock): the temp name is fixed.
 */
#include "savedstate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "result.h"
#include "util.h"

#define SAVED_NAME "vm.state"
#define SAVED_TMP_NAME "vm.state.tmp"
#define SAVED_MAGIC "replicafs-vm-state 1"
#define SAVED_MAX 256 /* the largest valid file is under 80 bytes */

/* CRC-32, reflected polynomial 0xEDB88320 (zlib's crc32()). Bitwise: the
 * file is tiny, a table is not worth it. */
static uint32_t crc32_ieee(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint32_t crc = 0xFFFFFFFFu;
	size_t i;
	int bit;

	for (i = 0; i < len; i++) {
		crc ^= p[i];
		for (bit = 0; bit < 8; bit++)
			crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
	}
	return ~crc;
}

static bool state_storable(int state)
{
	return state == RFS_STATE_REPLICATING || state == RFS_STATE_RECOVERED ||
	       state == RFS_STATE_COMMITTED;
}

/*
 * Take the next "\n"-terminated line of @buf[*pos..len) without its "\n".
 * False if there is no complete line left.
 */
static bool next_line(const char *buf, size_t len, size_t *pos, const char **line,
		      size_t *line_len)
{
	const char *nl;

	if (*pos >= len)
		return false;
	nl = memchr(buf + *pos, '\n', len - *pos);
	if (!nl)
		return false;
	*line = buf + *pos;
	*line_len = (size_t)(nl - *line);
	*pos += *line_len + 1;
	return true;
}

/* If @line starts with @key (e.g. "state "), point @rest past it. */
static bool line_has_key(const char *line, size_t line_len, const char *key, const char **rest,
			 size_t *rest_len)
{
	size_t klen = strlen(key);

	if (line_len < klen || memcmp(line, key, klen) != 0)
		return false;
	*rest = line + klen;
	*rest_len = line_len - klen;
	return true;
}

/* Strict decimal: 1 to 9 digits, no sign, no leading zero (but "0"). */
static bool parse_decimal(const char *s, size_t len, int *out)
{
	int v = 0;
	size_t i;

	if (len == 0 || len > 9 || (len > 1 && s[0] == '0'))
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/* Exactly 8 hex digits, either case. */
static bool parse_hex32(const char *s, size_t len, uint32_t *out)
{
	uint32_t v = 0;
	size_t i;

	if (len != 8)
		return false;
	for (i = 0; i < len; i++) {
		char c = s[i];
		uint32_t d;

		if (c >= '0' && c <= '9')
			d = (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (uint32_t)(c - 'A' + 10);
		else
			return false;
		v = (v << 4) | d;
	}
	*out = v;
	return true;
}

/* Parse the whole file content; 0 or -EBADMSG. */
static int saved_parse(const char *buf, size_t len, struct rfs_saved *out)
{
	struct rfs_saved s = { .state = RFS_STATE_REPLICATING, .has_status = false, .status = 0 };
	const char *line, *rest;
	size_t line_len, rest_len, pos = 0, crc_start;
	uint32_t crc;
	int v;

	if (!next_line(buf, len, &pos, &line, &line_len) || line_len != strlen(SAVED_MAGIC) ||
	    memcmp(line, SAVED_MAGIC, line_len) != 0)
		return -EBADMSG;

	if (!next_line(buf, len, &pos, &line, &line_len) ||
	    !line_has_key(line, line_len, "state ", &rest, &rest_len) ||
	    !parse_decimal(rest, rest_len, &v) || !state_storable(v))
		return -EBADMSG;
	s.state = (enum rfs_state)v;

	crc_start = pos;
	if (!next_line(buf, len, &pos, &line, &line_len))
		return -EBADMSG;
	if (line_has_key(line, line_len, "status ", &rest, &rest_len)) {
		if (!parse_decimal(rest, rest_len, &v) || !rfs_result_valid(v))
			return -EBADMSG;
		s.has_status = true;
		s.status = v;
		crc_start = pos;
		if (!next_line(buf, len, &pos, &line, &line_len))
			return -EBADMSG;
	}

	if (!line_has_key(line, line_len, "crc ", &rest, &rest_len) ||
	    !parse_hex32(rest, rest_len, &crc) || pos != len)
		return -EBADMSG;
	if (crc != crc32_ieee(buf, crc_start))
		return -EBADMSG;

	*out = s;
	return 0;
}

int rfs_saved_load(int dirfd, struct rfs_saved *out)
{
	char buf[SAVED_MAX + 1];
	size_t len = 0;
	int fd, ret;

	fd = openat(dirfd, SAVED_NAME, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;

	/* Read one byte past the limit to tell "too long" from "just fits". */
	while (len < sizeof(buf)) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto out_close;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	ret = len > SAVED_MAX ? -EBADMSG : saved_parse(buf, len, out);

out_close:
	close(fd);
	return ret;
}

/*
 * Order: write the temp file, fsync it, close it (an error on close is an
 * error), rename it over vm.state, fsync the folder. Until the rename the
 * old file is untouched, and every failure before it removes the temp file.
 * If only the final folder fsync fails, the new file is already in place but
 * may not survive a crash; the error is still returned so that the caller
 * does not promise durability it does not have.
 */
int rfs_saved_store(int dirfd, const struct rfs_saved *s)
{
	char buf[SAVED_MAX];
	int len, n, fd, ret;

	if (!s || !state_storable((int)s->state) || (s->has_status && !rfs_result_valid(s->status)))
		return -EINVAL;

	if (s->has_status)
		len = snprintf(buf, sizeof(buf), SAVED_MAGIC "\nstate %d\nstatus %d\n",
			       (int)s->state, s->status);
	else
		len = snprintf(buf, sizeof(buf), SAVED_MAGIC "\nstate %d\n", (int)s->state);
	n = snprintf(buf + len, sizeof(buf) - (size_t)len, "crc %08x\n",
		     (unsigned int)crc32_ieee(buf, (size_t)len));
	len += n;

	fd = openat(dirfd, SAVED_TMP_NAME, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY,
		    0600);
	if (fd < 0)
		return -errno;
	ret = rfs_pwrite_full(fd, buf, (size_t)len, 0);
	if (ret == 0 && fsync(fd) < 0)
		ret = -errno;
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	if (ret)
		goto out_unlink_tmp;

	if (renameat(dirfd, SAVED_TMP_NAME, dirfd, SAVED_NAME) < 0) {
		ret = -errno;
		goto out_unlink_tmp;
	}
	return rfs_sync_dir(dirfd);

out_unlink_tmp:
	unlinkat(dirfd, SAVED_TMP_NAME, 0);
	return ret;
}
