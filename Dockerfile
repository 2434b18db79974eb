# energyhub: one image for every role; docker-compose.yml picks the role by its command
# (db migrate, sites load, ingest, api, scheduler, simulate).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY energyhub ./energyhub
COPY simulators ./simulators
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/energyhub --create-home energyhub
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY examples /usr/share/energyhub/examples
ENV PYTHONUNBUFFERED=1 \
    ENERGYHUB_SITE_FILE=/usr/share/energyhub/examples/expo-park.yaml
USER energyhub
WORKDIR /var/lib/energyhub
ENTRYPOINT ["energyhub"]
CMD ["--help"]
