/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fs/main.c - replicafs [options] REPLICA_DIR MOUNTPOINT (SPEC §1).
 *
 * Checks the paths (a one-line error and exit 1, nothing mounted), discovers
 * the VMs, opens them, mounts, and only then daemonises: the parent process
 * exits once the mount is ready, which is the readiness signal scripts and
 * tests wait for (no polling). -f stays in the foreground.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "discover.h"
#include "fs.h"
#include "image.h"
#include "log.h"
#include "options.h"
#include "overlay.h"
#include "version.h"

/* How long revert waits for the kernel's asynchronous RELEASE of files that
 * were closed just before it (see ctl/vm.c, wait_unused). */
#define OPEN_WAIT_MS 2000

static void usage(const char *prog)
{
	printf("usage: %s [options] REPLICA_DIR MOUNTPOINT\n\n"
	       "Present the VHD/VHDX disks of Hyper-V replica VMs as raw .img files, with a\n"
	       "copy-on-write failover layer driven by MOUNTPOINT/ctl/<vm>/control.\n\n"
	       "replicafs options:\n",
	       prog);
	rfs_options_help(stdout);
	printf("\nCommands: echo failover|revert|commit > MOUNTPOINT/ctl/<vm>/control;\n"
	       "the result is in ctl/<vm>/status, the state in ctl/<vm>/state.\n"
	       "revert is refused (EBUSY, 32774) while an .img of the VM is open:\n"
	       "detach loop devices (losetup -d) first.\n"
	       "Unmount with: fusermount3 -u MOUNTPOINT\n\n");
}

static int fail(const char *path, const char *reason)
{
	fprintf(stderr, "replicafs: %s: %s\n", path, reason);
	return 1;
}

/* MOUNTPOINT must be an empty directory. Returns 0 or an errno-like reason. */
static const char *check_mountpoint(const char *path)
{
	struct dirent *de;
	struct stat st;
	DIR *d;

	if (stat(path, &st) < 0)
		return strerror(errno);
	if (!S_ISDIR(st.st_mode))
		return "not a directory";
	d = opendir(path);
	if (!d)
		return strerror(errno);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			closedir(d);
			return "not an empty directory";
		}
	closedir(d);
	return NULL;
}

static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static void close_vms(struct rfs_vm **vms, size_t n)
{
	for (size_t i = 0; i < n; i++)
		rfs_vm_close(vms[i]);
	free(vms);
}

