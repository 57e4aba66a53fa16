import sys

# Tessera's task launcher (see src/runner/launcher.ts for the worker's side). One launcher serves
# many task processes: for each request it forks, and the child becomes the task's process. A
# python entrypoint then runs in that child as `python -u script` would (no interpreter start-up:
# about 30 ms of CPU less per process), anything else is executed.
#
# Bare (TESSERA_SANDBOX=off), a child takes its own process group, the task's folder and
# environment. Confined, the launcher runs inside the host sandbox (bubblewrap) with the rights to
# build each task its own view first: a new PID, mount and IPC namespace whose first process only
# reaps (when the task's process ends, or is killed, the kernel kills everything left in the
# namespace, whatever escaped its process group), the task's own folder at /task and nothing of
# other tasks, a fresh /proc and a private /tmp, its cgroups and rlimits, and then the task's
# process drops every privilege (an unprivileged uid, no capabilities, no_new_privs).
#
# The protocol, one JSON line each way:
#   → {"id", "token", "socket", "cwd", "env", "script" | "argv", "confine"?}, or {"kill": id}
#   ← {"id", "pid"} once forked, then {"id", "exit", "signal", "cpu", "maxrss"} once reaped;
#     or {"id", "error"} when nothing could be started.
# Each task's stdout and stderr are connected to the worker's socket before the fork (each opens
# with "<token> stdout|stderr\n"), so by the time the exit is reported both are known.

# The launcher's own folder must not shadow the modules it imports next.
del sys.path[0]

import ctypes, gc, os, resource, signal, socket  # noqa: E402
from json import dumps, loads  # noqa: E402
from select import POLLIN, poll  # noqa: E402

_CLONE_NEWNS, _CLONE_NEWIPC, _CLONE_NEWPID = 0x00020000, 0x08000000, 0x20000000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_BIND, _MS_REC, _MS_PRIVATE = 2, 4, 8, 4096, 16384, 1 << 18
_MNT_DETACH = 2
_PR_SET_PDEATHSIG, _PR_CAPBSET_DROP, _PR_SET_SECUREBITS, _PR_SET_NO_NEW_PRIVS = 1, 24, 28, 38
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
# SECBIT_NOROOT and SECBIT_KEEP_CAPS_LOCKED (and NOROOT's lock): uid 0 gains nothing from exec.
_SECURE_BITS = 0x23
_LAST_CAP = 63
_RLIMITS = {"NOFILE": resource.RLIMIT_NOFILE, "FSIZE": resource.RLIMIT_FSIZE, "NPROC": resource.RLIMIT_NPROC, "DATA": resource.RLIMIT_DATA, "CORE": resource.RLIMIT_CORE}

_libc = None


def _c():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
        _libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        _libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return _libc


def _check(result, what):
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, "%s: %s" % (what, os.strerror(error)))


def _mount(source, target, fstype, flags, data=None):
    encode = lambda text: None if text is None else text.encode()  # noqa: E731
    _check(_c().mount(encode(source), target.encode(), encode(fstype), flags, encode(data)), "mount %s" % target)


def _prctl(option, arg2=0, arg3=0):
    _check(_c().prctl(option, arg2, arg3, 0, 0), "prctl %d" % option)


def _drop_capabilities():
    # capset with every set empty: what setresuid to a non-zero uid does, for a task that keeps
    # uid 0 of a user namespace (a sandbox started by an unprivileged worker maps one uid).
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)
    data = (ctypes.c_uint32 * 6)()
    _check(_c().capset(header, data), "capset")


_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
_CLONE_NEWUTS, _CLONE_NEWNET, _CLONE_NEWUSER = 0x04000000, 0x40000000, 0x10000000
_MS_RDONLY, _MS_REMOUNT = 1, 32
# statvfs flags of a mount whose flags a read-only remount must keep (an unprivileged user
# namespace may not clear them): nosuid, nodev, noexec, noatime, nodiratime, relatime.
_KEPT_FLAGS = ((2, 2), (4, 4), (8, 8), (1024, 1024), (2048, 2048), (4096, 1 << 21))
_DEVICES = ("null", "zero", "full", "random", "urandom", "tty")


