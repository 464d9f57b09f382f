"""The trainer as a library: it imports neither SQLAlchemy nor Celery.

Import from the modules, so light users (the api reads ``config`` and ``estimate``) do not load
torch: ``config.TrainConfig``, ``data.TrainData``/``ImageSet``, ``loop.train``,
``sink.MetricSink``/``TrainResult``, ``checkpoint.LocalCheckpointStore``/``read_checkpoint``,
``models.ARCHS``/``create_model``, ``export.export_onnx``/``verify_onnx``, ``estimate``.
"""
