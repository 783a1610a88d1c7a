/* sandbox: HubSpot, Shopify, Pipedrive and Dataverse emulated on 127.0.0.1.
 * See doc/sandbox.md.  Prints one line, "listening on http://127.0.0.1:PORT",
 * then serves until SIGTERM/SIGINT, stdin EOF (--stdin-lifetime) or
 * --max-seconds, so a crashed test harness never leaves it running. */
#include "sandbox.h"
#include "server.h"

#include <errno.h>
#include <microhttpd.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fputs("usage: sandbox [--port N] [--seed N] [--records SPEC] [--token T]\n"
          "               [--max-seconds S] [--faults SPEC] [--stdin-lifetime] [--unlimited] [--verbose]\n"
          "  --records  e.g. hubspot:contacts=10000,shopify:orders=500 (also all=N, shopify=N);\n"
          "             default 250 of every entity\n"
          "  --faults   e.g. rate_limit_every=5,retry_after=2,error_every=7,unauthorized=1,\n"
          "             slow_ms=20,truncate_every=3,fail_after=10,enforce_limits=1,system=hubspot\n"
          "  --token    the accepted credential for every system (default: sandbox-token)\n",
          f);
}

static int num_arg(const char *s, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || !*s || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    long long port = 0, seed = 1, max_seconds = 3600;
    const char *records = NULL, *faults = NULL, *token = "sandbox-token";
    int stdin_lifetime = 0;
    char err[200];

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
        if (strcmp(a, "--port") == 0 && v) {
            if (num_arg(v, 0, 65535, &port))
                goto bad;
        } else if (strcmp(a, "--seed") == 0 && v) {
            if (num_arg(v, 0, INT64_MAX, &seed))
                goto bad;
        } else if (strcmp(a, "--max-seconds") == 0 && v) {
            if (num_arg(v, 1, 365LL * 86400, &max_seconds))
                goto bad;
        } else if (strcmp(a, "--records") == 0 && v) {
            records = v;
        } else if (strcmp(a, "--faults") == 0 && v) {
            faults = v;
        } else if (strcmp(a, "--token") == 0 && v) {
            token = v;
        } else if (strcmp(a, "--unlimited") == 0) {
            SB.unlimited = 1;
            takes = 0;
        } else if (strcmp(a, "--stdin-lifetime") == 0) {
            stdin_lifetime = 1;
            takes = 0;
        } else if (strcmp(a, "--verbose") == 0) {
            SB.verbose = 1;
            takes = 0;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            goto bad;
        }
        i += takes;
        continue;
    bad:
        fprintf(stderr, "sandbox: bad argument '%s'%s%s\n", a, v ? " " : "", v ? v : "");
        usage(stderr);
        return 2;
    }
    if (!*token || strlen(token) >= sizeof SB.token) {
        fputs("sandbox: --token must be 1..511 characters\n", stderr);
        return 2;
    }
    if (sodium_init() < 0) {
        fputs("sandbox: libsodium failed to initialise\n", stderr);
        return 1;
    }

    pthread_mutex_init(&SB.mu, NULL);
    store_init(&SB.store, (uint64_t)seed);
    snprintf(SB.token, sizeof SB.token, "%s", token);
    SB.token_len = strlen(SB.token);
    for (int e = 0; e < E_COUNT; e++)
        SB.start_counts[e] = 250;
    if (records && records_parse(SB.start_counts, records, err, sizeof err)) {
        fprintf(stderr, "sandbox: --records: %s\n", err);
        return 2;
    }
    faults_default(&SB.start_faults);
    if (faults && faults_parse(&SB.start_faults, faults, err, sizeof err)) {
        fprintf(stderr, "sandbox: --faults: %s\n", err);
        return 2;
    }
    SB.faults = SB.start_faults;
    for (int e = 0; e < E_COUNT; e++)
        SB.store.e[e].count = SB.start_counts[e];

    /* Block the stop signals before MHD creates its threads, so they are
     * delivered only through the signalfd below. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sfd < 0) {
        perror("sandbox: signalfd");
        return 1;
    }

    struct MHD_Daemon *d = server_start((unsigned)port);
    if (!d) {
        fprintf(stderr, "sandbox: cannot listen on 127.0.0.1:%lld\n", port);
        close(sfd);
        return 1;
    }
    printf("listening on http://127.0.0.1:%u\n", SB.port);
    fflush(stdout);

    ms_t deadline = now_ms() + max_seconds * 1000;
    int why = 0;
    while (!why) {
        ms_t left = deadline - now_ms();
        if (left <= 0) {
            why = 1;
            break;
        }
        struct pollfd p[2] = {{sfd, POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
        int n = poll(p, stdin_lifetime ? 2 : 1, left > 60000 ? 60000 : (int)left);
        if (n < 0 && errno != EINTR) {
            perror("sandbox: poll");
            break;
        }
        if (n <= 0)
            continue;
        if (p[0].revents & POLLIN)
            why = 2;
        if (stdin_lifetime && p[1].revents) {
            char buf[256];
            ssize_t got = read(STDIN_FILENO, buf, sizeof buf);
            if (got <= 0 && !(got < 0 && errno == EINTR))
                why = 3;
        }
    }
    if (SB.verbose)
        fprintf(stderr, "sandbox: stopping (%s)\n",
                why == 1 ? "max-seconds" : why == 2 ? "signal" : why == 3 ? "stdin closed" : "error");
    MHD_stop_daemon(d);
    close(sfd);
    store_destroy(&SB.store);
    server_free();
    pthread_mutex_destroy(&SB.mu);
    return 0;
}
