# Sockets, step by step: `just --list` is the table of contents.

set positional-arguments

# Show the recipes, in course order
default:
    @just --list --unsorted

# Lesson 1: a socket is a file descriptor
[no-exit-message]
lesson-1 *args:
    @cargo run --quiet -p lesson-01 -- "$@"

# Lesson 2: the article's server and client, one raw socket call at a time
[no-exit-message]
lesson-2 *args:
    @cargo run --quiet -p lesson-02 -- "$@"

# Lesson 3: the same with std::net, and the system calls behind it
[no-exit-message]
lesson-3 *args:
    @cargo run --quiet -p lesson-03 -- "$@"

# Lesson 4: send is not send_all: short writes, a write-all loop, Nagle's algorithm
[no-exit-message]
lesson-4 *args:
    @cargo run --quiet -p lesson-04 -- "$@"

# Lesson 5: a byte stream, not messages: framing by newline and by length
[no-exit-message]
lesson-5 *args:
    @cargo run --quiet -p lesson-05 -- "$@"

# Lesson 6: ending a conversation: half-close, RST, EPIPE and TIME_WAIT
[no-exit-message]
lesson-6 *args:
    @cargo run --quiet -p lesson-06 -- "$@"

# Lesson 7: when things fail: address in use, reuse options, refused, port 0 and the 4-tuple
[no-exit-message]
lesson-7 *args:
    @cargo run --quiet -p lesson-07 -- "$@"

# Lesson 8: what listen(backlog) really bounds: the accept queue, not the connections
[no-exit-message]
lesson-8 *args:
    @cargo run --quiet -p lesson-08 -- "$@"

# Lesson 9: timeouts, deadlines, dead peers, and a server that survives them
[no-exit-message]
lesson-9 *args:
    @cargo run --quiet -p lesson-09 -- "$@"

# Lesson 10: many clients, one thread each
[no-exit-message]
lesson-10 *args:
    @cargo run --quiet -p lesson-10 -- "$@"

# Lesson 11: a bounded thread pool, a connection limit and a graceful shutdown
[no-exit-message]
lesson-11 *args:
    @cargo run --quiet -p lesson-11 -- "$@"

# Lesson 12: non-blocking sockets and poll: one thread serves every client
[no-exit-message]
lesson-12 *args:
    @cargo run --quiet -p lesson-12 -- "$@"

# Lesson 13: epoll, level- and edge-triggered, with a signalfd shutdown and EMFILE handled
[no-exit-message]
lesson-13 *args:
    @cargo run --quiet -p lesson-13 -- "$@"

# Run lesson N's demo under strace: each narrated line follows the kernel's own record of the call
trace n:
    #!/usr/bin/env bash
    set -euo pipefail
    nn=$(printf '%02d' "{{n}}")
    cargo build --quiet -p "lesson-$nn"
    # strace logs a call as it returns, before the demo prints its line about
    # it, so one pipe carries both in the order they happened. strace's lines
    # start with the thread id (-f); the demo's never do. Calls made before
    # the demo's first line (the loader, Rust's runtime) are left out, and
    # read/write are not traced: strace would split its line for a write to
    # stdout around the very line being written.
    strace -f -qq -e signal=none -o /dev/stderr \
        -e trace=network,close,openat,readlink,readlinkat,lseek,fstat,newfstatat,statx,poll,ppoll,epoll_create1,epoll_ctl,epoll_wait,epoll_pwait,fcntl,pipe2,dup,dup2 \
        "target/debug/lesson-$nn" 2>&1 | awk '
            /^[0-9]+ / { if (started) { $1 = ""; print "      kernel>" $0 } ; next }
            { started = 1; print; fflush() }'

# Show what lesson M changes compared with lesson N: a diff of the code a reader takes away (add --all for whole crates, demo and CLI included)
diff n m *all:
    #!/usr/bin/env bash
    set -euo pipefail
    src() { ls -d crates/$(printf '%02d' "$1")-*/src; }
    a=$(src "{{n}}") b=$(src "{{m}}")
    if [ "{{all}}" != "--all" ]; then
        # The takeaway: every source file but the demo and the command line
        # (CONTRIBUTING.md, "Where each role lives").
        tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
        for pair in "{{n}}:$a" "{{m}}:$b"; do
            to="$tmp/lesson-${pair%%:*}"; mkdir -p "$to"
            (cd "${pair#*:}" && find . -name '*.rs' ! -name main.rs ! -name 'demo*.rs' ! -path './demo/*' \
                -exec cp --parents {} "$to/" \;)
        done
        cd "$tmp"
        git --no-pager diff --no-index --no-prefix "lesson-{{n}}" "lesson-{{m}}" || [ $? -le 1 ]
        exit
    fi
    # The prefixes put the lesson numbers in every file header; status 1
    # only means "they differ".
    status=0
    git --no-pager diff --no-index --src-prefix="lesson-{{n}}:" --dst-prefix="lesson-{{m}}:" "$a" "$b" || status=$?
    [ "$status" -le 1 ]

# Run every test (snapshots, interop, book, kernel and try-it checks), or with N only what concerns lesson N
test n="":
    #!/usr/bin/env bash
    set -euo pipefail
    if [ -z "{{n}}" ]; then exec cargo test; fi
    nn=$(printf '%02d' "{{n}}")
    # Its snapshots and peers, its try-it steps, its hostile cases, its
    # demo against the kernel (LESSON narrows the kernel and leak checks),
    # and the book's checks, which are quick.
    LESSON={{n}} cargo test --quiet --test course -- \
        "lesson_$nn" "lessons_$nn" "lesson_{{n}}_" kernel:: leaks:: book:: listings::

# Measure lessons 10-13 against a tokio echo server; writes the benchmark appendix's table and plot (book/src/bench/)
bench *args:
    cargo run --quiet --release -p bench -- "$@"

# Check that every server the bench measures answers correctly (no timing)
bench-smoke:
    cargo test --quiet --release -p bench
    cargo run --quiet --release -p bench -- --smoke

# Build the book into book/book
book:
    mdbook build book

# Serve the book on http://127.0.0.1:3000 and rebuild it on change
serve:
    mdbook serve book --hostname 127.0.0.1
