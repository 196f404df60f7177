// The module's functions are all static inline in include/CPrefetch.h; a C
// target needs one translation unit.
#include "CPrefetch.h"
