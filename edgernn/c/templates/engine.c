/* ---- engine: the same for every model; sizes come from model.h, weights from above ---- */

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

/* One frame becomes the first layer's input: an embedding row, or normalized features. */
static int read_frame(const edgernn_input *frame, float *x)
{
    int32_t k;
#if EDGERNN_TOKENS
    const edgernn_weight *row;
    if (frame[0] < 0 || frame[0] >= EDGERNN_VOCAB_SIZE) {
        return EDGERNN_ERR_TOKEN;
    }
    row = edgernn_embedding.weight + (size_t)frame[0] * EDGERNN_FEATURES;
    for (k = 0; k < EDGERNN_FEATURES; ++k) {
#if EDGERNN_INT8
        x[k] = (float)row[k] * edgernn_embedding.scale[frame[0]];
#else
        x[k] = row[k];
#endif
    }
#else
    for (k = 0; k < EDGERNN_FEATURES; ++k) {
        x[k] = (frame[k] - edgernn_x_mean[k]) / edgernn_x_std[k];
    }
#endif
    return EDGERNN_OK;
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

static void finish_outputs(const float *features, float *out)
{
    linear(&edgernn_head, features, out);
#if EDGERNN_DENORMALIZE
    {
        int32_t k;
        for (k = 0; k < EDGERNN_OUTPUT_SIZE; ++k) {
            out[k] = out[k] * edgernn_y_std[k] + edgernn_y_mean[k];
        }
    }
#endif
}

#if EDGERNN_STREAMING

void edgernn_reset(edgernn_state *state)
{
    int32_t layer, j;
    for (layer = 0; layer < EDGERNN_LAYERS; ++layer) {
        for (j = 0; j < EDGERNN_HIDDEN; ++j) {
            state->h[layer][j] = 0.0f;
#if EDGERNN_CELL == EDGERNN_CELL_LSTM
            state->c[layer][j] = 0.0f;
#endif
        }
    }
#if EDGERNN_POOLED
    for (j = 0; j < EDGERNN_HIDDEN; ++j) {
        state->pool[j] = EDGERNN_POOLING == EDGERNN_POOL_MAX ? -INFINITY : 0.0f;
    }
    state->steps = 0;
#endif
}

void edgernn_init(edgernn_state *state)
{
    int32_t j;
    for (j = 0; j < EDGERNN_X_SIZE; ++j) {
        state->x[j] = 0.0f;
    }
    for (j = 0; j < EDGERNN_GATES * EDGERNN_HIDDEN; ++j) {
        state->gx[j] = 0.0f;
        state->gh[j] = 0.0f;
    }
    edgernn_reset(state);
}

static int advance(edgernn_state *state, const edgernn_input *frame)
{
    const float *in = state->x;
    int32_t layer;
    int rc = read_frame(frame, state->x);
    if (rc != EDGERNN_OK) {
        return rc;
    }
    for (layer = 0; layer < EDGERNN_LAYERS; ++layer) {
#if EDGERNN_CELL == EDGERNN_CELL_LSTM
        float *c = state->c[layer];
#else
        float *c = NULL;
#endif
        cell_step(edgernn_cells[layer], in, state->h[layer], c, state->gx, state->gh);
        in = state->h[layer];
    }
#if EDGERNN_POOLED
    {
        int32_t j;
        for (j = 0; j < EDGERNN_HIDDEN; ++j) {
#if EDGERNN_POOLING == EDGERNN_POOL_MAX
            state->pool[j] = in[j] > state->pool[j] ? in[j] : state->pool[j];
#else
            state->pool[j] += in[j];
#endif
        }
        state->steps += 1;
    }
#endif
    return EDGERNN_OK;
}

/* The outputs for the sequence so far (sequence tasks) or for this step (per-step tasks). */
static void head(edgernn_state *state, float *out)
{
    const float *top = state->h[EDGERNN_LAYERS - 1];
#if EDGERNN_POOLED && EDGERNN_POOLING == EDGERNN_POOL_MAX
    top = state->pool;
#elif EDGERNN_POOLED
    int32_t j;
    for (j = 0; j < EDGERNN_HIDDEN; ++j) {
        state->x[j] = state->pool[j] / (float)state->steps;
    }
    top = state->x;
#endif
    finish_outputs(top, out);
}

int edgernn_step(edgernn_state *state, const edgernn_input *frame, float *output)
{
    int rc = advance(state, frame);
    if (rc != EDGERNN_OK) {
        return rc;
    }
    head(state, output);
    return EDGERNN_OK;
}

int edgernn_run(const edgernn_input *input, int32_t length, float *output)
{
    static edgernn_state run;
    int32_t t;
    if (length < 1) {
        return EDGERNN_ERR_LENGTH;
    }
    edgernn_init(&run);
    for (t = 0; t < length; ++t) {
        int rc = advance(&run, input + (size_t)t * EDGERNN_INPUT_SIZE);
        if (rc != EDGERNN_OK) {
            return rc;
        }
#if EDGERNN_PER_STEP
        head(&run, output + (size_t)t * EDGERNN_OUTPUT_SIZE);
#endif
    }
#if !EDGERNN_PER_STEP
    head(&run, output);
#endif
    return EDGERNN_OK;
}

#else /* bidirectional: whole sequences only */

#define EDGERNN_WIDTH (EDGERNN_DIRECTIONS * EDGERNN_HIDDEN)

/* Every layer's outputs for the whole sequence: layer l writes one buffer, reads the other. */
static float seq[EDGERNN_SEQ_BUFFERS][EDGERNN_MAX_LEN * EDGERNN_WIDTH];
static float run_h[EDGERNN_HIDDEN];
#if EDGERNN_CELL == EDGERNN_CELL_LSTM
static float run_c[EDGERNN_HIDDEN];
#endif
static float run_x[EDGERNN_X_SIZE];
static float run_gx[EDGERNN_GATES * EDGERNN_HIDDEN];
static float run_gh[EDGERNN_GATES * EDGERNN_HIDDEN];

static int run_direction(int32_t layer, int32_t direction, const edgernn_input *input,
                         int32_t length)
{
    const float *in_seq = seq[(layer + 1) % EDGERNN_SEQ_BUFFERS];
    float *out_seq = seq[layer % EDGERNN_SEQ_BUFFERS];
    float *c = NULL;
    int32_t step, j;
#if EDGERNN_CELL == EDGERNN_CELL_LSTM
    c = run_c;
#endif
    for (j = 0; j < EDGERNN_HIDDEN; ++j) {
        run_h[j] = 0.0f;
        if (c != NULL) {
            c[j] = 0.0f;
        }
    }
    for (step = 0; step < length; ++step) {
        int32_t t = direction == 0 ? step : length - 1 - step;
        const float *x = in_seq + (size_t)t * EDGERNN_WIDTH;
        float *out = out_seq + (size_t)t * EDGERNN_WIDTH + (size_t)direction * EDGERNN_HIDDEN;
        if (layer == 0) {
            int rc = read_frame(input + (size_t)t * EDGERNN_INPUT_SIZE, run_x);
            if (rc != EDGERNN_OK) {
                return rc;
            }
            x = run_x;
        }
        cell_step(edgernn_cells[layer * 2 + direction], x, run_h, c, run_gx, run_gh);
        for (j = 0; j < EDGERNN_HIDDEN; ++j) {
            out[j] = run_h[j];
        }
    }
    return EDGERNN_OK;
}

#if !EDGERNN_PER_STEP
/* The sequence summary the head reads, as the PyTorch model pools it. */
static void pool_sequence(const float *top, int32_t length, float *pooled)
{
    int32_t j;
#if EDGERNN_POOLING == EDGERNN_POOL_LAST
    /* the forward state after the last step, the backward state after step 0 */
    for (j = 0; j < EDGERNN_HIDDEN; ++j) {
        pooled[j] = top[(size_t)(length - 1) * EDGERNN_WIDTH + (size_t)j];
        pooled[EDGERNN_HIDDEN + j] = top[EDGERNN_HIDDEN + j];
    }
#else
    int32_t t;
    for (j = 0; j < EDGERNN_WIDTH; ++j) {
        float value = EDGERNN_POOLING == EDGERNN_POOL_MAX ? -INFINITY : 0.0f;
        for (t = 0; t < length; ++t) {
            float item = top[(size_t)t * EDGERNN_WIDTH + (size_t)j];
#if EDGERNN_POOLING == EDGERNN_POOL_MAX
            value = item > value ? item : value;
#else
            value += item;
#endif
        }
        pooled[j] = EDGERNN_POOLING == EDGERNN_POOL_MAX ? value : value / (float)length;
    }
#endif
}
#endif

int edgernn_run(const edgernn_input *input, int32_t length, float *output)
{
    int32_t layer, direction;
    const float *top = seq[(EDGERNN_LAYERS - 1) % EDGERNN_SEQ_BUFFERS];
    if (length < 1 || length > EDGERNN_MAX_LEN) {
        return EDGERNN_ERR_LENGTH;
    }
    for (layer = 0; layer < EDGERNN_LAYERS; ++layer) {
        for (direction = 0; direction < EDGERNN_DIRECTIONS; ++direction) {
            int rc = run_direction(layer, direction, input, length);
            if (rc != EDGERNN_OK) {
                return rc;
            }
        }
    }
#if EDGERNN_PER_STEP
    {
        int32_t t;
        for (t = 0; t < length; ++t) {
            finish_outputs(top + (size_t)t * EDGERNN_WIDTH, output + (size_t)t * EDGERNN_OUTPUT_SIZE);
        }
    }
#else
    pool_sequence(top, length, run_x);
    finish_outputs(run_x, output);
#endif
    return EDGERNN_OK;
}

#endif
