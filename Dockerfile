# lstm-tuner in a container; the entrypoint is `tuner`, so `docker run IMAGE search ...`
# runs the same command as a shell would.
#
#   CPU (default):  docker build -t lstm-tuner .
#   CUDA:           docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 \
#                       -t lstm-tuner:cuda .
#                   (torch's CUDA wheels bring their own CUDA runtime; the host needs the
#                   NVIDIA driver and the container toolkit: docker run --gpus all ...)
#
# A Kubernetes Indexed Job that runs one worker per pod: deploy/kubernetes/job.yaml.
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONUNBUFFERED=1 \
    MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false

WORKDIR /opt/lstm-tuner
# torch first, from the index that matches the device (an unpinned torch from PyPI pulls
# the multi-GB CUDA build into the CPU image)
RUN pip install --no-cache-dir torch==2.13.0 --index-url "${TORCH_INDEX}"
COPY pyproject.toml setup.py README.md ./
COPY tuner tuner
COPY tasks tasks
COPY search_spaces search_spaces
RUN pip install --no-cache-dir '.[postgres]'

# the default stores (SQLite under mlruns/) land in the working folder: mount a volume
# here, or pass --storage / --tracking-uri for a team's servers
WORKDIR /work
ENTRYPOINT ["tuner"]
CMD ["--help"]
