// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/fuzz/fuzz_image.c - libFuzzer target for the code that reads replica
 * files: vhd_probe_file(), vhd_image_open() (libvhdi plus extmap.c's own VHD
 * and VHDX parsing), vhd_image_read() and rfs_discover().
 *
 * The input is written to file(s) in a private temporary folder (replica
 * files are files: libvhdi only opens paths). Byte 0 chooses the case:
 *   mode 0  one file:         chain [f]
 *   mode 1  a child over a valid built-in parent (VHD fixed, 16 KiB,
 *           p.vhd):           chain [c, p]
 *   mode 2  its own parent:   chain [f, f]
 *   mode 3  two files, split where bytes 1-2 say: chains [a, b], [b, a],
 *           [a, b, a] (a loop, when each names the other as its parent)
 * and bit 0x40 of byte 0 names the files .vhdx instead of .vhd (discovery
 * looks at extensions, libvhdi at content). Every case then runs
 * rfs_discover() over the replica folder (the files sit in one VM folder,
 * named so a fuzzed locator can point at another file or at itself) and
 * opens every disk it did not mark broken, as the daemon does.
 *
 * Promises checked: every call returns 0 or -errno (abort() otherwise);
 * an opened image reads its first and last sector and a middle range; no
 * crash, overread (ASan), leak (LeakSanitizer) or hang (libFuzzer -timeout).
 *
 * RFS_FUZZ_IMAGE_PARENT=FILE: write the built-in parent to FILE and exit
 * (tests/fuzz/mkseeds_image.sh makes mode-1 seeds over it).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "discover.h"
#include "image.h"
#include "log.h"

#define PARENT_SIZE (16 * 1024)
#define READ_MAX (64 * 1024)

