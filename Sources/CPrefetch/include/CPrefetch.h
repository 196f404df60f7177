#ifndef CPREFETCH_H
#define CPREFETCH_H

// Cache hints that Swift has no spelling for. Header-only and static inline,
// so that the Swift kernels compile each call to one instruction in place.

/// Fetches the cache line at `p` in anticipation of a write (PREFETCHW where
/// the target has it, a plain PREFETCHT0 otherwise); never faults.
static inline void cnns_prefetch_for_write(const void *p) { __builtin_prefetch(p, 1, 3); }

#endif
