# edge-fer in a container: slim Python, headless OpenCV, no TensorFlow, the models baked in (they ship
# inside the package), a non-root user. Build and run: docs/deploy.md ("Container"); with Mosquitto:
# compose.yaml. The camera is passed through as a device: --device /dev/video0 (and the video group).

FROM python:3.11-slim-bookworm AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY edge_fer ./edge_fer
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
# The runtime dependencies with opencv-python-headless in place of opencv-python (no Qt, no libGL: about
# 200 MB smaller; --preview needs the GUI build and says so), then edge-fer itself without its dependencies.
RUN pip install --no-cache-dir "numpy>=1.24" "opencv-python-headless>=4.8" "onnxruntime>=1.17" \
        "paho-mqtt>=2.2" "pyyaml>=6.0" "pydantic>=2.5"
COPY --from=wheel /wheels /wheels
RUN pip install --no-cache-dir --no-deps /wheels/*.whl && rm -rf /wheels \
    && useradd --system --no-create-home --uid 10001 --groups video edge-fer \
    && install -d -o edge-fer -g edge-fer -m 700 /var/lib/edge-fer
COPY docker/edge-fer.yaml /etc/edge-fer/edge-fer.yaml
ENV ORT_DISABLE_TELEMETRY=1 PYTHONUNBUFFERED=1
USER edge-fer
WORKDIR /var/lib/edge-fer
VOLUME ["/var/lib/edge-fer"]
ENTRYPOINT ["edge-fer"]
CMD ["run", "--config", "/etc/edge-fer/edge-fer.yaml"]
