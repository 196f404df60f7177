// Fused binning and counting of one channel for the analysis (SlicerInfo's
// Accumulator), written with AVX-512 intrinsics because two instructions it
// leans on have no portable Swift spelling: vfpclassps (is the value NaN or
// infinite) and vpcompressd (drop the values of bin 0 — the zeros after a
// ReLU — before the scatter, and count them with a popcount instead).
// Processors without AVX-512 take SlicerInfo's portable Swift path; both
// give the bins of the definition exactly and are tested against each other.
#include "CBinning.h"
#include <math.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#define CNNS_HAVE_X86 1
#endif

int32_t cnns_reference_bin(float v, float lo, float hi, int32_t bins) {
    if (!isfinite(v)) return bins;
    if (hi == lo) return 0;
    double t = ((double)v - (double)lo) / ((double)hi - (double)lo) * (double)bins;
    double b = floor(t);
    if (b < 0) return 0;
    if (b >= (double)(bins - 1)) return bins - 1;
    return (int32_t)b;
}

int cnns_bin_has_avx512(void) {
#if defined(CNNS_NO_AVX512)
    // Built to stand in for a machine without AVX-512 (CNNSLICER_TARGET_CPU=baseline|haswell).
    return 0;
#elif defined(CNNS_HAVE_X86)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") ? 1 : 0;
#else
    return 0;
#endif
}

#ifdef CNNS_HAVE_X86
#define CNNS_TARGET __attribute__((target("avx512f,avx512dq,popcnt"), always_inline)) static inline

typedef struct {
    __m512 lo, scale, zero, top, one, lastEdge, band, e0, e1, e2, e3;
    __m512i last, bins, one_i, b32;
    float flo, fhi;
    int32_t nbins;
    int edges;
} binner;

CNNS_TARGET binner make_binner(const cnns_binning *p) {
    binner b;
    b.lo = _mm512_set1_ps(p->lo); b.scale = _mm512_set1_ps(p->scale);
    b.zero = _mm512_setzero_ps(); b.top = _mm512_set1_ps((float)p->bins);
    b.one = _mm512_set1_ps(1.0f); b.lastEdge = _mm512_set1_ps((float)(p->bins - 1));
    b.band = _mm512_set1_ps(p->band);
    b.e0 = _mm512_loadu_ps(p->edges); b.e1 = _mm512_loadu_ps(p->edges + 16);
    b.e2 = _mm512_loadu_ps(p->edges + 32); b.e3 = _mm512_loadu_ps(p->edges + 48);
    b.last = _mm512_set1_epi32(p->bins - 1); b.bins = _mm512_set1_epi32(p->bins);
    b.one_i = _mm512_set1_epi32(1); b.b32 = _mm512_set1_epi32(32);
    b.flo = p->lo; b.fhi = p->hi; b.nbins = p->bins;
    b.edges = p->bins <= 64 && p->edges[0] == -INFINITY;
    return b;
}

// The bins of 16 values (lanes outside `valid` are read as 0 and ignored).
CNNS_TARGET __m512i bin16(const binner *b, const float *x, __mmask16 valid) {
    __m512 v = _mm512_maskz_loadu_ps(valid, x);
    const __mmask16 nonFinite = _mm512_fpclass_ps_mask(v, 0x01 | 0x08 | 0x10 | 0x80);
    if (b->edges) {
        // k0 = floor((v − lo)·scale + band) is the bin of the definition or
        // one above it (the float32 error is below band, and 2·band < 1); the
        // lower edge of k0, looked up in registers, says which.
        __m512 t = _mm512_fmadd_ps(_mm512_sub_ps(v, b->lo), b->scale, b->band);
        __m512 c = _mm512_min_ps(_mm512_max_ps(t, b->zero), b->top);
        __m512i k = _mm512_min_epi32(_mm512_cvttps_epi32(c), b->last);
        __m512 edge = _mm512_permutex2var_ps(b->e0, k, b->e1);
        edge = _mm512_mask_mov_ps(edge, _mm512_test_epi32_mask(k, b->b32), _mm512_permutex2var_ps(b->e2, k, b->e3));
        k = _mm512_mask_sub_epi32(k, _mm512_cmp_ps_mask(v, edge, _CMP_LT_OQ), k, b->one_i);
        return _mm512_mask_mov_epi32(k, nonFinite, b->bins);
    }
    // More than 64 bins: the float32 bin, with the values that lie within the
    // band of an interior edge 1…bins−1 (t − round(t) is exact) or are not
    // finite settled by the definition.
    __m512 t = _mm512_mul_ps(_mm512_sub_ps(v, b->lo), b->scale);
    __m512 c = _mm512_min_ps(_mm512_max_ps(t, b->zero), b->top);
    __m512i k = _mm512_min_epi32(_mm512_cvttps_epi32(c), b->last);
    __m512 r = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 d = _mm512_abs_ps(_mm512_sub_ps(t, r));
    __mmask16 doubt = _mm512_cmp_ps_mask(r, b->one, _CMP_GE_OQ);
    doubt = _mm512_mask_cmp_ps_mask(doubt, r, b->lastEdge, _CMP_LE_OQ);
    doubt = _mm512_mask_cmp_ps_mask(doubt, d, b->band, _CMP_LT_OQ);
    doubt = (doubt | nonFinite) & valid;
    if (__builtin_expect(doubt != 0, 0)) {
        int32_t lanes[16];
        _mm512_storeu_si512(lanes, k);
        for (int l = 0; l < 16; l++)
            if (doubt & (1u << l)) lanes[l] = cnns_reference_bin(x[l], b->flo, b->fhi, b->nbins);
        k = _mm512_loadu_si512(lanes);
    }
    return k;
}

