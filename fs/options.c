/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fs/options.c - the one table of replicafs's options, and what is made from
 * it: the fuse_opt table that parses them, the list --help prints, and the
 * OPTIONS section of the man page.
 *
 * Texts are plain, with roff font escapes as the only markup (\fB bold,
 * \fI italic, \fR roman): --help drops them, the man page keeps them.
 */
#define FUSE_USE_VERSION 312
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#include "options.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

enum rfs_opt_kind {
	RFS_OPT_PATH,   /* --name=ARG, -o name=ARG: a non-empty string (char *) */
	RFS_OPT_UINT,   /* --name=N, -o name=N: a number in min..max (unsigned), decimal
			 * or octal (.octal) */
	RFS_OPT_FLAG,   /* -x, --name: sets an int to 1 */
	RFS_OPT_FUSE,   /* libfuse's: parsed there, listed here for the man page */
};

struct rfs_opt {
	enum rfs_opt_kind kind;
	const char *shortname;  /* "-h", or NULL */
	const char *longname;   /* "--state" (without "=ARG"), or NULL */
	const char *mountname;  /* "state": also -o state=ARG; or NULL */
	const char *arg;        /* argument name ("DIR"); NULL for a flag */
	size_t offset;          /* of its field in struct rfs_options */
	unsigned min, max, def; /* RFS_OPT_UINT: valid range and default */
	bool octal;             /* RFS_OPT_UINT: written in octal (a umask) */
	const char *def_text;   /* the default in words (for a number: instead of
				 * def, which then lies outside the range), or NULL */
	bool in_fuse_help;      /* libfuse's --help lists it: ours leaves it out */
	const char *help;       /* what it does: a phrase, no full stop */
	const char *more;       /* man page only: sentences after it, or NULL */
};

#define FIELD(f) offsetof(struct rfs_options, f)

