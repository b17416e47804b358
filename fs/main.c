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
#include <stdint.h>
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
#include "transport.h"
#include "overlay.h"
#include "store.h"
#include "version.h"

/* How long revert waits for the kernel's asynchronous RELEASE of files that
 * were closed just before it (see ctl/vm.c, wait_unused). */
#define OPEN_WAIT_MS 2000

static void usage(const char *prog)
{
	printf("usage: %s [options] REPLICA_DIR MOUNTPOINT\n\n"
	       "Present the VHD/VHDX disks of Hyper-V replica VMs as raw .img files, with a\n"
	       "copy-on-write failover layer driven by MOUNTPOINT/ctl/<vm>/control.\n"
	       "Each partition of a disk with an MBR or GPT is a file too, with the\n"
	       "disk's mode: MOUNTPOINT/vms/<vm>/<disk>-part<N>.img.\n\n"
	       "replicafs options:\n",
	       prog);
	rfs_options_help(stdout);
	printf("\nCommands: echo failover|revert|commit|cancel > MOUNTPOINT/ctl/<vm>/control;\n"
	       "the result is in ctl/<vm>/status, the state in ctl/<vm>/state;\n"
	       "ctl/<vm>/points lists the recovery points, points/<vm>/<point>/ reads them.\n"
	       "  echo 'test POINT' > ctl/<vm>/control    test VM \"<vm> - Test\", writable\n"
	       "  echo stop-test > ctl/<vm>/control       the test VM goes\n"
	       "  echo 'failover POINT' > ctl/<vm>/control  fail over to an older point\n"
	       "  echo revert > ctl/<vm>/control          back to the newest point\n"
	       "commit runs as a job (4096 at once; ctl/<vm>/job shows its progress; cancel\n"
	       "stops it) and leaves the VM independent of its replica files;\n"
	       "ctl/<vm>/owner names the daemon serving the VM (on another daemon's\n"
	       "mount of the same store, commands get 32774). New VMs, disks and\n"
	       "recovery points in REPLICA_DIR appear within seconds, no remount.\n"
	       "revert is refused (EBUSY, 32774) while an .img of the VM is open:\n"
	       "detach loop devices (losetup -d) first.\n"
	       "Unmount with: fusermount3 -u MOUNTPOINT\n\n");
}

static int fail(const char *path, const char *reason)
{
	fprintf(stderr, "replicafs: %s: %s\n", path, reason);
	return 1;
}

/* Is @path a mount point (its device differs from its parent's, or it is
 * its parent: "/")? */
static bool is_mount_point(const char *path, const struct stat *st)
{
	char parent[PATH_MAX + 4];
	struct stat pst;

	snprintf(parent, sizeof(parent), "%s/..", path);
	if (stat(parent, &pst) < 0)
		return false;
	return pst.st_dev != st->st_dev || pst.st_ino == st->st_ino;
}

/* MOUNTPOINT must be an empty directory that is not already a mount.
 * Returns NULL or the reason. */
static const char *check_mountpoint(const char *path)
{
	struct dirent *de;
	struct stat st;
	DIR *d;

	if (stat(path, &st) < 0)
		return errno == ENOTCONN ? "already a mount point, of a daemon that died "
					   "(fusermount3 -u it first)"
					 : strerror(errno);
	if (!S_ISDIR(st.st_mode))
		return "not a directory";
	if (is_mount_point(path, &st))
		return "already a mount point (unmount it first, or choose another folder)";
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

/* Make the state folder @path (one level only: a typo in --state must not
 * grow a fresh tree whose VMs all look Replicating). 0, or 1 after a
 * one-line error that says what to do. */
static int make_state_dir(const char *path, bool given)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return 0;
	if (errno == ENOENT && given)
		return fail(path, "its parent folder does not exist (--state makes the last folder only)");
	if (!given && (errno == EROFS || errno == EACCES || errno == EPERM)) {
		char why[160];

		snprintf(why, sizeof(why), "cannot create the state folder: %s (give a writable one with --state=DIR)",
			 strerror(errno));
		return fail(path, why);
	}
	return fail(path, strerror(errno));
}

