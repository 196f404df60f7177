#ifndef CNNSLICER_CINT8_H
#define CNNSLICER_CINT8_H

#include <stdint.h>

/// 1 when the processor has AVX-512 VNNI (8-bit dot products), else 0.
int cnns_i8_has_vnni(void);

/// out[r * mp + m] = sum over k of a[m][k] * b[r * k + k'] for rows r < rows and m < mp,
/// in exact 32-bit integer arithmetic (the same result on every path).
///
/// - packed: the signed 8-bit left matrix a (mp × k) as [mp / 64][k / 4][64][4]
///   (see cnns_i8_pack); mp a multiple of 64, k a multiple of 4.
/// - b: rows × k unsigned bytes, row-major; rows a multiple of 6.
/// - vector: nonzero to take the AVX-512 VNNI path, only where cnns_i8_has_vnni() says so.
void cnns_i8_gemm(const int8_t *packed, int mp, int k, const uint8_t *b, int rows, int32_t *out, int vector);

/// cnns_i8_gemm into `work`, then out[r * mp + m] = (scales[m] * step) * (float)(work[r * mp + m] - offsets[m]).
void cnns_i8_gemm_scaled(const int8_t *packed, int mp, int k, const uint8_t *b, int rows, int32_t *work,
                         const int32_t *offsets, const float *scales, float step, float *out, int vector);

/// Packs a row-major signed 8-bit matrix (mp × k) into the layout cnns_i8_gemm reads.
void cnns_i8_pack(const int8_t *a, int mp, int k, int8_t *packed);

#endif
