/* Tests: run tools/sandbox as a child process on a loopback port.
 *
 * The sandbox prints its base URL on the first line of stdout and lives
 * while its stdin is open (--stdin-lifetime), so a crashed test never
 * leaves it behind; --max-seconds bounds it in any case. */
#ifndef TEST_SANDBOX_PROC_H
#define TEST_SANDBOX_PROC_H

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SANDBOX_TOKEN "sandbox-test-token"

struct sandbox {
    pid_t pid;
    int stdin_fd;
    char url[128];
};

/* Start `bin` with --token SANDBOX_TOKEN, the lifetime flags and `args`
 * (NULL-terminated, at most 8); 0 once sb->url holds the base URL. */
static int sandbox_spawn(struct sandbox *sb, const char *bin, const char *const *args)
{
    int out[2], in[2];
    memset(sb, 0, sizeof *sb);
    if (pipe(out) || pipe(in))
        return -1;
    const char *argv[20] = {bin, "--token", SANDBOX_TOKEN, "--max-seconds", "300", "--stdin-lifetime"};
    size_t n = 6;
    for (size_t i = 0; args && args[i] && i < 8; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    sb->pid = fork();
    if (sb->pid == 0) {
        dup2(out[1], 1);
        dup2(in[0], 0);
        close(out[0]);
        close(in[1]);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    close(in[0]);
    sb->stdin_fd = in[1];
    char line[256] = "";
    FILE *f = fdopen(out[0], "r");
    if (!f || !fgets(line, sizeof line, f)) {
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    const char *p = strstr(line, "http://");
    if (!p)
        return -1;
    snprintf(sb->url, sizeof sb->url, "%s", p);
    sb->url[strcspn(sb->url, "\r\n")] = '\0';
    return 0;
}

static void sandbox_stop(struct sandbox *sb)
{
    if (sb->pid > 0) {
        close(sb->stdin_fd);
        kill(sb->pid, SIGTERM);
        waitpid(sb->pid, NULL, 0);
        sb->pid = 0;
    }
}

#endif