/* The table. Its order is the order of --help and of the man page. */
static const struct rfs_opt rfs_opts[] = {
	{
		.kind = RFS_OPT_PATH, .longname = "--state", .mountname = "state",
		.arg = "DIR", .offset = FIELD(state_dir),
		.def_text = "\\fIREPLICA_DIR\\fR/.replicafs",
		.help = "where overlays and the per-VM saved state are kept",
		.more = "Created if missing, but only inside an existing folder (a typo makes no\n"
			"fresh tree); never shown as a VM.\n"
			"It must be on a filesystem that reports holes (ext4, xfs, btrfs, tmpfs).",
	}, {
		.kind = RFS_OPT_PATH, .longname = "--log", .mountname = "log",
		.arg = "FILE", .offset = FIELD(log_path),
		.def_text = "stderr; once daemonised, syslog, or \\fISTATE\\fR/replicafs.log "
			    "where no syslog daemon listens",
		.help = "append log messages to \\fIFILE\\fR",
		.more = "Each command is logged once, after it ran, with its result code;\n"
			"a 32774 names the open file that prevented it.",
	}, {
		.kind = RFS_OPT_UINT, .longname = "--handles", .mountname = "handles",
		.arg = "N", .offset = FIELD(handles), .min = 1, .max = 1024, .def = 8,
		.help = "accepted for compatibility and ignored: disks are read with pread(2) "
			"from their block maps, by any number of readers at once",
	}, {
		.kind = RFS_OPT_UINT, .longname = "--rescan", .mountname = "rescan",
		.arg = "SECONDS", .offset = FIELD(rescan_s), .min = 1, .max = 3600, .def = 2,
		.help = "interval of the periodic rescan of the replica folder, for shared "
			"file systems that do not deliver inotify events",
	}, {
		.kind = RFS_OPT_UINT, .longname = "--poll", .mountname = "poll",
		.arg = "MICROSECONDS", .offset = FIELD(poll_us), .min = 0, .max = 1000, .def = 32,
		.help = "one worker, the leader, reads /dev/fuse, serves reads and small "
			"writes itself and polls the device for at most this long before it sleeps, "
			"a window that adapts to how far apart requests come (none when idle); "
			"0: every worker sleeps in read(2), libfuse's own loop",
		.more = "A request then finds the leader awake instead of waking a sleeping worker:\n"
			"4 KiB reads at queue depth one, files cached, about +30% here (README,\n"
			"\"Performance\"). Anything that may wait (a read of the disk, fsync, a\n"
			"command) is handed to another worker first. While a fifth or more of the\n"
			"reads miss the page cache, every worker reads the device (no leader).",
	}, {
		.kind = RFS_OPT_UINT, .longname = "--splice", .mountname = "splice",
		.arg = "0|1", .offset = FIELD(splice), .min = 0, .max = 1, .def = 1,
		.help = "answer reads of 64 KiB or more whose bytes lie in one file (a fixed "
			"image, an allocated block, the overlay) with splice(2), without copying "
			"them through replicafs, and have the kernel send reads of at most 512 KiB "
			"(\\fB-o max_read\\fR, unless given) so that larger ones are spliced in pieces; "
			"0 copies every read",
	}, {
		.kind = RFS_OPT_UINT, .longname = "--uid", .mountname = "uid",
		.arg = "N", .offset = FIELD(uid), .min = 0, .max = UINT32_MAX - 1, .def = UINT32_MAX,
		.def_text = "the mounting user",
		.help = "owner shown on every file of the tree: besides root, the one user "
			"who may open disks and write \\fIcontrol\\fR (needs \\fB-o allow_other\\fR "
			"when it is not the mounting user)",
	}, {
		.kind = RFS_OPT_UINT, .longname = "--gid", .mountname = "gid",
		.arg = "N", .offset = FIELD(gid), .min = 0, .max = UINT32_MAX - 1, .def = UINT32_MAX,
		.def_text = "the mounting user's group",
		.help = "group shown on every file of the tree; its members have the group "
			"bits that \\fB-o umask\\fR leaves",
	}, {
		.kind = RFS_OPT_UINT, .longname = "--umask", .mountname = "umask",
		.arg = "OCTAL", .offset = FIELD(umask), .min = 0, .max = 0777, .def = UINT32_MAX,
		.octal = true,
		.def_text = "077 on disks and \\fIcontrol\\fR, 0 on the rest",
		.help = "permission bits taken away from every file and folder of the tree, "
			"whose modes are otherwise what each node allows to all: folders 0555, "
			"disks 0444 (0666 when failed over), \\fIcontrol\\fR 0222, the other "
			"control files 0444",
		.more = "Group and other bits then work as on any file: \\fB-o gid=\\fIN\\fB,umask=007\\fR "
			"lets group \\fIN\\fR fail over, write and revert the VMs.",
	}, {
		.kind = RFS_OPT_FUSE, .shortname = "-f", .in_fuse_help = true,
		.help = "stay in the foreground",
	}, {
		.kind = RFS_OPT_FUSE, .shortname = "-d", .mountname = "debug", .in_fuse_help = true,
		.help = "print every FUSE request (implies \\fB-f\\fR)",
	}, {
		.kind = RFS_OPT_FUSE, .shortname = "-s", .in_fuse_help = true,
		.help = "serve requests with a single thread",
	}, {
		.kind = RFS_OPT_FUSE, .shortname = "-o", .arg = "OPT\\fR[,\\fIOPT\\fR...]",
		.in_fuse_help = true,
		.help = "FUSE mount options, e.g. \\fBallow_other\\fR (other users may list the "
			"tree and read \\fIstatus\\fR and \\fIstate\\fR; disks and \\fIcontrol\\fR "
			"stay the owner's and root's), \\fBro\\fR, "
			"\\fBmax_threads=\\fIN\\fR, \\fBclone_fd\\fR; see \\fBmount.fuse3\\fR(8)",
		.more = "The options of replicafs above are mount options too "
			"(\\fB-o state=\\fIDIR\\fB,handles=\\fIN\\fR), so that an "
			"\\fI/etc/fstab\\fR line can say everything.",
	}, {
		.kind = RFS_OPT_FLAG, .shortname = "-h", .longname = "--help",
		.offset = FIELD(show_help), .in_fuse_help = true,
		.help = "print a summary of the options and exit",
	}, {
		.kind = RFS_OPT_FLAG, .shortname = "-V", .longname = "--version",
		.offset = FIELD(show_version), .in_fuse_help = true,
		.help = "print the version, and those of libfuse and libvhdi, and exit",
	},
};

