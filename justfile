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

# Lesson 14: UDP datagrams: boundaries kept, truncation, loss counted, ICMP, broadcast, a client that retries
[no-exit-message]
lesson-14 *args:
    @cargo run --quiet -p lesson-14 -- "$@"

# Lesson 15: Unix domain sockets: a socket file, socketpair, SO_PEERCRED and SCM_RIGHTS
[no-exit-message]
lesson-15 *args:
    @cargo run --quiet -p lesson-15 -- "$@"

# Lesson 16: IPv6, dual stack, and the many addresses of a name
[no-exit-message]
lesson-16 *args:
    @cargo run --quiet -p lesson-16 -- "$@"

# Lesson 17, the capstone: an HTTP/1.1 server on lesson 13's epoll loop, serving this book on 127.0.0.1:8017
[no-exit-message]
lesson-17 *args:
    @cargo run --quiet -p lesson-17 -- "$@"

# Lesson 18: watching the wire: a packet socket, a BPF filter, the segments of one conversation (needs root or CAP_NET_RAW)
[no-exit-message]
lesson-18 *args:
    @cargo run --quiet -p lesson-18 -- "$@"

# Run lesson N's exercise checks and say which pass and why not; with no N, your progress over the whole course (your files: crates/exercises/src/yours/)
[no-exit-message]
check *n:
    @cargo run --quiet -p exercises -- "$@"

# Print the hint of lesson N's exercise
[no-exit-message]
hint n:
    @cargo run --quiet -p exercises -- hint "$@"

# Run lesson N's demo under strace: each narrated line follows the kernel's own record of the call
[no-exit-message]
trace n:
    #!/usr/bin/env python3
    # The demo's stdout and strace's record come through two pipes. strace
    # writes a call's line when the call returns, before the demo goes on to
    # print its own line about it, so reading strace's pipe first whenever
    # both have something keeps the order on screen. Lines are printed
    # whole: a call that blocks in one thread while another thread makes
    # calls is split by strace ("<unfinished ...>", later "<... accept4
    # resumed>"), and is joined here into one line, shown when it returned.
    import os, re, select, shutil, signal, subprocess, sys, tempfile
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `just trace 2 | head` ends quietly
    nn = "%02d" % int("{{n}}")
    subprocess.run(["cargo", "build", "--quiet", "-p", f"lesson-{nn}"], check=True)
    calls = ("network,close,openat,readlink,readlinkat,lseek,fstat,newfstatat,statx,"
             "poll,ppoll,epoll_create1,epoll_ctl,epoll_wait,epoll_pwait,fcntl,pipe2,"
             "dup,dup2,ioctl,signalfd4,rt_sigprocmask,kill,prlimit64,write,"
             "chmod,fchmodat,unlink,unlinkat,clone,clone3,wait4,select,pselect6,rt_sigaction")
    # strace writes into a named pipe that it opens itself: a descriptor
    # handed down to it would be inherited by the demo too, and shift the
    # descriptor numbers the transcript shows.
    tmp = tempfile.mkdtemp()
    fifo = os.path.join(tmp, "strace")
    os.mkfifo(fifo)
    demo = subprocess.Popen(
        ["strace", "-f", "-qq", "-e", "signal=none", "-o", fifo,
         "-e", f"trace={calls}", f"target/debug/lesson-{nn}"],
        stdout=subprocess.PIPE)
    kernel_r = os.open(fifo, os.O_RDONLY)  # returns once strace has opened it
    started = False  # the calls before the transcript's header are the runtime's
    unfinished = {}  # thread id -> the first half of the call it blocks in

    def kernel_line(line):
        global started
        pid, _, call = line.partition(" ")
        call = call.strip()
        if call.endswith("<unfinished ...>"):
            unfinished[pid] = call[: -len("<unfinished ...>")].rstrip()
            return
        resumed = re.match(r"<\.\.\. (\w+) resumed>\s?(.*)", call)
        if resumed:
            call = unfinished.pop(pid, resumed.group(1) + "(...") + resumed.group(2)
        if call.startswith(("write(1,", "writev(1,")):
            # The demo's own output, shown as itself; its header starts it.
            started = started or '"step  ' in call
        elif started and not call.startswith(("+++", "---")):
            # strace pads short calls to a column before " = ": drop that.
            call = re.sub(r"\)\s+= ", ") = ", call)
            print("      kernel> " + call, flush=True)

    def demo_line(line):
        print(line, flush=True)

    handlers = {kernel_r: kernel_line, demo.stdout.fileno(): demo_line}
    pending = {fd: b"" for fd in handlers}
    while handlers:
        ready = select.select(list(handlers), [], [])[0]
        fd = kernel_r if kernel_r in ready else ready[0]
        data = os.read(fd, 65536)
        if not data:
            if pending[fd]:
                handlers[fd](pending[fd].decode(errors="replace"))
            del handlers[fd]
            continue
        *whole, pending[fd] = (pending[fd] + data).split(b"\n")
        for line in whole:
            handlers[fd](line.decode(errors="replace"))
    shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(demo.wait())

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

