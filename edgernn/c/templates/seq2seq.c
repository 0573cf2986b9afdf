/* ---- seq2seq engine: the same for every model; sizes come from model.h, weights above ----
 * Encoder (embedding, recurrent layers, both directions), a bridge to the decoder state,
 * attention over the encoded source, one decoder step, greedy search. The formulas are
 * edgernn.models.seq2seq's (PyTorch's gate orders and layouts); linear and cell_step are
 * kernels.c's, as for the other tasks. */

/* Row `token` of an embedding table (the caller checked the id). */
static void embed(const edgernn_linear *table, int32_t token, float *x)
{
    const edgernn_weight *row = table->weight + (size_t)token * (size_t)table->cols;
    int32_t k;
    for (k = 0; k < table->cols; ++k) {
#if EDGERNN_INT8
        x[k] = (float)row[k] * table->scale[token];
#else
        x[k] = row[k];
#endif
    }
}

/* Every buffer is sized at compile time by EDGERNN_MAX_SRC_LEN: a longer source is refused
 * (EDGERNN_ERR_LENGTH) before anything is written. Layer l writes one sequence buffer and
 * reads the other; the top layer's is the memory the decoder attends to. */
static float seq[EDGERNN_SEQ_BUFFERS][EDGERNN_MAX_SRC_LEN * EDGERNN_WIDTH];
static float keys[EDGERNN_MAX_SRC_LEN * EDGERNN_HIDDEN]; /* key_proj(memory), per position */
static float scores[EDGERNN_MAX_SRC_LEN];
static float final_h[EDGERNN_LAYERS][EDGERNN_WIDTH]; /* each layer's last state, fwd | bwd */
static float run_h[EDGERNN_HIDDEN];
#if EDGERNN_CELL == EDGERNN_CELL_LSTM
static float final_c[EDGERNN_LAYERS][EDGERNN_WIDTH];
static float run_c[EDGERNN_HIDDEN];
#endif
static float run_x[EDGERNN_X_SIZE];
static float run_gx[EDGERNN_GATES * EDGERNN_HIDDEN];
static float run_gh[EDGERNN_GATES * EDGERNN_HIDDEN];
static float context[EDGERNN_WIDTH];
static float features[EDGERNN_WIDTH + EDGERNN_HIDDEN];
static float mixed[EDGERNN_HIDDEN]; /* Bahdanau: the query's projection; Luong: W_c's output */
#if EDGERNN_BAHDANAU
static float attn_hidden[EDGERNN_HIDDEN];
#endif
static float logits[EDGERNN_TGT_VOCAB];
static edgernn_decoder search_state; /* edgernn_translate's */
static int32_t source_len;           /* of the encoded source; 0: none yet */

#define EDGERNN_MEMORY (seq[(EDGERNN_LAYERS - 1) % EDGERNN_SEQ_BUFFERS])

static void run_direction(int32_t layer, int32_t direction, const int32_t *src, int32_t length)
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
            embed(&edgernn_src_embedding, src[t], run_x);
            x = run_x;
        }
        cell_step(edgernn_enc_cells[layer * EDGERNN_DIRECTIONS + direction], x, run_h, c, run_gx,
                  run_gh);
        for (j = 0; j < EDGERNN_HIDDEN; ++j) {
            out[j] = run_h[j];
        }
    }
    /* forward: the state after the last step; backward: after step 0 (PyTorch's h_n) */
    for (j = 0; j < EDGERNN_HIDDEN; ++j) {
        final_h[layer][direction * EDGERNN_HIDDEN + j] = run_h[j];
#if EDGERNN_CELL == EDGERNN_CELL_LSTM
        final_c[layer][direction * EDGERNN_HIDDEN + j] = run_c[j];
#endif
    }
}

/* Decoder layer l starts from tanh(bridge(encoder layer l's final state, fwd | bwd)). */
static void bridge(edgernn_decoder *state)
{
    int32_t layer, j;
    for (layer = 0; layer < EDGERNN_LAYERS; ++layer) {
        linear(&edgernn_bridge[0], final_h[layer], state->h[layer]);
#if EDGERNN_CELL == EDGERNN_CELL_LSTM
        linear(&edgernn_bridge[1], final_c[layer], state->c[layer]);
#endif
        for (j = 0; j < EDGERNN_HIDDEN; ++j) {
            state->h[layer][j] = tanh_via_exp(state->h[layer][j]);
#if EDGERNN_CELL == EDGERNN_CELL_LSTM
            state->c[layer][j] = tanh_via_exp(state->c[layer][j]);
#endif
        }
    }
}

int edgernn_encode(const int32_t *src, int32_t src_len, edgernn_decoder *state)
{
    int32_t layer, direction, t;
    if (src_len < 1 || src_len > EDGERNN_MAX_SRC_LEN) {
        return EDGERNN_ERR_LENGTH;
    }
    for (t = 0; t < src_len; ++t) {
        if (src[t] < 0 || src[t] >= EDGERNN_SRC_VOCAB) {
            return EDGERNN_ERR_TOKEN;
        }
    }
    for (layer = 0; layer < EDGERNN_LAYERS; ++layer) {
        for (direction = 0; direction < EDGERNN_DIRECTIONS; ++direction) {
            run_direction(layer, direction, src, src_len);
        }
    }
    /* the key side of attention depends on the source alone: once per source, not per step */
    for (t = 0; t < src_len; ++t) {
        linear(&edgernn_attn_key, EDGERNN_MEMORY + (size_t)t * EDGERNN_WIDTH,
               keys + (size_t)t * EDGERNN_HIDDEN);
    }
    bridge(state);
    source_len = src_len;
    return EDGERNN_OK;
}