#define NOPTS ARRAY_SIZE(rfs_opts)
#define TEMPLATES_PER_OPT 5 /* -x, --name, --name=, name, name= */
#define TEMPLATE_MAX 32

/* ---- texts ------------------------------------------------------------ */

/* Append to @buf (of @size) as snprintf would; never overflows. */
static void append(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;

	if (len + 1 >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

/* @s without its font escapes, for --help. In place. */
static void strip_markup(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] == 'f' && s[2]) {
			s += 2;
			continue;
		}
		*out++ = *s;
	}
	*out = '\0';
}

/* One spelling, with markup: "\fB--state=\fIDIR\fR" (@sep "="), "\fB-f\fR". */
static void spell(char *buf, size_t size, const char *prefix, const char *name, const char *sep,
		  const char *arg)
{
	if (arg)
		snprintf(buf, size, "\\fB%s%s%s\\fI%s\\fR", prefix, name, sep, arg);
	else
		snprintf(buf, size, "\\fB%s%s\\fR", prefix, name);
}

/* The spellings of @opt: -x, --name, -o name. Returns how many (at most 3). */
static int spellings(const struct rfs_opt *opt, char out[3][96])
{
	int n = 0;

	if (opt->shortname)
		spell(out[n++], 96, "", opt->shortname, " ", opt->arg);
	if (opt->longname)
		spell(out[n++], 96, "", opt->longname, "=", opt->arg);
	if (opt->mountname)
		spell(out[n++], 96, "-o ", opt->mountname, "=", opt->arg);
	return n;
}

/* What @opt does, with its default and range: the help phrase, then e.g.
 * " (default 8, 1..1024)". With markup. */
static void describe(const struct rfs_opt *opt, char *buf, size_t size)
{
	snprintf(buf, size, "%s", opt->help);
	if (opt->kind == RFS_OPT_UINT && opt->def_text)
		append(buf, size, opt->octal ? " (default %s; %#o..%#o)" : " (default %s; %u..%u)",
		       opt->def_text, opt->min, opt->max);
	else if (opt->kind == RFS_OPT_UINT)
		append(buf, size, " (default %u, %u..%u)", opt->def, opt->min, opt->max);
	else if (opt->def_text)
		append(buf, size, " (default %s)", opt->def_text);
}

/* ---- --help ------------------------------------------------------------- */

#define HELP_INDENT 4
#define HELP_COLUMN 27 /* where libfuse's help starts its descriptions */
#define HELP_WIDTH 79

/* The next line of at most @width columns of *@s, broken at a blank: sets
 * *@line and returns its length; *@s moves past it and the blanks after. */
static size_t next_line(const char **s, size_t width, const char **line)
{
	const char *p = *s;
	size_t len = strlen(p);

	if (len > width) {
		len = width;
		while (len > 0 && p[len] != ' ')
			len--;
		if (len == 0) /* one word longer than the line */
			len = strcspn(p, " ");
	}
	*line = p;
	p += len;
	while (*p == ' ')
		p++;
	*s = p;
	return len;
}

/* One option: its spellings down the left column, its description wrapped
 * in the right one, as libfuse lays out its own. */
static void help_entry(FILE *out, const struct rfs_opt *opt)
{
	char spell[3][96], text[512];
	const char *p = text, *line;
	int nspell = spellings(opt, spell);
	size_t len;

	describe(opt, text, sizeof(text));
	strip_markup(text);
	for (int i = 0; i < nspell || *p; i++) {
		const char *left = "";

		if (i < nspell) {
			strip_markup(spell[i]);
			left = spell[i];
		}
		len = next_line(&p, HELP_WIDTH - HELP_COLUMN, &line);
		if (len)
			fprintf(out, "%*s%-*s %.*s\n", HELP_INDENT, "", HELP_COLUMN - HELP_INDENT - 1,
				left, (int)len, line);
		else
			fprintf(out, "%*s%s\n", HELP_INDENT, "", left);
	}
}

