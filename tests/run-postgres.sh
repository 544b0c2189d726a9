#!/usr/bin/env bash
# The PostgreSQL runs of tests/ledger.rs, which a plain `cargo test` reports as ignored: `make test`
# runs them here when the server of LLMRPC_TEST_POSTGRES_URL answers, and always when CI=true
# (where they then fail if it does not answer).
set -euo pipefail
cd "$(dirname "$0")/.."

url=${LLMRPC_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
# scheme://[user[:password]@]host[:port][/database][?options] -> host, port
authority=${url#*://}
authority=${authority%%[/?]*}
authority=${authority##*@}
if [[ $authority =~ ^(.*):([0-9]+)$ ]]; then
    host=${BASH_REMATCH[1]} port=${BASH_REMATCH[2]}
else
    host=$authority port=5432
fi
host=${host#[} host=${host%]}

# An open port is not enough (a proxy may accept any connection): send PostgreSQL's SSLRequest,
# which a server answers with one byte, S or N.
answers() {
    local reply
    reply=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" &&
        printf "\x00\x00\x00\x08\x04\xd2\x16\x2f" >&3 && head -c 1 <&3' "$host" "$port" 2>/dev/null) || true
    [[ $reply == [SN] ]]
}

if [[ ${CI:-} == true ]] || answers; then
    exec "${CARGO:-cargo}" test --test ledger -- --ignored postgres::
fi
echo "PostgreSQL tests stay ignored: no server answers at $host:$port (LLMRPC_TEST_POSTGRES_URL; under CI=true they run, and fail)"
