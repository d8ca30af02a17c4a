"""edge-fer: real-time facial emotion recognition for machines with a webcam.

Importing the package is cheap and side-effect free: heavy modules (onnxruntime, OpenCV)
load only when a command needs them, and TensorFlow is never imported here.
"""

__version__ = "0.1.0"
