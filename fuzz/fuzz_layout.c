/* fuzz_layout.c -- the session files' readers (mt_layout_info_parse,
 * mt_layout_pids_parse): another process wrote what they read.  An
 * accepted info must write back as text that parses to the same info;
 * a pid-file entry is always a pid above 1 with a start time. */
#include "fuzz.h"
#include "layout.h"

static void check_info(const uint8_t *data, size_t size)
{
    mt_layout_info a, b;
    if (mt_layout_info_parse((const char *)data, size, &a)) {
        FUZZ_CHECK(manta_last_error()[0] != '\0');
        return;
    }
    FUZZ_CHECK(a.pid > 1 && a.start >= 0 && a.port >= -1 && a.port <= 65535);
    FUZZ_CHECK(strlen(a.socket) < sizeof a.socket && strlen(a.exe) < sizeof a.exe);
    char text[3 * MT_LAYOUT_PATH_MAX];
    int len = snprintf(text, sizeof text,
                       "node_id=%s\nsocket=%s\nhost=%s\nport=%d\nhead=%d\npid=%d\nstart=%lld\n"
                       "exe=%s\n",
                       a.node_id, a.socket, a.host, a.port, a.head, (int)a.pid,
                       (long long)a.start, a.exe);
    FUZZ_CHECK(len > 0 && (size_t)len < sizeof text);
    FUZZ_CHECK(mt_layout_info_parse(text, (size_t)len, &b) == 0);
    FUZZ_CHECK(!strcmp(a.node_id, b.node_id) && !strcmp(a.socket, b.socket) &&
               !strcmp(a.host, b.host) && !strcmp(a.exe, b.exe) && a.port == b.port &&
               a.head == b.head && a.pid == b.pid && a.start == b.start);
}

FUZZ_EXPORT int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_info(data, size);
    mt_layout_pid *pids;
    size_t n;
    mt_layout_pids_parse((const char *)data, size, &pids, &n);
    FUZZ_CHECK(n <= size / 4 + 1); /* "2 0\n" is the shortest line */
    for (size_t i = 0; i < n; i++) FUZZ_CHECK(pids[i].pid > 1 && pids[i].start >= 0);
    free(pids);
    return 0;
}
