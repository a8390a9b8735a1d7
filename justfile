# blackbox: everyday recipes. `just` lists them.

_default:
    @just --list

# Build everything (debug)
build:
    cargo build --workspace

# Run the whole test suite (the README's test command)
test:
    bash scripts/test

# Formatting and clippy, as CI checks them
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# Format the code
fmt:
    cargo fmt --all

# Every benchmark, then one table: each figure beside its baseline measured in the same run
bench:
    cargo build --release -p cli -p bench
    target/release/bench

# Capture benchmarks only (optional line count)
bench-capture lines="1000000":
    cargo build --release -p cli -p bench
    target/release/bench capture {{lines}}

# Indexer benchmarks on the mixed, homepower and sensors workloads: rebuild speed (with and without checks), cache size, memory, catch-up, query time and status on 1,000 devices
# (optional line count per workload; from 5000000 on it adds a rebuild of 15000000 lines for memory, BENCH_BIG=0 skips that)
bench-index lines="5000000":
    cargo build --release -p cli -p bench
    target/release/bench index {{lines}}

# One workload's logs kept in DIR for profiling (mixed, homepower or sensors); then `cd DIR && blackbox rebuild`
bench-data dir workload="mixed" lines="5000000":
    cargo build --release -p bench
    target/release/bench index-data {{dir}} {{lines}} --workload {{workload}}

# Latency of `tail -f` against GNU tail -F, measured in the same run (optional sample count)
bench-tail samples="300":
    cargo build --release -p cli -p bench
    target/release/bench tail {{samples}}

# The dashboard: /api/status of 1,000 devices, a year of hours, capture to a live page, serve's memory
bench-web:
    cargo build --release -p cli -p bench
    target/release/bench web

# MQTT benchmarks: the forwarder's rate from a backlog beside mosquitto_pub, and 100 sites into one mosquitto and one mirror (mirror lag); needs mosquitto
bench-mqtt:
    cargo build --release -p cli -p bench
    target/release/bench mqtt

# The demo: a simulated receiver captured, indexed and shown decoded
demo *args:
    cargo run --release --bin blackbox -- demo {{args}}

# The soak test for a while (seconds; CI runs 6): kills, midnights, a clock step, unplugs
soak secs="600":
    BLACKBOX_SOAK_SECS={{secs}} cargo test --release -p cli --test e2e soak -- --nocapture

# Fuzz one target for a while (seconds): framer, log_line, decoders, config, time, index_model
fuzz target secs="300":
    bash scripts/fuzz {{target}} {{secs}}

# Every fuzz target for a short time, as CI does
fuzz-smoke secs="10":
    bash scripts/fuzz all {{secs}}

# Static binaries for aarch64 and armv7 boards (target/<triple>/board/blackbox)
cross:
    bash scripts/cross

# The same, then run them under qemu-user on the real day and compare with the native binary
cross-test:
    bash scripts/cross --test

# What CI runs
ci:
    bash .ci/run