__attribute__((target("avx512f,avx512dq,popcnt")))
void cnns_bin_count_avx512(const float *x, long n, const cnns_binning *p, int32_t *hist, long stride, int subs,
                           int32_t *scratch) {
    const binner b = make_binner(p);
    long kept = 0, i = 0;
    const long whole = n & ~15L;
    const __mmask16 tail = (__mmask16)((1u << (n - whole)) - 1);
    if (p->skip_zero_bin) {
        // Values of bin 0 (the zeros after a ReLU) are counted by a popcount,
        // only the others kept for the scatter (compressed in a register: the
        // memory form of vpcompressd is slow on AMD).
        const __m512i zero = _mm512_setzero_si512();
        for (; i < whole; i += 16) {
            __m512i k = bin16(&b, x + i, 0xffff);
            __mmask16 keep = _mm512_cmpneq_epi32_mask(k, zero);
            _mm512_storeu_si512(scratch + kept, _mm512_maskz_compress_epi32(keep, k));
            kept += __builtin_popcount((unsigned)keep);
        }
        if (tail) {
            __m512i k = bin16(&b, x + i, tail);
            __mmask16 keep = _mm512_mask_cmpneq_epi32_mask(tail, k, zero);
            _mm512_storeu_si512(scratch + kept, _mm512_maskz_compress_epi32(keep, k));
            kept += __builtin_popcount((unsigned)keep);
        }
        hist[0] += (int32_t)(n - kept);
    } else {
        for (; i < whole; i += 16) _mm512_storeu_si512(scratch + i, bin16(&b, x + i, 0xffff));
        if (tail) _mm512_storeu_si512(scratch + i, bin16(&b, x + i, tail));
        kept = n;
    }
    // Values go round-robin to several sub-histograms: a run of one bin
    // would otherwise chain every increment through memory.
    int32_t *h0 = hist, *h1 = hist + stride, *h2 = hist + 2 * stride, *h3 = hist + 3 * stride;
    long j = 0;
    if (subs == 8) {
        int32_t *h4 = hist + 4 * stride, *h5 = hist + 5 * stride, *h6 = hist + 6 * stride, *h7 = hist + 7 * stride;
        for (; j + 8 <= kept; j += 8) {
            h0[scratch[j]]++; h1[scratch[j + 1]]++; h2[scratch[j + 2]]++; h3[scratch[j + 3]]++;
            h4[scratch[j + 4]]++; h5[scratch[j + 5]]++; h6[scratch[j + 6]]++; h7[scratch[j + 7]]++;
        }
    } else if (subs == 4) {
        for (; j + 4 <= kept; j += 4) {
            h0[scratch[j]]++; h1[scratch[j + 1]]++; h2[scratch[j + 2]]++; h3[scratch[j + 3]]++;
        }
    }
    for (; j < kept; j++) h0[scratch[j]]++;
}
#else
void cnns_bin_count_avx512(const float *x, long n, const cnns_binning *p, int32_t *hist, long stride, int subs,
                           int32_t *scratch) {
    (void)x; (void)n; (void)p; (void)hist; (void)stride; (void)subs; (void)scratch;
}
#endif
