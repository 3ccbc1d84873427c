# One image for riverflink on a Flink cluster: the JobManager, the TaskManagers
# and the one-shot clients (producer, job submission) of docker-compose.yml.
FROM python:3.11-slim-bookworm

# Java runs Flink; Maven fetches the Flink Kafka connector jar at build time.
# Slim images drop /usr/share/man, where openjdk's post-install links man pages.
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install --yes --no-install-recommends openjdk-17-jre-headless maven \
    && rm -rf /var/lib/apt/lists/*

# FLINK_HOME is the Flink distribution inside the apache-flink wheel (install.sh
# fails the build if pip put pyflink elsewhere). The entry point writes the
# container's configuration and lib dir under /opt/flink, never into the wheel.
# PYTHONHASHSEED=0: every Python worker hashes strings alike (README, notes for operators).
ENV FLINK_HOME=/usr/local/lib/python3.11/site-packages/pyflink \
    FLINK_CONF_DIR=/opt/flink/conf \
    FLINK_LIB_DIR=/opt/flink/lib \
    FLINK_LOG_DIR=/opt/flink/log \
    RIVERFLINK_CACHE=/opt/riverflink-cache \
    PYTHONHASHSEED=0 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

# The sources (for pip) and the examples (for the jobs' relative paths), nothing else.
WORKDIR /opt/riverflink
COPY pyproject.toml README.md ./
COPY jobs jobs
COPY operators operators
COPY state state
COPY examples examples
COPY docker docker
# The same script tests/test_deployment.py runs without Docker. Maven's own
# plugins and pip's build tree are not needed at run time.
RUN bash docker/install.sh python3 /opt/riverflink \
    && rm -rf /root/.m2 build ./*.egg-info

RUN useradd --create-home flink \
    && mkdir -p /opt/flink/log /checkpoints \
    && chown -R flink: /opt/flink /checkpoints
USER flink

EXPOSE 8081
ENTRYPOINT ["bash", "/opt/riverflink/docker/flink-entrypoint.sh"]
CMD ["riverflink", "--help"]