/* A REPLICA_DIR with no VM folder but disk files of its own: one VM's
 * folder, given by mistake (SPEC §1). */
static bool looks_like_vm_folder(const char *replica)
{
	char vms_dir[PATH_MAX];
	size_t nvms = 0;
	char **names;

	if (rfs_discover_count_disk_files(replica) == 0)
		return false;
	if (rfs_discover_vms_dir(replica, vms_dir, sizeof(vms_dir)) < 0 ||
	    rfs_discover_list(vms_dir, NULL, NULL, &names, &nvms) < 0)
		return false;
	rfs_discover_list_free(names, nvms);
	return nvms == 0;
}

/* Everything the daemon runs with, from the command line and what it opened. */
struct daemon {
	struct fuse_args args;
	struct rfs_options opts;
	struct fuse_cmdline_opts cl;
	char replica[PATH_MAX];
	char state[PATH_MAX];
	char *log_path;             /* resolved --log */
	bool vm_folder;             /* REPLICA_DIR looks like one VM's folder and no
				     * --state was given: no state folder is made
				     * (state_fd is REPLICA_DIR's, only for statfs) and
				     * the folder is not followed */
	int state_fd;
	struct rfs_fs *fs;
	struct rfs_store *store;
};

/* Once daemonised, stderr goes away (SPEC §12): messages go to syslog, or,
 * when no syslog daemon listens (containers), to STATE/replicafs.log.
 * 0, or -1 after saying on stderr why the log cannot be written. */
static int open_daemon_log(struct daemon *dm)
{
	int level = dm->cl.debug ? LOG_DEBUG : LOG_INFO;
	char path[PATH_MAX + 16];
	int r;

	if (rfs_log_has_syslog() || dm->vm_folder)
		return rfs_log_open(NULL, true, level);
	snprintf(path, sizeof(path), "%s/replicafs.log", dm->state);
	r = rfs_log_open(path, false, level);
	if (r < 0)
		fail(path, strerror(-r));
	return r < 0 ? -1 : 0;
}

static int serve(struct daemon *dm)
{
	struct fuse_cmdline_opts *cl = &dm->cl;
	struct fuse_session *se;
	int ret = 1;

	se = fuse_session_new(&dm->args, rfs_fs_ops(), sizeof(struct fuse_lowlevel_ops), dm->fs);
	if (!se)
		return 1;
	rfs_fs_set_session(dm->fs, se);
	if (fuse_set_signal_handlers(se) != 0)
		goto out_destroy;
	if (fuse_session_mount(se, cl->mountpoint) != 0)
		goto out_remove_handlers;
	if (rfs_transport_attach(se, dm->opts.poll_us, !cl->singlethread) != 0)
		goto out_unmount;
	if (!cl->foreground && !dm->opts.log_path && open_daemon_log(dm) < 0)
		goto out_unmount;
	fuse_daemonize(cl->foreground);
	cow_closer_hold(false);
	if (!dm->vm_folder && rfs_store_start(dm->store) < 0)
		rfs_log(LOG_ERR, "cannot watch %s: new VMs appear only after a remount", dm->replica);
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
	rfs_store_stop(dm->store);
	fuse_session_unmount(se);
out_remove_handlers:
	fuse_remove_signal_handlers(se);
out_destroy:
	rfs_fs_set_session(dm->fs, NULL);
	fuse_session_destroy(se);
	return ret;
}

/* Parse: our options, then FUSE's. 0 to go on, 1 to exit with *ret. */
static int parse(struct daemon *dm, int *ret)
{
	*ret = 1;
	if (rfs_options_parse(&dm->args, &dm->opts) != 0)
		return 1;
	if (dm->opts.show_version) {
		printf("replicafs %s\nFUSE library %s, libvhdi %s\n", RFS_VERSION, fuse_pkgversion(),
		       vhd_lib_version());
		*ret = 0;
		return 1;
	}
	if (dm->opts.show_help) {
		usage(dm->args.argv[0]);
		printf("FUSE options:\n");
		fuse_cmdline_help();
		fuse_lowlevel_help();
		*ret = 0;
		return 1;
	}
	if (fuse_parse_cmdline(&dm->args, &dm->cl) != 0)
		return 1;
	if (!dm->opts.replica_dir || !dm->cl.mountpoint) {
		fprintf(stderr, "replicafs: missing %s (usage: replicafs [options] REPLICA_DIR MOUNTPOINT)\n",
			dm->opts.replica_dir ? "MOUNTPOINT" : "REPLICA_DIR");
		return 1;
	}
	return 0;
}