/* context = softmax(scores over the source) . memory, for one query (the decoder's h). */
static void attend(const float *query)
{
    const float *memory = EDGERNN_MEMORY;
    float peak = -INFINITY, total = 0.0f;
    int32_t s, k;
#if EDGERNN_BAHDANAU
    linear(&edgernn_attn_query, query, mixed);
#endif
    for (s = 0; s < source_len; ++s) {
        const float *key = keys + (size_t)s * EDGERNN_HIDDEN;
#if EDGERNN_BAHDANAU
        /* v . tanh(W_q q + W_k k_s + b_k) */
        for (k = 0; k < EDGERNN_HIDDEN; ++k) {
            attn_hidden[k] = tanh_via_exp(mixed[k] + key[k]);
        }
        linear(&edgernn_attn_score, attn_hidden, scores + s);
#else
        /* q . (W k_s) */
        float sum = 0.0f;
        for (k = 0; k < EDGERNN_HIDDEN; ++k) {
            sum += key[k] * query[k];
        }
        scores[s] = sum;
#endif
        peak = scores[s] > peak ? scores[s] : peak;
    }
    for (s = 0; s < source_len; ++s) {
        scores[s] = expf(scores[s] - peak);
        total += scores[s];
    }
    for (k = 0; k < EDGERNN_WIDTH; ++k) {
        context[k] = 0.0f;
    }
    for (s = 0; s < source_len; ++s) {
        const float weight = scores[s] / total;
        const float *row = memory + (size_t)s * EDGERNN_WIDTH;
        for (k = 0; k < EDGERNN_WIDTH; ++k) {
            context[k] += weight * row[k];
        }
    }
}

int edgernn_decode_step(edgernn_decoder *state, int32_t token, float *out)
{
    const float *in = run_x;
    int32_t layer, k;
    if (source_len == 0) {
        return EDGERNN_ERR_NO_SOURCE;
    }
    if (token < 0 || token >= EDGERNN_TGT_VOCAB) {
        return EDGERNN_ERR_TOKEN;
    }
    embed(&edgernn_tgt_embedding, token, run_x);
#if EDGERNN_BAHDANAU
    /* the previous top state queries the memory; the context joins the embedding */
    attend(state->h[EDGERNN_LAYERS - 1]);
    for (k = 0; k < EDGERNN_WIDTH; ++k) {
        run_x[EDGERNN_EMBED + k] = context[k];
    }
#endif
    for (layer = 0; layer < EDGERNN_LAYERS; ++layer) {
#if EDGERNN_CELL == EDGERNN_CELL_LSTM
        float *c = state->c[layer];
#else
        float *c = NULL;
#endif
        cell_step(edgernn_dec_cells[layer], in, state->h[layer], c, run_gx, run_gh);
        in = state->h[layer];
    }
#if EDGERNN_BAHDANAU
    /* out([h_t; context]) */
    for (k = 0; k < EDGERNN_HIDDEN; ++k) {
        features[k] = in[k];
    }
    for (k = 0; k < EDGERNN_WIDTH; ++k) {
        features[EDGERNN_HIDDEN + k] = context[k];
    }
    linear(&edgernn_out, features, out);
#else
    /* the new h_t queries the memory; out(tanh(W_c [context; h_t])) */
    attend(in);
    for (k = 0; k < EDGERNN_WIDTH; ++k) {
        features[k] = context[k];
    }
    for (k = 0; k < EDGERNN_HIDDEN; ++k) {
        features[EDGERNN_WIDTH + k] = in[k];
    }
    linear(&edgernn_combine, features, mixed);
    for (k = 0; k < EDGERNN_HIDDEN; ++k) {
        mixed[k] = tanh_via_exp(mixed[k]);
    }
    linear(&edgernn_out, mixed, out);
#endif
    return EDGERNN_OK;
}

int32_t edgernn_translate(const int32_t *src, int32_t src_len, int32_t *out, int32_t max_out)
{
    int32_t limit, token = EDGERNN_BOS_ID, written = 0, step, k;
    int rc;
    if (max_out < 0) {
        return EDGERNN_ERR_LENGTH;
    }
    rc = edgernn_encode(src, src_len, &search_state);
    if (rc != EDGERNN_OK) {
        return rc;
    }
    /* edgernn's decode limit (2 * source length + margin), EOS counted, at most max_out */
    limit = 2 * src_len + EDGERNN_DECODE_MARGIN;
    limit = max_out < limit ? max_out : limit;
    for (step = 0; step < limit; ++step) {
        edgernn_decode_step(&search_state, token, logits);
        token = 0; /* argmax, the first index on ties (as PyTorch's) */
        for (k = 1; k < EDGERNN_TGT_VOCAB; ++k) {
            token = logits[k] > logits[token] ? k : token;
        }
        if (token == EDGERNN_EOS_ID) {
            break;
        }
        out[written++] = token;
    }
    return written;
}