static int serve(struct fuse_args *args, struct fuse_cmdline_opts *cl, struct rfs_fs *fs, bool log_to_file)
{
	struct fuse_session *se;
	int ret = 1;

	se = fuse_session_new(args, rfs_fs_ops(), sizeof(struct fuse_lowlevel_ops), fs);
	if (!se)
		return 1;
	rfs_fs_set_session(fs, se);
	if (fuse_set_signal_handlers(se) != 0)
		goto out_destroy;
	if (fuse_session_mount(se, cl->mountpoint) != 0)
		goto out_remove_handlers;
	if (!cl->foreground && !log_to_file)
		rfs_log_open(NULL, true, cl->debug ? LOG_DEBUG : LOG_INFO); /* stderr goes away */
	fuse_daemonize(cl->foreground);
	cow_closer_hold(false);
	rfs_log(LOG_INFO, "mounted on %s (pid %d)", cl->mountpoint, (int)getpid());

	if (cl->singlethread) {
		ret = fuse_session_loop(se);
	} else {
		struct fuse_loop_config *lc = fuse_loop_cfg_create();

		if (!lc)
			goto out_unmount;
		fuse_loop_cfg_set_clone_fd(lc, cl->clone_fd);
		/* Workaround, libfuse 3.14.0: the setter logs "Ignoring invalid
		 * max threads value 4294967295" for the default (UINT_MAX, no
		 * limit) that fuse_parse_cmdline() itself puts there; a loop
		 * config already starts with that default, so set only a value
		 * the user gave (-o max_idle_threads=N). */
		if (cl->max_idle_threads != UINT_MAX)
			fuse_loop_cfg_set_idle_threads(lc, cl->max_idle_threads);
		fuse_loop_cfg_set_max_threads(lc, cl->max_threads);
		ret = fuse_session_loop_mt(se, lc);
		fuse_loop_cfg_destroy(lc);
	}
	ret = ret ? 1 : 0;
	rfs_log(LOG_INFO, "unmounted %s", cl->mountpoint);
out_unmount:
	fuse_session_unmount(se);
out_remove_handlers:
	fuse_remove_signal_handlers(se);
out_destroy:
	rfs_fs_set_session(fs, NULL);
	fuse_session_destroy(se);
	return ret;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct rfs_options opts;
	struct fuse_cmdline_opts cl = { 0 };
	char replica[PATH_MAX], state[PATH_MAX], given[PATH_MAX], fsname[PATH_MAX + 64], *log_path = NULL;
	struct rfs_store_desc store = { 0 };
	struct rfs_vm **vms = NULL;
	struct rfs_fs *fs = NULL;
	struct rfs_fs_config fcfg;
	struct rfs_vm_config vcfg;
	const char *why;
	int state_fd = -1, ret = 1, r;
	DIR *d;

	if (rfs_options_parse(&args, &opts) != 0)
		goto out_args;
	if (opts.show_version) {
		printf("replicafs %s\nFUSE library %s, libvhdi %s\n", RFS_VERSION, fuse_pkgversion(),
		       vhd_lib_version());
		ret = 0;
		goto out_args;
	}
	if (opts.show_help) {
		usage(argv[0]);
		printf("FUSE options:\n");
		fuse_cmdline_help();
		fuse_lowlevel_help();
		ret = 0;
		goto out_args;
	}
	if (fuse_parse_cmdline(&args, &cl) != 0)
		goto out_args;
	if (!opts.replica_dir || !cl.mountpoint) {
		fprintf(stderr, "replicafs: missing %s (usage: replicafs [options] REPLICA_DIR MOUNTPOINT)\n",
			opts.replica_dir ? "MOUNTPOINT" : "REPLICA_DIR");
		goto out_cmdline;
	}

	/* The paths, before anything is created or mounted. */
	d = opendir(opts.replica_dir);
	if (!d) {
		ret = fail(opts.replica_dir, strerror(errno));
		goto out_cmdline;
	}
	closedir(d);
	if (!realpath(opts.replica_dir, replica)) {
		ret = fail(opts.replica_dir, strerror(errno));
		goto out_cmdline;
	}
	why = check_mountpoint(cl.mountpoint);
	if (why) {
		ret = fail(cl.mountpoint, why);
		goto out_cmdline;
	}
	if (opts.state_dir)
		r = snprintf(given, sizeof(given), "%s", opts.state_dir);
	else
		r = snprintf(given, sizeof(given), "%.*s/.replicafs", PATH_MAX - 16, replica);
	if (r >= (int)sizeof(given)) {
		ret = fail(opts.state_dir, strerror(ENAMETOOLONG));
		goto out_cmdline;
	}
	r = mkdir_p(given);
	if (r < 0 || !realpath(given, state)) {
		ret = fail(given, strerror(r < 0 ? -r : errno));
		goto out_cmdline;
	}
	state_fd = open(state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (state_fd < 0) {
		ret = fail(state, strerror(errno));
		goto out_cmdline;
	}
	if (!opts.log_path) { /* before daemonising: stderr, warnings only unless -f */
		rfs_log_open(NULL, false, cl.debug ? LOG_DEBUG : cl.foreground ? LOG_INFO : LOG_WARNING);
	} else {
		log_path = realpath(opts.log_path, NULL);
		r = rfs_log_open(log_path ? log_path : opts.log_path, false, cl.debug ? LOG_DEBUG : LOG_INFO);
		if (r < 0) {
			ret = fail(opts.log_path, strerror(-r));
			goto out_state;
		}
	}

	/* The VMs. Broken ones are logged and shown in state 8. */
	r = rfs_discover(replica, state, &store);
	if (r < 0) {
		ret = fail(replica, strerror(-r));
		goto out_state;
	}
	fcfg.state_root_fd = state_fd;
	fcfg.owner = getuid();
	fcfg.group = getgid();
	if (rfs_fs_new(&fcfg, &fs) < 0)
		goto out_store;
	vms = calloc(store.nvms ? store.nvms : 1, sizeof(*vms));
	if (!vms)
		goto out_fs;
	vcfg.state_root_fd = state_fd;
	vcfg.max_handles = opts.handles; /* 0 means 1 (vhd_image_open) */
	vcfg.open_wait_ms = OPEN_WAIT_MS;
	vcfg.changed = rfs_fs_disk_changed;
	vcfg.changed_arg = fs;
	cow_closer_hold(true); /* no thread of ours across fuse_daemonize()'s fork */
	for (size_t i = 0; i < store.nvms; i++) {
		if (rfs_vm_open(&store.vms[i], &vcfg, &vms[i]) < 0) {
			close_vms(vms, i);
			vms = NULL;
			fprintf(stderr, "replicafs: out of memory\n");
			goto out_fs;
		}
	}
	if (rfs_fs_build(fs, vms, store.nvms) < 0) {
		fprintf(stderr, "replicafs: out of memory\n");
		goto out_vms;
	}
	rfs_log(LOG_INFO, "%zu VM(s) in %s, state in %s", store.nvms, replica, state);

	snprintf(fsname, sizeof(fsname), "-ofsname=replicafs:%s,subtype=replicafs", replica);
	if (fuse_opt_add_arg(&args, fsname) != 0)
		goto out_vms;
	ret = serve(&args, &cl, fs, opts.log_path != NULL);

out_vms:
	close_vms(vms, store.nvms);
	cow_wait_freed(); /* exit once reverted overlays have given back their space */
out_fs:
	rfs_fs_free(fs);
out_store:
	rfs_store_desc_free(&store);
out_state:
	free(log_path);
	close(state_fd);
out_cmdline:
	free(cl.mountpoint);
out_args:
	rfs_options_free(&opts);
	fuse_opt_free_args(&args);
	rfs_log_close();
	return ret;
}
