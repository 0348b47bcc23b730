"""spikewatch's training pipeline: feature table → labels → time splits → LightGBM → ONNX."""
