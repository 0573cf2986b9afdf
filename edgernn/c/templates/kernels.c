/* ---- kernels: activations, y = W x + b and one recurrent cell step, shared by the engines
 * of every task (engine.c, seq2seq.c); avx2.c's kernels come first where the host has them.
 * Sizes come from model.h, weights from above. ---- */

#if EDGERNN_CELL != EDGERNN_CELL_RNN
static float sigmoid(float x)
{
    return 1.0f / (1.0f + expf(-x));
}
#endif

/* tanh through expf: libm's tanhf costs several expf (it was half of an LSTM step), and
 * 1 - 2 / (1 + e^2x) is within 2e-7 of it; e^2x overflowing to inf still gives 1. */
static float tanh_via_exp(float x)
{
    return 1.0f - 2.0f / (1.0f + expf(2.0f * x));
}

/* y = W x + b. An int8 model keeps W as int8 rows, each with its own scale: the products
 * are summed in float and the sum is scaled once per row (weight-only int8, see README).
 * The row is taken in blocks of 16 weights, converted by a loop of fixed length, with four
 * running sums: compilers vectorize both at -O2, where one chain of dependent float adds
 * (which they may not reorder without -ffast-math) would leave the FPU waiting. */
#if !EDGERNN_AVX2 /* else avx2.c's */
#define EDGERNN_BLOCK 16
static float dot(const edgernn_weight *w, int32_t cols, const float *x)
{
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    int32_t k, j;
    for (k = 0; k + EDGERNN_BLOCK <= cols; k += EDGERNN_BLOCK) {
        float f[EDGERNN_BLOCK];
        for (j = 0; j < EDGERNN_BLOCK; ++j) {
            f[j] = (float)w[k + j];
        }
        for (j = 0; j < EDGERNN_BLOCK; j += 4) {
            s0 += f[j] * x[k + j];
            s1 += f[j + 1] * x[k + j + 1];
            s2 += f[j + 2] * x[k + j + 2];
            s3 += f[j + 3] * x[k + j + 3];
        }
    }
    for (; k < cols; ++k) {
        s0 += (float)w[k] * x[k];
    }
    return (s0 + s1) + (s2 + s3);
}
#endif

static void store_row(const edgernn_linear *m, int32_t r, float sum, float *y)
{
#if EDGERNN_INT8
    sum *= m->scale[r];
#endif
    y[r] = m->bias != NULL ? sum + m->bias[r] : sum;
}

static void linear(const edgernn_linear *m, const float *x, float *y)
{
    const int32_t cols = m->cols;
    int32_t r = 0;
#if EDGERNN_AVX2
    for (; r + 8 <= m->rows; r += 8) {
        const float *scale = m->scale != NULL ? m->scale + r : NULL;
        const float *bias = m->bias != NULL ? m->bias + r : NULL;
        dot8(m->weight + (size_t)r * (size_t)cols, cols, x, scale, bias, y + r);
    }
#endif
    for (; r < m->rows; ++r) {
        store_row(m, r, dot(m->weight + (size_t)r * (size_t)cols, cols, x), y);
    }
}

/* One step of one layer and direction; h (and c for LSTM) are updated in place.
 * Gate order and formulas are PyTorch's: LSTM i, f, g, o; GRU r, z, n with
 * n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); RNN tanh. */
static void cell_step(const edgernn_linear *cell, const float *x, float *h, float *c,
                      float *gx, float *gh)
{
    const int32_t n = EDGERNN_HIDDEN;
    int32_t j;
    linear(&cell[0], x, gx);
    linear(&cell[1], h, gh);
    j = 0;
#if EDGERNN_AVX2
    for (; j + 8 <= n; j += 8) {
        gates8(gx + j, gh + j, h + j, c != NULL ? c + j : NULL);
    }
#endif
    for (; j < n; ++j) {
#if EDGERNN_CELL == EDGERNN_CELL_LSTM
        float in_gate = sigmoid(gx[j] + gh[j]);
        float forget = sigmoid(gx[n + j] + gh[n + j]);
        float cand = tanh_via_exp(gx[2 * n + j] + gh[2 * n + j]);
        float out_gate = sigmoid(gx[3 * n + j] + gh[3 * n + j]);
        c[j] = forget * c[j] + in_gate * cand;
        h[j] = out_gate * tanh_via_exp(c[j]);
#elif EDGERNN_CELL == EDGERNN_CELL_GRU
        float reset = sigmoid(gx[j] + gh[j]);
        float update = sigmoid(gx[n + j] + gh[n + j]);
        float cand = tanh_via_exp(gx[2 * n + j] + reset * gh[2 * n + j]);
        h[j] = (1.0f - update) * cand + update * h[j];
#else
        h[j] = tanh_via_exp(gx[j] + gh[j]);
#endif
    }
    (void)c;
}
