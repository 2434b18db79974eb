"""PostgreSQL / TimescaleDB storage: schema and migrations, pool, COPY writer, site sync, reads."""