void rfs_options_help(FILE *out)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (!rfs_opts[i].in_fuse_help)
			help_entry(out, &rfs_opts[i]);
}

/* ---- the man page ------------------------------------------------------- */

/* @s as roff text: font escapes kept, other backslashes printed, a '-' that
 * starts a word (an option name: "-f", "--state") as "\-" so that it is not
 * typeset as a hyphen, and a line's leading '.' or '\'' not taken for a
 * request. */
static void roff_puts(FILE *out, const char *s)
{
	char prev = '\n'; /* the last character printed, font escapes aside */

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] == 'f' && s[2]) {
			fwrite(s, 1, 3, out);
			s += 2;
			continue;
		}
		if (prev == '\n' && (*s == '.' || *s == '\''))
			fputs("\\&", out);
		if (*s == '\\')
			fputs("\\e", out);
		else if (*s == '-' && !isalnum((unsigned char)prev))
			fputs("\\-", out);
		else
			fputc(*s, out);
		prev = *s;
	}
}

/* One option as a tagged paragraph: its spellings, then what it does as a
 * sentence, then the man page's further sentences. */
static void man_entry(FILE *out, const struct rfs_opt *opt)
{
	char spell[3][96], text[512];
	int nspell = spellings(opt, spell);

	fputs(".TP\n", out);
	for (int i = 0; i < nspell; i++) {
		roff_puts(out, spell[i]);
		fputs(i + 1 < nspell ? ", " : "\n", out);
	}
	describe(opt, text, sizeof(text));
	text[0] = (char)toupper((unsigned char)text[0]);
	append(text, sizeof(text), ".");
	if (opt->more)
		append(text, sizeof(text), "\n%s", opt->more);
	roff_puts(out, text);
	fputc('\n', out);
}

void rfs_options_man(FILE *out)
{
	for (size_t i = 0; i < NOPTS; i++)
		man_entry(out, &rfs_opts[i]);
}

/* ---- parsing ------------------------------------------------------------ */

struct parse_ctx {
	struct rfs_options *o;
	int nonopts;  /* non-option arguments seen */
	bool told;    /* the error line was printed already */
	unsigned max_read; /* libfuse's -o max_read=N, read on its way there */
};

/* What libfuse logged (errors only) while we parsed or tried options.
 * Options are parsed once, by main() alone, before any thread starts. */
static char fuse_said[512];

static void capture_log(enum fuse_log_level level, const char *fmt, va_list ap)
{
	size_t len = strlen(fuse_said);

	if (level <= FUSE_LOG_ERR && len + 1 < sizeof(fuse_said))
		vsnprintf(fuse_said + len, sizeof(fuse_said) - len, fmt, ap);
}

