#!/bin/sh
# Benign: compile a small C program with gcc and run it.
set -e
mkdir -p /tmp/build && cd /tmp/build
cat > hello.c <<'SRC'
#include <stdio.h>
int main(void) {
  long sum = 0;
  for (int i = 1; i <= 100; i++) sum += i;
  printf("sum=%ld\n", sum);
  return 0;
}
SRC
gcc -O2 -Wall -o hello hello.c
./hello
