/* Test harness for a generated model (not for the device): sequences in on stdin, outputs
 * out on stdout, both little-endian binary.
 *
 *   harness run|step < in > out
 *   in:  int32 count, then per sequence int32 length and length frames of edgernn_input
 *   out: per sequence int32 status, then its floats: run writes what edgernn_run writes,
 *        step writes edgernn_step's outputs for every step (streaming models only)
 */
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

static int run_one(int step_mode, const edgernn_input *input, int32_t length, float *out,
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
        float *out;
        read_exactly(&length, sizeof length, 1);
        input = malloc(sizeof *input * (size_t)(length > 0 ? length : 1) * EDGERNN_INPUT_SIZE);
        out = malloc(sizeof *out * (size_t)(length > 0 ? length : 1) * EDGERNN_OUTPUT_SIZE);
        if (input == NULL || out == NULL) {
            return 3;
        }
        read_exactly(input, sizeof *input, (size_t)length * EDGERNN_INPUT_SIZE);
        status = run_one(step_mode, input, length, out, &written);
        fwrite(&status, sizeof status, 1, stdout);
        if (status == EDGERNN_OK) {
            fwrite(out, sizeof *out, written, stdout);
        }
        free(input);
        free(out);
    }
    return 0;
}