/* Print "replicafs: <name>: <why>" on one line. Returns -1. */
static int refuse(const char *name, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "replicafs: %s: ", name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

/* The option @arg as the user wrote it: fuse_opt hands over a mount option
 * without its "-o ". */
static const char *as_written(const char *arg, char *buf, size_t size)
{
	if (arg[0] == '-')
		return arg;
	snprintf(buf, size, "-o %s", arg);
	return buf;
}

/* Refuse option @name (NULL: the command line) for the reason libfuse
 * logged, in our words where we know its message, on one line. Returns -1. */
static int refuse_as_fuse_said(const char *name)
{
	char *why = fuse_said;

	if (!strncmp(why, "fuse: ", 6))
		why += 6;
	why[strcspn(why, "\n")] = '\0';
	if (strstr(why, "unknown option"))
		why = "unknown option";
	else if (strstr(why, "invalid parameter"))
		why = "invalid value";
	else if (!*why)
		why = "not accepted by libfuse";
	if (name)
		return refuse(name, "%s", why);
	fprintf(stderr, "replicafs: %s\n", why);
	return -1;
}

/* A number (decimal, or octal for a .octal option) in @opt's range into
 * *@field; 0 or -1 after saying why. */
static int set_uint(unsigned *field, const char *value, const struct rfs_opt *opt, const char *name)
{
	const char *range = opt->octal ? "%s (%#o..%#o)" : "%s (%u..%u)";
	const char *nan = opt->octal ? "not an octal number" : "not a number";
	unsigned long v;
	char *end;

	if (!isdigit((unsigned char)*value))
		return refuse(name, range, nan, opt->min, opt->max);
	errno = 0;
	v = strtoul(value, &end, opt->octal ? 8 : 10);
	if (*end)
		return refuse(name, range, nan, opt->min, opt->max);
	if (errno == ERANGE || v < opt->min || v > opt->max)
		return refuse(name, range, "out of range", opt->min, opt->max);
	*field = (unsigned)v;
	return 0;
}

/* Store what @arg (a spelling of @opt, e.g. "--handles=4" or "handles=4")
 * says into @o. 0, or -1 after printing why not. */
static int set_option(struct rfs_options *o, const struct rfs_opt *opt, const char *arg)
{
	void *field = (char *)o + opt->offset;
	const char *value = strchr(arg, '=');
	char **str = field, buf[256];
	const char *name = as_written(arg, buf, sizeof(buf));

	if (opt->kind == RFS_OPT_FLAG) {
		*(int *)field = 1;
		return 0;
	}
	if (!value || !value[1])
		return refuse(name, "needs a value: %s%s=%s", arg[0] == '-' ? "" : "-o ",
			      arg[0] == '-' ? opt->longname : opt->mountname, opt->arg);
	value++;
	if (opt->kind == RFS_OPT_UINT)
		return set_uint(field, value, opt, name);
	free(*str); /* the last one given counts */
	*str = strdup(value);
	return *str ? 0 : refuse(name, "%s", strerror(ENOMEM));
}

/* REPLICA_DIR is ours; MOUNTPOINT is left for fuse_parse_cmdline(). */
static int take_nonopt(struct parse_ctx *ctx, const char *arg)
{
	switch (ctx->nonopts++) {
	case 0:
		ctx->o->replica_dir = strdup(arg);
		return ctx->o->replica_dir ? 0 : refuse(arg, "%s", strerror(ENOMEM));
	case 1:
		return 1;
	default:
		return refuse(arg, "one argument too many (usage: replicafs [options] REPLICA_DIR MOUNTPOINT)");
	}
}

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct parse_ctx *ctx = data;
	int ret;

	if (key == FUSE_OPT_KEY_NONOPT)
		ret = take_nonopt(ctx, arg);
	else if (key < 0)
		return 1; /* libfuse's, or unknown: check_fuse_options() */
	else
		ret = set_option(ctx->o, &rfs_opts[key], arg);
	if (ret < 0)
		ctx->told = true;
	return ret;
}

/* The fuse_opt table made from rfs_opts: every spelling of each option,
 * keyed by its index (opt_proc checks and stores the value). "--name" and
 * "name" without a value are matched too, to say that one is needed. */
static void make_fuse_table(struct fuse_opt *table, char (*templ)[TEMPLATE_MAX])
{
	int n = 0;

	for (size_t i = 0; i < NOPTS; i++) {
		const struct rfs_opt *opt = &rfs_opts[i];
		const char *names[] = { opt->shortname, opt->longname, opt->mountname };

		if (opt->kind == RFS_OPT_FUSE)
			continue;
		for (size_t j = 0; j < ARRAY_SIZE(names); j++) {
			if (!names[j])
				continue;
			snprintf(templ[n], TEMPLATE_MAX, "%s", names[j]);
			table[n] = (struct fuse_opt)FUSE_OPT_KEY(templ[n], (int)i);
			n++;
			if (opt->arg && j > 0) {
				snprintf(templ[n], TEMPLATE_MAX, "%s=", names[j]);
				table[n] = (struct fuse_opt)FUSE_OPT_KEY(templ[n], (int)i);
				n++;
			}
		}
	}
	/* libfuse's -o max_read=N, also read here: our init() must repeat it
	 * to libfuse (or the session ends with EPROTO at INIT). */
	table[n++] = (struct fuse_opt){ "max_read=%u", offsetof(struct parse_ctx, max_read), 0 };
	table[n++] = (struct fuse_opt)FUSE_OPT_KEY("max_read=", FUSE_OPT_KEY_KEEP);
	table[n] = (struct fuse_opt)FUSE_OPT_END;
}