# Measure lessons 10-13 against a tokio echo server and lesson 17 against a hyper file server; writes the benchmark appendix's tables and plot (book/src/bench/)
bench *args:
    cargo run --quiet --release -p bench -- "$@"

# Check that every server the bench measures answers correctly (no timing)
bench-smoke:
    cargo test --quiet --release -p bench
    cargo run --quiet --release -p bench -- --smoke

# Build the book: English into book/book, Chinese into book/book/zh-CN (one server serves both)
book:
    mdbook build book
    MDBOOK_BOOK__LANGUAGE=zh-CN mdbook build book -d book/book/zh-CN

# Serve the book on http://127.0.0.1:3000 and rebuild it on change
serve:
    mdbook serve book --hostname 127.0.0.1

# Serve the Chinese edition on http://127.0.0.1:3001 and rebuild it when the text or po/zh-CN.po changes
serve-zh:
    MDBOOK_BOOK__LANGUAGE=zh-CN mdbook serve book -d book/book/zh-CN --hostname 127.0.0.1 --port 3001

# After English text changes: extract po/messages.pot and merge it into po/zh-CN.po (TRANSLATING.md)
po:
    #!/usr/bin/env bash
    set -euo pipefail
    tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
    MDBOOK_OUTPUT='{"xgettext": {"pot-file": "messages.pot", "granularity": 0}}' \
        mdbook build book -d "$tmp" 2>&1 | { grep -v INFO || true; }
    # Only a change in the messages counts: the creation date alone does not.
    if ! diff -q <(grep -v '^"POT-Creation-Date' "$tmp/messages.pot") \
        <(grep -v '^"POT-Creation-Date' po/messages.pot 2>/dev/null) >/dev/null; then
        cp "$tmp/messages.pot" po/messages.pot
    fi
    msgmerge --quiet --update --backup=none po/zh-CN.po po/messages.pot
    msgfmt --statistics --check -o /dev/null po/zh-CN.po

# How much of each chapter is translated into Chinese (untranslated and fuzzy messages, by first chapter)
po-stats:
    #!/usr/bin/env python3
    import re, collections
    text = open("po/zh-CN.po", encoding="utf-8").read()
    stats = collections.OrderedDict()
    for entry in text.split("\n\n"):
        if "\nmsgid" not in "\n" + entry or entry.lstrip().startswith("#~"):
            continue
        where = re.search(r"^#: (\S+)", entry, re.M)
        if not where:
            continue  # the header
        msgstr = "".join(re.findall(r'"(.*)"', entry.split("\nmsgstr", 1)[1]))
        fuzzy = re.search(r"^#,.*fuzzy", entry, re.M) is not None
        s = stats.setdefault(where.group(1), [0, 0, 0])
        s[0] += 1
        s[1] += bool(msgstr) and not fuzzy
        s[2] += fuzzy
    total = [0, 0, 0]
    for chapter, (n, done, fuzzy) in stats.items():
        print(f"{chapter:28} {done:4}/{n:<4} translated  {fuzzy:3} fuzzy")
        total = [t + x for t, x in zip(total, (n, done, fuzzy))]
    print(f"{'all':28} {total[1]:4}/{total[0]:<4} translated  {total[2]:3} fuzzy")

# Copy one chapter's messages (book/src/CHAPTER.md) into po/work/CHAPTER.po, for a PO editor (TRANSLATING.md)
po-take chapter:
    mkdir -p po/work
    msggrep --location='src/{{chapter}}.md' po/zh-CN.po -o po/work/{{chapter}}.po
    @echo "po/work/{{chapter}}.po: translate it, then run just po-give {{chapter}}"

# Put po/work/CHAPTER.po's finished (translated, not fuzzy) messages back into po/zh-CN.po, in its own order
po-give chapter:
    #!/usr/bin/env bash
    set -euo pipefail
    tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
    msgattrib --translated --no-fuzzy po/work/{{chapter}}.po -o "$tmp/done.po"
    # The chapter's translations first, then everything else as it was;
    # msgmerge puts the messages back in the book's order.
    msgcat --use-first "$tmp/done.po" po/zh-CN.po -o "$tmp/all.po"
    msgmerge --quiet "$tmp/all.po" po/messages.pot -o po/zh-CN.po
    msgfmt --statistics --check -o /dev/null po/zh-CN.po

# Lesson N's demo with the TCP segments each call sent, in a network namespace of its own (needs root; lesson 18)
[no-exit-message]
wire n *args:
    @cargo build --quiet -p lesson-18 -p lesson-$(printf '%02d' "{{n}}")
    @target/debug/lesson-18 beside "$@"

# Redraw the book's sequence diagrams (book/src/wire/) from the wire snapshots
diagrams:
    UPDATE_DIAGRAMS=1 cargo test --quiet --test course -- diagrams
