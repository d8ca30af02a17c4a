"""Face detection (MTCNN on ONNX Runtime), alignment and emotion classification."""
