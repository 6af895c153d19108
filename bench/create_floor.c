/* driftless-create-floor ROOT N
 *
 * The floor of creating N files atomically: what any tool that writes a file as a temporary
 * file and renames it over its path pays at least. Writes ROOT/dNNN/fNNNNNN.txt, the bytes and
 * the layout of driftless-gen-repo (1,000 files per folder, mode 0644), one thread, each file
 * as openat(O_CREAT | O_EXCL) of a temporary name + write + fchmod + close + renameat, relative
 * to a descriptor of its folder opened once. No fsync, as driftless does not either. ROOT must
 * not hold the files yet. Prints nothing; exit status 0 when every file was written. */

#define _GNU_SOURCE /* O_PATH */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int Fail(const char* what, const char* name) {
  fprintf(stderr, "driftless-create-floor: %s %s: %s\n", what, name, strerror(errno));
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: driftless-create-floor ROOT N\n");
    return 2;
  }
  long n = strtol(argv[2], NULL, 10);
  if (n <= 0 || n > 1000000) {
    fprintf(stderr, "driftless-create-floor: N must be from 1 to 1000000\n");
    return 2;
  }
  if (mkdir(argv[1], 0755) != 0 && errno != EEXIST) return Fail("cannot create", argv[1]);
  int root = open(argv[1], O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return Fail("cannot open", argv[1]);
  int dir = -1;
  char name[64], tmp[96], content[128];
  for (long i = 0; i < n; ++i) {
    if (i % 1000 == 0) {
      snprintf(name, sizeof name, "d%03ld", i / 1000);
      if (mkdirat(root, name, 0755) != 0 && errno != EEXIST) return Fail("cannot create", name);
      if (dir >= 0) close(dir);
      dir = openat(root, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (dir < 0) return Fail("cannot open", name);
    }
    snprintf(name, sizeof name, "f%06ld.txt", i);
    snprintf(tmp, sizeof tmp, ".%s.tmp-%ld", name, i);
    int len = snprintf(content, sizeof content,
                       "driftless benchmark file %06ld\nmanaged by driftless; do not edit (%06ld)\n",
                       i, i);
    int fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return Fail("cannot create", tmp);
    if (write(fd, content, (size_t)len) != len) return Fail("cannot write", tmp);
    if (fchmod(fd, 0644) != 0) return Fail("cannot chmod", tmp);
    if (close(fd) != 0) return Fail("cannot close", tmp);
    if (renameat(dir, tmp, dir, name) != 0) return Fail("cannot rename", tmp);
  }
  return 0;
}
