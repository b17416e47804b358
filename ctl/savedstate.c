// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ctl/savedstate.c - the per-VM saved state file "vm.state" (see
 * savedstate.h for the formats and the atomicity promise).
 *
 * The parser accepts exactly what rfs_saved_store() writes (format 2) and
 * what the previous release wrote (format 1, whose parser also took
 * uppercase CRC digits), and nothing else. Anything else is -EBADMSG, so a
 * damaged file is reported (state 8/32771 upstream) instead of
 * half-believed.
 */
#include "savedstate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "result.h"
#include "util.h"

#define SAVED_NAME "vm.state"
#define SAVED_TMP_NAME "vm.state.tmp"
#define SAVED_MAGIC_PREFIX "replicafs-vm-state "
#define SAVED_VERSION 2
#define SAVED_VERSION_STANDALONE 3 /* format 2 plus the line below */
#define SAVED_STANDALONE "standalone"

/* ---- the struct ---- */

void rfs_saved_init(struct rfs_saved *s)
{
	memset(s, 0, sizeof(*s));
	s->state = RFS_STATE_REPLICATING;
	s->version = SAVED_VERSION;
}

void rfs_saved_free(struct rfs_saved *s)
{
	free(s->tips);
	rfs_saved_init(s);
}

int rfs_saved_copy(struct rfs_saved *dst, const struct rfs_saved *src)
{
	struct rfs_saved_tip *tips = NULL;

	if (dst == src)
		return 0;
	rfs_saved_free(dst);
	if (src->ntips) {
		tips = malloc(src->ntips * sizeof(*tips));
		if (!tips)
			return -ENOMEM;
		memcpy(tips, src->tips, src->ntips * sizeof(*tips));
	}
	*dst = *src;
	dst->tips = tips;
	return 0;
}

/* 1 to NAME_MAX bytes, no "/", not "." or "..". */
static bool name_valid(const char *name)
{
	size_t len = strnlen(name, NAME_MAX + 1);

	return len >= 1 && len <= NAME_MAX && !memchr(name, '/', len) && strcmp(name, ".") != 0 &&
	       strcmp(name, "..") != 0;
}

/* Index of @disk in the sorted tips, or where it would go (*found false). */
static size_t tip_index(const struct rfs_saved *s, const char *disk, bool *found)
{
	size_t lo = 0, hi = s->ntips;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->tips[mid].disk, disk);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

int rfs_saved_set_tip(struct rfs_saved *s, const char *disk, const char *file,
		      const uint8_t id[16])
{
	struct rfs_saved_tip *tips;
	bool found;
	size_t i;

	if (!name_valid(disk) || !name_valid(file))
		return -EINVAL;
	i = tip_index(s, disk, &found);
	if (!found) {
		if (s->ntips >= RFS_SAVED_MAX_TIPS)
			return -EINVAL;
		tips = realloc(s->tips, (s->ntips + 1) * sizeof(*tips));
		if (!tips)
			return -ENOMEM;
		s->tips = tips;
		memmove(&tips[i + 1], &tips[i], (s->ntips - i) * sizeof(*tips));
		s->ntips++;
		snprintf(tips[i].disk, sizeof(tips[i].disk), "%s", disk);
	}
	snprintf(s->tips[i].file, sizeof(s->tips[i].file), "%s", file);
	memcpy(s->tips[i].identifier, id, sizeof(s->tips[i].identifier));
	return 0;
}

const struct rfs_saved_tip *rfs_saved_find_tip(const struct rfs_saved *s, const char *disk)
{
	bool found;
	size_t i = tip_index(s, disk, &found);

	return found ? &s->tips[i] : NULL;
}

/* ---- bytes ---- */

/* CRC-32, reflected polynomial 0xEDB88320 (zlib's crc32()). Bitwise: the
 * file is small and rarely read or written, a table is not worth it. */
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

static const char hex_digits[] = "0123456789abcdef";

