/* ---- AVX2 + FMA kernels: compiled only for a host that has them (-march=native, or
 * -mavx2 -mfma); everywhere else the engine's portable C below does the same maths. ---- */
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define EDGERNN_AVX2 1

/* Eight weights as floats: int8 widened in one instruction, fp32 loaded as they are. */
static __m256 load8(const edgernn_weight *w)
{
#if EDGERNN_INT8
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)w)));
#else
    return _mm256_loadu_ps(w);
#endif
}

/* One row: what is left of a matrix whose rows are not a multiple of eight. */
static float dot(const edgernn_weight *w, int32_t cols, const float *x)
{
    __m256 a = _mm256_setzero_ps();
    __m128 s;
    float sum;
    int32_t k;
    for (k = 0; k + 8 <= cols; k += 8) {
        a = _mm256_fmadd_ps(load8(w + k), _mm256_loadu_ps(x + k), a);
    }
    s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    sum = _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
    for (; k < cols; ++k) {
        sum += (float)w[k] * x[k];
    }
    return sum;
}

/* Eight rows at once: each load of x serves eight rows, and eight independent chains of
 * fused multiply-adds keep the FPU busy. Writes y[0..7], scaled and biased. */
static void dot8(const edgernn_weight *w, int32_t cols, const float *x, const float *scale,
                 const float *bias, float *y)
{
    __m256 a[8], lo, hi, sums;
    int32_t k, i;
    for (i = 0; i < 8; ++i) {
        a[i] = _mm256_setzero_ps();
    }
    for (k = 0; k + 8 <= cols; k += 8) {
        __m256 v = _mm256_loadu_ps(x + k);
        for (i = 0; i < 8; ++i) {
            a[i] = _mm256_fmadd_ps(load8(w + i * cols + k), v, a[i]);
        }
    }
    /* the 8 x 8 partial sums, added across: lane i of the result is row i's sum */
    a[0] = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    a[4] = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
    lo = _mm256_permute2f128_ps(a[0], a[4], 0x20);
    hi = _mm256_permute2f128_ps(a[0], a[4], 0x31);
    sums = _mm256_add_ps(lo, hi);
    if (k < cols) {
        float tail[8];
        _mm256_storeu_ps(tail, sums);
        for (; k < cols; ++k) {
            for (i = 0; i < 8; ++i) {
                tail[i] += (float)w[i * cols + k] * x[k];
            }
        }
        sums = _mm256_loadu_ps(tail);
    }
#if EDGERNN_INT8
    sums = _mm256_mul_ps(sums, _mm256_loadu_ps(scale));
#else
    (void)scale;
#endif
    if (bias != NULL) {
        sums = _mm256_add_ps(sums, _mm256_loadu_ps(bias));
    }
    _mm256_storeu_ps(y, sums);
}

/* e^x for eight floats: Cephes' expf (x = n ln2 + r, a degree-5 polynomial in r, times 2^n),
 * within 1 ulp of libm's expf over [-87, 88] (measured); libm's scalar calls, five per unit
 * and step, would cost more than the matrix products. */
static __m256 exp8(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 n, r, p;
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    n = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f),
                                        _mm256_set1_ps(0.5f)));
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), one);
    n = _mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
    return _mm256_mul_ps(p, n);
}

#if EDGERNN_CELL != EDGERNN_CELL_RNN
static __m256 sigmoid8(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}
#endif

static __m256 tanh8(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_sub_ps(
        one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(one, exp8(_mm256_add_ps(x, x)))));
}

/* Units j..j+7 of one step: the engine's gate formulas (cell_step), eight at a time. */
static void gates8(const float *gx, const float *gh, float *h, float *c)
{
    const int32_t n = EDGERNN_HIDDEN;
#define EDGERNN_PRE(g) _mm256_add_ps(_mm256_loadu_ps(gx + (g) * n), _mm256_loadu_ps(gh + (g) * n))
#if EDGERNN_CELL == EDGERNN_CELL_LSTM
    __m256 in_gate = sigmoid8(EDGERNN_PRE(0)), forget = sigmoid8(EDGERNN_PRE(1));
    __m256 cand = tanh8(EDGERNN_PRE(2)), out_gate = sigmoid8(EDGERNN_PRE(3));
    __m256 cell = _mm256_add_ps(_mm256_mul_ps(forget, _mm256_loadu_ps(c)),
                                _mm256_mul_ps(in_gate, cand));
    _mm256_storeu_ps(c, cell);
    _mm256_storeu_ps(h, _mm256_mul_ps(out_gate, tanh8(cell)));
#elif EDGERNN_CELL == EDGERNN_CELL_GRU
    __m256 reset = sigmoid8(EDGERNN_PRE(0)), update = sigmoid8(EDGERNN_PRE(1));
    __m256 cand = tanh8(_mm256_add_ps(_mm256_loadu_ps(gx + 2 * n),
                                      _mm256_mul_ps(reset, _mm256_loadu_ps(gh + 2 * n))));
    __m256 keep = _mm256_sub_ps(_mm256_set1_ps(1.0f), update);
    _mm256_storeu_ps(h, _mm256_add_ps(_mm256_mul_ps(keep, cand),
                                      _mm256_mul_ps(update, _mm256_loadu_ps(h))));
    (void)c;
#else
    _mm256_storeu_ps(h, tanh8(EDGERNN_PRE(0)));
    (void)c;
#endif
#undef EDGERNN_PRE
}
#else
#define EDGERNN_AVX2 0
#endif
