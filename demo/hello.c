/* C twin of hello.rs, for rows without a Rust std and for misbehaving test variants.
 *
 * Build: <triple>-gcc -O2 -DMAB_ARCH='"<rust ARCH>"' [-DMAB_BEHAVIOUR=MAB_EXIT_ONE] hello.c
 * MAB_ARCH is the row's Rust `ARCH` from the platform table (the builder passes it), so the
 * output matches hello.rs: `Hello from linux/<ARCH>!`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef MAB_ARCH
#error "pass the row's Rust ARCH as a string literal: -DMAB_ARCH='\"<ARCH>\"'"
#endif

/* Behaviours for run-check fixtures; the default is a well-behaved hello. */
#define MAB_HELLO 0
#define MAB_EXIT_ONE 1 /* prints the right hello, then exits 1 */
#define MAB_SLEEPER 2  /* forks a child that sleeps too, then sleeps forever */
#define MAB_FLOOD 3    /* prints the hello, then 100 MiB more to stdout, exits 0 */

#ifndef MAB_BEHAVIOUR
#define MAB_BEHAVIOUR MAB_HELLO
#endif

int main(void) {
    printf("Hello from linux/%s!\n", MAB_ARCH);
#if MAB_BEHAVIOUR == MAB_EXIT_ONE
    return 1;
#elif MAB_BEHAVIOUR == MAB_SLEEPER
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) {
        perror("fork");
        return 2;
    }
    if (child > 0) {
        /* Both PIDs, so a test can prove the whole process group died. */
        printf("sleeper parent=%ld child=%ld\n", (long)getpid(), (long)child);
        fflush(stdout);
    }
    for (;;) {
        sleep(3600);
    }
#elif MAB_BEHAVIOUR == MAB_FLOOD
    fflush(stdout);
    static char block[1 << 16];
    memset(block, 'x', sizeof block);
    for (size_t i = 63; i < sizeof block; i += 64) {
        block[i] = '\n';
    }
    for (long left = 100L << 20; left > 0; left -= (long)sizeof block) {
        size_t n = left < (long)sizeof block ? (size_t)left : sizeof block;
        if (fwrite(block, 1, n, stdout) != n) {
            return 3;
        }
    }
    return fflush(stdout) == 0 ? 0 : 3;
#else
    return 0;
#endif
}
