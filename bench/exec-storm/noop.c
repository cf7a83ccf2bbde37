// The cheapest program to exec: static, no libc start-up beyond _start's, exits 0.
// Used where a test or benchmark needs many execs and the child's own cost is noise
// (under qemu TCG a dynamic /bin/true spends most of its time in ld.so).
int main(void) { return 0; }
