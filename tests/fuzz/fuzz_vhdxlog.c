// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/fuzz/fuzz_vhdxlog.c - vhd/vhdxlog.c on fuzzed logs: the input is
 * a 16-byte LogGuid, then the log (cut to whole 4 KiB sectors). Replay must
 * never crash, leak or read out of bounds; a replay that succeeds is read
 * whole through vhdx_replay_lookup(), every memory run touched.
 */
#include <stddef.h>
#include <stdint.h>

#include "vhdxlog.h"

#define FILE_SIZE (8ull << 20) /* the file the log belongs to */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vhdx_replay *r;
	size_t log_len;
	char err[256];
	uint64_t off = 0;
	unsigned sum = 0;

	if (size < 16)
		return 0;
	log_len = (size - 16) / VHDX_LOG_SECTOR * VHDX_LOG_SECTOR;
	if (!log_len || vhdx_replay_build(data + 16, log_len, data, FILE_SIZE, &r, err,
					  sizeof(err)))
		return 0;
	while (off < vhdx_replay_size(r)) {
		struct vhdx_replay_run run;

		vhdx_replay_lookup(r, off, vhdx_replay_size(r) - off, &run);
		if (run.kind == VHDX_REPLAY_MEMORY)
			for (uint64_t k = 0; k < run.len; k += 512)
				sum += run.data[k] + run.data[run.len - 1];
		off += run.len;
	}
	vhdx_replay_free(r);
	return (int)(sum & 0);
}