static void set_defaults(struct rfs_options *o)
{
	memset(o, 0, sizeof(*o));
	for (size_t i = 0; i < NOPTS; i++)
		if (rfs_opts[i].kind == RFS_OPT_UINT)
			*(unsigned *)((char *)o + rfs_opts[i].offset) = rfs_opts[i].def;
}

/* ---- libfuse's options, tried early ----------------------------------- */

/*
 * Whether libfuse takes the options @argv[0..@argc) (no non-options) as
 * fuse_parse_cmdline() and fuse_session_new() will at mount time: 0, or -1
 * with its reason in fuse_said. A session is made and destroyed; nothing is
 * opened or mounted.
 */
static int fuse_takes(const char *prog, char **argv, int argc)
{
	struct fuse_args a = FUSE_ARGS_INIT(0, NULL);
	struct fuse_lowlevel_ops ops = { 0 };
	struct fuse_cmdline_opts cl;
	struct fuse_session *se;
	int ret = -1;

	fuse_said[0] = '\0';
	if (fuse_opt_add_arg(&a, prog) != 0)
		goto out;
	for (int i = 0; i < argc; i++)
		if (fuse_opt_add_arg(&a, argv[i]) != 0)
			goto out;
	if (fuse_parse_cmdline(&a, &cl) != 0)
		goto out;
	free(cl.mountpoint);
	se = fuse_session_new(&a, &ops, sizeof(ops), NULL);
	if (se) {
		fuse_session_destroy(se);
		ret = 0;
	}
out:
	fuse_opt_free_args(&a);
	return ret;
}

/* Try each option of the -o group @group alone (split at commas that are
 * not escaped): 0, or -1 after refusing the first that libfuse does not take. */
static int check_option_group(const char *prog, const char *group)
{
	char piece[256], option[260], *argv[2] = { "-o", piece };
	const char *p = group;

	while (*p) {
		size_t len = 0;

		while (p[len] && p[len] != ',')
			len += p[len] == '\\' && p[len + 1] ? 2 : 1;
		snprintf(piece, sizeof(piece), "%.*s", (int)len, p);
		if (len && fuse_takes(prog, argv, 2) < 0) {
			snprintf(option, sizeof(option), "-o %s", piece);
			return refuse_as_fuse_said(option);
		}
		p += len + (p[len] == ',');
	}
	return 0;
}

/*
 * What fuse_opt_parse() left in @args is libfuse's: try it all at once (the
 * usual case: it is fine); if libfuse refuses, find and name the option it
 * refuses by trying each alone. Non-options (MOUNTPOINT) are left out.
 */
static int check_fuse_options(const struct fuse_args *args)
{
	char **opts = calloc(args->argc ? args->argc : 1, sizeof(*opts));
	int n = 0, ret = 0;

	if (!opts)
		return refuse_as_fuse_said(NULL);
	for (int i = 1; i < args->argc && strcmp(args->argv[i], "--"); i++) {
		if (!strcmp(args->argv[i], "-o") && i + 1 < args->argc) {
			opts[n++] = args->argv[i++];
			opts[n++] = args->argv[i];
		} else if (args->argv[i][0] == '-') {
			opts[n++] = args->argv[i];
		}
	}
	if (fuse_takes(args->argv[0], opts, n) == 0)
		goto out;
	ret = -1;
	for (int i = 0; i < n; i++) {
		if (!strcmp(opts[i], "-o")) {
			if (check_option_group(args->argv[0], opts[++i]) < 0)
				goto out;
		} else if (fuse_takes(args->argv[0], &opts[i], 1) < 0) {
			refuse_as_fuse_said(opts[i]);
			goto out;
		}
	}
	fuse_takes(args->argv[0], opts, n); /* only together: libfuse's words */
	refuse_as_fuse_said(NULL);
out:
	free(opts);
	return ret;
}