/* Value of hex digit @c, or -1. Uppercase only if @any_case. */
static int hex_value(char c, bool any_case)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (any_case && c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Bytes written as "\xHH" in a name (savedstate.h). */
static bool byte_escaped(unsigned char c)
{
	return (c >= 0x01 && c <= 0x20) || c == '\\' || c == 0x7F;
}

static size_t escaped_len(const char *name)
{
	size_t n = 0;

	for (; *name; name++)
		n += byte_escaped((unsigned char)*name) ? 4 : 1;
	return n;
}

static char *put_escaped(char *p, const char *name)
{
	for (; *name; name++) {
		unsigned char c = (unsigned char)*name;

		if (byte_escaped(c)) {
			*p++ = '\\';
			*p++ = 'x';
			*p++ = hex_digits[c >> 4];
			*p++ = hex_digits[c & 15];
		} else {
			*p++ = (char)c;
		}
	}
	return p;
}

/* Undo put_escaped() for @len bytes at @s into @out (NAME_MAX + 1 bytes);
 * false unless it is the one spelling of a valid name. */
static bool get_escaped(const char *s, size_t len, char *out)
{
	size_t i = 0, n = 0;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\\') {
			int hi, lo;

			if (len - i < 4 || s[i + 1] != 'x')
				return false;
			hi = hex_value(s[i + 2], false);
			lo = hex_value(s[i + 3], false);
			if (hi < 0 || lo < 0 || !byte_escaped((unsigned char)(hi << 4 | lo)))
				return false;
			c = (unsigned char)(hi << 4 | lo);
			i += 4;
		} else {
			if (c == 0 || byte_escaped(c))
				return false;
			i++;
		}
		if (n == NAME_MAX)
			return false;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return name_valid(out);
}

/* ---- parsing ---- */

static bool state_storable(int state)
{
	return state == RFS_STATE_REPLICATING || state == RFS_STATE_RECOVERED ||
	       state == RFS_STATE_COMMITTED;
}

/*
 * Take the next "\n"-terminated line of @buf[*pos..len) without its "\n".
 * False if there is no complete line left.
 */
static bool next_line(const char *buf, size_t len, size_t *pos, const char **line, size_t *line_len)
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

/* Exactly 8 hex digits; uppercase too if @any_case (format 1). */
static bool parse_hex32(const char *s, size_t len, bool any_case, uint32_t *out)
{
	uint32_t v = 0;
	size_t i;

	if (len != 8)
		return false;
	for (i = 0; i < len; i++) {
		int d = hex_value(s[i], any_case);

		if (d < 0)
			return false;
		v = (v << 4) | (uint32_t)d;
	}
	*out = v;
	return true;
}

/* "<disk>/<file> <32 hex>" (after "tip "), appended to @s if it sorts after
 * the tips already there. 0, -EBADMSG or -ENOMEM. */
static int parse_tip(const char *rest, size_t len, struct rfs_saved *s)
{
	struct rfs_saved_tip tip, *tips;
	const char *slash, *space;
	size_t k;

	space = memchr(rest, ' ', len);
	slash = memchr(rest, '/', len);
	if (!space || !slash || slash > space || (size_t)(rest + len - space) != 1 + 32)
		return -EBADMSG;
	if (!get_escaped(rest, (size_t)(slash - rest), tip.disk) ||
	    !get_escaped(slash + 1, (size_t)(space - slash - 1), tip.file))
		return -EBADMSG;
	for (k = 0; k < 16; k++) {
		int hi = hex_value(space[1 + 2 * k], false), lo = hex_value(space[2 + 2 * k], false);

		if (hi < 0 || lo < 0)
			return -EBADMSG;
		tip.identifier[k] = (uint8_t)(hi << 4 | lo);
	}
	if (s->ntips == RFS_SAVED_MAX_TIPS ||
	    (s->ntips && strcmp(s->tips[s->ntips - 1].disk, tip.disk) >= 0))
		return -EBADMSG;
	/* Grow by doubling: at most 9 reallocations for 256 tips. */
	if ((s->ntips & (s->ntips - 1)) == 0) {
		tips = realloc(s->tips, (s->ntips ? 2 * s->ntips : 1) * sizeof(*tips));
		if (!tips)
			return -ENOMEM;
		s->tips = tips;
	}
	s->tips[s->ntips++] = tip;
	return 0;
}

