#ifndef CNNSLICER_CBINNING_H
#define CNNSLICER_CBINNING_H

#include <stdint.h>

/// 1 when the processor has the AVX-512 subsets cnns_bin_count's vector path uses (F, DQ), else 0.
int cnns_bin_has_avx512(void);

/// One channel's binning range in the form the float32 pass needs.
typedef struct {
    float lo, hi;
    /// bins / (hi − lo) rounded to float; 0 when hi == lo.
    float scale;
    /// Half-width of the band around an interior bin edge where the float32
    /// bin may differ from the double-precision definition (bins · 2⁻²¹).
    float band;
    int32_t bins;
    /// Nonzero to count bin 0 apart from the scatter: worth it where most
    /// values fall there (a range starting at 0, as after a ReLU).
    int32_t skip_zero_bin;
    /// For bins <= 64: edges[b] = the smallest float whose bin (by the
    /// definition) is at least b, for b = 1…bins−1; edges[0] = −∞ and the
    /// rest +∞. Unused (may be anything) for more bins.
    float edges[64];
} cnns_binning;

/// The definition of SPEC §3 in double precision, operation for operation as
/// SlicerInfo's referenceBin: bin in 0..<bins, or bins for a non-finite value.
int32_t cnns_reference_bin(float v, float lo, float hi, int32_t bins);

/// Bins n values exactly (SPEC §3) and adds each to one of `subs` (1, 4 or 8)
/// sub-histograms at hist + s·stride (slot `bins` counts the non-finite
/// values). `scratch` holds at least n + 16 int32.
///
/// The range must satisfy the float32 pass's assumptions (hi − lo ≤ FLT_MAX
/// and a normal scale, or hi == lo); SlicerInfo bins other ranges itself.
/// Only the vector path is here: call it where cnns_bin_has_avx512() says so.
void cnns_bin_count_avx512(const float *x, long n, const cnns_binning *p, int32_t *hist, long stride, int subs,
                           int32_t *scratch);

#endif
