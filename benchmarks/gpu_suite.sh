#!/usr/bin/env bash
# GPU table of the peer suite: each family's teacher (PyTorch fp32 and fp16 on cuda) and its
# bundles, after `benchmarks/peer_suite.py` has filled runs/peer_suite/. Int8 rows say they
# are CPU-only; ONNX rows need an onnxruntime with the CUDA provider.
# Usage: bash benchmarks/gpu_suite.sh OUTDIR
set -euo pipefail
out=${1:-runs/gpu_suite}
edgernn() { python3 -c 'from edgernn.cli import main; main()' "$@"; }
for family in sentiment_lstm:sentiment ner_bilstm:ner forecast_gru:forecast \
              seqsum_rnn:seqsum translate_lstm:translate; do
    teacher=${family%%:*} data=${family##*:}
    edgernn bench "runs/peer_suite/$teacher.pt" "runs/peer_suite/${data}_bundle" \
        --data "builtin:$data" --device cuda --batch-sizes 1,8,32 --seq-lens 16,64 \
        --threads 1 --min-time 0.3 --quiet -o "$out/$data"
done
