/* ---- integer-only engine: no floating point; sizes come from model.h, weights from above.
 * Fixed point: x, h and c are int16 with EDGERNN_Q fraction bits (Q12: [-8, 8) in steps of
 * 1/4096); gate pre-activations and outputs are int32 Q12; gates are Q15 (1.0 = 32768).
 * Right shifts of negative values are arithmetic, as on every compiler for the cores this
 * targets (gcc, clang, armcc, IAR); CMSIS-NN and TFLite Micro rely on the same. ---- */

/* What driver.c (below, shared with the float engine) steps and runs: */
typedef int16_t edgernn_value; /* x, h, c in Q12 */
typedef int32_t edgernn_wide;  /* gate pre-activations in Q12, pool sums */
#define EDGERNN_POOL_FLOOR INT16_MIN
#define EDGERNN_MEAN(sum, n) ((int16_t)((sum) / (n)))

#define EDGERNN_ONE_Q15 32768
#define EDGERNN_PRE_MAX ((int32_t)1073741823) /* pre-activations stay within +-2^30: two of them add */

static int16_t saturate16(int32_t v)
{
    return (int16_t)(v > INT16_MAX ? INT16_MAX : (v < INT16_MIN ? INT16_MIN : v));
}

static int32_t saturate_pre(int64_t v)
{
    return (int32_t)(v > EDGERNN_PRE_MAX ? EDGERNN_PRE_MAX
                                         : (v < -EDGERNN_PRE_MAX ? -EDGERNN_PRE_MAX : v));
}

/* value * multiplier / 2^shift, rounded half up: a real scale as an int32 mantissa and a
 * right shift (1..62), as TFLite's requantization. |value| < 2^31, so the product fits. */
static int64_t rescale(int64_t value, int32_t multiplier, int32_t shift)
{
    return (value * multiplier + ((int64_t)1 << (shift - 1))) >> shift;
}

/* tanh of a Q12 value as Q15: the table holds tanh(i / 32) for i = 0..256, interpolated
 * linearly; within 1.2e-4 of tanh everywhere (1 beyond +-8, where tanh is 1 - 2e-7). */
static int32_t tanh_q15(int32_t x)
{
    int32_t a = x < 0 ? -x : x, i, v;
    if (a >= ((int32_t)8 << EDGERNN_Q)) {
        return x < 0 ? -INT16_MAX : INT16_MAX;
    }
    i = a >> 7;
    v = edgernn_tanh[i] + (((edgernn_tanh[i + 1] - edgernn_tanh[i]) * (a & 127) + 64) >> 7);
    return x < 0 ? -v : v;
}

#if EDGERNN_CELL != EDGERNN_CELL_RNN
/* sigmoid(x) = (1 + tanh(x / 2)) / 2, Q15 in [0, 32767]; within 1.2e-4 of sigmoid. */
static int32_t sigmoid_q15(int32_t x)
{
    return (EDGERNN_ONE_Q15 + tanh_q15(x / 2)) >> 1;
}
#endif

/* Q15 x Q15 (Q30) and Q15 x Q12 (Q27) products back to Q12, rounded. */
#define EDGERNN_Q30_TO_Q12(v) (((v) + ((int32_t)1 << 17)) >> 18)
#define EDGERNN_Q27_TO_Q12(v) (((v) + ((int32_t)1 << 14)) >> 15)

/* sum w[k] x[k]: int8 times Q12 int16, in int32. Blocks of 16 with four running sums, as
 * the float engine's dot: compilers vectorize the fixed-length loops at -O2. */
#define EDGERNN_BLOCK 16
static int32_t dot(const int8_t *w, int32_t cols, const int16_t *x)
{
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, k, j;
    for (k = 0; k + EDGERNN_BLOCK <= cols; k += EDGERNN_BLOCK) {
        int32_t p[EDGERNN_BLOCK];
        for (j = 0; j < EDGERNN_BLOCK; ++j) {
            p[j] = (int32_t)w[k + j] * x[k + j];
        }
        for (j = 0; j < EDGERNN_BLOCK; j += 4) {
            s0 += p[j];
            s1 += p[j + 1];
            s2 += p[j + 2];
            s3 += p[j + 3];
        }
    }
    for (; k < cols; ++k) {
        s0 += (int32_t)w[k] * x[k];
    }
    return (s0 + s1) + (s2 + s3);
}

/* y = W x + b in Q12: int8 weights times Q12 int16 inputs summed in int32 (export checked
 * that no row's worst case overflows), then scaled once per row by its multiplier. */
