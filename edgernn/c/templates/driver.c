/* ---- driver: streaming steps, or bidirectional passes over a whole sequence, and pooling.
 * The same for the float and the integer-only engine: each one above defines edgernn_value
 * (x, h, c), edgernn_wide (gate pre-activations, pool sums), EDGERNN_POOL_FLOOR (where a max
 * pool starts), EDGERNN_MEAN(sum, n), read_frame, cell_step and finish_outputs. ---- */

#if EDGERNN_STREAMING

void edgernn_reset(edgernn_state *state)
{
    int32_t layer, j;
    for (layer = 0; layer < EDGERNN_LAYERS; ++layer) {
        for (j = 0; j < EDGERNN_HIDDEN; ++j) {
            state->h[layer][j] = 0;
#if EDGERNN_CELL == EDGERNN_CELL_LSTM
            state->c[layer][j] = 0;
#endif
        }
    }
#if EDGERNN_POOLED
    for (j = 0; j < EDGERNN_HIDDEN; ++j) {
        state->pool[j] = EDGERNN_POOLING == EDGERNN_POOL_MAX ? EDGERNN_POOL_FLOOR : 0;
    }
    state->steps = 0;
#endif
}

void edgernn_init(edgernn_state *state)
{
    int32_t j;
    for (j = 0; j < EDGERNN_X_SIZE; ++j) {
        state->x[j] = 0;
    }
    for (j = 0; j < EDGERNN_GATES * EDGERNN_HIDDEN; ++j) {
        state->gx[j] = 0;
        state->gh[j] = 0;
    }
    edgernn_reset(state);
}

static int advance(edgernn_state *state, const edgernn_input *frame)
{
    const edgernn_value *in = state->x;
    int32_t layer;
    int rc = read_frame(frame, state->x);
    if (rc != EDGERNN_OK) {
        return rc;
    }
    for (layer = 0; layer < EDGERNN_LAYERS; ++layer) {
#if EDGERNN_CELL == EDGERNN_CELL_LSTM
        edgernn_value *c = state->c[layer];
#else
        edgernn_value *c = NULL;
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
            state->pool[j] += in[j]; /* integer-only: |h| <= 1 (4096), 2^19 steps to wrap */
#endif
        }
        state->steps += 1;
    }
#endif
    return EDGERNN_OK;
}

/* The outputs for the sequence so far (sequence tasks) or for this step (per-step tasks). */
static void head(edgernn_state *state, edgernn_output *out)
{
    const edgernn_value *top = state->h[EDGERNN_LAYERS - 1];
#if EDGERNN_POOLED
    int32_t j;
    for (j = 0; j < EDGERNN_HIDDEN; ++j) {
#if EDGERNN_POOLING == EDGERNN_POOL_MAX
        state->x[j] = (edgernn_value)state->pool[j];
#else
        state->x[j] = EDGERNN_MEAN(state->pool[j], state->steps);
#endif
    }
    top = state->x;
#endif
    finish_outputs(top, out);
}

int edgernn_step(edgernn_state *state, const edgernn_input *frame, edgernn_output *output)
{
    int rc = advance(state, frame);
    if (rc != EDGERNN_OK) {
        return rc;
    }
    head(state, output);
    return EDGERNN_OK;
}

int edgernn_run(const edgernn_input *input, int32_t length, edgernn_output *output)
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
static edgernn_value seq[EDGERNN_SEQ_BUFFERS][EDGERNN_MAX_LEN * EDGERNN_WIDTH];
static edgernn_value run_h[EDGERNN_HIDDEN];
#if EDGERNN_CELL == EDGERNN_CELL_LSTM
static edgernn_value run_c[EDGERNN_HIDDEN];
#endif
static edgernn_value run_x[EDGERNN_X_SIZE];
static edgernn_wide run_gx[EDGERNN_GATES * EDGERNN_HIDDEN];
static edgernn_wide run_gh[EDGERNN_GATES * EDGERNN_HIDDEN];

static int run_direction(int32_t layer, int32_t direction, const edgernn_input *input,
                         int32_t length)
{
    const edgernn_value *in_seq = seq[(layer + 1) % EDGERNN_SEQ_BUFFERS];
    edgernn_value *out_seq = seq[layer % EDGERNN_SEQ_BUFFERS];
    edgernn_value *c = NULL;
    int32_t step, j;
#if EDGERNN_CELL == EDGERNN_CELL_LSTM
    c = run_c;
#endif
    for (j = 0; j < EDGERNN_HIDDEN; ++j) {
        run_h[j] = 0;
        if (c != NULL) {
            c[j] = 0;
        }
    }
    for (step = 0; step < length; ++step) {
        int32_t t = direction == 0 ? step : length - 1 - step;
        const edgernn_value *x = in_seq + (size_t)t * EDGERNN_WIDTH;
        edgernn_value *out =
            out_seq + (size_t)t * EDGERNN_WIDTH + (size_t)direction * EDGERNN_HIDDEN;
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
static void pool_sequence(const edgernn_value *top, int32_t length, edgernn_value *pooled)
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
        edgernn_wide value = EDGERNN_POOLING == EDGERNN_POOL_MAX ? EDGERNN_POOL_FLOOR : 0;
        for (t = 0; t < length; ++t) {
            edgernn_wide item = top[(size_t)t * EDGERNN_WIDTH + (size_t)j];
#if EDGERNN_POOLING == EDGERNN_POOL_MAX
            value = item > value ? item : value;
#else
            value += item;
#endif
        }
        pooled[j] = EDGERNN_POOLING == EDGERNN_POOL_MAX ? (edgernn_value)value
                                                         : EDGERNN_MEAN(value, length);
    }
#endif
}
#endif

int edgernn_run(const edgernn_input *input, int32_t length, edgernn_output *output)
{
    int32_t layer, direction;
    const edgernn_value *top = seq[(EDGERNN_LAYERS - 1) % EDGERNN_SEQ_BUFFERS];
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
