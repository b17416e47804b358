/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vhd/vhdxlog.h - replay of a VHDX log in memory (internal to vhd/; only
 * extmap.c uses it).
 *
 * A libvhdi workaround (extmap.h, workaround 3), checked against libvhdi
 * 20210425 and, by the source, every release up to 20251119: libvhdi never
 * reads the log of a VHDX, so a file whose host stopped before the log was
 * replayed is described and read stale. Windows replays the log before it
 * reads anything (MS-VHDX 2.3.3); so do we, in memory, the file untouched.
 *
 * The log is a circular buffer of 4 KiB sectors holding entries. An entry
 * ("loge" header, CRC-32C over the whole entry with its checksum field
 * zeroed, the header's LogGuid, a non-zero sequence number, its length a
 * multiple of 4 KiB and at most the log's) carries descriptors: "desc" (one
 * 4 KiB file sector: 8 leading and 4 trailing bytes in the descriptor, the
 * 4084 between in a "data" sector tagged with the sequence number) and
 * "zero" (a 4 KiB-aligned range of the file reads as zeros). An entry may
 * wrap round the end of the log.
 *
 * The active sequence is found as MS-VHDX 2.3.3 describes (and DiscUtils
 * does): scanning the log from offset 0, each run of valid entries that
 * follow one another (the next entry starts where the previous ends, with
 * the next sequence number) is a candidate; it counts only if it holds the
 * entry its last (head) entry names as Tail; the candidate with the highest
 * head sequence number is the active one. Its entries from the tail to the
 * head are applied in order (those before the tail were flushed already).
 * A torn last entry (bad checksum) thus simply ends the sequence before it.
 *
 * Refused, with a one-line reason: LogGuid set but no valid sequence; an
 * active head whose FlushedFileOffset lies past the end of the file (the
 * file was truncated after the log was written); a descriptor that writes
 * past both the file and its entry's LastFileOffset.
 *
 * Result: a sparse overlay of file ranges (replayed data, or zeros) that
 * every read of the file sees first. The replayed file is as long as the
 * larger of the file and the active entries' LastFileOffset; what lies past
 * the real end of the file (and was not replayed) reads as zeros, as it
 * would once Windows extended the file. Immutable after vhdx_replay_build():
 * any number of threads may use it at once.
 */
#ifndef RFS_VHD_VHDXLOG_H
#define RFS_VHD_VHDXLOG_H

#include <stddef.h>
#include <stdint.h>

#define VHDX_LOG_SECTOR 4096u
/* Longest log replayed (Hyper-V and qemu make 1 MiB logs). */
#define VHDX_LOG_MAX (64u << 20)

/* The replayed ranges of one file; opaque. */
struct vhdx_replay;

/* What a range of the replayed file is (vhdx_replay_lookup()). */
enum vhdx_replay_kind {
	VHDX_REPLAY_FILE = 1, /* the file's own bytes */
	VHDX_REPLAY_ZERO,     /* zeros (a zero descriptor, or past the real end) */
	VHDX_REPLAY_MEMORY,   /* replayed bytes, at run.data */
};

/* One answer of vhdx_replay_lookup(). */
struct vhdx_replay_run {
	enum vhdx_replay_kind kind;
	uint64_t len;        /* bytes from the asked offset: 1 .. the length asked */
	const uint8_t *data; /* VHDX_REPLAY_MEMORY: the bytes, else NULL */
};

/*
 * Find and apply the active sequence of the log @log (@log_len bytes, a
 * non-zero multiple of 4 KiB, at most VHDX_LOG_MAX) of a file of
 * @file_size bytes whose current header has LogGuid @guid. @log is only
 * read during the call. Returns 0 and *out, or -EIO (unreplayable) /
 * -EINVAL (@log_len) / -ENOMEM with a one-line reason in @err.
 */
int vhdx_replay_build(const uint8_t *log, size_t log_len, const uint8_t guid[16],
		      uint64_t file_size, struct vhdx_replay **out, char *err, size_t errlen);
void vhdx_replay_free(struct vhdx_replay *r);

/* Bytes of the replayed file (>= the real file size). */
uint64_t vhdx_replay_size(const struct vhdx_replay *r);

/* The entries applied and the sequence numbers of the first and last. */
unsigned vhdx_replay_entries(const struct vhdx_replay *r, uint64_t *first_seq,
			     uint64_t *last_seq);

/*
 * What the replayed file holds from @off: the longest run of at most @len
 * bytes of one kind (@len non-zero; a run ends at the replayed file's end,
 * which the caller must not pass). Thread-safe, no I/O.
 */
void vhdx_replay_lookup(const struct vhdx_replay *r, uint64_t off, uint64_t len,
			struct vhdx_replay_run *run);

/*
 * Read exactly @len bytes of the replayed file at @off: the file on @fd
 * where nothing was replayed. Returns 0, -EIO past the replayed end, or
 * -errno of pread().
 */
int vhdx_replay_pread(const struct vhdx_replay *r, int fd, void *buf, size_t len, uint64_t off);

#endif
