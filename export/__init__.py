"""Offline tools: export MTCNN and Keras emotion models to ONNX, train and evaluate.

Needs the ``export`` extra (TensorFlow, tf2onnx, onnx, mtcnn). The runtime package
``edge_fer`` never imports anything from here.
"""