static void linear(const edgernn_linear *m, const int16_t *x, int32_t *y)
{
    int32_t r;
    for (r = 0; r < m->rows; ++r) {
        const int8_t *w = m->weight + (size_t)r * (size_t)m->cols;
        int64_t v = rescale(dot(w, m->cols, x), m->multiplier[r], m->shift[r]);
        y[r] = saturate_pre(m->bias != NULL ? v + m->bias[r] : v);
    }
}

/* One frame becomes the first layer's input in Q12: an embedding row, or the features
 * normalized as in training, (x - mean) / std with both folded into integers. */
static int read_frame(const edgernn_input *frame, int16_t *x)
{
    int32_t k;
#if EDGERNN_TOKENS
    const int8_t *row;
    if (frame[0] < 0 || frame[0] >= EDGERNN_VOCAB_SIZE) {
        return EDGERNN_ERR_TOKEN;
    }
    row = edgernn_embedding.weight + (size_t)frame[0] * EDGERNN_FEATURES;
    for (k = 0; k < EDGERNN_FEATURES; ++k) {
        int64_t v = rescale(row[k], edgernn_embedding.multiplier[frame[0]],
                            edgernn_embedding.shift[frame[0]]);
        x[k] = saturate16(saturate_pre(v));
    }
#else
    for (k = 0; k < EDGERNN_FEATURES; ++k) {
        int64_t d = (int64_t)frame[k] - edgernn_x_mean[k];
        d = d > INT32_MAX ? INT32_MAX : (d < -INT32_MAX ? -INT32_MAX : d);
        x[k] = saturate16(saturate_pre(rescale(d, edgernn_x_m[k], edgernn_x_s[k])));
    }
#endif
    return EDGERNN_OK;
}

/* One step of one layer and direction; h (and c for LSTM) are updated in place.
 * Gate order and formulas are PyTorch's: LSTM i, f, g, o; GRU r, z, n with
 * n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); RNN tanh. */
static void cell_step(const edgernn_linear *cell, const int16_t *x, int16_t *h, int16_t *c,
                      int32_t *gx, int32_t *gh)
{
    const int32_t n = EDGERNN_HIDDEN;
    int32_t j;
    linear(&cell[0], x, gx);
    linear(&cell[1], h, gh);
    for (j = 0; j < n; ++j) {
#if EDGERNN_CELL == EDGERNN_CELL_LSTM
        int32_t in_gate = sigmoid_q15(gx[j] + gh[j]);
        int32_t forget = sigmoid_q15(gx[n + j] + gh[n + j]);
        int32_t cand = tanh_q15(gx[2 * n + j] + gh[2 * n + j]);
        int32_t out_gate = sigmoid_q15(gx[3 * n + j] + gh[3 * n + j]);
        int32_t cell_q27 = forget * c[j] + ((in_gate * cand + 4) >> 3);
        c[j] = saturate16(EDGERNN_Q27_TO_Q12(cell_q27));
        h[j] = (int16_t)EDGERNN_Q30_TO_Q12(out_gate * tanh_q15(c[j]));
#elif EDGERNN_CELL == EDGERNN_CELL_GRU
        int32_t reset = sigmoid_q15(gx[j] + gh[j]);
        int32_t update = sigmoid_q15(gx[n + j] + gh[n + j]);
        int32_t gated = (int32_t)(((int64_t)reset * gh[2 * n + j] + (1 << 14)) >> 15);
        int32_t cand = tanh_q15(gx[2 * n + j] + gated);
        int32_t mixed = (((EDGERNN_ONE_Q15 - update) * cand + 4) >> 3) + update * h[j]; /* Q27 */
        h[j] = (int16_t)EDGERNN_Q27_TO_Q12(mixed);
#else
        h[j] = (int16_t)((tanh_q15(gx[j] + gh[j]) + 4) >> 3);
#endif
    }
    (void)c;
}

static void finish_outputs(const int16_t *features, int32_t *out)
{
    linear(&edgernn_head, features, out);
#if EDGERNN_DENORMALIZE
    {
        int32_t k;
        for (k = 0; k < EDGERNN_OUTPUT_SIZE; ++k) {
            int64_t v = rescale(out[k], edgernn_y_m[k], edgernn_y_s[k]) + edgernn_y_mean[k];
            out[k] = (int32_t)(v > INT32_MAX ? INT32_MAX : (v < -INT32_MAX ? -INT32_MAX : v));
        }
    }
#endif
}