int rfs_options_parse(struct fuse_args *args, struct rfs_options *o)
{
	struct fuse_opt table[NOPTS * TEMPLATES_PER_OPT + 3];
	char templ[NOPTS * TEMPLATES_PER_OPT][TEMPLATE_MAX];
	struct parse_ctx ctx = { .o = o };
	int ret;

	set_defaults(o);
	make_fuse_table(table, templ);
	fuse_said[0] = '\0';
	fuse_set_log_func(capture_log); /* one line of ours, not libfuse's */
	ret = fuse_opt_parse(args, &ctx, table, opt_proc);
	o->max_read = ctx.max_read;
	if (ret != 0 && !ctx.told)
		refuse_as_fuse_said(NULL);
	else if (ret == 0 && !o->show_help && !o->show_version)
		ret = check_fuse_options(args);
	fuse_set_log_func(NULL); /* libfuse's own again */
	return ret ? -1 : 0;
}

void rfs_options_free(struct rfs_options *o)
{
	free(o->replica_dir);
	o->replica_dir = NULL;
	for (size_t i = 0; i < NOPTS; i++) {
		if (rfs_opts[i].kind == RFS_OPT_PATH) {
			char **str = (char **)((char *)o + rfs_opts[i].offset);

			free(*str);
			*str = NULL;
		}
	}
}

#ifdef RFS_OPTIONS_MAN_MAIN
/*
 * replicafs-man-options [PAGE]: print the man page's option list, or rewrite
 * the lines of PAGE between its two marker comments with it (the "man"
 * target). t_cli.sh checks that the committed page would not change.
 */
static const char man_begin[] = ".\\\" OPTIONS: generated from fs/options.c (cmake --build BUILD --target man)\n";
static const char man_end[] = ".\\\" OPTIONS: end of the generated text\n";

/* Copy @in to @out with the option list between the markers: 0, or -1 if
 * a marker is missing. */
static int splice_options(FILE *in, FILE *out)
{
	enum { BEFORE, INSIDE, AFTER } where = BEFORE;
	char *line = NULL;
	size_t cap = 0;

	while (getline(&line, &cap, in) > 0) {
		if (where == INSIDE && !strcmp(line, man_end))
			where = AFTER;
		if (where != INSIDE)
			fputs(line, out);
		if (where == BEFORE && !strcmp(line, man_begin)) {
			rfs_options_man(out);
			where = INSIDE;
		}
	}
	free(line);
	return where == AFTER ? 0 : -1;
}

/* Write PAGE.tmp, then rename it over PAGE. */
static int rewrite_page(const char *page)
{
	char tmp[4096];
	FILE *in, *out;
	int ret;

	snprintf(tmp, sizeof(tmp), "%s.tmp", page);
	in = fopen(page, "r");
	if (!in) {
		perror(page);
		return 1;
	}
	out = fopen(tmp, "w");
	if (!out) {
		perror(tmp);
		fclose(in);
		return 1;
	}
	ret = splice_options(in, out);
	fclose(in);
	if (fclose(out) != 0 || ret < 0) {
		fprintf(stderr, "replicafs-man-options: %s: %s\n", page,
			ret < 0 ? "no OPTIONS marker comments" : strerror(errno));
		unlink(tmp);
		return 1;
	}
	if (rename(tmp, page) < 0) {
		perror(page);
		unlink(tmp);
		return 1;
	}
	return 0;
}

int main(int argc, char *argv[])
{
	if (argc > 2) {
		fprintf(stderr, "usage: replicafs-man-options [PAGE]\n");
		return 2;
	}
	if (argc == 2)
		return rewrite_page(argv[1]);
	rfs_options_man(stdout);
	return 0;
}
#endif
