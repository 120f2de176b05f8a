/* An ordinary C program, through wasi-libc: reads a file of its `data`
   directory, writes another, lists the directory, reads its environment
   and the time, and reports what it saw on its `report` channel. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "compartment.h"

int main(int argc, char **argv) {
    char line[512];
    int32_t report = compartment_handle("report");
    if (report < 0) return 3;

    FILE *in = fopen("/data/in.txt", "r");
    if (!in) { compartment_say(report, "cannot open /data/in.txt"); return 1; }
    char text[64] = {0};
    size_t n = fread(text, 1, sizeof text - 1, in);
    fclose(in);

    FILE *out = fopen("/data/out.txt", "w");
    if (!out) { compartment_say(report, "cannot create /data/out.txt"); return 1; }
    for (size_t i = 0; i < n; i++) fputc(text[i] >= 'a' && text[i] <= 'z' ? text[i] - 32 : text[i], out);
    fclose(out);

    mkdir("/data/made", 0755);
    int entries = 0;
    DIR *dir = opendir("/data");
    struct dirent *entry;
    while (dir && (entry = readdir(dir))) {
        if (entry->d_name[0] != '.') entries++;
    }
    if (dir) closedir(dir);

    struct stat st;
    long size = stat("/data/out.txt", &st) == 0 ? (long)st.st_size : -1;
    const char *greeting = getenv("GREETING");
    int has_time = time(NULL) > 1700000000;
    FILE *ro = fopen("/docs/new.txt", "w");

    snprintf(line, sizeof line,
             "argv0=%s read=%s entries=%d size=%ld greeting=%s time=%d readonly_write=%s",
             argc > 0 ? argv[0] : "?", text, entries, size,
             greeting ? greeting : "(none)", has_time, ro ? "ALLOWED" : "refused");
    printf("%s\n", line);
    compartment_say(report, line);
    return 0;
}
