"""hear-dual: one audio-embedding spec, native PyTorch and TensorFlow 2 backends, one ONNX checkpoint.

    import hear_dual.torch_impl as m   # or: import hear_dual.tf_impl as m
    model = m.load_model()
    embeddings, timestamps = m.get_timestamp_embeddings(audio, model)
"""

__version__ = "0.1.0"
