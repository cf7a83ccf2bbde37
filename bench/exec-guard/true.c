// The static binary the storm executes.
int main(void) { return 0; }
