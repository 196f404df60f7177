// Exact 8-bit matrix products for CAR's bounded shortcut (TapAblation.swift).
// The vector path uses AVX-512 VNNI (vpdpbusd: 64 byte products per
// instruction, four times the multiply-adds of 32-bit floats); every other
// processor takes the plain loop. Both give the same integers.
#include "CInt8.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#define CNNS_HAVE_X86 1
#endif

enum { ROWS_PER_BLOCK = 64, COLUMNS_PER_TILE = 6 };

void cnns_i8_pack(const int8_t *a, int mp, int k, int8_t *packed) {
    for (int mb = 0; mb < mp / ROWS_PER_BLOCK; mb++)
        for (int g = 0; g < k / 4; g++)
            for (int r = 0; r < ROWS_PER_BLOCK; r++)
                for (int t = 0; t < 4; t++)
                    packed[((mb * (k / 4) + g) * ROWS_PER_BLOCK + r) * 4 + t] = a[(mb * ROWS_PER_BLOCK + r) * k + 4 * g + t];
}

static void gemm_plain(const int8_t *packed, int mp, int k, const uint8_t *b, int rows, int32_t *out) {
    for (int r = 0; r < rows; r++) {
        const uint8_t *row = b + (long)r * k;
        for (int mb = 0; mb < mp / ROWS_PER_BLOCK; mb++) {
            const int8_t *block = packed + (long)mb * k * ROWS_PER_BLOCK;
            for (int i = 0; i < ROWS_PER_BLOCK; i++) {
                int32_t sum = 0;
                for (int g = 0; g < k / 4; g++)
                    for (int t = 0; t < 4; t++)
                        sum += (int32_t)block[(g * ROWS_PER_BLOCK + i) * 4 + t] * (int32_t)row[4 * g + t];
                out[(long)r * mp + mb * ROWS_PER_BLOCK + i] = sum;
            }
        }
    }
}

#ifdef CNNS_HAVE_X86
// 64 output rows × 6 columns held in 24 registers; each step multiplies four
// consecutive k of one column (a broadcast dword) with four 64-byte weight rows.
// (A 32 × 12 tile, with more broadcasts per weight load, measured 2.4× slower on Zen 5.)
__attribute__((target("avx512f,avx512bw,avx512vnni")))
static void tile_vnni(const int8_t *block, int k, const uint8_t *b, int32_t *out, int mp) {
    __m512i acc[4][COLUMNS_PER_TILE];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < COLUMNS_PER_TILE; j++) acc[i][j] = _mm512_setzero_si512();
    for (int g = 0; g < k / 4; g++) {
        __m512i w[4];
        for (int i = 0; i < 4; i++) w[i] = _mm512_loadu_si512(block + g * 256 + 64 * i);
        for (int j = 0; j < COLUMNS_PER_TILE; j++) {
            int32_t word;
            __builtin_memcpy(&word, b + (long)j * k + 4 * g, 4);
            __m512i x = _mm512_set1_epi32(word);
            for (int i = 0; i < 4; i++) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], x, w[i]);
        }
    }
    for (int j = 0; j < COLUMNS_PER_TILE; j++)
        for (int i = 0; i < 4; i++) _mm512_storeu_si512(out + (long)j * mp + 16 * i, acc[i][j]);
}

__attribute__((target("avx512f,avx512bw,avx512vnni")))
static void gemm_vnni(const int8_t *packed, int mp, int k, const uint8_t *b, int rows, int32_t *out) {
    // Weight blocks outside, column tiles inside: a 64-row block (64·k bytes)
    // stays in L1 while the tiles stream past it.
    for (int mb = 0; mb < mp / ROWS_PER_BLOCK; mb++) {
        const int8_t *block = packed + (long)mb * k * ROWS_PER_BLOCK;
        for (int r = 0; r < rows; r += COLUMNS_PER_TILE)
            tile_vnni(block, k, b + (long)r * k, out + (long)r * mp + mb * ROWS_PER_BLOCK, mp);
    }
}
#endif

void cnns_i8_gemm_scaled(const int8_t *packed, int mp, int k, const uint8_t *b, int rows, int32_t *work,
                         const int32_t *offsets, const float *scales, float step, float *out, int vector) {
    cnns_i8_gemm(packed, mp, k, b, rows, work, vector);
    // One rounding for the factor, one for the product: the bound's slack covers both.
    float factor[mp];
    for (int m = 0; m < mp; m++) factor[m] = scales[m] * step;
    for (int r = 0; r < rows; r++) {
        const int32_t *in = work + (long)r * mp;
        float *o = out + (long)r * mp;
        for (int m = 0; m < mp; m++) o[m] = factor[m] * (float)(in[m] - offsets[m]);
    }
}

int cnns_i8_has_vnni(void) {
#if defined(CNNS_NO_AVX512)
    // Built to stand in for a machine without AVX-512 (CNNSLICER_TARGET_CPU=baseline|haswell).
    return 0;
#elif defined(CNNS_HAVE_X86)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") ? 1 : 0;
#else
    return 0;
#endif
}

void cnns_i8_gemm(const int8_t *packed, int mp, int k, const uint8_t *b, int rows, int32_t *out, int vector) {
#ifdef CNNS_HAVE_X86
    if (vector) { gemm_vnni(packed, mp, k, b, rows, out); return; }
#endif
    (void)vector;
    gemm_plain(packed, mp, k, b, rows, out);
}
