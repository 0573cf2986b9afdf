/* ---- engine: the same for every model; sizes come from model.h, weights from above, and
 * linear / cell_step from kernels.c; driver.c (below) steps and runs it ---- */

typedef float edgernn_value; /* x, h, c */
typedef float edgernn_wide;  /* gate pre-activations, pool sums */
#define EDGERNN_POOL_FLOOR (-INFINITY)
#define EDGERNN_MEAN(sum, n) ((sum) / (float)(n))

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