/* Prepare: check the paths, make the state folder, open the log - before
 * anything is mounted. 0, or 1 after a one-line error. */
static int prepare(struct daemon *dm)
{
	char given[PATH_MAX];
	const char *why;
	DIR *d;
	int r;

	d = opendir(dm->opts.replica_dir);
	if (!d || !realpath(dm->opts.replica_dir, dm->replica)) {
		if (d)
			closedir(d);
		return fail(dm->opts.replica_dir, strerror(errno));
	}
	closedir(d);
	why = check_mountpoint(dm->cl.mountpoint);
	if (why)
		return fail(dm->cl.mountpoint, why);
	if (dm->opts.state_dir)
		r = snprintf(given, sizeof(given), "%s", dm->opts.state_dir);
	else
		r = snprintf(given, sizeof(given), "%.*s/.replicafs", PATH_MAX - 16, dm->replica);
	if (r >= (int)sizeof(given))
		return fail(given, strerror(ENAMETOOLONG));
	dm->vm_folder = !dm->opts.state_dir && access(given, F_OK) < 0 &&
			looks_like_vm_folder(dm->replica);
	if (dm->vm_folder) /* no .replicafs inside a VM's folder */
		snprintf(given, sizeof(given), "%s", dm->replica);
	else if (make_state_dir(given, dm->opts.state_dir != NULL) != 0)
		return 1;
	if (!realpath(given, dm->state))
		return fail(given, strerror(errno));
	dm->state_fd = open(dm->state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dm->state_fd < 0)
		return fail(dm->state, strerror(errno));
	if (!dm->opts.log_path) { /* before daemonising: stderr, warnings only unless -f */
		rfs_log_open(NULL, false, dm->cl.debug ? LOG_DEBUG : dm->cl.foreground ? LOG_INFO : LOG_WARNING);
		return 0;
	}
	dm->log_path = realpath(dm->opts.log_path, NULL);
	r = rfs_log_open(dm->log_path ? dm->log_path : dm->opts.log_path, false,
			 dm->cl.debug ? LOG_DEBUG : LOG_INFO);
	return r < 0 ? fail(dm->opts.log_path, strerror(-r)) : 0;
}

/* No VM found: say so on stderr, which the admin is looking at (and in
 * the log when it is a file), and what the likely mistake is. */
static void warn_no_vm(struct daemon *dm)
{
	char parent[PATH_MAX], msg[2 * PATH_MAX + 256];
	char *slash;

	if (dm->vm_folder) {
		snprintf(parent, sizeof(parent), "%s", dm->replica);
		slash = strrchr(parent, '/');
		if (slash)
			*(slash == parent ? slash + 1 : slash) = '\0';
		snprintf(msg, sizeof(msg),
			 "%s: no VM found; it holds disk files itself, so it looks like one VM's folder: "
			 "mount the folder above it (%s) instead (no state folder made, not followed)",
			 dm->replica, parent);
	} else {
		snprintf(msg, sizeof(msg),
			 "%s: no VM found (a VM is a folder of .vhdx/.vhd files in REPLICA_DIR); "
			 "new VM folders appear without a remount", dm->replica);
	}
	fprintf(stderr, "replicafs: warning: %s\n", msg);
	if (dm->opts.log_path)
		rfs_log(LOG_WARNING, "%s", msg);
}

/* Open: the store (every VM; broken ones are logged and shown in state 8)
 * and the tree over it. 0, or 1 after a one-line error. */
