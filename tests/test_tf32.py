"""TF32 (10 mantissa bits, ~3e-4 relative error) must stay off wherever a backend runs float32 on a GPU."""

import numpy as np
import pytest
import torch


def test_tf_impl_switches_tf32_off_when_a_model_loads():
    import tensorflow as tf

    import hear_dual.tf_impl as m

    tf.config.experimental.enable_tensor_float_32_execution(True)
    m.load_model()
    assert not tf.config.experimental.tensor_float_32_execution_enabled()


def test_torch_impl_switches_tf32_off_for_the_call_and_restores_it(torch_model):
    import hear_dual.torch_impl as m

    seen = []
    hook = torch_model.register_forward_hook(
        lambda *_: seen.append((torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)))
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        m.get_timestamp_embeddings(np.zeros((1, 16000), np.float32), torch_model)
        assert seen and all(flags == (False, False) for flags in seen)
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (True, True)
    finally:
        hook.remove()
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (extra evidence, not CI coverage)")
def test_torch_on_gpu_with_tf32_requested_meets_the_gate(spec):
    import hear_dual.torch_impl as m
    from hear_dual.parity import agreement, input_batch

    audio = input_batch("tone_mix", 2, 3 * spec.sample_rate, spec.sample_rate)
    cpu = m.get_timestamp_embeddings(audio, m.load_model())[0].numpy()
    torch.set_float32_matmul_precision("high")
    try:
        gpu = m.get_timestamp_embeddings(torch.from_numpy(audio).cuda(), m.load_model().cuda())[0].cpu().numpy()
    finally:
        torch.set_float32_matmul_precision("highest")
    assert agreement(cpu, gpu, spec.tolerance, spec.min_cosine).passed
