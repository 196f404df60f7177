#ifndef COPENBLAS_SHIM_H
#define COPENBLAS_SHIM_H
// Debian installs cblas.h under the flavour's include directory, which
// pkg-config adds to the search path.
#include <cblas.h>
// Declared by OpenBLAS but not by every cblas.h flavour; used to keep
// OpenBLAS single-threaded inside our own worker threads.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
// The kernel family OpenBLAS picked for this CPU ("Haswell", "SkylakeX", ...).
char *openblas_get_corename(void);
#endif