def _write(path, text):
    with open(path, "w") as target:
        target.write(text)


def _bind(source, target, read_only):
    _mount(source, target, None, _MS_BIND | _MS_REC)
    if read_only:
        kept = os.statvfs(target).f_flag
        flags = _MS_BIND | _MS_REMOUNT | _MS_RDONLY
        for statvfs_flag, mount_flag in _KEPT_FLAGS:
            if kept & statvfs_flag:
                flags |= mount_flag
        _mount(None, target, None, flags)


def _make_sandbox(setup):
    """Enters the sandbox the task processes are made in; returns in its first process.

    New mount, PID, IPC, UTS and network namespaces (and a user namespace mapping this user to uid
    0 when the worker is not root), a root of its own on a tmpfs holding only what `setup` names,
    read-only where it says so, a /proc of its own, and no network but a loopback of its own.
    """
    root_mode = os.getuid() == 0
    uid, gid = os.getuid(), os.getgid()
    flags = _CLONE_NEWNS | _CLONE_NEWPID | _CLONE_NEWIPC | _CLONE_NEWUTS | _CLONE_NEWNET
    if not root_mode:
        flags |= _CLONE_NEWUSER
    _check(_c().unshare(flags), "unshare (the host must allow namespaces: run the worker as root, or allow unprivileged user namespaces)")
    if not root_mode:
        _write("/proc/self/uid_map", "0 %d 1" % uid)
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/gid_map", "0 %d 1" % gid)
    sandbox = os.fork()
    if sandbox:
        # The process the worker started: it waits, and whoever kills it (or its group) kills the
        # sandbox, through the parent-death signal of the sandbox's first process.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            try:
                _, status = os.waitpid(sandbox, 0)
                break
            except InterruptedError:
                continue
        os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    root = setup["root"]
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
    _mount("tmpfs", root, "tmpfs", _MS_NOSUID | _MS_NODEV, "mode=0755,size=1m")
    for folder in setup.get("dirs", []):
        os.makedirs(root + folder, exist_ok=True)
    for source, target, mode in setup.get("binds", []):
        inside = root + target
        if os.path.isdir(source):
            os.makedirs(inside, exist_ok=True)
        elif not os.path.exists(inside):
            # A mount point for a file, made in the sandbox's own root (a file already there, in a
            # read-only folder of the host's, is mounted over as it is).
            os.makedirs(os.path.dirname(inside), exist_ok=True)
            open(inside, "a").close()
        _bind(source, inside, mode == "ro")
    for link, target in setup.get("symlinks", []):
        os.makedirs(os.path.dirname(root + link), exist_ok=True)
        os.symlink(target, root + link)
    os.makedirs(root + "/dev/shm", exist_ok=True)
    for device in _DEVICES:
        open(root + "/dev/" + device, "a").close()
        _mount("/dev/" + device, root + "/dev/" + device, None, _MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, root + "/dev/" + name)
    for folder in ("/proc", "/tmp", "/task"):
        os.makedirs(root + folder, exist_ok=True)
    _mount("proc", root + "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    machine = os.uname().machine
    if machine not in _PIVOT_ROOT:
        raise OSError("the sandbox does not know pivot_root on %s" % machine)
    os.chdir(root)
    os.mkdir(".old-root")
    _check(_c().syscall(_PIVOT_ROOT[machine], b".", b".old-root"), "pivot_root")
    os.chdir("/")
    _check(_c().umount2(b"/.old-root", _MNT_DETACH), "umount the host's root")
    os.rmdir("/.old-root")
    # Nothing may be added at the top of the sandbox's tree; the task's mounts go on its folders.
    _mount(None, "/", None, _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV)
    socket.sethostname("tessera")
    _loopback_up()


def _add_unreachable_routes(ranges):
    """Routes that answer "unreachable" for every range given ([address, prefix] pairs, IPv4)."""
    import struct
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0) as link:  # NETLINK_ROUTE
        for sequence, (address, prefix) in enumerate(ranges, 1):
            destination = socket.inet_aton(address)
            attribute = struct.pack("HH", 4 + len(destination), 1) + destination  # RTA_DST
            # rtmsg: AF_INET, prefix, no source, tos 0, main table, static, universe scope, RTN_UNREACHABLE
            body = struct.pack("BBBBBBBBI", socket.AF_INET, prefix, 0, 0, 254, 4, 0, 7, 0) + attribute
            # RTM_NEWROUTE with NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE
            link.send(struct.pack("IHHII", 16 + len(body), 24, 0x1 | 0x4 | 0x400 | 0x100, sequence, 0) + body)
            answer = link.recv(65536)
            error = struct.unpack("i", answer[16:20])[0]
            if error:
                raise OSError(-error, "route to %s/%d: %s" % (address, prefix, os.strerror(-error)))


