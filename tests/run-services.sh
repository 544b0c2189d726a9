#!/usr/bin/env bash
# The tests that need PostgreSQL or Redis, which a plain `cargo test` reports as ignored: the
# PostgreSQL runs of tests/it/ledger.rs, the two replicas of tests/it/replicas.rs (which also
# share a Redis) and the database outage of tests/it/faults.rs, all in the `it` test binary under
# a module `postgres`, and the Redis runs of the shared rate limits. `make test` runs each group
# here when its server answers, and always when CI=true (where they then fail if it does not
# answer).
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

redis_url=${LLMRPC_TEST_REDIS_URL:-redis://127.0.0.1:6379}
redis_authority=${redis_url#*://}
redis_authority=${redis_authority%%[/?]*}
redis_authority=${redis_authority##*@}
redis_host=${redis_authority%:*} redis_port=${redis_authority##*:}
[[ $redis_authority == *:* ]] || redis_port=6379

# Redis answers PING with +PONG (or -NOAUTH when it wants a password: it is Redis all the same).
redis_answers() {
    local reply
    reply=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" &&
        printf "PING\r\n" >&3 && head -c 1 <&3' "$redis_host" "$redis_port" 2>/dev/null) || true
    [[ $reply == [+-] ]]
}

cargo=${CARGO:-cargo}
if [[ ${CI:-} == true ]] || redis_answers; then
    "$cargo" test --lib -- --ignored redis::
else
    echo "Redis tests stay ignored: no server answers at $redis_host:$redis_port (LLMRPC_TEST_REDIS_URL; under CI=true they run, and fail)"
fi
if [[ ${CI:-} == true ]] || answers; then
    "$cargo" test --test it -- --ignored ::postgres::
else
    echo "PostgreSQL tests stay ignored: no server answers at $host:$port (LLMRPC_TEST_POSTGRES_URL; under CI=true they run, and fail)"
fi