/* Parse the whole file content into @s (initialised); 0, -EBADMSG or
 * -ENOMEM. On failure @s may hold tips: the caller frees it. */
static int saved_parse(const char *buf, size_t len, struct rfs_saved *s)
{
	const char *line, *rest;
	size_t line_len, rest_len, pos = 0, crc_start;
	uint32_t crc;
	int v, r;

	if (!next_line(buf, len, &pos, &line, &line_len) ||
	    !line_has_key(line, line_len, SAVED_MAGIC_PREFIX, &rest, &rest_len) ||
	    !parse_decimal(rest, rest_len, &v) || v < 1 || v > SAVED_VERSION_STANDALONE)
		return -EBADMSG;
	s->version = v;

	if (!next_line(buf, len, &pos, &line, &line_len) ||
	    !line_has_key(line, line_len, "state ", &rest, &rest_len) ||
	    !parse_decimal(rest, rest_len, &v) || !state_storable(v))
		return -EBADMSG;
	s->state = (enum rfs_state)v;

	crc_start = pos;
	if (!next_line(buf, len, &pos, &line, &line_len))
		return -EBADMSG;
	if (line_has_key(line, line_len, "status ", &rest, &rest_len)) {
		if (!parse_decimal(rest, rest_len, &v) || !rfs_result_valid(v))
			return -EBADMSG;
		s->has_status = true;
		s->status = v;
		crc_start = pos;
		if (!next_line(buf, len, &pos, &line, &line_len))
			return -EBADMSG;
	}

	if (s->version == SAVED_VERSION_STANDALONE) {
		/* format 3: exactly this line, and only in state 6 */
		if (s->state != RFS_STATE_COMMITTED || line_len != strlen(SAVED_STANDALONE) ||
		    memcmp(line, SAVED_STANDALONE, line_len) != 0)
			return -EBADMSG;
		s->standalone = true;
		crc_start = pos;
		if (!next_line(buf, len, &pos, &line, &line_len))
			return -EBADMSG;
	}
	while (s->version >= 2 && line_has_key(line, line_len, "tip ", &rest, &rest_len)) {
		if (s->state == RFS_STATE_REPLICATING)
			return -EBADMSG;
		r = parse_tip(rest, rest_len, s);
		if (r < 0)
			return r;
		crc_start = pos;
		if (!next_line(buf, len, &pos, &line, &line_len))
			return -EBADMSG;
	}

	if (!line_has_key(line, line_len, "crc ", &rest, &rest_len) ||
	    !parse_hex32(rest, rest_len, s->version == 1, &crc) || pos != len)
		return -EBADMSG;
	if (crc != crc32_ieee(buf, crc_start))
		return -EBADMSG;
	return 0;
}

/*
 * Read the whole of @fd into a malloc'd *@out, refusing (-EBADMSG) more
 * than RFS_SAVED_MAX bytes. The buffer starts one byte over the size
 * fstat() gives (to see the end of file) and grows only if the file is
 * longer than that.
 */
static int read_bounded(int fd, char **out, size_t *out_len)
{
	struct stat st;
	size_t cap, len = 0;
	char *buf, *bigger;
	int ret;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size > RFS_SAVED_MAX)
		return -EBADMSG;
	cap = (size_t)st.st_size + 1;
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (len == cap) {
			if (cap > RFS_SAVED_MAX) {
				ret = -EBADMSG;
				goto out_free;
			}
			cap = cap > RFS_SAVED_MAX / 2 ? RFS_SAVED_MAX + 1 : 2 * cap;
			bigger = realloc(buf, cap);
			if (!bigger) {
				ret = -ENOMEM;
				goto out_free;
			}
			buf = bigger;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto out_free;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*out = buf;
	*out_len = len;
	return 0;

out_free:
	free(buf);
	return ret;
}