def _loopback_up():
    # The new network namespace's loopback starts down; a task's own localhost servers need it.
    import fcntl, struct
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(probe, 0x8913, request))[1]
        fcntl.ioctl(probe, 0x8914, struct.pack("16sH22x", b"lo", flags | 1))


def _connect(path, token, name):
    stream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        stream.connect(path)
        stream.sendall(("%s %s\n" % (token, name)).encode())
    except BaseException:
        stream.close()
        raise
    return stream


def _gone():
    # The worker stopped or went away. Bare, its tasks' processes go on (as spawned ones would) and
    # the folder of its socket goes: the worker may have ended before it could remove it. Confined,
    # the sandbox ends with the launcher, and every task in it.
    if len(sys.argv) > 2 and sys.argv[2] == "bare":
        for remove, target in ((os.unlink, os.path.join(sys.argv[1], "output.sock")), (os.rmdir, sys.argv[1])):
            try:
                remove(target)
            except OSError:
                pass
    os._exit(0)


def _send(message):
    data = (dumps(message) + "\n").encode()
    try:
        while data:
            data = data[os.write(1, data):]
    except BrokenPipeError:
        _gone()


def _added_at_start():
    # What this interpreter added to its own environment as it started (PEP 538 sets LC_CTYPE
    # when the locale is C): a fresh interpreter would add it for the task as well.
    try:
        with open("/proc/self/environ", "rb") as environ:
            given = {entry.split(b"=", 1)[0] for entry in environ.read().split(b"\0") if entry}
    except OSError:
        return {}
    return {key: value for key, value in os.environ.items() if key.encode() not in given}


_ADDED = _added_at_start()


def _enter_view(confine):
    """In the task's new mount namespace: its folder at /task, nothing of the others, its cgroups."""
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
    for cgroup in confine.get("cgroups", []):
        with open(os.path.join(cgroup, "cgroup.procs"), "w") as procs:
            procs.write("0")
    _mount(os.path.join("/tasks", confine["task"]), "/task", None, _MS_BIND | _MS_REC)
    for hidden in confine.get("hide", []):
        _check(_c().umount2(hidden.encode(), _MNT_DETACH), "umount %s" % hidden)
    size = "size=%d,mode=1777" % confine.get("tmpBytes", 1 << 30)
    for private in ("/tmp", "/dev/shm"):
        if os.path.isdir(private):
            _mount("tmpfs", private, "tmpfs", _MS_NOSUID | _MS_NODEV, size)


def _become_task_user(confine):
    """Drops every privilege before the task's own code runs; nothing afterwards can regain them."""
    for cap in range(_LAST_CAP + 1):
        try:
            _prctl(_PR_CAPBSET_DROP, cap)
        except OSError:
            break
    try:
        _prctl(_PR_SET_SECUREBITS, _SECURE_BITS)
    except OSError:
        pass
    uid, gid = confine["uid"], confine["gid"]
    # An unprivileged worker's sandbox maps one uid: the task keeps it, with no capabilities.
    if (os.getuid(), os.getgid()) != (uid, gid):
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    _prctl(_PR_SET_NO_NEW_PRIVS, 1)
    _drop_capabilities()
    try:
        _prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL)
    except OSError:
        pass


def _report(status_fd, line):
    os.write(status_fd, (line + "\n").encode())