static int open_store(struct daemon *dm)
{
	/* With splice, reads come in 512 KiB pieces unless -o max_read says
	 * otherwise: a 1 MiB reply does not fit the largest pipe (libfuse needs
	 * the reply and 3 pages in it; /proc/sys/fs/pipe-max-size is 1 MiB), so
	 * a 1 MiB read would be copied, while two 512 KiB ones are spliced:
	 * 3.6 against 2.6 GB/s for 1 MiB O_DIRECT reads of a cached VHDX. */
	unsigned max_read = dm->opts.max_read ? dm->opts.max_read : dm->opts.splice ? 512u * 1024u : 0;
	struct rfs_fs_config fcfg = {
		.state_root_fd = dm->state_fd,
		.owner = dm->opts.uid != UINT32_MAX ? (uid_t)dm->opts.uid : getuid(),
		.group = dm->opts.gid != UINT32_MAX ? (gid_t)dm->opts.gid : getgid(),
		.umask_set = dm->opts.umask != UINT32_MAX,
		.umask = (mode_t)(dm->opts.umask & 0777),
		.splice = dm->opts.splice != 0,
		.max_read = max_read,
	};
	struct rfs_store_config scfg = { 0 };
	char fsname[PATH_MAX + 64];
	int r;

	if (rfs_fs_new(&fcfg, &dm->fs) < 0)
		return fail("replicafs", strerror(ENOMEM));
	scfg.replica_dir = dm->replica;
	scfg.state_dir = dm->state;
	scfg.mountpoint = dm->cl.mountpoint;
	scfg.rescan_ms = dm->opts.rescan_s * 1000;
	scfg.vm.state_root_fd = dm->state_fd;
	scfg.vm.max_handles = dm->opts.handles; /* 0 means 1 (vhd_image_open) */
	scfg.vm.open_wait_ms = OPEN_WAIT_MS;
	scfg.vm.hooks.changed = rfs_fs_disk_changed;
	scfg.reshaped = rfs_fs_reshaped;
	scfg.arg = dm->fs;
	cow_closer_hold(true); /* no thread of ours across fuse_daemonize()'s fork */
	r = rfs_store_open(&scfg, &dm->store);
	if (r < 0)
		return fail(dm->replica, strerror(-r));
	if (rfs_fs_attach(dm->fs, dm->store) < 0)
		return fail("replicafs", strerror(ENOMEM));
	rfs_log(LOG_INFO, "%zu VM(s) in %s, state in %s", rfs_store_count(dm->store), dm->replica,
		dm->vm_folder ? "none" : dm->state);
	if (rfs_store_count(dm->store) == 0)
		warn_no_vm(dm);
	snprintf(fsname, sizeof(fsname), "-ofsname=replicafs:%s,subtype=replicafs", dm->replica);
	if (fuse_opt_add_arg(&dm->args, fsname) != 0)
		return fail("replicafs", strerror(ENOMEM));
	if (max_read && !dm->opts.max_read) { /* our default: libfuse must mount with it */
		snprintf(fsname, sizeof(fsname), "-omax_read=%u", max_read);
		if (fuse_opt_add_arg(&dm->args, fsname) != 0)
			return fail("replicafs", strerror(ENOMEM));
	}
	return 0;
}

static void cleanup(struct daemon *dm)
{
	rfs_store_close(dm->store);
	rfs_fs_free(dm->fs); /* drops the tree's references: the VMs close */
	cow_wait_freed();    /* exit once reverted overlays have given back their space */
	free(dm->log_path);
	if (dm->state_fd >= 0)
		close(dm->state_fd);
	free(dm->cl.mountpoint);
	rfs_options_free(&dm->opts);
	fuse_opt_free_args(&dm->args);
	rfs_log_close();
}

int main(int argc, char *argv[])
{
	struct daemon dm = { .args = FUSE_ARGS_INIT(argc, argv), .state_fd = -1 };
	int ret;

	if (parse(&dm, &ret) == 0) {
		ret = prepare(&dm);
		if (ret == 0)
			ret = open_store(&dm);
		if (ret == 0)
			ret = serve(&dm);
	}
	cleanup(&dm);
	return ret;
}
