// Linked with one floor's library whole (every object file, called or not) and only the floors below it:
// when any code of that floor calls a floor above, this program fails to link (CMakeLists.txt,
// LIVERNET_CHECK_FLOORS). It is never run.
int main() { return 0; }