def _confined_child(request, streams, status_fd):
    """The launcher's child: makes the task's namespaces and reports the status of its process."""
    confine = request["confine"]
    _check(_c().unshare(_CLONE_NEWPID | _CLONE_NEWNS | _CLONE_NEWIPC), "unshare")
    _enter_view(confine)
    init = os.fork()
    if init:
        for stream in streams:
            stream.close()
        # Whoever kills this process kills the task: the namespace's first process dies with it.
        _report(status_fd, "init %d" % init)
        while True:
            try:
                pid, status = os.waitpid(init, 0)
            except InterruptedError:
                continue
            os._exit(0)
    # The first process of the new PID namespace: when it exits, so does everything in it.
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    _mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    task = os.fork()
    if task == 0:
        return
    for stream in streams:
        stream.close()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    while True:
        try:
            pid, status = os.wait()
        except InterruptedError:
            continue
        except ChildProcessError:
            os._exit(0)
        if pid == task:
            _report(status_fd, "status %d" % status)
            os._exit(0)


def _serve():
    """Forks a child per request; returns (request, streams) in the child, never in the launcher."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    poller = poll()
    poller.register(0, POLLIN)
    poller.register(wake_r, POLLIN)
    running = {}
    by_id = {}
    statuses = {}
    pending = b""
    while True:
        for fd, _ in poller.poll():
            if fd == wake_r:
                try:
                    while os.read(wake_r, 4096):
                        pass
                except BlockingIOError:
                    pass
                continue
            if fd in statuses:
                _read_status(statuses[fd])
                continue
            chunk = os.read(0, 1 << 16)
            if not chunk:
                _gone()
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = loads(line)
                if "kill" in request:
                    _kill(by_id.get(request["kill"]))
                    continue
                if "routes" in request:
                    try:
                        _add_unreachable_routes(request["routes"])
                        _send({"id": 0, "routed": True})
                    except OSError as error:
                        _send({"id": 0, "error": "could not close the sandbox's network to private addresses: %s" % error})
                    continue
                streams = []
                try:
                    for name in ("stdout", "stderr"):
                        streams.append(_connect(request["socket"], request["token"], name))
                except OSError as error:
                    for stream in streams:
                        stream.close()
                    _send({"id": request["id"], "error": "could not connect the output of the process: %s" % error})
                    continue
                status_r, status_w = os.pipe() if request.get("confine") else (None, None)
                # The launcher's objects move to a generation the child's collections never scan: they
                # would otherwise write to every page of it (copy-on-write), 5 ms per process here.
                gc.freeze()
                pid = os.fork()
                if pid == 0:
                    signal.set_wakeup_fd(-1)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    os.close(wake_r)
                    os.close(wake_w)
                    if status_r is not None:
                        os.close(status_r)
                    return request, streams, status_w
                for stream in streams:
                    stream.close()
                entry = {"id": request["id"], "pid": pid, "init": None, "status": None, "error": None, "fd": status_r, "text": b""}
                if status_r is not None:
                    os.close(status_w)
                    os.set_blocking(status_r, False)
                    statuses[status_r] = entry
                    poller.register(status_r, POLLIN)
                else:
                    # Set from both sides, so a kill of the group right after this answer finds it.
                    try:
                        os.setpgid(pid, pid)
                    except OSError:
                        pass
                running[pid] = entry
                by_id[request["id"]] = entry
                _send({"id": request["id"], "pid": pid})
        while running:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            entry = running.pop(pid, None)
            if entry is None:
                continue
            by_id.pop(entry["id"], None)
            if entry["fd"] is not None:
                _read_status(entry)
                poller.unregister(entry["fd"])
                del statuses[entry["fd"]]
                os.close(entry["fd"])
                if entry["error"] is not None:
                    _send({"id": entry["id"], "error": entry["error"]})
                    continue
                # The task's own status, as its namespace's first process saw it; none if that
                # process was killed first (a kill of the task, or of the sandbox).
                status = entry["status"] if entry["status"] is not None else (status if os.WIFSIGNALED(status) else 9)
            _send({
                "id": entry["id"],
                "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                "cpu": usage.ru_utime + usage.ru_stime,
                "maxrss": usage.ru_maxrss,
            })


def _read_status(entry):
    try:
        while True:
            data = os.read(entry["fd"], 4096)
            if not data:
                break
            entry["text"] += data
    except BlockingIOError:
        pass
    lines = entry["text"].split(b"\n")
    entry["text"] = lines.pop()
    for line in lines:
        kind, _, value = line.decode("utf-8", "replace").partition(" ")
        if kind == "init":
            entry["init"] = int(value)
        elif kind == "status":
            entry["status"] = int(value)
        elif kind == "error":
            entry["error"] = value


def _kill(entry):
    if entry is None:
        return
    targets = [entry["init"], entry["pid"]] if entry["fd"] is not None else [-entry["pid"]]
    for target in targets:
        if target:
            try:
                os.kill(target, signal.SIGKILL)
            except OSError:
                pass


# The file the launcher's own frames name: a task's traceback leaves them out.
_LAUNCHER_FILE = sys._getframe().f_code.co_filename


def _app_traceback(kind, value, tb):
    """An uncaught exception as the app's author wrote it: no launcher frames, and the app's
    files named from its component folder (app/main.py), not from the worker's cache."""
    import traceback

    while tb is not None and tb.tb_frame.f_code.co_filename == _LAUNCHER_FILE:
        tb = tb.tb_next
    shown = traceback.TracebackException(kind, value, tb)
    roots = [_ROOT, os.path.realpath(_ROOT)] if _ROOT else []
    pending, seen = [shown], set()
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        for frame in current.stack:
            for root in roots:
                if frame.filename.startswith(root.rstrip("/") + "/"):
                    frame.filename = frame.filename[len(root.rstrip("/")) + 1:]
                    break
        pending.extend([current.__cause__, current.__context__, *(getattr(current, "exceptions", None) or ())])
    sys.stderr.write("".join(shown.format()))
    sys.stderr.flush()