static char top[64];       /* the private folder */
static char replica[128];  /* top/replica: the replica folder */
static char vmdir[160];    /* top/replica/vm: the VM folder */
static char state[160];    /* top/replica/.replicafs (never created) */
static uint8_t parent_img[PARENT_SIZE + 512];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void cleanup(void)
{
	if (top[0])
		nftw(top, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static uint32_t be32_sum(const uint8_t *p, size_t n)
{
	uint32_t s = 0;

	for (size_t i = 0; i < n; i++)
		s += p[i];
	return ~s;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

/* A VHD fixed disk of PARENT_SIZE bytes, always the same bytes. */
static void make_parent(void)
{
	static const uint8_t uid[16] = { 0x72, 0x66, 0x73, 0x2d, 0x66, 0x75, 0x7a, 0x7a,
					 0x2d, 0x70, 0x61, 0x72, 0x65, 0x6e, 0x74, 0x01 };
	uint8_t *f = parent_img + PARENT_SIZE;

	for (size_t i = 0; i < PARENT_SIZE; i++)
		parent_img[i] = (uint8_t)(i * 31 + (i >> 9) * 7 + 1);
	memset(f, 0, 512);
	memcpy(f, "conectix", 8);
	put_be32(f + 8, 2);                      /* features */
	put_be32(f + 12, 0x00010000);            /* version */
	put_be64(f + 16, UINT64_MAX);            /* data offset: fixed */
	put_be32(f + 24, 0x2a000000);            /* timestamp */
	memcpy(f + 28, "rfs ", 4);
	put_be32(f + 32, 0x00010000);
	memcpy(f + 36, "Wi2k", 4);
	put_be64(f + 40, PARENT_SIZE);           /* original size */
	put_be64(f + 48, PARENT_SIZE);           /* current size */
	f[56] = 0, f[57] = 2, f[58] = 4, f[59] = 17; /* CHS 2/4/17 */
	put_be32(f + 60, 2);                     /* fixed */
	memcpy(f + 68, uid, 16);
	put_be32(f + 64, be32_sum(f, 512));
}

static int write_file(const char *path, const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ssize_t n;

	if (fd < 0)
		abort();
	while (size) {
		n = write(fd, data, size);
		if (n <= 0)
			abort();
		data += n, size -= (size_t)n;
	}
	close(fd);
	return 0;
}

/*
 * Leaks inside libvhdi 20210425 itself, not ours (our code frees the file
 * after a failed libvhdi_file_open()): a VHDX whose metadata items cannot be
 * read leaks the metadata table entries already read. Only that allocation
 * site is ignored; a libvhdi handle we fail to free is still reported (its
 * libvhdi_file_initialize allocation).
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libvhdi_metadata_table_entry_initialize\n";
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dump = getenv("RFS_FUZZ_IMAGE_PARENT");
	const char *tmp = getenv("TMPDIR");

	(void)argc, (void)argv;
	make_parent();
	if (dump) {
		write_file(dump, parent_img, sizeof(parent_img));
		exit(0);
	}
	snprintf(top, sizeof(top), "%s/rfs-fuzz-image.XXXXXX", tmp && strlen(tmp) < 32 ? tmp : "/tmp");
	if (!mkdtemp(top))
		abort();
	atexit(cleanup);
	snprintf(replica, sizeof(replica), "%s/replica", top);
	snprintf(vmdir, sizeof(vmdir), "%s/vm", replica);
	snprintf(state, sizeof(state), "%s/.replicafs", replica);
	if (mkdir(replica, 0700) || mkdir(vmdir, 0700))
		abort();
	rfs_log_open("/dev/null", false, LOG_ERR); /* libvhdi's messages: not wanted */
	return 0;
}

static void check_ret(int ret)
{
	if (ret > 0 || ret < -4095)
		abort();
}

static void check_info(const struct vhd_image_info *info)
{
	if ((info->format != VHD_FORMAT_VHD && info->format != VHD_FORMAT_VHDX) ||
	    (info->type != VHD_TYPE_FIXED && info->type != VHD_TYPE_DYNAMIC &&
	     info->type != VHD_TYPE_DIFFERENCING))
		abort();
}

/* Open a chain, read a few ranges, close it. */
static void try_chain(const char *const *paths, size_t n)
{
	struct vhd_image *img = NULL;
	struct vhd_image_info info;
	char err[512];
	int ret;

	err[0] = '\0';
	ret = vhd_image_open(paths, n, 2, &img, err, sizeof(err));
	check_ret(ret);
	if (ret) {
		if (img || !err[0] || !memchr(err, 0, sizeof(err)))
			abort();
		return;
	}
	vhd_image_get_info(img, &info);
	check_info(&info);
	check_ret(vhd_image_stat(img, &info));

	uint64_t size = info.virtual_size;
	uint32_t ss = info.sector_size ? info.sector_size : 512;
	size_t len = (size < READ_MAX ? (size_t)size : READ_MAX) - 3;
	uint8_t *buf = malloc(READ_MAX > ss ? READ_MAX : ss);

	if (!buf)
		abort();
	if (size >= ss) {
		check_ret(vhd_image_read(img, buf, ss, 0));
		check_ret(vhd_image_read(img, buf, ss, size - ss));
	}
	/* an unaligned range in the middle, then one sticking out (-EINVAL) */
	if (size > 3)
		check_ret(vhd_image_read(img, buf, len, (size - len) / 2 + 1));
	if (vhd_image_read(img, buf, 2, size - 1) != -EINVAL)
		abort();
	if (vhd_image_read(img, buf, 0, size) != 0)
		abort();
	free(buf);
	vhd_image_close(img);
}

static void try_probe(const char *path)
{
	struct vhd_probe p;
	char err[512];
	int ret;

	err[0] = '\0';
	ret = vhd_probe_file(path, &p, err, sizeof(err));
	check_ret(ret);
	if (ret && (!err[0] || !memchr(err, 0, sizeof(err))))
		abort();
	if (!ret && !memchr(p.parent_name, 0, sizeof(p.parent_name)))
		abort();
}

static void try_discover(void)
{
	struct rfs_store_desc store;
	int ret = rfs_discover(replica, state, &store);

	check_ret(ret);
	if (ret)
		return;
	if (store.nvms != 1)
		abort();
	for (size_t v = 0; v < store.nvms; v++) {
		const struct rfs_vm_desc *vm = &store.vms[v];

		for (size_t d = 0; d < vm->ndisks; d++) {
			const struct rfs_disk_desc *disk = &vm->disks[d];

			if (disk->broken && !vm->broken)
				abort();
			if (!disk->broken && disk->chain_len)
				try_chain((const char *const *)disk->chain, disk->chain_len);
		}
	}
	rfs_store_desc_free(&store);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *ext;
	char f[256], a[256], b[256], p[256];
	unsigned mode;

	if (size < 1)
		return 0;
	mode = data[0] % 4;
	ext = (data[0] & 0x40) ? "vhdx" : "vhd";
	data++, size--;
	snprintf(f, sizeof(f), "%s/f.%s", vmdir, ext);
	snprintf(a, sizeof(a), "%s/a.%s", vmdir, ext);
	snprintf(b, sizeof(b), "%s/b.%s", vmdir, ext);
	snprintf(p, sizeof(p), "%s/p.vhd", vmdir);

	switch (mode) {
	case 0: {
		const char *chain[] = { f };

		write_file(f, data, size);
		try_probe(f);
		try_chain(chain, 1);
		break;
	}
	case 1: {
		const char *chain[] = { f, p };

		write_file(f, data, size);
		write_file(p, parent_img, sizeof(parent_img));
		try_probe(f);
		try_chain(chain, 2);
		break;
	}
	case 2: {
		const char *chain[] = { f, f };

		write_file(f, data, size);
		try_probe(f);
		try_chain(chain, 2);
		break;
	}
	case 3: {
		size_t k = 0;

		if (size >= 2) {
			k = ((size_t)data[0] | (size_t)data[1] << 8) % (size - 1);
			data += 2, size -= 2;
		}
		if (k > size)
			k = size;
		write_file(a, data, k);
		write_file(b, data + k, size - k);
		try_probe(a);
		try_probe(b);
		{
			const char *ab[] = { a, b }, *ba[] = { b, a }, *aba[] = { a, b, a };

			try_chain(ab, 2);
			try_chain(ba, 2);
			try_chain(aba, 3);
		}
		break;
	}
	}
	try_discover();
	unlink(f), unlink(a), unlink(b), unlink(p);
	return 0;
}
