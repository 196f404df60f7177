#ifndef CNNS_MALLOC_STATS_H
#define CNNS_MALLOC_STATS_H
#include <stddef.h>

/// Bytes the C allocator has handed out and not yet had back: glibc's
/// mallinfo2() uordblks (in use in every arena) plus hblkhd (blocks in their
/// own mappings). For the tests that hold the analysis's memory estimate to
/// what it really allocates (Swift's Glibc module does not import malloc.h).
size_t cnns_heap_bytes_in_use(void);

#endif
