"""Prediction: preprocessing shared with training (``preprocess``), ONNX Runtime models and
their per-process cache (``sessions``), micro-batching of concurrent requests (``batching``),
and checks of uploaded images (``images``).

Nothing is imported here, so the trainer can import ``preprocess`` without ONNX Runtime.
"""
