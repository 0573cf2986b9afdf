/* Test harness for a generated model (not for the device): sequences in on stdin, outputs
 * out on stdout, both little-endian binary.
 *
 *   harness run|step < in > out
 *   in:  int32 count, then per sequence int32 length and length frames of edgernn_input
 *   out: per sequence int32 status, then its floats: run writes what edgernn_run writes,
 *        step writes edgernn_step's outputs for every step (streaming models only)
 * Integer-only models take and give the same floats: the harness converts numeric frames
 * to their Q format and the int32 outputs back (exact: |output| < 2^24).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

static void read_exactly(void *buffer, size_t size, size_t count)
{
    if (fread(buffer, size, count, stdin) != count) {
        fprintf(stderr, "harness: short input\n");
        exit(2);
    }
}

#if EDGERNN_INTEGER_ONLY && !EDGERNN_TOKENS
#define EDGERNN_FLOAT_FRAMES 1
/* A raw float feature as the int32 frame value the model takes, rounded and saturated. */
static edgernn_input to_fixed(float value)
{
    double scaled = floor((double)value * (double)(1L << EDGERNN_INPUT_FRAC_BITS) + 0.5);
    return (edgernn_input)(scaled > 2147483647.0 ? 2147483647.0
                                                 : (scaled < -2147483647.0 ? -2147483647.0 : scaled));
}
#else
#define EDGERNN_FLOAT_FRAMES 0
#endif

static float to_float(edgernn_output value)
{
#if EDGERNN_INTEGER_ONLY
    return (float)((double)value * EDGERNN_OUTPUT_SCALE);
#else
    return value;
#endif
}

static void read_frames(edgernn_input *input, int32_t length)
{
    size_t count = (size_t)length * EDGERNN_INPUT_SIZE, k;
#if EDGERNN_FLOAT_FRAMES
    float value;
    for (k = 0; k < count; ++k) {
        read_exactly(&value, sizeof value, 1);
        input[k] = to_fixed(value);
    }
#else
    read_exactly(input, sizeof *input, count);
    (void)k;
#endif
}

static int run_one(int step_mode, const edgernn_input *input, int32_t length, edgernn_output *out,
                   size_t *written)
{
#if EDGERNN_STREAMING
    if (step_mode) {
        static edgernn_state state;
        int32_t t;
        edgernn_init(&state);
        for (t = 0; t < length; ++t) {
            int rc = edgernn_step(&state, input + (size_t)t * EDGERNN_INPUT_SIZE,
                                  out + (size_t)t * EDGERNN_OUTPUT_SIZE);
            if (rc != EDGERNN_OK) {
                return rc;
            }
        }
        *written = (size_t)length * EDGERNN_OUTPUT_SIZE;
        return EDGERNN_OK;
    }
#else
    if (step_mode) {
        fprintf(stderr, "harness: a bidirectional model has no edgernn_step\n");
        exit(2);
    }
#endif
    *written = (size_t)(EDGERNN_PER_STEP ? length : 1) * EDGERNN_OUTPUT_SIZE;
    return edgernn_run(input, length, out);
}

int main(int argc, char **argv)
{
    int32_t count, i;
    int step_mode = argc > 1 && strcmp(argv[1], "step") == 0;
    read_exactly(&count, sizeof count, 1);
    for (i = 0; i < count; ++i) {
        int32_t length, status;
        size_t written = 0;
        edgernn_input *input;
        edgernn_output *out;
        size_t k;
        read_exactly(&length, sizeof length, 1);
        input = malloc(sizeof *input * (size_t)(length > 0 ? length : 1) * EDGERNN_INPUT_SIZE);
        out = malloc(sizeof *out * (size_t)(length > 0 ? length : 1) * EDGERNN_OUTPUT_SIZE);
        if (input == NULL || out == NULL) {
            return 3;
        }
        read_frames(input, length);
        status = run_one(step_mode, input, length, out, &written);
        fwrite(&status, sizeof status, 1, stdout);
        for (k = 0; status == EDGERNN_OK && k < written; ++k) {
            float value = to_float(out[k]);
            fwrite(&value, sizeof value, 1, stdout);
        }
        free(input);
        free(out);
    }
    return 0;
}