int rfs_saved_load(int dirfd, struct rfs_saved *out)
{
	char *buf = NULL;
	size_t len = 0;
	int fd, ret;

	rfs_saved_init(out);
	fd = openat(dirfd, SAVED_NAME, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	ret = read_bounded(fd, &buf, &len);
	close(fd);
	if (ret < 0)
		return ret;
	ret = saved_parse(buf, len, out);
	free(buf);
	if (ret < 0)
		rfs_saved_free(out);
	return ret;
}

/* ---- storing ---- */

/* -EINVAL unless rfs_saved_store() can write @s (savedstate.h). */
static int saved_check(const struct rfs_saved *s)
{
	size_t i;

	if (!s || !state_storable((int)s->state) || (s->has_status && !rfs_result_valid(s->status)))
		return -EINVAL;
	if (s->standalone && s->state != RFS_STATE_COMMITTED)
		return -EINVAL;
	if (s->ntips > RFS_SAVED_MAX_TIPS || (s->ntips && !s->tips) ||
	    (s->ntips && s->state == RFS_STATE_REPLICATING))
		return -EINVAL;
	for (i = 0; i < s->ntips; i++) {
		if (!name_valid(s->tips[i].disk) || !name_valid(s->tips[i].file))
			return -EINVAL;
		if (i && strcmp(s->tips[i - 1].disk, s->tips[i].disk) >= 0)
			return -EINVAL;
	}
	return 0;
}

/* The format-2 text of @s (checked) in a malloc'd *@out; 0 or -ENOMEM. */
static int saved_format(const struct rfs_saved *s, char **out, size_t *out_len)
{
	int version = s->standalone ? SAVED_VERSION_STANDALONE : SAVED_VERSION;
	size_t cap = 64 + sizeof(SAVED_STANDALONE), i, k;
	char *buf, *p;
	int n;

	for (i = 0; i < s->ntips; i++)
		cap += 4 + escaped_len(s->tips[i].disk) + 1 + escaped_len(s->tips[i].file) + 1 +
		       32 + 1;
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	if (s->has_status)
		n = snprintf(buf, cap, SAVED_MAGIC_PREFIX "%d\nstate %d\nstatus %d\n", version,
			     (int)s->state, s->status);
	else
		n = snprintf(buf, cap, SAVED_MAGIC_PREFIX "%d\nstate %d\n", version, (int)s->state);
	p = buf + n;
	if (s->standalone)
		p += snprintf(p, cap - (size_t)n, SAVED_STANDALONE "\n");
	for (i = 0; i < s->ntips; i++) {
		const struct rfs_saved_tip *t = &s->tips[i];

		memcpy(p, "tip ", 4);
		p = put_escaped(p + 4, t->disk);
		*p++ = '/';
		p = put_escaped(p, t->file);
		*p++ = ' ';
		for (k = 0; k < 16; k++) {
			*p++ = hex_digits[t->identifier[k] >> 4];
			*p++ = hex_digits[t->identifier[k] & 15];
		}
		*p++ = '\n';
	}
	n = snprintf(p, cap - (size_t)(p - buf), "crc %08x\n",
		     (unsigned int)crc32_ieee(buf, (size_t)(p - buf)));
	*out = buf;
	*out_len = (size_t)(p - buf) + (size_t)n;
	return 0;
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
	char *buf = NULL;
	size_t len = 0;
	int fd, ret;

	ret = saved_check(s);
	if (ret == 0)
		ret = saved_format(s, &buf, &len);
	if (ret < 0)
		return ret;

	fd = openat(dirfd, SAVED_TMP_NAME, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY,
		    0600);
	if (fd < 0) {
		ret = -errno;
		goto out_free;
	}
	ret = rfs_pwrite_full(fd, buf, len, 0);
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
	ret = rfs_sync_dir(dirfd);
	goto out_free;

out_unlink_tmp:
	unlinkat(dirfd, SAVED_TMP_NAME, 0);
out_free:
	free(buf);
	return ret;
}
