/* priv.h -- the checks that keep one local user from steering another's
 * manta: private directories (the session root, session directories, the
 * `latest` link) and the identity of a recorded pid before it is signalled.
 * The daemon, the C API and the Python package (through _manta) all use
 * these; there is no second copy. */
#ifndef MT_PRIV_H
#define MT_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The session root: $MANTA_TEMP_DIR, else /tmp/manta-<uid>.  Created 0700
 * if missing; refused (MANTA_EINVAL, the reason in manta_last_error()) if it
 * is a symbolic link, not a directory, or owned by another user; a root of
 * ours with a wider mode is narrowed to 0700. */
int mt_priv_root(char *out, size_t cap);

/* 0 if `dir` is a private directory of this user: not a symbolic link, a
 * directory, owned by the effective uid, no access for group or others.
 * Else MANTA_EINVAL (or MANTA_ENOENT if it does not exist) with the reason. */
int mt_priv_check_dir(const char *dir);

/* The session directory `root`/latest names, checked with
 * mt_priv_check_dir.  The link must name a session ("s-...") directly
 * inside `root` (absolute or relative); anything else is refused.
 * MANTA_ENOENT if there is no link. */
int mt_priv_latest(const char *root, char *out, size_t cap);

/* Field 22 of /proc/<pid>/stat: when the process started, in clock ticks
 * since boot.  With the pid it names one process for good (pids are
 * reused, this pair is not).  -1 if there is no such process. */
int64_t mt_proc_start_time(pid_t pid);

/* Whether `pid` is the process recorded as (pid, start): same start time,
 * and, when given, /proc/<pid>/exe is `exe` (a program replaced on disk
 * still counts) and its environment holds MANTA_SESSION_DIR=`session`. */
bool mt_proc_is(pid_t pid, int64_t start, const char *exe, const char *session);

/* Send `sig` to `pid` only if it is the recorded process (mt_proc_is).  A
 * pidfd holds the process while it is checked, so a pid reused in between
 * is never signalled.  0 if signalled; MANTA_ENOENT if it is not that
 * process (or is gone). */
int mt_proc_signal(pid_t pid, int64_t start, const char *exe, const char *session, int sig);

/* Send `sig` to every process listed in the pid file `path` (read with
 * mt_layout_pids_read: a line that is not "<pid> <start>" never matches)
 * that is still the process recorded there (mt_proc_signal with `exe`,
 * `session`).  Returns how many were signalled. */
int mt_proc_signal_listed(const char *path, const char *exe, const char *session, int sig);

#endif
