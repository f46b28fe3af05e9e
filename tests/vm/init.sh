#!/bin/sh
# /init of the guest that tests/tests/kernel_vm.rs boots (Debian 12's kernel,
# 6.1): it makes the machine look like a user's (pure cgroup2 with every
# controller, tracefs, bpffs), runs inspector's checks, and powers off.
#
# Each check's output goes to the second serial port (/dev/ttyS1), framed for
# the host (tests/src/vm.rs parses it):
#   === BEGIN <name>
#   <its stdout>
#   === STDERR <name>
#   <its stderr>
#   === END <name> rc=<exit code> secs=<guest seconds>
# and `=== DONE secs=<uptime>` once every check has run. The console
# (/dev/ttyS0) keeps the kernel's messages and this script's progress.

export PATH=/bin
INSPECTOR=/opt/inspector/inspector
# Each inspector command's limit, in guest seconds: a hung one fails its own
# check, and the checks after it still run (the host gives the VM 8 minutes).
LIMIT=90

if [ ! -e /.on-tmpfs ]; then
    # Stage 1, on the initramfs: pivot_root, which the runtime needs, fails on
    # the initramfs root; so copy everything onto a tmpfs and switch_root there.
    mount -t tmpfs -o mode=0755 tmpfs /newroot || exit 1
    for entry in /*; do
        [ "$entry" = /newroot ] || cp -a "$entry" /newroot/
    done
    touch /newroot/.on-tmpfs
    exec switch_root /newroot /init
fi

# Stage 2, on the tmpfs: what a pure cgroup2 distribution mounts.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tracefs tracefs /sys/kernel/tracing
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
# systemd enables these in the root; the runtime's cgroups get their files.
echo "+cpu +memory +pids +cpuset +io" >/sys/fs/cgroup/cgroup.subtree_control
mkdir -p /tmp /run
chmod 1777 /tmp
BOOTED=$(cut -d' ' -f1 /proc/uptime)
echo "vm: set up after $BOOTED s of uptime"

# Raw, so the framing reaches the host byte for byte (no \r added).
stty -F /dev/ttyS1 raw -echo
exec 3>/dev/ttyS1

now() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
# Ends a frame's part with a newline if its file lacks one.
endline() { [ -n "$(tail -c1 "$1")" ] && echo; }

# frame NAME COMMAND...: runs COMMAND (a function or a program) with its
# stdout and stderr framed on the results port.
frame() {
    f_name=$1
    shift
    echo "vm: $f_name"
    f_start=$(now)
    "$@" >/tmp/frame.out 2>/tmp/frame.err </dev/null
    f_rc=$?
    f_took=$(since "$f_start")
    {
        echo "=== BEGIN $f_name"
        cat /tmp/frame.out
        endline /tmp/frame.out
        echo "=== STDERR $f_name"
        cat /tmp/frame.err
        endline /tmp/frame.err
        echo "=== END $f_name rc=$f_rc secs=$f_took"
    } >&3
    echo "vm: $f_name exited $f_rc after $f_took s"
}

# bounded SECS COMMAND...: COMMAND, killed if it runs longer than SECS. (Not
# busybox's timeout: its watchdog would be a child of inspector, which reaps
# what it is parent of.)
bounded() {
    local secs=$1 pid watchdog rc
    shift
    "$@" &
    pid=$!
    (sleep "$secs" && echo "killed after $secs s: $*" >&2 && kill -KILL "$pid") &
    watchdog=$!
    wait "$pid"
    rc=$?
    kill "$watchdog" 2>/dev/null
    return $rc
}

guest() {
    echo "kernel $(uname -r)"
    echo "booted $BOOTED"
    [ -e /sys/kernel/btf/vmlinux ] && echo "btf /sys/kernel/btf/vmlinux"
    echo "controllers $(cat /sys/fs/cgroup/cgroup.controllers)"
    echo "subtree_control $(cat /sys/fs/cgroup/cgroup.subtree_control)"
    grep cgroup /proc/mounts
}

# inspector trace in the background while inspector run starts a container.
trace() {
    local pid waited=0 rc
    $INSPECTOR trace --format jsonl --output /tmp/t.jsonl 2>/tmp/trace.err &
    pid=$!
    # Under TCG, loading and attaching the probe takes seconds.
    until grep -qE "probes attached|inspector: error" /tmp/trace.err ||
        [ "$waited" -ge $((LIMIT * 5)) ]; do
        sleep 0.2
        waited=$((waited + 1))
    done
    if grep -q "probes attached" /tmp/trace.err; then
        bounded $LIMIT $INSPECTOR run --name vmtrace -- /bin/sh -c 'echo hello; exit 3'
        echo "inspector run exited $?"
        # Let the teardown's last events arrive, as the host's tests do.
        sleep 1
        kill -INT "$pid"
    else
        echo "inspector trace did not say its probes were attached"
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid"
    rc=$?
    echo "--- inspector trace's stderr" >&2
    cat /tmp/trace.err >&2
    return $rc
}

RUN_TRUE="$INSPECTOR run --brief -- /bin/true"

frame guest guest
frame trace trace
frame trace.jsonl cat /tmp/t.jsonl
frame run bounded $LIMIT $INSPECTOR run --name vmrun -- /bin/sh -c 'echo hello; exit 3'
frame limits bounded $LIMIT $INSPECTOR run --name vmlimits --bundle /opt/limits
for failing in fail-oom fail-seccomp fail-rlimit; do
    frame $failing bounded $LIMIT $INSPECTOR run --brief --name $failing --bundle /opt/$failing
done
frame why-sleep bounded $LIMIT $INSPECTOR run --why --brief --name why-sleep --bundle /opt/why-sleep
frame golden-record bounded $LIMIT $INSPECTOR record --golden /tmp/g -- $RUN_TRUE
frame golden.txt cat /tmp/g
frame golden-check bounded $LIMIT $INSPECTOR check --golden /tmp/g -- $RUN_TRUE
REPO_GOLDEN=/opt/goldens/inspector-run-true-cgroup2-6.1.golden
if [ -e $REPO_GOLDEN ]; then
    frame golden-repo bounded $LIMIT $INSPECTOR check --golden $REPO_GOLDEN -- $RUN_TRUE
fi
# The static binaries of `cargo xtask dist`, chrooted in a root that has
# busybox and them alone: no shared library, no dynamic loader. Last, since
# their probe is another build's (it replaces the kept one).
STATIC=/opt/static-root
static_version() {
    chroot $STATIC /usr/bin/inspector --version &&
        chroot $STATIC /usr/bin/inspector-runtime --version
}
static_run() {
    # The root a runtime pivots from must be a mount point: bind it onto itself.
    mount -o bind $STATIC $STATIC || return 1
    for fs in proc sys dev run tmp; do
        mount -o rbind /$fs $STATIC/$fs || return 1
    done
    bounded $LIMIT chroot $STATIC /usr/bin/inspector run --brief --name vmstatic -- \
        /bin/sh -c 'echo hello from a static build; exit 3'
}
if [ -d $STATIC ]; then
    frame static-version static_version
    frame static-run static_run
fi
echo "=== DONE secs=$(now)" >&3
poweroff -f
