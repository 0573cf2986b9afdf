/* Test harness for a generated seq2seq model (not for the device): cases in on stdin, results
 * out on stdout, both little-endian binary.
 *
 *   in:  int32 count, then per case: int32 src_len, src_len int32 source ids, int32 tgt_len,
 *        tgt_len int32 decoder inputs (BOS first: teacher forcing), int32 max_out
 *   out: int32 status of a decode step before any source was encoded; then per case:
 *        int32 edgernn_encode status, and when 0, per decoder input its int32 status and,
 *        when 0, EDGERNN_TGT_VOCAB float logits; then int32 edgernn_translate result,
 *        its ids when >= 0, and int32 1 if nothing was written past out[max_out - 1]
 */
#include <stdio.h>
#include <stdlib.h>

#include "model.h"

#define CANARY 0x5eed

static void read_exactly(void *buffer, size_t size, size_t count)
{
    if (count > 0 && fread(buffer, size, count, stdin) != count) {
        fprintf(stderr, "harness: short input\n");
        exit(2);
    }
}

static int32_t *read_ids(int32_t *count)
{
    int32_t *ids;
    read_exactly(count, sizeof *count, 1);
    ids = malloc(sizeof *ids * (size_t)(*count > 0 ? *count : 1));
    if (ids == NULL) {
        exit(3);
    }
    read_exactly(ids, sizeof *ids, (size_t)(*count > 0 ? *count : 0));
    return ids;
}

static void forced(const int32_t *src, int32_t src_len, const int32_t *tgt, int32_t tgt_len)
{
    static edgernn_decoder state;
    static float logits[EDGERNN_TGT_VOCAB];
    int32_t status = edgernn_encode(src, src_len, &state), t;
    fwrite(&status, sizeof status, 1, stdout);
    for (t = 0; status == EDGERNN_OK && t < tgt_len; ++t) {
        int32_t rc = edgernn_decode_step(&state, tgt[t], logits);
        fwrite(&rc, sizeof rc, 1, stdout);
        if (rc == EDGERNN_OK) {
            fwrite(logits, sizeof *logits, EDGERNN_TGT_VOCAB, stdout);
        }
    }
}

static void greedy(const int32_t *src, int32_t src_len, int32_t max_out)
{
    int32_t *out = malloc(sizeof *out * (size_t)(max_out > 0 ? max_out + 1 : 1));
    int32_t written, intact;
    if (out == NULL) {
        exit(3);
    }
    out[max_out > 0 ? max_out : 0] = CANARY;
    written = edgernn_translate(src, src_len, out, max_out);
    fwrite(&written, sizeof written, 1, stdout);
    if (written >= 0) {
        fwrite(out, sizeof *out, (size_t)written, stdout);
    }
    intact = out[max_out > 0 ? max_out : 0] == CANARY;
    fwrite(&intact, sizeof intact, 1, stdout);
    free(out);
}

int main(void)
{
    static edgernn_decoder unused;
    static float logits[EDGERNN_TGT_VOCAB];
    int32_t count, i, first = edgernn_decode_step(&unused, EDGERNN_BOS_ID, logits);
    fwrite(&first, sizeof first, 1, stdout);
    read_exactly(&count, sizeof count, 1);
    for (i = 0; i < count; ++i) {
        int32_t src_len, tgt_len, max_out;
        int32_t *src = read_ids(&src_len);
        int32_t *tgt = read_ids(&tgt_len);
        read_exactly(&max_out, sizeof max_out, 1);
        forced(src, src_len, tgt, tgt_len);
        greedy(src, src_len, max_out);
        free(src);
        free(tgt);
    }
    return 0;
}