# argv: the socket folder as the launcher sees it, "bare" or "sandbox", and the sandbox's setup.
if sys.argv[2] == "sandbox":
    try:
        _make_sandbox(loads(sys.argv[3]))
    except BaseException as _error:
        _send({"id": 0, "error": "could not make the sandbox: %s" % _error})
        os._exit(70)
_send({"id": 0, "ready": True})
_request, _streams, _status_w = _serve()
try:
    if _request.get("confine"):
        try:
            _confined_child(_request, _streams, _status_w)
            _become_task_user(_request["confine"])
            for _name, _limit in _request["confine"].get("rlimits", {}).items():
                resource.setrlimit(_RLIMITS[_name], (_limit, _limit))
        except BaseException as _error:
            _report(_status_w, "error could not confine the task's process: %s" % _error)
            os._exit(127)
        os.close(_status_w)
        os.setsid()
    else:
        os.setpgid(0, 0)
except OSError:
    pass
_null = os.open(os.devnull, os.O_RDONLY)
os.dup2(_null, 0)
os.close(_null)
os.dup2(_streams[0].fileno(), 1)
os.dup2(_streams[1].fileno(), 2)
for _stream in _streams:
    _stream.close()
os.closerange(3, 65536)
os.environ.clear()
os.environ.update(_request["env"])
for _key, _value in _ADDED.items():
    os.environ.setdefault(_key, _value)
os.chdir(_request["cwd"])
if "argv" in _request:
    try:
        os.execve(_request["argv"][0], _request["argv"], os.environ)
    except OSError as _error:
        os.write(2, ("could not start %s: %s\n" % (_request["argv"][0], _error.strerror)).encode())
        os._exit(127)
sys.argv = [_request["script"]]
sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[0])))
_ROOT = _request.get("root")
sys.excepthook = _app_traceback
del _request, _streams, _status_w, _null, _stream, _serve, _connect, _send, _gone, _added_at_start, _ADDED
_main = type(sys)("__main__")
_main.__file__ = sys.argv[0]
_main.__builtins__ = __builtins__
sys.modules["__main__"] = _main
with open(sys.argv[0], "rb") as _script:
    _code = compile(_script.read(), sys.argv[0], "exec")
exec(_code, _main.__dict__)
