/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fs/options.h - replicafs's own options (SPEC §1).
 *
 * One table in options.c describes each option: its spellings (--name=ARG
 * and the mount option -o name=ARG), argument name, default, valid range and
 * help text. The fuse_opt table that parses them, the list --help prints and
 * the OPTIONS section of docs/replicafs.1 are all produced from it, so they
 * cannot drift apart (the man page is rewritten by
 * `cmake --build BUILD --target man`; t_cli.sh checks it is up to date).
 */
#ifndef RFS_OPTIONS_H
#define RFS_OPTIONS_H

#include <stdio.h>

#include <fuse_opt.h>

/* What the command line asked for. Strings are owned (rfs_options_free). */
struct rfs_options {
	char *replica_dir;   /* first non-option argument */
	char *state_dir;     /* --state, -o state; NULL: REPLICA_DIR/.replicafs */
	char *log_path;      /* --log, -o log; NULL: stderr, then syslog */
	unsigned handles;    /* --handles, -o handles: 1..1024, default 8 */
	unsigned rescan_s;   /* --rescan, -o rescan: 1..3600, default 2 */
	unsigned poll_us;    /* --poll, -o poll: 0..1000 microseconds, default 32 */
	unsigned max_read;   /* libfuse's -o max_read=N (kept for it), 0: not given */
	unsigned splice;     /* --splice, -o splice: 0..1, default 1 */
	unsigned uid, gid;   /* --uid, --gid, -o uid, -o gid: UINT32_MAX when not given */
	unsigned umask;      /* --umask, -o umask: 0..0777, UINT32_MAX when not given */
	int show_help, show_version;
};

/*
 * Parse our options out of @args, leaving the FUSE ones (and MOUNTPOINT) in
 * it for fuse_parse_cmdline(). Unless help or version was asked for, the
 * options left are then tried on a throw-away libfuse session, so that an
 * option libfuse does not know is refused here, before anything is opened,
 * rather than by fuse_session_new() at mount time.
 * Returns 0, or -1 after printing one line "replicafs: <option>: <why>" to
 * stderr. @o is filled with the defaults first; free it either way.
 * libfuse's messages are captured meanwhile (fuse_set_log_func), and its
 * default logger is put back before returning.
 */
int rfs_options_parse(struct fuse_args *args, struct rfs_options *o);

/* Our option list as --help shows it (-h and -V are left to libfuse's list,
 * which --help prints after it). */
void rfs_options_help(FILE *out);

/* The roff of the man page's option list: ours, then libfuse's that the page
 * documents (the part of docs/replicafs.1 between its OPTIONS markers). */
void rfs_options_man(FILE *out);

void rfs_options_free(struct rfs_options *o);

#endif
