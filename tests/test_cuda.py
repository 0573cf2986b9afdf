"""GPU paths: skipped cleanly where CUDA is absent (CI never has a GPU)."""

import math
from dataclasses import replace

import pytest
import torch

from edgernn.config import TrainConfig
from edgernn.data import collate, encode, load_raw
from edgernn.train import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(autouse=True)
def _full_precision_cudnn():
    # cuDNN runs recurrent layers in TF32 by default, which drifts ~1e-4 from the CPU result.
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32 = previous


QUICK = TrainConfig(epochs=2, batch_size=16, progress=False)


@pytest.mark.parametrize("task", ["classify", "tag", "lm", "regress", "seq2seq"])
def test_cuda_training_matches_cpu_inference(task, data_files):
    bidirectional = task not in ("lm",)
    checkpoint = train(
        str(data_files[task]),
        task,
        QUICK,
        device="cuda",
        hidden=8,
        embed=8,
        bidirectional=bidirectional,
    )
    assert all(math.isfinite(v) for v in checkpoint.metrics["test"].values())
    assert all(t.device.type == "cpu" for t in checkpoint.state_dict.values())
    examples = encode(load_raw(str(data_files[task]), task), checkpoint.meta, 512).splits["test"]
    batch = collate(examples, task)
    cpu, gpu = checkpoint.build(), checkpoint.build().cuda()
    args = (batch.inputs, batch.lengths) + ((batch.decoder_inputs,) if task == "seq2seq" else ())
    on_gpu = gpu(*(a.cuda() if a is not batch.lengths else a for a in args)).cpu()
    assert torch.allclose(cpu(*args), on_gpu, atol=1e-4)
    if task == "seq2seq":
        assert cpu.greedy(batch.inputs, batch.lengths, 12) == gpu.greedy(
            batch.inputs.cuda(), batch.lengths, 12
        )


def test_cuda_compress_distills_on_the_gpu(classify_csv):
    from edgernn.compress import CompressOptions, compress

    teacher = train(str(classify_csv), "classify", QUICK, hidden=16, embed=8)
    config = CompressOptions(student_hidden=8).config()
    config = replace(config, distill=replace(config.distill, train=QUICK))
    result = compress(teacher, config, str(classify_csv), device="cuda")
    assert all(t.device.type == "cpu" for t in result.checkpoint.state_dict.values())
    assert all(math.isfinite(row.metric) for row in result.rows if row.kept)
